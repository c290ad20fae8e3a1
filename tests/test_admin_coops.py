"""The coop form of the back office checks the direct-debit mandate where staff type it (issue 16 §2)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.models import Coop
from tests.helpers import page_html
from tests.test_security import _edit


def _rum(db_check, coop_id):
    return db_check(lambda s: s.get(Coop, coop_id).debit_mandate_ref)


def test_the_rum_is_checked_where_it_is_typed(client, make_coop, make_staff, login_as, db_check, clock):
    first, second = make_coop(1), make_coop(2)
    db_check(
        lambda s: (
            s.execute(sa.update(Coop).where(Coop.id == first.id).values(debit_mandate_ref="OCCE85-0001")),
            s.commit(),
        )
    )
    make_staff("agent")
    staff = login_as("agent")

    spaced = _edit(staff, "admin_coops", second.id, {"debit_mandate_ref": "OCCE 85 002"})
    assert spaced.status_code == 200 and "RUM invalide" in page_html(spaced)
    taken = _edit(staff, "admin_coops", second.id, {"debit_mandate_ref": "OCCE85-0001"})
    assert "est déjà celle de la coopérative 085-001" in page_html(taken)
    future = _edit(
        staff, "admin_coops", second.id, {"debit_mandate_ref": "OCCE85-0002", "debit_mandate_signed_on": "2030-01-01"}
    )
    assert "ne peut pas être signé dans le futur" in page_html(future)
    assert _rum(db_check, second.id) == ""

    saved = _edit(
        staff, "admin_coops", second.id, {"debit_mandate_ref": "OCCE85-0002", "debit_mandate_signed_on": "2025-09-01"}
    )
    assert saved.status_code == 302, re.findall(r"alert.{0,400}", page_html(saved), re.S)
    assert _rum(db_check, second.id) == "OCCE85-0002"


def test_school_year_deadlines_must_fit_the_year(client, make_staff, login_as, db_check):
    from app.models import SchoolYear

    db_check(lambda s: (s.add(SchoolYear(start_year=2025, pupil_fee_cents=205, adult_fee_cents=205)), s.commit()))
    year_id = db_check(lambda s: s.scalar(sa.select(SchoolYear.id)))
    make_staff("chef", role="admin")
    staff = login_as("chef")
    early = _edit(staff, "admin_years", year_id, {"reports_deadline": "2025-10-31"})
    assert "doit suivre la fin de l'année scolaire (31/08/2026)" in page_html(early)
    assert "Rien n'a été enregistré : corrigez les champs signalés" in page_html(early)  # not Flask-Admin's English
    late = _edit(staff, "admin_years", year_id, {"membership_deadline": "2026-10-15"})
    assert "doit tomber dans l'année scolaire 2025-2026" in page_html(late)
    saved = _edit(
        staff, "admin_years", year_id, {"membership_deadline": "2025-10-15", "reports_deadline": "2026-10-31"}
    )
    assert saved.status_code == 302, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page_html(saved)))[:1500]
