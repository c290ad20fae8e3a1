"""Back office at federation scale (issue 17 §5): what stays true whatever the number of coops.

Timings live in bench/backoffice.py; here, what a member of staff would notice: the list of
operations filtered by coop works, and the debit-run page, creating a run and the closed cash-books
page read the database a fixed number of times, whatever the number of coops.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from app import membership as memberships
from app.demo import creditor_identifier
from app.extensions import db
from app.models import Coop, Debit, DebitBatch, Entry, Federation, Ledger, Membership, OutboxEmail, SchoolYear
from tests.test_debits import included, run_form


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
    _committed_coops(app, make_coop, range(1, 4))
    login_as(make_staff())
    page, few = _statements(app, client, "/admin/prelevements/")
    assert len(included(page)) == 3
    _committed_coops(app, make_coop, range(4, 31))
    page, more = _statements(app, client, "/admin/prelevements/")
    assert len(included(page)) == 30 and "085-030 Coopérative de test 030" in included(page)
    assert "30 adhésion(s)</strong> seront prélevées, pour un total de <strong>1\u202f449,00\u202f€" in page
    assert "2025-2026" in page and "48,30\u202f€" in page
    assert more == few


def test_staff_see_who_is_debited_page_by_page_search_and_set_coops_aside(
    app, client, clock, year, make_coop, make_staff, login_as, monkeypatch
):
    import admin.debits

    monkeypatch.setattr(admin.debits, "PAGE_SIZE", 10)
    monkeypatch.setattr(admin.debits, "PROBLEMS_SHOWN", 1)
    _committed_coops(app, make_coop, range(1, 26))
    with app.app_context():  # two coops cannot be debited: they are listed apart, with why
        db.session.scalar(sa.select(Coop).where(Coop.number == 7)).iban = ""
        db.session.scalar(sa.select(Coop).where(Coop.number == 13)).debit_mandate_ref = ""
        db.session.commit()
        db.session.remove()
    login_as(make_staff())
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    assert "23 adhésion(s)</strong> seront prélevées" in page and "2 adhésion(s) ne peuvent pas" in page
    assert "085-007 Coopérative de test 007</th>" in page and "IBAN absent ou invalide" in page
    assert "085-013 Coopérative" not in page and "1 autre(s) : recherchez une coopérative" in page
    problem = client.get("/admin/prelevements/?q=013").get_data(as_text=True)
    assert "085-013 Coopérative de test 013</th>" in problem and "(RUM) manquante" in problem
    assert [name[:7] for name in included(page)] == [f"085-{n:03d}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11)]
    assert "Page 1 sur 3" in page
    page = client.get("/admin/prelevements/?page=3").get_data(as_text=True)
    assert [name[:7] for name in included(page)] == [f"085-{n:03d}" for n in range(23, 26)]
    page = client.get("/admin/prelevements/?q=085-012").get_data(as_text=True)
    assert included(page) == ["085-012 Coopérative de test 012"]
    # « Exclure » on that line: the run to come has one coop less, and the form carries the exclusion
    link = html.unescape(re.search(r'href="([^"]+)">Exclure<span class="sr-only"> 085-012 ', page).group(1))
    page = client.get(link).get_data(as_text=True)
    assert "22 adhésion(s)</strong> seront prélevées" in page and "1 adhésion(s) laissée(s) de côté" in page
    assert "Réintégrer<span" in page and included(page) == []
    fields = run_form(page)
    assert len(fields["exclure"]) == 1 and fields["nombre"] == "22"
    response = client.post("/admin/prelevements/", data=fields)
    assert response.status_code == 302 and "/admin/prelevements/" in response.headers["Location"]
    with app.app_context():
        debited = db.session.scalars(
            sa.select(Coop.number).join(Debit, Debit.coop_id == Coop.id).order_by(Coop.number)
        ).all()
        mails = db.session.scalars(sa.select(OutboxEmail.recipient).order_by(OutboxEmail.recipient)).all()
        db.session.remove()
    assert debited == [n for n in range(1, 26) if n not in (7, 12, 13)]
    assert mails == sorted(f"coop{n}@example.org" for n in debited)


def test_a_run_that_would_differ_from_the_page_is_refused_and_shown_again(
    app, client, clock, year, make_coop, make_staff, login_as
):
    _committed_coops(app, make_coop, range(1, 4))
    login_as(make_staff())
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    _committed_coops(app, make_coop, (4,))  # committed meanwhile: not shown to staff, so not debited
    response = client.post("/admin/prelevements/", data=run_form(page))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "La liste a changé depuis son affichage" in page
    assert "4 adhésion(s)</strong> seront prélevées" in page and len(included(page)) == 4
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DebitBatch)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
        db.session.remove()
    assert client.post("/admin/prelevements/", data=run_form(page)).status_code == 302


def _create_run(app, client, count):
    """POST the run form as the page shows it; (statements, debits in the run)."""
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    assert len(included(page)) == count
    seen = []
    with app.app_context():
        engine = db.engine

    def listener(conn, cursor, statement, *args, **kwargs):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.post("/admin/prelevements/", data=run_form(page))
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 302 and "/admin/prelevements/" in response.headers["Location"]
    with app.app_context():
        batch = db.session.scalar(sa.select(DebitBatch).order_by(DebitBatch.id.desc()).limit(1))
        debits = db.session.scalars(sa.select(Debit).where(Debit.batch_id == batch.id).order_by(Debit.id)).all()
        mails = db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)).all()
        states = set(db.session.scalars(sa.select(Membership.status)))
        assert [d.end_to_end_id for d in debits] == sorted(d.end_to_end_id for d in debits)
        assert all(d.iban == "FR7615519000010002000000103" and d.status == "pending" for d in debits)
        assert sorted(m.recipient for m in mails) == sorted(d.coop.email for d in debits)
        assert all("48,30\u202f€" in m.subject and m.status == "pending" for m in mails)
        db.session.remove()
    assert batch.count == len(debits) == count and len(mails) == count and states == {"in_batch"}
    assert batch.control_sum_cents == 4830 * count
    return len(seen)


def test_creating_a_run_reads_and_writes_the_same_number_of_times_for_more_coops(
    app, client, clock, year, make_coop, make_staff, login_as
):
    _committed_coops(app, make_coop, range(1, 4))
    login_as(make_staff())
    few = _create_run(app, client, 3)
    with app.app_context():  # back to « engagée », as if the run had never been made
        db.session.execute(sa.delete(Debit))
        db.session.execute(sa.delete(DebitBatch))
        db.session.execute(sa.delete(OutboxEmail))
        db.session.execute(sa.update(Membership).values(status="committed"))
        db.session.commit()
        db.session.remove()
    _committed_coops(app, make_coop, range(4, 31))
    assert _create_run(app, client, 30) == few


def _closed_ledgers(app, make_coop, numbers):
    for number in numbers:
        info = make_coop(number)
        with app.app_context():
            session = db.session
            for start_year in (2023, 2024):
                school_year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == start_year))
                if school_year is None:
                    school_year = SchoolYear(
                        start_year=start_year, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25
                    )
                    session.add(school_year)
                    session.flush()
                session.add(
                    Ledger(
                        coop_id=info.id,
                        school_year_id=school_year.id,
                        status="closed",
                        closed_at=datetime(start_year + 1, 9, 5, 10, 0),
                    )
                )
            session.commit()
            session.remove()


def test_the_closed_cash_books_page_reads_the_database_the_same_number_of_times_for_more_coops(
    app, client, clock, make_coop, make_staff, login_as
):
    _closed_ledgers(app, make_coop, range(1, 4))
    login_as(make_staff())
    page, few = _statements(app, client, "/admin/clotures/")
    assert "6 cahier(s) clôturé(s)." in page and page.count("Rouvrir le cahier<") == 6
    _closed_ledgers(app, make_coop, range(4, 31))
    page, more = _statements(app, client, "/admin/clotures/")
    assert "60 cahier(s) clôturé(s)." in page and page.count("Rouvrir le cahier<") == 50  # 50 a page
    assert "085-030 Coopérative de test 030" in page and "2024-2025" in page and "05/09/2025" in page
    assert more == few


def test_the_consolidated_crf_counts_the_year_s_operations_only_and_lists_its_durable_goods(
    app, client, year, make_coop, make_staff, login_as
):
    """The export reads the year's operations by id range: operations of another year written before,
    between and after them never count, and the inventory lists the year's purchases on account 68."""
    import csv
    import io

    from app.models import Account, EntryLine

    coop_ids = [make_coop(number).id for number in (1, 2)]
    with app.app_context():
        session = db.session
        session.add(SchoolYear(start_year=2024, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25))
        session.flush()
        years = {y.start_year: y.id for y in session.scalars(sa.select(SchoolYear))}
        account = {code: id_ for code, id_ in session.execute(sa.select(Account.code, Account.id))}
        ledgers = {}
        for coop_id, start_year in ((coop_ids[0], 2024), (coop_ids[0], 2025), (coop_ids[1], 2025)):
            ledger = Ledger(coop_id=coop_id, school_year_id=years[start_year])
            session.add(ledger)
            session.flush()
            ledgers[coop_id, start_year] = ledger

        def operation(coop_id, start_year, piece, label, code, cents):
            entry = Entry(
                ledger_id=ledgers[coop_id, start_year].id,
                coop_id=coop_id,
                piece=piece,
                date=date(start_year, 10, 1),
                label=label,
                payment_mode="virement",
                kind="expense" if cents > 0 else "receipt",
            )
            session.add(entry)
            session.flush()
            session.add_all(
                [
                    EntryLine(entry_id=entry.id, account_id=account[code], amount_cents=cents),
                    EntryLine(entry_id=entry.id, account_id=account["512"], amount_cents=-cents),
                ]
            )
            session.flush()

        operation(coop_ids[0], 2024, "A1", "Kermesse 2024", "707", -99_900)
        operation(coop_ids[0], 2025, "P1", "Fournitures", "6068", 10_000)
        operation(coop_ids[0], 2024, "A2", "Ordinateur 2024", "68", 77_700)  # between the year's operations
        operation(coop_ids[0], 2025, "P2", "Vidéoprojecteur", "68", 30_000)
        operation(coop_ids[1], 2025, "P1", "Livres", "6068", 5_000)
        operation(coop_ids[0], 2025, "P3", "Kermesse", "707", -25_000)
        operation(coop_ids[0], 2024, "A3", "Sortie 2024", "6068", 44_400)
        session.commit()
        session.remove()
    login_as(make_staff())

    def export(query: str) -> list[list[str]]:
        response = client.get(f"/admin/exports/crf-2025.csv{query}")
        assert response.status_code == 200
        return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))

    by_coop = export("?par=coop")
    assert by_coop[1:] == [
        ["085-001", "Coopérative de test 001", "ouvert", "400,00", "250,00", "-150,00", "-150,00", "0,00", "0,00"],
        ["085-002", "Coopérative de test 002", "ouvert", "50,00", "0,00", "-50,00", "-50,00", "0,00", "0,00"],
    ]
    by_account = {row[0]: row for row in export("")[1:]}
    assert by_account["6068"][3:] == ["charge", "150,00", "2"]
    assert by_account["68"][3:] == ["charge", "300,00", "1"]
    assert by_account["707"][3:] == ["produit", "250,00", "1"]
    inventory = export("?par=inventaire")
    assert inventory[1:] == [["085-001", "Coopérative de test 001", "01/10/2025", "P2", "Vidéoprojecteur", "300,00"]]
