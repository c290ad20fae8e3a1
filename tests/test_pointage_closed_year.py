"""A closed year is frozen for pointage (issue 13 §1): no route, import or command changes it.

The coop closed 2024-2025 with one cheque (0001231, 120,00 €, written on 28/08/2025) not yet on the
statement, and two lines cleared in June and August. Every pointage route and import path is then
tried on that year; its reconciliation at 31 August and `flask reports crf --json` must be identical
before and after, while the carried cheque can still be cleared in 2025-2026, with its real date.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import closing
from app import ledger as books
from app import reconciliation as rec
from app.errors import DomainError
from app.models import Coop, EntryLine, Ledger, SchoolYear, Statement, StatementLine
from tests.helpers import page_html, plain

DATA = Path(__file__).parent / "data" / "statements"
AUG_31 = date(2025, 8, 31)
STATEMENT_AT_CLOSING = 123_000  # 1 110,00 in the book + the 120,00 cheque not yet debited


def _entry(session, ledger, piece, day, amount, mode, number="", label="Opération"):
    receipt = amount > 0
    data = books.EntryData(
        piece=piece,
        date=day,
        label=label,
        payment_mode=mode,
        kind="receipt" if receipt else "expense",
        treasury=books.Treasury(bank_in=amount) if receipt else books.Treasury(bank_out=-amount),
        splits=[books.Split("756" if receipt else "6068", abs(amount))],
        cheque_number=number,
    )
    entry = books.record_entry(session, ledger, data, by=None)
    return next(line.id for line in entry.lines if line.account.code == "512")


@pytest.fixture
def closed(app, make_coop, clock):
    """Coop 085-042 with 2024-2025 closed on 15/09/2025; returns the bank line ids by name."""
    info = make_coop(42, iban="FR7610278360010002048500175")
    with app.app_context():
        from app.extensions import db

        session = db.session
        coop = session.get(Coop, info.id)
        previous = books.open_ledger(session, coop, 2024)
        books.record_opening(session, previous, bank=120_000, cash=0, by=None)
        ids = {
            "june": _entry(session, previous, "P1", date(2025, 6, 10), 5_000, "virement", label="Subvention"),
            "august": _entry(session, previous, "P2", date(2025, 8, 20), -2_000, "carte", label="Papeterie"),
            "cheque": _entry(session, previous, "P3", date(2025, 8, 28), -12_000, "cheque", "0001231", "Librairie"),
        }
        rec.clear_line(session, coop.id, ids["june"], date(2025, 6, 15), by=None)
        rec.clear_line(session, coop.id, ids["august"], date(2025, 8, 29), by=None)
        closing.close_ledger(
            session,
            previous,
            statement_balance=STATEMENT_AT_CLOSING,
            cash_count=0,
            by=None,
            now=datetime(2025, 9, 15, 8, 0),
        )
        session.commit()
        ids["coop"] = coop.id
        db.session.remove()
    return ids


def _frozen_state(app, db_check) -> tuple:
    """What must not move: the closed year's reconciliation at 31/08, its statement box, its CRF JSON."""

    def read(session):
        ledger = session.scalar(
            sa.select(Ledger).join(SchoolYear).where(SchoolYear.start_year == 2024, Ledger.coop_id.is_not(None))
        )
        reconciliation = rec.reconcile(session, ledger, AUG_31, ledger.closing_statement_balance_cents)
        return (
            ledger.status,
            reconciliation,
            [(line.line_id, line.date, line.amount) for line in reconciliation.uncleared],
            ledger.reconciliation_date,
            ledger.reconciliation_balance_cents,
        )

    crf = app.test_cli_runner().invoke(args=["reports", "crf", "085-042", "2024-2025", "--json"])
    assert crf.exit_code == 0, crf.output
    return db_check(read), crf.output


def _cleared(db_check, line_id):
    return db_check(lambda s: s.get(EntryLine, line_id).cleared_on)


def test_the_fixture_year_is_closed_and_reconciled(closed, app, db_check):
    (status, reconciliation, uncleared, *_), _ = _frozen_state(app, db_check)
    assert status == "closed" and reconciliation.is_reconciled
    assert uncleared == [(closed["cheque"], date(2025, 8, 28), -12_000)]


def test_no_pointage_route_changes_a_closed_year(closed, app, client, login_as, db_check):
    before = _frozen_state(app, db_check)
    login_as("085-042")

    # Unclearing a line cleared in June or August of the closed year: refused, from either year's page.
    for year in (2024, 2025):
        response = client.post(f"/coop/pointage/{year}/ligne/{closed['june']}/depointer", data={"confirme": "oui"})
        assert response.status_code in (302, 404)
    response = client.post(
        f"/coop/pointage/2024/ligne/{closed['august']}/depointer", data={"confirme": "oui"}, follow_redirects=True
    )
    assert "clôturée" in plain(page_html(response))
    assert _cleared(db_check, closed["august"]) == date(2025, 8, 29)
    json_answer = client.post(
        f"/coop/pointage/2024/ligne/{closed['august']}/depointer",
        data={"confirme": "oui"},
        headers={"Accept": "application/json"},
    )
    assert json_answer.status_code in (302, 422)

    # Clearing the carried cheque with a date inside the closed year: refused, as plain form and as JSON.
    for year, on in ((2024, ""), (2024, "2025-08-30"), (2025, "2025-08-30"), (2025, "2024-12-01")):
        response = client.post(
            f"/coop/pointage/{year}/ligne/{closed['cheque']}/pointer", data={"on": on}, follow_redirects=True
        )
        assert response.status_code == 200
        assert "clôturée" in plain(page_html(response))
    json_answer = client.post(
        f"/coop/pointage/2025/ligne/{closed['cheque']}/pointer",
        data={"on": "2025-08-30"},
        headers={"Accept": "application/json"},
    )
    assert json_answer.status_code == 422 and "clôturée" in json_answer.get_json()["message"]
    assert _cleared(db_check, closed["cheque"]) is None

    # The statement box of the closed year is read-only.
    response = client.post(
        "/coop/pointage/2024/solde", data={"on": "31/08/2025", "balance": "999,00"}, follow_redirects=True
    )
    assert "clôturée" in plain(page_html(response))

    # Importing into the closed year is refused; importing a statement dated 29/08 into the open
    # year, then confirming every proposal, leaves the closed year alone.
    qif = (DATA / "releve_2025-09.qif").read_bytes().replace(b"D02/09/2025", b"D29/08/2025")
    for year in (2024, 2025):
        client.post(
            f"/coop/pointage/{year}/releve",
            data={"file": (__import__("io").BytesIO(qif), "releve.qif")},
            content_type="multipart/form-data",
        )
    # The line of 29/08 is shown first (outside 2025-2026); the coop imports all the same.
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count(Statement.id)))) == 0
    client.post("/coop/pointage/2025/hors-annee", data={})
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count(Statement.id)))) == 1
    proposals = db_check(
        lambda s: (
            rec.match(rec.open_bank_items(s, closed["coop"]), rec.uncleared_book_lines(s, closed["coop"])).proposals
            + rec.match(rec.open_bank_items(s, closed["coop"]), rec.uncleared_book_lines(s, closed["coop"])).suggestions
        )
    )
    late = db_check(lambda s: s.scalar(sa.select(StatementLine.id).where(StatementLine.date == date(2025, 8, 29))))
    values = [f"{p.bank_id}:{','.join(map(str, p.line_ids))}" for p in proposals]
    values.append(f"{late}:{closed['cheque']}")  # as a hand-made form would send it
    response = client.post("/coop/pointage/2025/correspondances", data={"match": values}, follow_redirects=True)
    assert "clôturée" in plain(page_html(response))
    assert _cleared(db_check, closed["cheque"]) is None

    # The closed year's page shows no button that would change it.
    page = plain(page_html(client.get("/coop/pointage/2024")))
    assert "est clôturée" in page and "Dépointer" not in page and "Calculer l'écart" not in page

    assert _frozen_state(app, db_check) == before


def test_a_carried_cheque_is_cleared_in_the_open_year_with_its_real_date(closed, app, client, login_as, db_check):
    before = _frozen_state(app, db_check)
    login_as("085-042")
    page = plain(page_html(client.get("/coop/pointage/2025")))
    assert "Librairie" in page and "année précédente" in page
    response = client.post(
        f"/coop/pointage/2025/ligne/{closed['cheque']}/pointer", data={"on": "2025-09-02"}, follow_redirects=True
    )
    assert "Ligne pointée au 02/09/2025" in plain(page_html(response))
    assert _cleared(db_check, closed["cheque"]) == date(2025, 9, 2)
    # Cleared in the open year: it can be uncleared there, and the closed year never notices.
    response = client.post(
        f"/coop/pointage/2025/ligne/{closed['cheque']}/depointer", data={"confirme": "oui"}, follow_redirects=True
    )
    assert "Pointage annulé" in plain(page_html(response))
    assert _frozen_state(app, db_check) == before


def test_the_statement_command_does_not_change_a_closed_year(closed, app, db_check):
    before = _frozen_state(app, db_check)
    path = DATA / "releve_2025-09_credit_mutuel.ofx"
    result = app.test_cli_runner().invoke(args=["statements", "import", "085-042", str(path)])
    assert result.exit_code == 0, result.output
    assert _frozen_state(app, db_check) == before


def test_the_domain_refuses_every_change_of_a_closed_year(closed, session):
    coop_id = closed["coop"]
    with pytest.raises(DomainError, match="clôturée"):
        rec.unclear_line(session, coop_id, closed["june"], by=None)
    with pytest.raises(DomainError, match="clôturée"):
        rec.clear_line(session, coop_id, closed["june"], date(2025, 9, 3), by=None)
    with pytest.raises(DomainError, match="clôturée"):
        rec.clear_line(session, coop_id, closed["cheque"], AUG_31, by=None)
    previous = session.scalar(sa.select(Ledger).join(SchoolYear).where(SchoolYear.start_year == 2024))
    with pytest.raises(DomainError, match="clôturée"):
        rec.save_statement_balance(session, previous, AUG_31, 1, by=None)
    assert rec.closed_year_of(session, coop_id, AUG_31) == "2024-2025"
    assert rec.closed_year_of(session, coop_id, date(2025, 9, 1)) is None
