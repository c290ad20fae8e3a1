"""Pointage: every statement format gives the expected matches and reconciliation; clearing rules."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import ledger as books
from app import reconciliation as rec
from app.errors import DomainError
from app.models import Coop, EntryLine, Statement, StatementLine
from app.statements import NeedsMapping, StatementError, parse_statement

DATA = Path(__file__).parent / "data" / "statements"
IBAN = "FR7610278360010002048500175"  # the account of the sample statements
EXPECTED = json.loads((DATA / "expected_matches_2025-09.json").read_text(encoding="utf-8"))
FORMATS = [
    "releve_2025-09_credit_mutuel.ofx",
    "releve_2025-09_camt.053.001.02.xml",
    "releve_2025-09_credit_mutuel.csv",
    "releve_2025-09_caisse_epargne.csv",
    "releve_2025-09.qif",
]
MODES = {
    "CHQ": "cheque",
    "CHQ_RECU": "remise",
    "VIR": "virement",
    "CB": "carte",
    "PRLV": "prelevement",
    "ESP": "especes",
}


def load_fixture_ledger(session, coop) -> dict[str, int]:
    """The fixture cash-book: L01 (28/08/2025) in 2024-2025, the rest in 2025-2026 (opening 1 114,56).
    Returns fixture id -> bank EntryLine id."""
    previous = books.open_ledger(session, coop, 2024)
    current = books.open_ledger(session, coop, 2025)
    books.record_opening(session, current, bank=111456, cash=0, by=None)
    ids = {}
    text = (DATA / "cahier_comptes_coop_2025-09.csv").read_text(encoding="utf-8-sig")
    for row in csv.DictReader(io.StringIO(text), delimiter=";"):
        day = date(*reversed([int(part) for part in row["date"].split("/")]))
        receipt = bool(row["recette"])
        amount = int(row["recette" if receipt else "depense"].replace(",", ""))
        mode = MODES[row["mode"]]
        data = books.EntryData(
            piece=row["id"],
            date=day,
            label=row["libelle"],
            payment_mode=mode,
            kind="receipt" if receipt else "expense",
            treasury=books.Treasury(bank_in=amount) if receipt else books.Treasury(bank_out=amount),
            splits=[books.Split("756" if receipt else "6068", amount)],
            cheque_number=row["numero_cheque"] or row["bordereau"],
        )
        entry = books.record_entry(session, previous if day.year == 2025 and day.month == 8 else current, data, by=None)
        ids[row["id"]] = next(line.id for line in entry.lines if line.account.code == "512")
    return ids


@pytest.fixture
def coops(make_coop):
    # created before the test's session opens its write transaction
    return make_coop(42, iban=IBAN), make_coop(43, iban=IBAN)


@pytest.fixture
def coop(session, coops):
    return session.get(Coop, coops[0].id)


@pytest.mark.parametrize("filename", FORMATS)
def test_every_format_gives_the_expected_matches(session, coop, filename):
    ids = load_fixture_ledger(session, coop)
    by_line = {line_id: fixture for fixture, line_id in ids.items()}
    parsed = parse_statement((DATA / filename).read_bytes())
    result = rec.import_statement(session, coop.id, parsed, filename=filename, content=b"x", by=None)
    assert (result.added, result.skipped) == (9, 0)
    items = {item.id: item for item in rec.open_bank_items(session, coop.id)}
    matched = rec.match(list(items.values()), rec.uncleared_book_lines(session, coop.id))

    def bank_key(item_id):  # the FITID of the OFX fixture, by date and amount
        item = items[item_id]
        return item.date, item.amount

    fitids = {}
    for tx in parse_statement((DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()).lines:
        fitids[(tx.date, tx.amount_cents)] = tx.bank_id
    got = sorted(
        (fitids[bank_key(p.bank_id)], sorted(by_line[i] for i in p.line_ids), p.rule[:2]) for p in matched.proposals
    )
    expected = sorted((m["bank_fitid"], m["ledger_ids"], m["rule"][:2]) for m in EXPECTED["matches"])
    # R2 and R4 are both accepted for the OCCE debit (the cash-book does not carry the RUM)
    assert [(f, ids_) for f, ids_, _ in got] == [(f, ids_) for f, ids_, _ in expected]
    for (_, _, rule), (_, _, wanted) in zip(got, expected, strict=True):
        assert rule == wanted or (wanted == "R2" and rule == "R4")
    expected_bank = [u["bank_fitid"] for u in EXPECTED["unmatched_bank"]]
    assert [fitids[bank_key(i)] for i in matched.unmatched_bank] == expected_bank
    assert sorted(by_line[i] for i in matched.unmatched_book) == [u["ledger_id"] for u in EXPECTED["unmatched_ledger"]]
    assert matched.suggestions == []

    # confirm everything, book the missing fee, and the summary box says 0,00
    for proposal in matched.proposals:
        rec.confirm_match(session, coop.id, proposal.bank_id, list(proposal.line_ids), by=None)
    current = books.open_ledger(session, coop, 2025)
    summary = rec.reconcile(session, current, date(2025, 9, 30), 185306)
    assert (summary.book_balance, summary.difference) == (181906, -600)  # the fee not yet booked
    fee = items[matched.unmatched_bank[0]]
    entry = books.record_entry(
        session,
        current,
        books.EntryData(
            piece="F01",
            date=fee.date,
            label=fee.label[:200],
            payment_mode="prelevement",
            kind="expense",
            treasury=books.Treasury(bank_out=600),
            splits=[books.Split("627", 600)],
        ),
        by=None,
    )
    rec.confirm_match(session, coop.id, fee.id, [next(x.id for x in entry.lines if x.account.code == "512")], by=None)
    summary = rec.reconcile(session, current, date(2025, 9, 30), 185306)
    assert (summary.book_balance, summary.uncleared_total, summary.difference) == (181306, -4000, 0)
    assert summary.is_reconciled


def test_reimporting_an_overlapping_statement_adds_nothing(session, coop):
    content = (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()
    rec.import_statement(session, coop.id, parse_statement(content), filename="a.ofx", content=content, by=None)
    again = rec.import_statement(session, coop.id, parse_statement(content), filename="a.ofx", content=content, by=None)
    assert (again.added, again.skipped) == (0, 9)
    csv_content = (DATA / "releve_2025-09_caisse_epargne.csv").read_bytes()
    first = rec.import_statement(
        session, coop.id, parse_statement(csv_content), filename="b.csv", content=csv_content, by=None
    )
    second = rec.import_statement(
        session, coop.id, parse_statement(csv_content), filename="b.csv", content=csv_content, by=None
    )
    assert (first.added, second.added) == (0, 0)  # the same movements, as the bank's CSV
    assert (first.statement, second.statement) == (None, None)  # no empty statement record
    assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 9
    assert session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 1


def test_every_sample_file_into_one_coop_gives_the_nine_movements_once(session, coop):
    """OFX, CAMT.053, QIF and both bank CSV of the same month, and the other sample files (a cash-book,
    SEPA debit files), all into one coop: 9 statement lines, one statement record, nothing twice."""
    added = {}
    for path in sorted(DATA.iterdir()):
        content = path.read_bytes()
        try:
            parsed = parse_statement(content)
        except StatementError:  # not a statement (README, JSON, pain.008) or an unknown CSV layout
            continue
        added[path.name] = rec.import_statement(
            session, coop.id, parsed, filename=path.name, content=content, by=None
        ).added
    assert set(added) >= set(FORMATS)
    assert sum(added.values()) == 9
    assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 9
    assert session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 1
    for name in FORMATS:  # again, in any order: nothing more
        content = (DATA / name).read_bytes()
        assert (
            rec.import_statement(
                session, coop.id, parse_statement(content), filename=name, content=content, by=None
            ).added
            == 0
        )
    assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 9


def _line(day, cents, label, cheque=""):
    from app.statements import BankLine

    return BankLine(date=day, amount_cents=cents, label=label, cheque_number=cheque)


def test_identical_movements_of_one_day_stay_distinct_and_a_later_file_adds_only_the_new_one(session, coop):
    from app.statements import ParsedStatement

    day = date(2025, 9, 12)
    first = ParsedStatement(
        "qif",
        [_line(day, -3500, "CB LECLERC"), _line(day, -3500, "CB LECLERC"), _line(day, -3500, "CHEQUE", "1232")],
    )
    assert rec.import_statement(session, coop.id, first, filename="a", content=b"a", by=None).added == 3
    later = ParsedStatement(
        "csv",
        [
            _line(day, -3500, "PAIEMENT CB"),  # a card payment already known, told in other words
            _line(day, -3500, "CHEQUE N 0001232", "1232"),
            _line(day, -3500, "PAIEMENT CB"),
            _line(day, -3500, "PAIEMENT CB"),  # a third card payment that day: new
            _line(day, -3500, "CHEQUE", "1299"),  # another cheque of the same amount: new
        ],
    )
    result = rec.import_statement(session, coop.id, later, filename="b", content=b"b", by=None)
    assert (result.added, result.skipped) == (2, 3)
    assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 5


def test_a_statement_of_another_account_is_refused_with_both_masked(session, coop):
    camt = (DATA / "releve_2025-09_camt.053.001.02.xml").read_bytes()
    other = camt.replace(b"FR7610278360010002048500175", b"FR7630001007941234567890185")
    with pytest.raises(DomainError) as refused:
        rec.import_statement(session, coop.id, parse_statement(other), filename="x.xml", content=other, by=None)
    assert "FR76 **** 0185" in refused.value.message and "FR76 **** 0175" in refused.value.message
    assert "rien n'a été importé" in refused.value.message
    ofx = (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()
    for wrong in (
        ofx.replace(b"<ACCTID>00020485001", b"<ACCTID>00099999901"),
        ofx.replace(b"<BANKID>10278", b"<BANKID>30004"),
    ):
        with pytest.raises(DomainError, match="n'est pas le compte"):
            rec.import_statement(session, coop.id, parse_statement(wrong), filename="x.ofx", content=wrong, by=None)
    assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 0


@pytest.mark.parametrize(
    ("account", "details", "matches"),
    [
        ("FR76 1027 8360 0100 0204 8500 175", {}, True),
        ("00020485001", {"bank_code": "10278", "branch_code": "36001"}, True),
        ("0002048500175", {}, True),  # the account number and its RIB key
        ("360010002048500175", {}, True),  # branch, account, key
        ("00020485001", {"bank_code": "30004"}, False),
        ("00020485002", {}, False),
        ("FR7630001007941234567890185", {}, False),
        ("", {}, None),
    ],
)
def test_the_account_of_a_statement_is_compared_with_the_coops(account, details, matches):
    from app.statements import ParsedStatement

    parsed = ParsedStatement("ofx", [], account=account, details=details)
    assert rec.account_matches(parsed, IBAN) is matches


def test_an_account_number_above_a_bank_csv_header_is_checked(session, coop):
    csv_content = (DATA / "releve_2025-09_credit_mutuel.csv").read_bytes()
    mine = b"Compte courant;Num\xe9ro de compte : 00020485001\r\n\r\n" + csv_content
    assert parse_statement(mine).account == "00020485001"
    other = b"Compte courant;Num\xe9ro de compte : 00011112222\r\n\r\n" + csv_content
    with pytest.raises(DomainError, match="n'est pas le compte"):
        rec.import_statement(session, coop.id, parse_statement(other), filename="x.csv", content=other, by=None)
    result = rec.import_statement(session, coop.id, parse_statement(mine), filename="x.csv", content=mine, by=None)
    assert result.added == 9 and result.notices == []


def test_lines_outside_the_year_are_reported(session, coop):
    ledger = books.open_ledger(session, coop, 2025)
    qif = (DATA / "releve_2025-09.qif").read_bytes().replace(b"D02/09/2025", b"D29/08/2025")
    result = rec.import_statement(
        session, coop.id, parse_statement(qif), filename="q.qif", content=qif, by=None, ledger=ledger
    )
    assert any(
        "1 ligne(s) du relevé sont datées hors de l'année 2025-2026 (du 29/08/2025 au 29/08/2025)" in n
        for n in result.notices
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"%PDF-1.4 relev\xe9",
        b"Bonjour, ceci est une lettre.\n",
        b"<?xml version='1.0'?><html/>",
        b"OFXHEADER:100\n<OFX>garbage",
    ],
)
def test_a_file_that_is_not_a_statement_is_refused(content):
    with pytest.raises(StatementError):
        parse_statement(content)


def test_unknown_csv_asks_for_a_mapping_and_then_parses():
    content = b"Quand;Quoi;Combien\n03/09/2025;Achat papeterie;-12,50\n04/09/2025;Don APE;100,00\n"
    with pytest.raises(NeedsMapping) as caught:
        parse_statement(content)
    assert caught.value.columns == ["Quand", "Quoi", "Combien"]
    from app.statements import CsvMapping

    parsed = parse_statement(content, mapping=CsvMapping(date=0, label=(1,), amount=2), header_row=0)
    assert [(line.date, line.amount_cents) for line in parsed.lines] == [
        (date(2025, 9, 3), -1250),
        (date(2025, 9, 4), 10000),
    ]


def test_presets_detected_from_the_header():
    postale = (
        "Numéro Compte;0123456X020\nType;CCP\nCompte tenu en;euros\nDate;30/09/2025\n\n"
        "Date;Libellé;Montant(EUROS)\n02/09/2025;CHEQUE N° 0001231;-120,00\n"
    ).encode("cp1252")
    parsed = parse_statement(postale)
    assert parsed.source_format == "csv (La Banque Postale)"
    assert (parsed.lines[0].amount_cents, parsed.lines[0].cheque_number) == (-12000, "1231")
    agricole = (
        "Compte;12345\nSolde au 30/09/2025;1 853,06 €\n\nDate;Libellé;Débit euros;Crédit euros;\n"
        '04/09/2025;"REMISE CHEQUES\n0004512";;245,00;\n08/09/2025;FRAIS;1 006,00;;\n'
    ).encode("cp1252")
    parsed = parse_statement(agricole)
    assert parsed.source_format == "csv (Crédit Agricole)"
    assert [line.amount_cents for line in parsed.lines] == [24500, -100600]
    generale = (
        "=Compte;FR76...\nDate de l'opération;Libellé;Détail de l'écriture;Montant de l'opération;Devise\n"
        "15/09/2025;PRELEVEMENT EUROPEEN;OCCE 85;-45,50;EUR\n"
    ).encode("cp1252")
    assert parse_statement(generale).source_format == "csv (Société Générale)"


def test_ambiguous_amounts_become_suggestions_not_matches():
    bank = [
        rec.BankItem(1, date(2025, 10, 3), -3500, "CB BOULANGERIE", "", ""),
        rec.BankItem(2, date(2025, 10, 4), -3500, "CB PHARMACIE", "", ""),
    ]
    book = [
        rec.BookLine(10, 1, date(2025, 10, 2), -3500, "carte", "", "Pharmacie", "D1"),
        rec.BookLine(11, 2, date(2025, 10, 3), -3500, "carte", "", "Boulangerie", "D2"),
    ]
    result = rec.match(bank, book)
    assert result.proposals == []
    assert {(s.bank_id, s.line_ids) for s in result.suggestions} == {(1, (11,)), (2, (10,))}
    assert all(not s.sure for s in result.suggestions)


def test_cheque_number_with_another_amount_is_an_anomaly():
    bank = [rec.BankItem(1, date(2025, 10, 3), -4000, "CHEQUE 0001240", "1240", "")]
    book = [rec.BookLine(10, 1, date(2025, 10, 1), -3900, "cheque", "1240", "Librairie", "D1")]
    result = rec.match(bank, book)
    assert result.proposals == [] and "n'a pas le même montant" in result.anomalies[0]


def test_confirm_checks_amounts_and_tenancy(session, coop, coops):
    ids = load_fixture_ledger(session, coop)
    content = (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()
    rec.import_statement(session, coop.id, parse_statement(content), filename="r.ofx", content=content, by=None)
    deposit = next(i for i in rec.open_bank_items(session, coop.id) if i.amount == 24500)
    with pytest.raises(DomainError, match="montants ne correspondent pas"):
        rec.confirm_match(session, coop.id, deposit.id, [ids["L02"], ids["L03"]], by=None)
    other = session.get(Coop, coops[1].id)
    with pytest.raises(DomainError, match="introuvable"):
        rec.confirm_match(session, other.id, deposit.id, [ids["L02"], ids["L03"], ids["L04"]], by=None)
    rec.confirm_match(session, coop.id, deposit.id, [ids["L02"], ids["L03"], ids["L04"]], by=None)
    assert {session.get(EntryLine, ids[k]).cleared_on for k in ("L02", "L03", "L04")} == {date(2025, 9, 4)}
    with pytest.raises(DomainError, match="déjà pointée"):
        rec.confirm_match(session, coop.id, deposit.id, [ids["L06"]], by=None)


def test_clearing_in_the_next_year_keeps_the_old_reconciliation(session, coop):
    ids = load_fixture_ledger(session, coop)
    previous = books.open_ledger(session, coop, 2024)
    before = rec.reconcile(session, previous, date(2025, 8, 31), None)
    assert (before.uncleared_total, before.uncleared_count) == (-12000, 1)
    rec.clear_line(session, coop.id, ids["L01"], date(2025, 9, 2), by=None)
    after = rec.reconcile(session, previous, date(2025, 8, 31), None)
    assert after == before  # cleared on 02/09: still outstanding at 31/08
    assert rec.unclear_line(session, coop.id, ids["L01"], by=None).cleared_on is None


def test_changing_a_cleared_amount_unclears(session, coop):
    ids = load_fixture_ledger(session, coop)
    rec.clear_line(session, coop.id, ids["L06"], date(2025, 9, 8), by=None)
    entry = session.get(EntryLine, ids["L06"]).entry
    data = books.EntryData(
        piece=entry.piece,
        date=entry.date,
        label=entry.label,
        payment_mode="virement",
        kind="receipt",
        treasury=books.Treasury(bank_in=50100),
        splits=[books.Split("756", 50100)],
    )
    assert books.update_entry(session, entry, data, expected_version=entry.version, by=None) is True
    bank_line = next(line for line in entry.lines if line.account.code == "512")
    assert bank_line.cleared_on is None


def test_statement_cli_import(app, coops):
    path = DATA / "releve_2025-09_credit_mutuel.ofx"
    result = app.test_cli_runner().invoke(args=["statements", "import", "085-042", str(path)])
    assert result.exit_code == 0, result.output
    assert "9 ligne(s) ajoutée(s)" in result.output
    again = app.test_cli_runner().invoke(args=["statements", "import", "085-042", str(path)])
    assert "0 ligne(s) ajoutée(s), 9 déjà connue(s)" in again.output
    bad = app.test_cli_runner().invoke(args=["statements", "import", "085-042", str(DATA / "README.md")])
    assert bad.exit_code == 1 and "relevé" in bad.output


def test_matching_is_deterministic(session, coop):
    load_fixture_ledger(session, coop)
    content = (DATA / "releve_2025-09.qif").read_bytes()
    rec.import_statement(session, coop.id, parse_statement(content), filename="r.qif", content=content, by=None)
    items = rec.open_bank_items(session, coop.id)
    book = rec.uncleared_book_lines(session, coop.id)
    first = rec.match(items, book)
    second = rec.match(list(reversed(items)), list(reversed(book)))
    assert first == second


# -- one function per rule -----------------------------------------------------------------------


def _bank(ident, day, amount, label="", cheque="", reference=""):
    return rec.BankItem(ident, day, amount, label, cheque, reference)


def _book(ident, day, amount, mode="virement", number="", label="", piece=""):
    return rec.BookLine(ident, ident, day, amount, mode, number, label, piece or f"P{ident}")


def test_each_rule_takes_what_it_matches_and_leaves_the_rest():
    bank = [
        _bank(1, date(2025, 10, 20), -4000, "CHEQUE 0001240", cheque="1240"),
        _bank(2, date(2025, 10, 6), -4550, "PRLV OCCE 85", reference="RUM OCCE085-099 E2E-123"),
        _bank(3, date(2025, 10, 8), 24500, "REMISE CHEQUES 0004512"),
        _bank(4, date(2025, 10, 9), 50000, "VIR MAIRIE"),
    ]
    book = [
        _book(10, date(2025, 10, 1), -4000, "cheque", "1240"),  # cashed 19 days later: R1 has no window
        _book(11, date(2025, 10, 6), -4550, "prelevement", label="Cotisation OCCE085-099"),
        _book(12, date(2025, 10, 7), 10000, "remise", "4512"),
        _book(13, date(2025, 10, 7), 14500, "remise", "4512"),
        _book(14, date(2025, 10, 8), 50000),
    ]
    expected = {
        rec.match_cheques: (1, (10,), "R1"),
        rec.match_references: (2, (11,), "R2"),
        rec.match_deposit_slips: (3, (12, 13), "R3"),
        rec.match_unique_amounts: (4, (14,), "R4"),
    }
    pool = rec.OpenItems.of(bank, book)
    for rule, proposal in expected.items():  # in the order `match` runs them
        before = len(pool.result.proposals)
        rule(pool)
        assert [(p.bank_id, p.line_ids, p.rule) for p in pool.result.proposals[before:]] == [proposal], rule
        assert proposal[0] not in pool.free_bank and not set(proposal[1]) & set(pool.free_book)
    assert pool.free_bank == {} and pool.free_book == {}
    assert {(p.bank_id, p.line_ids, p.rule) for p in rec.match(bank, book).proposals} == set(expected.values())


def test_a_cheque_is_matched_by_its_number_only_not_by_its_amount():
    bank = [_bank(1, date(2025, 10, 3), -3500, "CHEQUE 0001241", cheque="1241")]
    book = [_book(10, date(2025, 10, 2), -3500, "cheque", "1250")]
    pool = rec.OpenItems.of(bank, book)
    rec.match_unique_amounts(pool)
    assert pool.result.proposals == []
    assert rec.match(bank, book).suggestions[0].line_ids == (10,)  # the same amount: only a suggestion


def test_an_amount_is_matched_only_when_unique_in_both_directions():
    """Bank line 1 has one candidate (11), but bank line 2 could be 11 too: no match, suggestions."""
    bank = [_bank(1, date(2025, 10, 10), -1000), _bank(2, date(2025, 10, 1), -1000)]
    book = [_book(11, date(2025, 10, 5), -1000), _book(12, date(2025, 9, 22), -1000)]
    pool = rec.OpenItems.of(bank, book)
    rec.match_unique_amounts(pool)
    assert pool.result.proposals == [] and set(pool.free_bank) == {1, 2}
    assert rec.suggest_ambiguous(pool) == ({2}, {11})  # the closest pair only: each line suggested once
    pool = rec.OpenItems.of(bank[:1], book)  # without its rival, bank line 1 is matched
    rec.match_unique_amounts(pool)
    assert [(p.bank_id, p.line_ids, p.explanation) for p in pool.result.proposals] == [
        (1, (11,), "même montant, 5 jour(s) d'écart")
    ]


def test_suggestions_take_the_closest_date_then_the_closest_label():
    bank = [_bank(1, date(2025, 10, 3), -3500, "CB BOULANGERIE"), _bank(2, date(2025, 10, 3), -3500, "CB PHARMACIE")]
    book = [
        _book(10, date(2025, 10, 2), -3500, "carte", label="Pharmacie"),
        _book(11, date(2025, 10, 2), -3500, "carte", label="Boulangerie"),
    ]
    pool = rec.OpenItems.of(bank, book)
    assert rec.suggest_ambiguous(pool) == ({1, 2}, {10, 11})
    assert {(s.bank_id, s.line_ids, s.rule, s.sure) for s in pool.result.suggestions} == {
        (1, (11,), "R5", False),
        (2, (10,), "R5", False),
    }


# -- the one reconciliation, the summary box, imports ---------------------------------------------


def test_reconcile_lists_the_uncleared_lines_with_their_year(session, coop):
    ids = load_fixture_ledger(session, coop)
    current = books.open_ledger(session, coop, 2025)
    rec.clear_line(session, coop.id, ids["L06"], date(2025, 9, 8), by=None)
    summary = rec.reconcile(session, current, date(2025, 9, 30), None)
    years = [(line.piece, line.year_label) for line in summary.uncleared]
    assert years[:2] == [("L01", "2024-2025"), ("L02", "2025-2026")]
    assert "L06" not in {line.piece for line in summary.uncleared}
    assert summary.uncleared_count == len(summary.uncleared) == 11
    assert summary.uncleared_total == sum(line.amount for line in summary.uncleared) == 8450
    assert summary.expected_statement == summary.book_balance - summary.uncleared_total
    assert summary.difference is None and not summary.is_reconciled and summary.has_uncleared_receipts
    # the cheque of August, cleared in September: carried into 2025-2026, no longer uncleared at 30/09
    rec.clear_line(session, coop.id, ids["L01"], date(2025, 9, 2), by=None)
    [carried] = rec.carried_lines(session, current)
    assert (carried.piece, carried.cleared_on) == ("L01", date(2025, 9, 2))
    assert rec.reconcile(session, current, date(2025, 9, 30), 0).uncleared_count == 10


def test_the_summary_box_works_at_the_typed_date_else_today_within_the_year(session, coop):
    load_fixture_ledger(session, coop)
    current = books.open_ledger(session, coop, 2025)
    assert rec.summary_date(current, date(2025, 10, 2)) == date(2025, 10, 2)
    assert rec.summary_date(current, date(2026, 9, 15)) == date(2026, 8, 31)
    saved = rec.save_statement_balance(session, current, date(2025, 9, 30), 185306, by=None)
    assert saved == rec.summary(session, current, date(2026, 9, 15))
    assert (saved.on, saved.statement_balance, saved.difference) == (date(2025, 9, 30), 185306, 61850)
    with pytest.raises(DomainError, match="2025-2026") as refused:
        rec.save_statement_balance(session, current, date(2024, 9, 30), 0, by=None)
    assert refused.value.field == "on"


def test_an_imported_closing_balance_fills_the_summary_box_unless_an_older_date(session, coop):
    load_fixture_ledger(session, coop)
    current = books.open_ledger(session, coop, 2025)
    content = (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()
    parsed = parse_statement(content)
    rec.import_statement(session, coop.id, parsed, filename="r.ofx", content=content, by=None, ledger=current)
    assert (current.reconciliation_date, current.reconciliation_balance_cents) == (date(2025, 9, 30), 185306)
    rec.save_statement_balance(session, current, date(2025, 10, 31), 200000, by=None)
    rec.import_statement(session, coop.id, parsed, filename="r.ofx", content=content, by=None, ledger=current)
    assert (current.reconciliation_date, current.reconciliation_balance_cents) == (date(2025, 10, 31), 200000)
    previous = books.open_ledger(session, coop, 2024)  # 30/09/2025 is not in 2024-2025
    rec.import_statement(session, coop.id, parsed, filename="r.ofx", content=content, by=None, ledger=previous)
    assert previous.reconciliation_date is None


def test_confirm_matches_keeps_the_good_ones_and_says_why_the_others_were_refused(session, coop):
    ids = load_fixture_ledger(session, coop)
    content = (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()
    rec.import_statement(session, coop.id, parse_statement(content), filename="r.ofx", content=content, by=None)
    items = {item.amount: item.id for item in rec.open_bank_items(session, coop.id)}
    done = rec.confirm_matches(
        session,
        coop.id,
        [(items[24500], (ids["L02"], ids["L03"])), (items[50000], (ids["L06"],)), (999999, (ids["L07"],))],
        by=None,
    )
    assert done.done == 1
    assert [(bank_id, message) for bank_id, _, message in done.refused] == [
        (items[24500], "Les montants ne correspondent pas : rien n'a été pointé."),
        (999999, "Ligne de relevé introuvable."),
    ]
    cleared = {key for key in ("L02", "L03", "L06", "L07") if session.get(EntryLine, ids[key]).cleared_on}
    assert cleared == {"L06"}


def test_lines_of_another_coop_are_told_apart(session, coop, coops):
    ids = load_fixture_ledger(session, coop)
    content = (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes()
    rec.import_statement(session, coop.id, parse_statement(content), filename="r.ofx", content=content, by=None)
    line = rec.open_bank_items(session, coop.id)[0]
    other = session.get(Coop, coops[1].id)
    assert rec.statement_line_of_coop(session, coop.id, line.id).id == line.id
    assert rec.statement_line_of_coop(session, other.id, line.id) is None
    assert rec.foreign_lines(session, other.id, [line.id, 999999], [ids["L06"], 999999]) == [
        ("statement_line", line.id),
        ("entry_line", ids["L06"]),
    ]
    assert rec.foreign_lines(session, coop.id, [line.id], [ids["L06"]]) == []


def test_an_unknown_csv_is_asked_about_only_when_it_looks_like_a_statement():
    from app.statements import looks_like_a_statement, mapping_header_row

    assert looks_like_a_statement(["Quand", "Quoi", "Combien"], [["03/09/2025", "Achat", "-12,50"]])
    assert not looks_like_a_statement(["Quand", "Quoi"], [["03/09/2025", "Achat"]])
    assert not looks_like_a_statement(["Bonjour", "ceci", "est"], [["une", "lettre", "!"]])
    content = "Compte;FR76\nJour;Opération;Sortie;Entrée\n02/09/2025;CHEQUE;120,00;\n".encode()
    assert mapping_header_row(content) == 1
