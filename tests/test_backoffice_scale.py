"""Back office at federation scale (issue 17 §5): what stays true whatever the number of coops.

Timings live in bench/backoffice.py; here, what a member of staff would notice: the list of
operations filtered by coop works, and the debit-run page reads the database a fixed number of times.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from app import membership as memberships
from app.demo import creditor_identifier
from app.extensions import db
from app.models import Coop, Entry, Federation, Ledger, SchoolYear


@pytest.fixture
def year(app):
    with app.app_context():
        db.session.add(SchoolYear(start_year=2025, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25))
        db.session.add(
            Federation(
                name="OCCE 85", creditor_id=creditor_identifier("FR", "850042"), iban="FR7615519000010008500008515"
            )
        )
        db.session.commit()
        db.session.remove()


def _committed_coops(app, make_coop, numbers):
    for number in numbers:
        info = make_coop(number)
        with app.app_context():
            session = db.session
            coop = session.get(Coop, info.id)
            coop.debit_mandate_ref = f"OCCE85-COOP-{number:03d}"
            coop.debit_mandate_signed_on = date(2024, 9, 2)
            school_year = session.scalar(sa.select(SchoolYear))
            headcounts = memberships.Headcounts(classes=(memberships.ClassHeadcount("CP", "CP", 20, 1),))
            membership = memberships.save_draft(session, coop, school_year, headcounts, by=None)
            memberships.commit_membership(
                session, membership, coop.mandates[0], by=None, ip="127.0.0.1", now=datetime(2025, 9, 10)
            )
            session.add(Ledger(coop_id=coop.id, school_year_id=school_year.id))
            session.flush()
            ledger = session.scalar(sa.select(Ledger).where(Ledger.coop_id == coop.id))
            session.add(
                Entry(
                    ledger_id=ledger.id,
                    coop_id=coop.id,
                    piece="P1",
                    date=date(2025, 9, number),
                    label=f"Fournitures de la coop {number}",
                    payment_mode="cheque",
                    kind="expense",
                )
            )
            session.commit()
            session.remove()


def _statements(app, client, path):
    seen = []

    def count(*args, **kwargs):
        seen.append(1)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(path)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return response.get_data(as_text=True), len(seen)


def test_the_list_of_operations_filters_by_coop(app, client, clock, year, make_coop, make_staff, login_as):
    _committed_coops(app, make_coop, (1, 2))
    login_as(make_staff())
    with app.app_context():
        coop_id = db.session.scalar(sa.select(Coop.id).where(Coop.number == 2))
    page = client.get(f"/admin/admin_entries/?flt0_0={coop_id}").get_data(as_text=True)
    assert "Fournitures de la coop 2" in page and "Fournitures de la coop 1" not in page
    page = client.get("/admin/admin_entries/").get_data(as_text=True)
    assert "Fournitures de la coop 1" in page and "Fournitures de la coop 2" in page


def test_the_debit_run_page_reads_the_database_the_same_number_of_times_for_more_coops(
    app, client, clock, year, make_coop, make_staff, login_as
):
    _committed_coops(app, make_coop, (1, 2))
    login_as(make_staff())
    page, few = _statements(app, client, "/admin/prelevements/")
    assert page.count('name="membership"') == 2
    _committed_coops(app, make_coop, (3, 4, 5, 6))
    page, more = _statements(app, client, "/admin/prelevements/")
    assert page.count('name="membership"') == 6
    assert "Coopérative de test 006" in page
    assert more == few
