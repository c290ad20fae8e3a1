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
