"""Year end: closing checks and carry-forward, the closed-year guard, reopening, the CRF of the worked
example (domain, JSON command, PDF), CRA, quitus, supporting documents, submission, web steps."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import cahier as cahier_format
from app import closing, cra, submission
from app import ledger as books
from app.annual_report import ensure_report
from app.closing import CashCount
from app.crf import build_crf
from app.errors import DomainError, ValidationErrors
from app.formats import euros
from app.models import (
    Action,
    AnnualReport,
    AuditEvent,
    Coop,
    Document,
    Entry,
    EntryLine,
    Ledger,
    OutboxEmail,
    User,
)
from app.reconciliation import carried_lines

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "exemple_2024-2025.csv"
EXPECTED = json.loads((DATA / "exemple_2024-2025.expected.json").read_text(encoding="utf-8"))
SEPT_15 = datetime(2025, 9, 15, 9, 30)
STATEMENT = 309240
CASH = CashCount.from_counts({2000: 2, 1000: 1})  # 2 x 20 € + 1 x 10 € = 50,00 €


@pytest.fixture
def coop(session, make_coop):
    return session.get(Coop, make_coop(1).id)


@pytest.fixture
def example(session, coop):
    """The worked example 2024-2025, imported, still open."""
    ledger = books.open_ledger(session, coop, 2024)
    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    session.flush()
    return ledger


@pytest.fixture
def closed(session, example):
    closing.close_ledger(session, example, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15)
    session.flush()
    return example


def expense(piece, amount, *, day, cheque="", mode="cheque", code="6068"):
    return books.EntryData(
        piece=piece,
        date=day,
        label=f"Dépense {piece}",
        payment_mode=mode,
        kind="expense",
        treasury=books.Treasury(bank_out=amount),
        splits=[books.Split(code, amount)],
        cheque_number=cheque,
    )


def receipt(piece, amount, *, day, code="756", bank=True):
    treasury = books.Treasury(bank_in=amount) if bank else books.Treasury(cash_in=amount)
    mode = "remise" if bank else "especes"
    return books.EntryData(
        piece=piece,
        date=day,
        label=f"Recette {piece}",
        payment_mode=mode,
        kind="receipt",
        treasury=treasury,
        splits=[books.Split(code, amount)],
    )


def staff_user(session, login="agent"):
    user = User(login=login, role="staff", email=f"{login}@occe85.example", full_name="Agent OCCE", password_hash="x")
    session.add(user)
    session.flush()
    return user


def opening_of(session, ledger):
    return closing.opening_balances(session, ledger)


# -- the worked example --------------------------------------------------------------------------


def test_worked_example_crf_from_the_domain(session, closed):
    crf = build_crf(session, closed)
    expected = {key: value for key, value in EXPECTED.items() if key != "about"}
    assert crf.to_json() == expected
    assert (crf.total_charges, crf.total_produits, crf.result) == (446760, 561000, 114240)
    assert (crf.closing_bank, crf.closing_cash, crf.closing_advance) == (294240, 5000, 0)
    assert crf.is_balanced and crf.assets_total == crf.liabilities_total == 299240
    assert [line.display_code for line in crf.charges] == [
        "60680008",
        "60700008",
        "61681008",
        "61810008",
        "62810008",
        "62880008",
    ]
    assert crf.reconciliation.expected_statement == STATEMENT and crf.reconciliation.is_reconciled
    assert crf.cash_count.lines == [(2000, 2, 4000), (1000, 1, 1000)]
    [subsidy] = crf.subsidies
    assert (subsidy.origin, subsidy.action, subsidy.label, subsidy.amount) == (
        "Commune",
        "Classe de mer",
        "Virement mairie - subvention classe de mer",
        120000,
    )
    assert {a.name: a.balance for a in crf.actions} == {"Classe de mer": -30000, "Photos": 45000}


def test_closing_carries_the_balances_into_next_year(session, closed):
    following = books.find_ledger(session, closed.coop_id, 2025)
    assert following is not None and following.is_open
    assert opening_of(session, following) == (294240, 5000)
    entry = books.opening_entry(session, following)
    assert {line.account.code: line.amount_cents for line in entry.lines} == {
        "512": 294240,
        "530": 5000,
        "110": -299240,
    }
    assert closed.status == "closed" and closed.closed_at == SEPT_15
    assert closed.closing_statement_balance_cents == STATEMENT and closed.cash_count["total"] == 5000
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "ledger.closed"))
    assert event.after["bank"] == 294240 and event.after["uncleared"] == 1


# -- closing refused, one check at a time --------------------------------------------------------


def _refusal(session, ledger, **overrides):
    values = {"statement_balance": STATEMENT, "cash_count": CASH, "by": None, "now": SEPT_15}
    values.update(overrides)
    with pytest.raises(closing.ClosingRefused) as caught:
        closing.close_ledger(session, ledger, **values)
    assert ledger.status == "open"
    return caught.value


def test_closing_before_1_september_is_refused(session, example):
    refused = _refusal(session, example, now=datetime(2025, 8, 31, 18, 0))
    assert [c.key for c in refused.failed] == ["period"]
    assert "à partir du 01/09/2025" in refused.message


def test_closing_with_an_advance_outstanding_is_refused(session, coop):
    ledger = books.open_ledger(session, coop, 2024)
    books.record_opening(session, ledger, bank=50000, cash=0, by=None)
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="G01",
            date=date(2024, 12, 2),
            label="Régie CP",
            payment_mode="cheque",
            kind="advance_paid",
            treasury=books.Treasury(bank_out=10000),
            cheque_number="7",
        ),
        by=None,
    )
    refused = _refusal(session, ledger, statement_balance=50000, cash_count=0)
    assert [c.key for c in refused.failed] == ["advance"]
    assert "Il reste 100,00 € de régies d'avance" in refused.message.replace("\u202f", " ")


def test_closing_with_a_wrong_cash_count_is_refused(session, example):
    refused = _refusal(session, example, cash_count=CashCount.from_counts({2000: 2}))
    assert [c.key for c in refused.failed] == ["cash_count"]
    assert "L'arrêté de caisse (40,00 €) ne correspond pas au solde de caisse du cahier" in refused.message.replace(
        "\u202f", " "
    )
    refused = _refusal(session, example, cash_count=None)
    assert "Saisissez l'arrêté de caisse" in refused.message


def test_closing_unreconciled_is_refused(session, example):
    refused = _refusal(session, example, statement_balance=294240)  # forgot the cheque not yet cashed
    assert [c.key for c in refused.failed] == ["reconciliation"]
    assert "donne 3 092,40 €" in refused.message.replace("\u202f", " ")
    assert "écart de -150,00 €" in refused.message.replace("\u202f", " ")
    refused = _refusal(session, example, statement_balance=None)
    assert "Saisissez le solde du relevé bancaire au 31/08/2025" in refused.message


def test_closing_an_unbalanced_ledger_is_refused(session, example):
    line = session.scalar(sa.select(EntryLine).join(Entry).where(Entry.piece == "D02", EntryLine.amount_cents > 0))
    line.amount_cents += 1  # a corrupted entry (only possible behind the domain's back)
    session.flush()
    refused = _refusal(session, example, statement_balance=STATEMENT)
    assert "balanced" in [c.key for c in refused.failed]
    assert "La pièce D02 n'est pas équilibrée" in refused.message


def test_closing_needs_the_previous_year_closed(session, coop):
    older = books.open_ledger(session, coop, 2023)
    books.record_opening(session, older, bank=1000, cash=0, by=None)
    ledger = books.open_ledger(session, coop, 2024)
    refused = _refusal(session, ledger, statement_balance=0, cash_count=0)
    assert [c.key for c in refused.failed] == ["previous"]
    assert "Le cahier 2023-2024 n'est pas clôturé" in refused.message


def test_every_check_is_listed_with_its_status(session, example):
    checks = closing.closing_checks(session, example, today=date(2025, 9, 2))
    assert [(c.key, c.ok) for c in checks] == [
        ("period", True),
        ("advance", True),
        ("cash_count", False),
        ("reconciliation", False),
        ("balanced", True),
    ]
    closing.save_cash_count(session, example, CASH, by=None)
    closing.save_statement_balance(session, example, STATEMENT, by=None)
    assert all(c.ok for c in closing.closing_checks(session, example, today=date(2025, 9, 2)))


def test_cash_count_by_denomination():
    count = CashCount.from_counts({50000: 1, 500: 3, 200: 4, 1: 7})
    assert count.total == 50000 + 1500 + 800 + 7
    assert CashCount.from_json(count.to_json()) == count
    assert CashCount.from_json(CashCount.from_total(1234).to_json()).total == 1234
    with pytest.raises(DomainError, match="nombre entier"):
        CashCount.from_counts({200: -1})
    assert closing.denomination_label(50) == "50 centimes" and closing.denomination_label(20000) == "200 €"


# -- read-only after closing ---------------------------------------------------------------------


def test_a_closed_year_refuses_every_write_path(session, closed, tmp_path):
    entry = session.scalar(sa.select(Entry).where(Entry.ledger_id == closed.id, Entry.piece == "D02"))
    with pytest.raises(DomainError, match="clôturé"):
        books.record_entry(session, closed, expense("D09", 100, day=date(2025, 1, 5), cheque="200"), by=None)
    with pytest.raises(DomainError, match="clôturé"):
        books.update_entry(
            session,
            entry,
            expense("D02", 1000, day=date(2024, 11, 3), cheque="101", code="607"),
            expected_version=entry.version,
            by=None,
        )
    with pytest.raises(DomainError, match="clôturé"):
        books.delete_entry(session, entry, by=None)
    with pytest.raises(DomainError, match="clôturé"):
        books.record_opening(session, closed, bank=1, cash=0, by=None)
    with pytest.raises(ValidationErrors, match="clôturé"):
        cahier_format.import_cahier(session, closed, EXAMPLE.read_bytes(), by=None)
    with pytest.raises(DomainError, match="clôturé"):
        closing.save_cash_count(session, closed, CASH, by=None)
    with pytest.raises(DomainError, match="clôturé"):
        closing.save_statement_balance(session, closed, 1, by=None)
    session.rollback()


@pytest.mark.parametrize(
    "change",
    [
        "label",
        "amount",
        "new_line",
        "delete_line",
        "delete_entry",
        "new_entry",
        "action",
        "voucher",
        "statement_balance",
    ],
)
def test_the_guard_refuses_changes_behind_the_domains_back(session, closed, change):
    """Whatever the code path: an ORM change to a closed year fails at flush."""
    entry = session.scalar(sa.select(Entry).where(Entry.ledger_id == closed.id, Entry.piece == "D02"))
    line = entry.lines[0]
    if change == "label":
        entry.label = "Autre chose"
    elif change == "amount":
        line.amount_cents += 100
    elif change == "new_line":
        entry.lines.append(EntryLine(account=line.account, amount_cents=5))
    elif change == "delete_line":
        entry.lines.remove(line)
    elif change == "delete_entry":
        session.delete(entry)
    elif change == "new_entry":
        session.add(
            Entry(
                ledger=closed,
                coop_id=closed.coop_id,
                piece="X1",
                date=date(2025, 1, 1),
                label="x",
                payment_mode="cheque",
                kind="expense",
            )
        )
    elif change == "action":
        action = session.scalar(sa.select(Action).where(Action.name == "Photos"))
        action.name = "Photos de classe"
    elif change == "voucher":
        session.add(
            Document(
                coop_id=closed.coop_id,
                entry_id=entry.id,
                kind="voucher",
                original_name="a.pdf",
                content_type="application/pdf",
                size=1,
                sha256="0" * 64,
                storage_key="k" * 32,
            )
        )
    elif change == "statement_balance":
        closed.closing_statement_balance_cents = 1
    with pytest.raises(DomainError):
        session.flush()
    session.rollback()


def test_pointage_stays_allowed_on_a_closed_year(session, closed):
    cheque = session.scalar(
        sa.select(EntryLine).join(Entry).join(EntryLine.account).where(Entry.piece == "D04", EntryLine.amount_cents < 0)
    )
    cheque.cleared_on = date(2025, 9, 12)
    session.flush()  # no DomainError: pointage metadata is not accounting
    assert session.get(EntryLine, cheque.id).cleared_on == date(2025, 9, 12)


def test_an_uncleared_cheque_is_carried_into_next_year_and_cleared_there(session, closed):
    following = books.find_ledger(session, closed.coop_id, 2025)
    [carried] = carried_lines(session, following)
    assert (carried.piece, carried.cheque, carried.amount, carried.year_label, carried.cleared_on) == (
        "D04",
        "104",
        -15000,
        "2024-2025",
        None,
    )
    # It is not entered again: the new year has only its opening entry.
    assert [e.kind for e in session.scalars(sa.select(Entry).where(Entry.ledger_id == following.id))] == ["opening"]
    before = build_crf(session, closed).to_json()

    # The cheque appears on the statement of 12 September 2025: it is pointed in 2025-2026.
    line = session.get(EntryLine, carried.line_id)
    line.cleared_on = date(2025, 9, 12)
    session.flush()
    assert [line.cleared_on for line in carried_lines(session, following)] == [date(2025, 9, 12)]
    # N's reconciliation at 31 August is unchanged: the line was not cleared by then.
    reconciliation = closing.bank_reconciliation(session, closed)
    assert [u.piece for u in reconciliation.uncleared] == ["D04"] and reconciliation.is_reconciled
    assert build_crf(session, closed).to_json() == before
    # N+1 at 30 September: statement = book balance (nothing left uncleared).
    deposit = books.record_entry(session, following, receipt("R01", 40000, day=date(2025, 9, 20)), by=None)
    deposit.lines[0].cleared_on = date(2025, 9, 22)
    session.flush()
    september = closing.bank_reconciliation(session, following, on=date(2025, 9, 30), statement_balance=294240 + 40000)
    assert september.uncleared == () and september.is_reconciled


def test_the_pointage_screen_of_next_year_clears_the_carried_cheque(session, closed):
    """With the pointage domain (app.reconciliation): the cheque shows in 2025-2026's pointage and is
    cleared there; 2024-2025's reconciliation at 31 August does not move."""
    from app import reconciliation

    following = books.find_ledger(session, closed.coop_id, 2025)
    carried = [line for line in reconciliation.pointage_lines(session, following) if line.earlier_year]
    assert [(line.piece, line.amount, line.cleared_on) for line in carried] == [("D04", -15000, None)]
    assert reconciliation.reconcile(session, closed, date(2025, 8, 31), STATEMENT).is_reconciled
    reconciliation.clear_line(session, closed.coop_id, carried[0].line_id, date(2025, 9, 12), by=None)
    assert reconciliation.reconcile(session, closed, date(2025, 8, 31), STATEMENT).is_reconciled
    assert closing.bank_reconciliation(session, closed).is_reconciled
    september = reconciliation.reconcile(session, following, date(2025, 9, 30), 294240)
    assert september.uncleared_count == 0 and september.is_reconciled
    assert build_crf(session, closed).to_json()["uncleared"] == EXPECTED["uncleared"]


def test_an_uncleared_cheque_still_counts_in_next_years_reconciliation(session, closed):
    following = books.find_ledger(session, closed.coop_id, 2025)
    reconciliation = closing.bank_reconciliation(session, following, on=date(2025, 9, 30), statement_balance=STATEMENT)
    assert [u.piece for u in reconciliation.uncleared] == ["D04"]
    assert reconciliation.book_balance == 294240 and reconciliation.is_reconciled


def test_the_opening_of_next_year_cannot_be_typed_by_hand(session, closed):
    following = books.find_ledger(session, closed.coop_id, 2025)
    with pytest.raises(DomainError, match="vient de la clôture du cahier 2024-2025"):
        books.record_opening(session, following, bank=1, cash=0, by=None)
    rows = (
        "piece;date;libelle;mode;cheque;action;pointe;banque_entree;banque_sortie;caisse_entree;caisse_sortie;"
        "regie_entree;regie_sortie\r\nRAN2;01/09/2025;Report;report;;;;10,00;;;;;\r\n"
    )
    with pytest.raises(ValidationErrors, match="report à nouveau"):
        cahier_format.import_cahier(session, following, rows.encode(), by=None)


def test_closing_replaces_an_opening_typed_before_only_once_confirmed(session, example):
    following = books.open_ledger(session, example.coop, 2025)
    books.record_opening(session, following, bank=100, cash=100, by=None)  # typed in September, before closing
    books.record_entry(session, following, receipt("R01", 2500, day=date(2025, 9, 5)), by=None)
    conflict = closing.opening_conflict(session, example)
    assert (conflict.typed_total, conflict.closing_total, conflict.difference) == (200, 299240, 299040)
    with pytest.raises(DomainError, match=r"déjà saisi .* écart de 2.990,40") as refused:
        closing.close_ledger(session, example, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15)
    assert refused.value.field == "replace_opening"
    assert example.is_open and opening_of(session, following) == (100, 100)
    closing.close_ledger(
        session, example, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15, replace_opening=True
    )
    assert opening_of(session, following) == (294240, 5000)
    assert len([e for e in following.entries if e.kind == "opening"]) == 1


# -- reopening -----------------------------------------------------------------------------------


def test_reopen_and_close_again_keeps_opening_equal_to_closing(session, closed):
    staff = staff_user(session)
    with pytest.raises(DomainError, match="motif"):
        closing.reopen_ledger(session, closed, reason="  ", by=staff)
    closing.reopen_ledger(session, closed, reason="Facture oubliée", by=staff)
    assert closed.is_open and closed.closed_at is None
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "ledger.reopened"))
    assert event.after == {"status": "open", "reason": "Facture oubliée"} and event.actor_login == "agent"

    # A bank charge of 28 August, on the statement of 29 August, had been forgotten.
    forgotten = books.record_entry(
        session, closed, expense("D05", 2000, day=date(2025, 8, 28), mode="prelevement"), by=None
    )
    [bank_line] = [line for line in forgotten.lines if line.account.code == books.BANK]
    bank_line.cleared_on = date(2025, 8, 29)
    session.flush()
    with pytest.raises(closing.ClosingRefused):
        closing.close_ledger(session, closed, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15)
    closing.close_ledger(
        session, closed, statement_balance=STATEMENT - 2000, cash_count=CASH, by=None, now=datetime(2025, 9, 20)
    )
    following = books.find_ledger(session, closed.coop_id, 2025)
    assert opening_of(session, following) == (294240 - 2000, 5000)
    assert build_crf(session, closed).result == 114240 - 2000


def test_reopening_is_refused_while_next_year_is_closed(session, closed):
    staff = staff_user(session)
    following = books.find_ledger(session, closed.coop_id, 2025)
    closing.close_ledger(
        session, following, statement_balance=STATEMENT, cash_count=CASH, by=None, now=datetime(2026, 9, 3)
    )
    with pytest.raises(DomainError, match="Le cahier 2025-2026 est clôturé : rouvrez-le d'abord"):
        closing.reopen_ledger(session, closed, reason="Erreur", by=staff)
    closing.reopen_ledger(session, following, reason="Erreur", by=staff)
    closing.reopen_ledger(session, closed, reason="Erreur", by=staff)
    assert closed.is_open and following.is_open


def test_reopening_an_open_ledger_is_refused(session, example):
    with pytest.raises(DomainError, match="n'est pas clôturé"):
        closing.reopen_ledger(session, example, reason="x", by=None)


# -- CLI -----------------------------------------------------------------------------------------


def _cli_import(app, login="085-001"):
    result = app.test_cli_runner().invoke(args=["ledger", "import", login, "2024-2025", str(EXAMPLE)])
    assert result.exit_code == 0, result.output


def test_close_and_crf_from_the_command_line(app, make_coop, db_check):
    make_coop(1)
    _cli_import(app)
    runner = app.test_cli_runner()
    refused = runner.invoke(
        args=["ledger", "close", "085-001", "2024-2025", "--statement-balance", "3 000,00", "--cash-count", "45"]
    )
    assert refused.exit_code == 1
    assert "Clôture refusée, rien n'a été enregistré" in refused.output
    assert "L'arrêté de caisse (45,00 €) ne correspond pas" in refused.output.replace("\u202f", " ")
    assert "Le rapprochement ne tombe pas juste" in refused.output
    assert db_check(lambda s: s.scalar(sa.select(Ledger.status))) == "open"

    not_yet = runner.invoke(args=["reports", "crf", "085-001", "2024-2025", "--json"])
    assert not_yet.exit_code == 1 and "n'est pas clôturé" in not_yet.output

    bad_detail = runner.invoke(
        args=["ledger", "close", "085-001", "2024-2025", "--statement-balance", "3092,40", "--cash-count", "30x1"]
    )
    assert bad_detail.exit_code == 2 and "n'est pas une coupure en euros" in bad_detail.output
    done = runner.invoke(
        args=["ledger", "close", "085-001", "2024-2025", "--statement-balance", "3092,40", "--cash-count", "20x2,10x1"]
    )
    assert done.exit_code == 0, done.output
    assert "Report à nouveau 2025-2026 : banque 2\u202f942,40\u202f€, caisse 50,00\u202f€" in done.output

    printed = runner.invoke(args=["reports", "crf", "085-001", "2024-2025", "--json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == {key: value for key, value in EXPECTED.items() if key != "about"}
    text = runner.invoke(args=["reports", "crf", "085-001", "2024"])
    assert "Résultat : 1 142,40 €" in text.output.replace("\u202f", " ") and "bilan équilibré" in text.output

    again = runner.invoke(
        args=["ledger", "close", "085-001", "2024-2025", "--statement-balance", "3092,40", "--cash-count", "50,00"]
    )
    assert again.exit_code == 1 and "déjà clôturé" in again.output
    unknown = runner.invoke(
        args=["ledger", "close", "085-404", "2024-2025", "--statement-balance", "1", "--cash-count", "1"]
    )
    assert unknown.exit_code == 1 and "Aucune coopérative" in unknown.output


# -- CRA, quitus, transitions (domain) -----------------------------------------------------------


def test_the_transition_table_is_the_documented_one():
    expected = {
        "draft": {"submitted"},
        "submitted": {"approved", "returned"},
        "returned": {"submitted"},
        "approved": set(),
    }
    assert expected == submission.TRANSITIONS


@pytest.mark.parametrize(
    ("start", "to"),
    [("draft", "submitted"), ("submitted", "approved"), ("submitted", "returned"), ("returned", "submitted")],
)
def test_legal_transitions(start, to):
    report = AnnualReport(status=start)
    submission.transition(report, to)
    assert report.status == to


@pytest.mark.parametrize(
    ("start", "to"),
    [
        ("draft", "approved"),
        ("draft", "returned"),
        ("approved", "submitted"),
        ("approved", "returned"),
        ("returned", "approved"),
        ("submitted", "draft"),
        ("draft", "archived"),
    ],
)
def test_illegal_transitions_raise(start, to):
    report = AnnualReport(status=start)
    with pytest.raises(DomainError):
        submission.transition(report, to)
    assert report.status == start


MANDATAIRES = ["Claire Moreau"]


@pytest.mark.parametrize(
    ("auditors", "mandataire", "message"),
    [
        ([("Paul Martin", "parent")], "Claire Moreau", "au moins deux vérificateurs"),
        ([("Paul Martin", "teacher"), ("Léa Petit", "other")], "Claire Moreau", "parent d'élève"),
        (
            [("Paul Martin", "parent"), ("MOREAU claire", "teacher")],
            "Claire Moreau",
            "MOREAU claire est mandataire de la coopérative",
        ),
        ([("Paul Martin", "parent"), ("Jean Dupuis", "teacher")], "Jean Dupuis", "Jean Dupuis est mandataire"),
        ([("Paul Martin", "parent"), ("M. Paul Martin", "teacher")], "Claire Moreau", "personne différente"),
        ([("Paul Martin", "parent"), ("Léa Petit", "")], "Claire Moreau", "Choisissez la qualité de Léa Petit"),
        ([("Paul Martin", "parent"), ("Léa Petit", "teacher")], "  ", "Indiquez le nom du mandataire"),
    ],
)
def test_quitus_rules(auditors, mandataire, message):
    with pytest.raises(ValidationErrors) as caught:
        cra.check_quitus([cra.Auditor(*a) for a in auditors], mandataire, MANDATAIRES)
    assert message in " ".join(m for messages in caught.value.errors.values() for m in messages)


def test_quitus_accepts_two_auditors_with_a_parent():
    cra.check_quitus(
        [cra.Auditor("Paul Martin", "parent"), cra.Auditor("Léa Petit", "teacher")],
        "Mme Claire Moreau",
        MANDATAIRES,
    )
    assert cra.person_key("Mme Élise  DURAND") == cra.person_key("durand elise")


def test_cra_is_prefilled_from_the_membership_and_the_actions(session, closed):
    _membership(session, closed)
    answers = cra.cra_prefill(session, closed, None)
    assert [(c.name, c.pupils) for c in answers.classes] == [("CP", 24), ("CE1-CE2", 26)]
    assert [a.name for a in answers.actions] == ["Classe de mer", "Photos"]
    with pytest.raises(ValidationErrors) as caught:
        cra.check_cra(answers)
    assert set(caught.value.errors) == {"council_count", "occe_participation"}


def _membership(session, ledger):
    from app.models import Membership, MembershipClass

    membership = Membership(coop_id=ledger.coop_id, school_year_id=ledger.school_year_id, status="draft")
    membership.classes = [
        MembershipClass(position=0, name="CP", level="CP", pupils=24, teachers=1),
        MembershipClass(position=1, name="CE1-CE2", level="CE1", pupils=26, teachers=1),
    ]
    session.add(membership)
    session.flush()
    return membership


# -- web: the closing wizard ---------------------------------------------------------------------


def _text(response) -> str:
    import html

    return html.unescape(response.get_data(as_text=True)).replace("\u202f", " ").replace("\u00a0", " ")


def _pdf_text(response) -> str:
    from pypdf import PdfReader

    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    reader = PdfReader(io.BytesIO(response.data))
    text = " ".join(page.extract_text() for page in reader.pages)
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\u00a0", " "))


@pytest.fixture
def web_example(app, make_coop, db_check, clock):
    """Coop 085-001 with the worked example 2024-2025 (open) and its membership of that year."""
    info = make_coop(1)

    def load(session):
        ledger = books.open_ledger(session, session.get(Coop, info.id), 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        _membership(session, ledger)
        session.commit()

    db_check(load)
    return info


def _ledger_state(db_check, start=2024):
    def read(session):
        ledger = session.scalar(
            sa.select(Ledger).join(Ledger.school_year).where(sa.text("school_year.start_year = :y")).params(y=start)
        )
        return (
            None
            if ledger is None
            else (ledger.status, ledger.closing_statement_balance_cents, (ledger.cash_count or {}).get("total"))
        )

    return db_check(read)


def _close_by_web(client):
    client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2", "d1000": "1"})
    client.post("/coop/cloture/2024/releve", data={"balance": "3 092,40"})
    return client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"})


def test_the_wizard_says_why_it_is_not_open_yet(client, web_example, login_as, clock, db_check):
    clock(datetime(2025, 8, 20, 10, 0))
    login_as(web_example)
    page = _text(client.get("/coop/cloture/2024"))
    assert "La clôture du cahier 2024-2025 sera possible à partir du 01/09/2025" in page
    assert "Clôture définitive" not in page.split("</h1>", 1)[1].split("sera possible")[0]
    response = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"})
    assert response.status_code == 302
    assert _ledger_state(db_check)[0] == "open"


def test_the_closing_wizard_step_by_step(client, web_example, login_as, db_check):
    login_as(web_example)
    assert client.get("/coop/cloture").headers["Location"].endswith("/coop/cloture/2024")
    page = _text(client.get("/coop/cloture/2024"))
    assert "Clôture de ce cahier de compta 2024-2025" in page
    assert "Saisissez l'arrêté de caisse" in page and "Saisissez le solde du relevé bancaire" in page
    assert "Le compte de régie d'avance (541) est à zéro." in page
    assert "Livres BCD" in page  # the cheque not yet cashed, in the reconciliation table
    assert "La clôture sera possible quand toutes les vérifications ci-dessus seront « OK »." in page

    bad = client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "deux", "d1000": "1"})
    assert bad.status_code == 200
    assert 'aria-describedby="d2000-erreur"' in _text(bad) and "Indiquez un nombre entier." in _text(bad)
    assert _ledger_state(db_check)[2] is None

    short = client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2"})
    assert short.status_code == 302 and short.headers["Location"].endswith("/coop/cloture/2024#caisse")
    page = _text(client.get("/coop/cloture/2024"))
    assert "Il ne correspond pas au solde de caisse du cahier (50,00 €)" in page
    assert "L'arrêté de caisse (40,00 €) ne correspond pas" in page
    client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2", "d1000": "1"})
    assert "Arrêté de caisse 50,00 € = solde de caisse du cahier." in _text(client.get("/coop/cloture/2024"))

    empty = client.post("/coop/cloture/2024/releve", data={"balance": ""})
    assert empty.status_code == 200 and "Indiquez le solde du relevé au 31 août" in _text(empty)
    client.post("/coop/cloture/2024/releve", data={"balance": "2 942,40"})
    page = _text(client.get("/coop/cloture/2024"))
    assert "Le rapprochement ne tombe pas juste" in page and "écart de -150,00 €" in page
    client.post("/coop/cloture/2024/releve", data={"balance": "3092,40"})
    page = _text(client.get("/coop/cloture/2024"))
    assert "Attention : la clôture est définitive." in page
    assert "Le report à nouveau 2025-2026 sera de 2 942,40 € en banque et 50,00 € en caisse." in page

    wrong = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-002"})
    assert wrong.status_code == 200
    assert "Ce n'est pas le numéro de votre coopérative : tapez 085-001." in _text(wrong)
    assert _ledger_state(db_check)[0] == "open"

    done = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/coop/compte-rendu/2024/activites")
    page = _text(client.get(done.headers["Location"]))
    assert page.count("Le cahier 2024-2025 est clôturé.") == 1
    assert "Le report à nouveau 2025-2026 est de 2 942,40 € en banque et 50,00 € en caisse." in page
    assert _ledger_state(db_check) == ("closed", 309240, 5000)
    assert db_check(lambda s: closing.opening_balances(s, books.find_ledger(s, web_example.id, 2025))) == (294240, 5000)

    again = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"})
    assert again.status_code == 302 and "déjà clôturé" in _text(client.get("/coop/cloture/2024"))
    page = _text(client.get("/coop/cloture/2024"))
    assert "Le cahier 2024-2025 est clôturé depuis le 15/09/2025" in page


def test_a_closed_year_is_read_only_on_the_coop_face(client, web_example, login_as, db_check):
    login_as(web_example)
    _close_by_web(client)
    count = db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Entry)))
    response = client.post(
        "/coop/cahier/2024/nouvelle",
        data={
            "form_token": "a" * 32,
            "kind": "expense",
            "piece": "D09",
            "date": "2025-06-01",
            "label": "Encre",
            "payment_mode": "virement",
            "bank_amount": "10,00",
            "splits-0-account": "6068",
            "splits-0-amount": "10,00",
        },
    )
    assert "clôturé" in _text(response) or "clôturé" in _text(client.get(response.headers.get("Location", "/")))
    opening = client.post("/coop/cahier/2025/report", data={"bank": "1,00", "cash": "0"})
    assert "vient de la clôture du cahier 2024-2025" in _text(opening)
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Entry))) == count


def test_closing_refused_names_the_failed_check(client, web_example, login_as, db_check):
    login_as(web_example)
    client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2", "d1000": "1"})
    response = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"})
    assert response.status_code == 200
    assert "La clôture est refusée : Saisissez le solde du relevé bancaire au 31/08/2025" in _text(response)
    assert _ledger_state(db_check)[0] == "open"


def test_a_year_without_ledger_has_nothing_to_close(client, make_coop, login_as, clock):
    login_as(make_coop(2))
    page = _text(client.get("/coop/cloture/2024"))
    assert "Il n'y a pas de cahier 2024-2025 sur le portail : il n'y a rien à clôturer ici." in page
    assert client.post("/coop/cloture/2024/releve", data={"balance": "1"}).status_code == 404
    response = client.get("/coop/compte-rendu/2024/financier")
    assert response.status_code == 302 and response.headers["Location"].endswith("/coop/cloture/2024")


# -- web: the reports ----------------------------------------------------------------------------


def _cra_data(**overrides):
    data = {
        "classes-0-name": "CP",
        "classes-0-level": "CP",
        "classes-0-pupils": "24",
        "classes-1-name": "CE1-CE2",
        "classes-1-level": "CE1",
        "classes-1-pupils": "26",
        "council_count": "6",
        "actions-0-name": "Classe de mer",
        "actions-0-description": "Trois jours à Noirmoutier",
        "actions-1-name": "Photos",
        "actions-1-description": "",
        "occe_participation": "oui",
        "occe_actions": "Rencontres théâtre",
        "comment": "Belle année.",
        "save": "1",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _quitus_data(**overrides):
    data = {
        "auditors-0-name": "Paul Martin",
        "auditors-0-quality": "parent",
        "auditors-1-name": "Léa Petit",
        "auditors-1-quality": "teacher",
        "mandataire_name": "Claire Moreau",
        "save": "1",
    }
    data.update(overrides)
    return data


def test_cra_prefilled_validated_then_next(client, web_example, login_as, db_check):
    login_as(web_example)
    assert client.get("/coop/compte-rendu/2024/activites").status_code == 302  # not closed yet
    _close_by_web(client)
    page = _text(client.get("/coop/compte-rendu/2024/activites"))
    assert 'value="CE1-CE2"' in page and 'value="26"' in page  # the classes of the membership
    assert 'value="Classe de mer"' in page and "3 000,00 €" in page and "2 700,00 €" in page
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(AnnualReport))) == 0  # GET: no write

    invalid = client.post("/coop/compte-rendu/2024/activites", data=_cra_data(council_count="", occe_actions=""))
    assert invalid.status_code == 200
    text = _text(invalid)
    assert "rien n'a été enregistré" in text
    assert 'aria-describedby="council_count-aide council_count-erreur"' in text
    assert "Indiquez le nombre de conseils de coopérative (0 si aucun)." in text
    added = client.post("/coop/compte-rendu/2024/activites", data=_cra_data(add_class="1", save=None))
    assert 'id="classes-2-name"' in _text(added)

    saved = client.post("/coop/compte-rendu/2024/activites", data=_cra_data())
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/coop/compte-rendu/2024/activites")
    assert _text(client.get(saved.headers["Location"])).count("Compte rendu d'activités enregistré.") == 1
    no_occe = client.post("/coop/compte-rendu/2024/activites", data=_cra_data(occe_actions=""))
    assert "Indiquez les actions de l'OCCE" in _text(no_occe)
    following = client.post("/coop/compte-rendu/2024/activites", data=_cra_data(save=None, next="1"))
    assert following.headers["Location"].endswith("/coop/compte-rendu/2024/financier")

    def stored(session):
        report = session.scalar(sa.select(AnnualReport))
        return (report.status, report.council_count, report.cra_classes[1], report.cra_actions[0], report.occe_actions)

    assert db_check(stored) == (
        "draft",
        6,
        {"name": "CE1-CE2", "level": "CE1", "pupils": 26},
        {"name": "Classe de mer", "description": "Trois jours à Noirmoutier"},
        "Rencontres théâtre",
    )


def test_crf_page_and_pdf_of_the_worked_example(client, web_example, login_as):
    login_as(web_example)
    _close_by_web(client)
    page = _text(client.get("/coop/compte-rendu/2024/financier"))
    for figure in (
        "4 467,60 €",
        "5 610,00 €",
        "1 142,40 €",
        "2 942,40 €",
        "3 092,40 €",
        "2 992,40 €",
        "Équilibre du bilan",
        "62810008",
        "Commune",
        "ne doivent pas être saisies à nouveau en 2025-2026",
    ):
        assert figure in page, figure
    assert '<th scope="col"' in page

    text = _pdf_text(client.get("/coop/compte-rendu/2024/financier.pdf"))
    assert "Compte rendu financier 2024-2025" in text and "Coopérative de test 001" in text
    for figure in (
        "Total des charges 4 467,60",
        "Total des produits 5 610,00",
        "1 142,40",
        "2 942,40",
        "50,00",
        "3 092,40",
        "Livres BCD",
        "-150,00",
        "Classe de mer",
        "Total des subventions 1 200,00",
        "Équilibre du bilan",
        "Situation au 31/08/2025 2 992,40",
    ):
        assert figure in text, figure


def _bank_entry(piece: str, amount: int, day: date, code: str, *, cheque: str = "", bank_in: bool = False, label=""):
    treasury = books.Treasury(bank_in=amount) if bank_in else books.Treasury(bank_out=amount)
    return books.EntryData(
        piece=piece,
        date=day,
        label=label or f"Opération {piece}",
        payment_mode="remise" if bank_in else ("cheque" if cheque else "virement"),
        kind="receipt" if bank_in else "expense",
        treasury=treasury,
        splits=[books.Split(code, amount)],
        cheque_number=cheque,
    )


def _pdf_lines(pdf: bytes) -> list[list[str]]:
    from pypdf import PdfReader

    return [page.extract_text().splitlines() for page in PdfReader(io.BytesIO(pdf)).pages]


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\u00a0", " "))


def test_the_crf_pdf_lists_every_uncleared_line_and_inventory_item_in_its_annexes(
    client, web_example, login_as, db_check
):
    """A long year: the summary keeps its totals, the annexes list every line, page numbers run on."""
    long_label = "Vidéoprojecteur, écran et câbles pour la classe de mer à Noirmoutier (devis « œuvre » n° 2025-118)"

    def load(session):
        ledger = books.find_ledger(session, web_example.id, 2024)
        for i in range(70):  # cheques not yet debited at 31 August
            books.record_entry(
                session,
                ledger,
                _bank_entry(f"C{i:03d}", 100_000 + 1_234 * i, date(2025, 8, 1 + i % 28), "6068", cheque=f"{7000 + i}"),
                by=None,
            )
        for i in range(45):  # purchases of durable goods, paid by transfer, not yet on the statement
            label = long_label if i == 7 else ""
            entry = _bank_entry(f"M{i:03d}", 250_000 + 99 * i, date(2025, 7, 1 + i % 28), "68", label=label)
            books.record_entry(session, ledger, entry, by=None)
        books.record_entry(
            session, ledger, _bank_entry("R001", 345_067, date(2025, 8, 30), "756", bank_in=True), by=None
        )
        session.commit()

    db_check(load)
    login_as(web_example)
    assert _close_by_web(client).status_code == 302
    response = client.get("/coop/compte-rendu/2024/financier.pdf")  # warnings are errors: every glyph drawn
    text = _pdf_text(response)
    pages = _pdf_lines(response.data)
    crf = db_check(lambda s: build_crf(s, books.find_ledger(s, web_example.id, 2024)))

    # The summary: counts and totals, the annexes named.
    assert f"({len(crf.outstanding_cheques)}, liste en annexe 1)" in text
    assert "(1, liste en annexe 2)" in text
    assert "Achats de biens durables de l'année (compte 68000008) : 45, liste en annexe 3" in text
    # Every uncleared line and every inventory item, whole, in the annexes.
    assert "Annexe 1 — Chèques et paiements émis non débités au 31/08/2025" in text
    for i in range(70):
        amount = _fold(euros(100_000 + 1_234 * i))
        assert f"{1 + i % 28:02d}/08/2025 C{i:03d} {7000 + i} Opération C{i:03d} {amount}" in text, i
    assert "Annexe 2 — Remises et versements non crédités" in text and "R001 Opération R001 3 450,67 €" in text
    assert "Total des remises non créditées 3 450,67 €" in text
    for line in crf.inventory:
        row = f"{line.date:%d/%m/%Y} {line.piece} {line.label} {_fold(euros(line.amount))}"
        assert text.count(row) == 2, line  # paid by bank: in annex 1 and in annex 3
    assert len(crf.inventory) == 45 and long_label in text
    assert _fold(f"Total des biens durables {euros(crf.inventory_total)}") in text
    assert _fold(f"Total des chèques et paiements non débités {euros(crf.outstanding_cheques_total)}") in text
    # The annexes continue the body's page numbering, with the same footer.
    assert len(pages) >= 5
    for number, lines in enumerate(pages, start=1):
        footer = next(line for line in lines if "Compte rendu financier 2024-2025 · 085-001 · édité le" in line)
        assert footer.rstrip().endswith(f"page {number}"), (number, footer)
    # No amount is ever split across two lines.
    for line in (line for lines in pages for line in lines):
        assert not re.match(r"^\s*\d{3},\d{2}", line) or re.search(r"(^|\s)\d{3},\d{2}", line), line
        assert not re.search(r"\d[\u00a0\u202f ]\d{3}$", line.rstrip(" €")), line


def test_listing_pages_draw_every_character_or_warn():
    from app.pdf import MissingGlyphWarning
    from app.pdf_tables import Column, Listing, render_listings

    columns = (Column("Libellé", 0.7), Column("Montant", 0.3, numeric=True))
    listing = Listing(
        "Produits − charges", columns, [("« œuvre » l’été…", "1\u202f234,56\u202f€")], ("Total", "0,00 €")
    )
    pdf = render_listings([listing], heading="Annexes", subtitle="Coop", footer="Pied", first_page=4)
    text = _fold(" ".join(line for lines in _pdf_lines(pdf) for line in lines))
    assert "Produits − charges" in text and "« œuvre » l’été… 1 234,56 €" in text and "Pied · page 4" in text
    with pytest.warns(MissingGlyphWarning, match="漢"):
        render_listings([Listing("漢", columns, [])], heading="Annexes", subtitle="", footer="", first_page=1)


def test_quitus_rules_on_the_page_and_its_pdf(client, web_example, login_as, db_check):
    login_as(web_example)
    _close_by_web(client)
    page = _text(client.get("/coop/compte-rendu/2024/quitus"))
    assert 'value="Claire Moreau"' in page  # the mandataire, prefilled
    assert client.get("/coop/compte-rendu/2024/quitus.pdf").status_code == 302  # nothing to print yet

    one = client.post("/coop/compte-rendu/2024/quitus", data=_quitus_data(**{"auditors-1-name": ""}))
    assert one.status_code == 200 and "Indiquez au moins deux vérificateurs aux comptes." in _text(one)
    no_parent = client.post("/coop/compte-rendu/2024/quitus", data=_quitus_data(**{"auditors-0-quality": "other"}))
    assert "Au moins un des vérificateurs doit être parent d'élève." in _text(no_parent)
    mandataire = client.post(
        "/coop/compte-rendu/2024/quitus", data=_quitus_data(**{"auditors-1-name": "Claire MOREAU"})
    )
    text = _text(mandataire)
    assert "Claire MOREAU est mandataire de la coopérative" in text
    assert 'aria-describedby="auditors-1-name-erreur"' in text
    assert db_check(lambda s: s.scalar(sa.select(AnnualReport.quitus_saved_at))) is None

    saved = client.post("/coop/compte-rendu/2024/quitus", data=_quitus_data())
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/coop/compte-rendu/2024/quitus#imprimer")
    assert "Imprimer cette page Quitus" in _text(client.get("/coop/compte-rendu/2024/quitus"))
    text = _pdf_text(client.get("/coop/compte-rendu/2024/quitus.pdf"))
    for part in (
        "Quitus 2024-2025",
        "Paul Martin",
        "Parent d'élève",
        "Léa Petit",
        "Claire Moreau",
        "Date et signature",
        "Résultat de l'année (excédent) 1 142,40",
        "2 942,40",
        "3 092,40",
    ):
        assert part in text, part


def _real_pdf() -> bytes:
    from app.pdf import render_pdf

    return render_pdf("<p>Quitus signé par les vérificateurs</p>", Path(__file__).parent)


def _photo() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (3000, 4000), (240, 236, 228))
    for x in range(0, 3000, 100):
        image.paste((20, 20, 20), (x, 1000, x + 40, 3000))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _upload(client, slot, content, name):
    # The body is encoded here: the test client spools a large one to a temporary file it never closes.
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    boundary, body = encode_multipart({"slot": slot, "file": FileStorage(io.BytesIO(content), filename=name)})
    return client.post(
        "/coop/compte-rendu/2024/justificatifs", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_supporting_documents_are_checked_by_content(app, client, web_example, login_as, db_check):
    login_as(web_example)
    _close_by_web(client)
    page = _text(client.get("/coop/compte-rendu/2024/justificatifs"))
    assert page.count("À déposer") == 3  # quitus, statement, subsidy proofs (there is a subsidy)

    exe = _upload(client, "statement", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 2000, "releve.pdf")
    assert exe.status_code == 200
    text = _text(exe)
    assert "Seuls les fichiers PDF, JPEG et PNG sont acceptés" in text
    assert 'aria-describedby="aide-statement statut-statement erreur-statement"' in text
    big = _upload(client, "statement", b"%PDF-1.4\n" + b"0" * (21 * 1024 * 1024), "releve.pdf")
    assert big.status_code == 200 and "Le fichier dépasse 20 Mo." in _text(big)
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Document))) == 0

    pdf = _upload(client, "quitus", _real_pdf(), "quitus signé.pdf")
    assert pdf.status_code == 302 and pdf.headers["Location"].endswith("#piece-quitus")
    photo = _upload(client, "statement", _photo(), "IMG_2025.jpg")
    assert photo.status_code == 302
    shown = _text(client.get(photo.headers["Location"]))
    assert "Relevé bancaire au 31/08/2025 : fichier déposé (IMG_2025.pdf)." in shown

    def stored(session):
        return {
            d.kind: (d.content_type, d.original_name, d.annual_report_id is not None, d.storage_key)
            for d in session.scalars(sa.select(Document))
        }

    documents = db_check(stored)
    assert documents["report_quitus"][:3] == ("application/pdf", "quitus signé.pdf", True)
    assert documents["report_statement"][:3] == ("application/pdf", "IMG_2025.pdf", True)  # the photo became a PDF
    upload_dir = Path(app.config["UPLOAD_DIR"])
    statement = (upload_dir / documents["report_statement"][3]).read_bytes()
    assert statement.startswith(b"%PDF-")
    assert (upload_dir / documents["report_statement"][3]).stat().st_mode & 0o777 == 0o600

    replaced = _upload(client, "statement", _real_pdf(), "releve-aout.pdf")
    assert replaced.status_code == 302
    assert not (upload_dir / documents["report_statement"][3]).exists()
    page = _text(client.get("/coop/compte-rendu/2024/justificatifs"))
    assert "releve-aout.pdf" in page and page.count("À déposer") == 1
    assert _upload(client, "nonsense", _real_pdf(), "x.pdf").status_code == 400


def test_submission_needs_everything_then_locks_the_report(client, web_example, login_as, db_check):
    login_as(web_example)
    _close_by_web(client)
    page = _text(client.get("/coop/compte-rendu/2024/envoi"))
    assert "Envoyer mon compte rendu" not in page.split("Il manque encore")[1]
    for missing in (
        "Remplir et valider le compte rendu d'activités.",
        "Indiquer les vérificateurs aux comptes",
        "Déposer : Quitus signé.",
        "Déposer : Relevé bancaire au 31/08/2025.",
        "Déposer : Justificatifs des subventions.",
    ):
        assert missing in page, missing
    early = client.post("/coop/compte-rendu/2024/envoi", data={})
    assert early.status_code == 302
    assert "Il manque encore des éléments" in _text(client.get(early.headers["Location"]))

    client.post("/coop/compte-rendu/2024/activites", data=_cra_data())
    client.post("/coop/compte-rendu/2024/quitus", data=_quitus_data())
    _upload(client, "quitus", _real_pdf(), "quitus.pdf")
    _upload(client, "statement", _real_pdf(), "releve.pdf")
    assert "Déposer : Justificatifs des subventions." in _text(client.get("/coop/compte-rendu/2024/envoi"))
    _upload(client, "subsidies", _photo(), "courrier-mairie.jpg")
    page = _text(client.get("/coop/compte-rendu/2024/envoi"))
    assert "Tout est prêt." in page and "Envoyer mon compte rendu" in page

    sent = client.post("/coop/compte-rendu/2024/envoi", data={})
    assert sent.status_code == 302
    page = _text(client.get(sent.headers["Location"]))
    assert page.count("Compte rendu 2024-2025 envoyé à l'OCCE 85.") == 1
    assert "Compte rendu envoyé" in page

    def state(session):
        report = session.scalar(sa.select(AnnualReport))
        mail = session.scalar(sa.select(OutboxEmail))
        return report.status, report.crf_snapshot["resultat"], mail.recipient, mail.subject, mail.body_text

    status, result, to, subject, body = db_check(state)
    assert (status, result, to) == ("submitted", 114240, "coop1@example.org")
    assert subject == "Compte rendu 2024-2025 envoyé à l'OCCE 85 (085-001)"
    assert "résultat : 1\u202f142,40\u202f€" in body and "Paul Martin, Léa Petit" in body

    twice = client.post("/coop/compte-rendu/2024/envoi", data={})
    assert "déjà envoyé" in _text(client.get(twice.headers["Location"]))
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 1
    late = client.post("/coop/compte-rendu/2024/activites", data=_cra_data(council_count="9"))
    assert "a été envoyé à l'OCCE 85 : il ne peut plus être modifié" in _text(client.get(late.headers["Location"]))
    late = _upload(client, "other", _real_pdf(), "autre.pdf")
    assert "il ne peut plus être modifié" in _text(client.get(late.headers["Location"]))
    assert db_check(lambda s: s.scalar(sa.select(AnnualReport.council_count))) == 6
    assert 'type="file"' not in _text(client.get("/coop/compte-rendu/2024/justificatifs"))


def test_home_cards_follow_the_year_end(client, web_example, login_as):
    login_as(web_example)
    page = _text(client.get("/"))
    assert "Clôture du cahier 2024-2025" in page and "L'année 2024-2025 est terminée" in page
    assert "Après la clôture du cahier 2024-2025" in page
    _close_by_web(client)
    page = _text(client.get("/"))
    assert (
        "Cahier 2024-2025 clôturé le 15/09/2025. Report à nouveau 2025-2026 : banque 2 942,40 €, caisse 50,00 €."
    ) in page
    assert "Remplir les comptes rendus" in page
    assert client.get("/coop/compte-rendu").headers["Location"].endswith("/coop/compte-rendu/2024")


def test_staff_reopen_with_a_reason_and_the_coop_closes_again(app, client, web_example, make_staff, login_as, db_check):
    login_as(web_example)
    _close_by_web(client)
    client.post("/coop/compte-rendu/2024/activites", data=_cra_data())
    client.post("/coop/compte-rendu/2024/quitus", data=_quitus_data())
    for slot in ("quitus", "statement", "subsidies"):
        _upload(client, slot, _real_pdf(), f"{slot}.pdf")
    client.post("/coop/compte-rendu/2024/envoi", data={})

    staff = login_as(make_staff("agent"), on=app.test_client())
    listing = _text(staff.get("/admin/admin_reports/"))
    assert "085-001 Coopérative de test 001" in listing and "Envoyé à l'OCCE 85" in listing
    ledger_id = db_check(
        lambda s: s.scalar(
            sa.select(Ledger.id).join(Ledger.school_year).where(sa.text("school_year.start_year = 2024"))
        )
    )
    assert "Rouvrir le cahier" in _text(staff.get("/admin/clotures/?coop=085-001"))
    form = staff.get(f"/admin/clotures/rouvrir/{ledger_id}")
    assert "Motif de la réouverture" in _text(form)
    refused = staff.post(f"/admin/clotures/rouvrir/{ledger_id}", data={"reason": " "})
    assert refused.status_code == 200 and "Indiquez le motif de la réouverture" in _text(refused)
    assert _ledger_state(db_check)[0] == "closed"
    done = staff.post(f"/admin/clotures/rouvrir/{ledger_id}", data={"reason": "Facture de juin oubliée"})
    assert done.status_code == 302

    def state(session):
        report = session.scalar(sa.select(AnnualReport))
        event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "ledger.reopened"))
        mails = [m.subject for m in session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id))]
        return report.status, report.return_reason, event.actor_login, event.after["reason"], mails

    status, reason, actor, audited, mails = db_check(state)
    assert (status, reason, actor, audited) == (
        "returned",
        "Facture de juin oubliée",
        "agent",
        "Facture de juin oubliée",
    )
    assert mails[-1] == "Compte rendu 2024-2025 : l'OCCE 85 vous le renvoie (085-001)"
    assert _ledger_state(db_check)[0] == "open"
    assert "L'OCCE 85 vous a renvoyé le compte rendu : Facture de juin oubliée" in _text(client.get("/"))

    # The coop adds the forgotten invoice (paid by transfer, on the statement of 30 June), closes again.
    client.post(
        "/coop/cahier/2024/nouvelle",
        data={
            "form_token": "b" * 32,
            "kind": "expense",
            "piece": "D05",
            "date": "2025-06-28",
            "label": "Facture oubliée",
            "payment_mode": "virement",
            "bank_amount": "20,00",
            "splits-0-account": "6068",
            "splits-0-amount": "20,00",
        },
    )
    db_check(
        lambda s: (
            s.execute(
                sa.update(EntryLine)
                .where(
                    EntryLine.entry_id == s.scalar(sa.select(Entry.id).where(Entry.piece == "D05")),
                    EntryLine.amount_cents == -2000,
                )
                .values(cleared_on=date(2025, 6, 30))
            ),
            s.commit(),
        )
    )
    client.post("/coop/cloture/2024/releve", data={"balance": "3 072,40"})
    closed_again = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "1"})
    assert closed_again.status_code == 302
    assert db_check(lambda s: closing.opening_balances(s, books.find_ledger(s, web_example.id, 2025))) == (292240, 5000)
    assert "1 122,40 €" in _text(client.get("/coop/compte-rendu/2024/financier"))
    client.post("/coop/compte-rendu/2024/envoi", data={})
    assert db_check(lambda s: s.scalar(sa.select(AnnualReport.status))) == "submitted"


def test_another_coops_report_documents_are_404(client, web_example, make_coop, login_as, app):
    login_as(web_example)
    _close_by_web(client)
    _upload(client, "quitus", _real_pdf(), "quitus.pdf")
    other = login_as(make_coop(2), on=app.test_client())
    assert other.get("/justificatifs/1").status_code == 404
    own = client.get("/justificatifs/1")
    own.close()
    assert own.status_code == 200 and own.headers["Content-Disposition"].startswith("attachment")
    assert other.get("/coop/compte-rendu/2024/financier").status_code == 302  # its own (empty) year


def test_the_statement_balance_typed_on_the_pointage_screen_is_offered(client, web_example, login_as):
    """Typed once in the pointage summary box for 31 August, it is not asked again at closing."""
    login_as(web_example)
    client.post("/coop/pointage/2024/solde", data={"on": "31/08/2025", "balance": "3 092,40"})
    page = client.get("/coop/cloture/2024").get_data(as_text=True)
    assert re.search(r'id="balance"[^>]*value="3\u202f092,40"', page)


# -- rules moved out of the views and templates into the domain ------------------------------------


def test_cash_count_rows_give_labels_groups_and_subtotals():
    rows = closing.count_rows({2000: 2, 1000: None, 50: "deux"})
    assert [row.value for row in rows] == list(closing.DENOMINATIONS)
    by_value = {row.value: row for row in rows}
    assert (by_value[2000].label, by_value[2000].subtotal) == ("20 €", 4000)
    assert by_value[1000].subtotal == 0  # nothing typed: zero
    assert by_value[50].subtotal is None  # not a whole number: no subtotal shown
    assert [(row.value, row.group) for row in rows if row.group] == [(50000, "Billets"), (200, "Pièces")]


def test_the_quitus_page_offers_rows_up_to_the_maximum():
    assert cra.MAX_AUDITORS == 4
    assert cra.can_add_auditor(cra.MAX_AUDITORS - 1) and not cra.can_add_auditor(cra.MAX_AUDITORS)


def test_a_refused_closing_says_so_first(session, example):
    refused = _refusal(session, example, statement_balance=None)
    assert refused.message.startswith("La clôture est refusée : Saisissez le solde du relevé bancaire")


def test_reopening_a_ledger_leaves_the_report_to_the_submission_module(session, closed):
    staff = staff_user(session)
    report = ensure_report(session, closed)
    report.status = "submitted"
    session.flush()
    reopening = closing.reopen_ledger(session, closed, reason="  Facture   oubliée ", by=staff)
    assert (reopening.reason, reopening.closed_at, closed.status) == ("Facture oubliée", SEPT_15, "open")
    assert report.status == "submitted"  # the ledger's side only


def test_reopen_year_returns_a_submitted_report_with_the_reason(session, closed):
    report = ensure_report(session, closed)
    report.status = "submitted"
    session.flush()
    returned = submission.reopen_year(session, closed, reason="Facture oubliée", by=None, now=SEPT_15)
    assert returned is report and (report.status, report.return_reason, report.returned_at) == (
        "returned",
        "Facture oubliée",
        SEPT_15,
    )
    assert closed.status == "open"


def test_reopen_year_without_a_sent_report_returns_nothing(session, closed):
    assert submission.reopen_year(session, closed, reason="Erreur", by=None, now=SEPT_15) is None
    assert closed.status == "open"


def test_reopening_is_refused_once_the_report_is_approved(session, closed):
    report = ensure_report(session, closed)
    report.status = "approved"
    session.flush()
    with pytest.raises(DomainError, match="approuvé"):
        submission.reopen_year(session, closed, reason="Erreur", by=None, now=SEPT_15)
    assert closed.status == "closed"


def test_closing_does_not_import_the_report_workflow():
    import ast

    source = Path(closing.__file__).read_text(encoding="utf-8")
    imported = {
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    # Closing stores the CRF figures (app.crf, which never imports closing), nothing of the reports' workflow.
    reports = ("app.cra", "app.submission", "app.annual_report")
    assert not [name for name in imported if name.startswith(reports)], imported
