"""Cash-book domain: double entry, the worked example, CSV/XLSX round trips, random operation sequences."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app import cahier as cahier_format
from app import ledger as books
from app.clock import today as paris_today
from app.errors import DomainError, ValidationErrors
from app.extensions import db
from app.models import Account, Coop, Entry, EntryLine, Ledger

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "exemple_2024-2025.csv"
EXPECTED = json.loads((DATA / "exemple_2024-2025.expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def coop(session, make_coop):
    info = make_coop(1)
    return session.get(Coop, info.id)


@pytest.fixture
def ledger(session, coop):
    return books.open_ledger(session, coop, 2024)


def expense(piece="D01", amount=1000, code="6068", day=date(2024, 10, 1), **kw):
    return books.EntryData(
        piece=piece,
        date=day,
        label=kw.pop("label", "Achat"),
        payment_mode=kw.pop("mode", "cheque"),
        kind="expense",
        treasury=books.Treasury(bank_out=amount),
        splits=[books.Split(code, amount)],
        cheque_number=kw.pop("cheque", "100"),
        **kw,
    )


def line_sums(session, ledger):
    return dict(
        session.execute(
            sa.select(Account.code, sa.func.sum(EntryLine.amount_cents))
            .join(EntryLine.account)
            .join(EntryLine.entry)
            .where(Entry.ledger_id == ledger.id)
            .group_by(Account.code)
        ).all()
    )


# -- the worked example --------------------------------------------------------------------------


def test_worked_example_matches_expected_figures(session, ledger):
    count = cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    assert count == 13
    balances = books.balances(session, ledger)
    assert (balances.bank, balances.cash, balances.advance) == (
        EXPECTED["closing"]["bank"],
        EXPECTED["closing"]["cash"],
        EXPECTED["closing"]["advance"],
    )
    sums = line_sums(session, ledger)
    assert {code: sums[code] for code in EXPECTED["charges"]} == EXPECTED["charges"]
    assert {code: -sums[code] for code in EXPECTED["produits"]} == EXPECTED["produits"]
    assert sum(EXPECTED["charges"].values()) == EXPECTED["total_charges"]
    opening = books.balances(session, ledger, until=date(2024, 9, 1))
    assert (opening.bank, opening.cash) == (EXPECTED["opening"]["bank"], EXPECTED["opening"]["cash"])
    assert sums["110"] == -(EXPECTED["opening"]["bank"] + EXPECTED["opening"]["cash"])  # never income
    totals = {
        t.action.name: {"charges": t.charges, "produits": t.produits}
        for t in books.action_totals(session, ledger.coop_id, ledger)
    }
    assert totals == EXPECTED["actions"]
    data = cahier_format.build_cahier(session, ledger)
    uncleared = [
        (r.piece, r.date.isoformat(), r.cheque, r.bank_in - r.bank_out)
        for r in data.rows
        if (r.bank_in or r.bank_out) and r.cleared_on is None and r.kind != "opening"
    ]
    assert uncleared == [(u["piece"], u["date"], u["cheque"], u["amount"]) for u in EXPECTED["uncleared"]]
    assert books.check_ledger(session, ledger) == []


def test_classic_view_rows_totals_and_running_balances(session, ledger):
    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    data = cahier_format.build_cahier(session, ledger)
    # accounts in the order of their OCCE codes, charges first
    assert [a.code for a in data.accounts] == [
        "6068",
        "607",
        "61681",
        "6181",
        "6281",
        "6288",
        "7068",
        "707",
        "744",
        "756",
    ]
    r01 = next(r for r in data.rows if r.piece == "R01")
    assert (r01.bank_in, r01.cash_in, r01.bank_balance, r01.cash_balance) == (125000, 31000, 305000, 36000)
    assert r01.amounts == {"756": 156000}
    assert data.rows[-1].bank_balance == data.bank_balance == 294240
    assert data.totals["advance_in"] == 10000 and data.totals["advance_out"] == 10000
    assert data.account_totals["6288"] == 300000 and data.account_totals["756"] == 156000
    assert data.uncleared_count == 1
    by_piece = cahier_format.build_cahier(session, ledger, sort="piece")
    assert [r.piece for r in by_piece.rows][:4] == ["D01", "D02", "D03", "D04"]
    assert [r.piece for r in cahier_format.build_cahier(session, ledger, account="707").rows] == ["R03"]
    assert [r.piece for r in cahier_format.build_cahier(session, ledger, text="photo").rows] == ["D02", "R03"]
    assert [r.piece for r in cahier_format.build_cahier(session, ledger, mode="remise").rows] == [
        "R01",
        "R03",
        "R04",
        "G02",
    ]


def test_piece_natural_order():
    assert sorted(["D10", "D2", "R1", "D1"], key=cahier_format.piece_key) == ["D1", "D2", "D10", "R1"]


# -- CSV and XLSX --------------------------------------------------------------------------------


def test_export_then_import_gives_the_same_ledger(session, ledger, coop):
    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    exported = cahier_format.export_csv(session, ledger)
    assert exported.startswith("\ufeff".encode()) and b"\r\n" in exported
    text = exported.decode("utf-8-sig")
    assert text.splitlines()[0].startswith(";".join(cahier_format.FIXED_COLUMNS))
    assert "R01;20/09/2024;" in text and ";1250,00;" in text

    second = Coop(number=2, name="Autre coop")
    session.add(second)
    session.flush()
    copy = books.open_ledger(session, second, 2024)
    cahier_format.import_cahier(session, copy, exported, by=None)

    def table(book):
        data = cahier_format.build_cahier(session, book)
        return [
            (
                r.piece,
                r.date,
                r.label,
                r.mode,
                r.cheque,
                r.action,
                r.cleared_on,
                r.bank_in,
                r.bank_out,
                r.cash_in,
                r.cash_out,
                r.advance_in,
                r.advance_out,
                r.amounts,
            )
            for r in data.rows
        ]

    assert table(copy) == table(ledger)
    assert cahier_format.export_csv(session, copy) == exported


def test_import_accepts_cp1252_and_commas(session, ledger):
    text = EXAMPLE.read_text(encoding="utf-8")
    # comma-separated: amounts with a decimal comma must then be quoted, as spreadsheets do
    import csv as csv_module

    rows = list(csv_module.reader(io.StringIO(text), delimiter=";"))
    buffer = io.StringIO()
    csv_module.writer(buffer, delimiter=",").writerows(rows)
    assert cahier_format.import_cahier(session, ledger, buffer.getvalue().encode("cp1252"), by=None) == 13
    assert books.balances(session, ledger).bank == 294240
    assert session.scalar(sa.select(Entry.label).where(Entry.piece == "I01")) == "Dépôt des espèces en banque"


def test_import_reports_every_bad_line_and_changes_nothing(session, ledger):
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("20/09/2024", "20/09/2023")  # R01 outside the year
    lines[3] = lines[3].replace(";290,00;40,00;", ";290,00;45,00;")  # D01 split 335 for 330
    lines[5] = lines[5].replace("I01", "R02")  # duplicate piece
    lines[6] = lines[6].replace(";900,00;", ";neuf cents;")
    with pytest.raises(ValidationErrors) as caught:
        cahier_format.import_cahier(session, ledger, "\n".join(lines).encode(), by=None)
    errors = caught.value.errors
    assert set(errors) == {"ligne 3", "ligne 4", "ligne 6", "ligne 7"}
    assert "hors de l'année 2024-2025" in errors["ligne 3"][0]
    assert "reste à ventiler" in errors["ligne 4"][0]
    assert "R02 figure déjà ligne 5" in errors["ligne 6"][0]
    assert "n'est pas un montant" in errors["ligne 7"][0]
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 0


def test_import_refuses_unknown_accounts_and_missing_columns(session, ledger):
    with pytest.raises(ValidationErrors) as caught:
        cahier_format.import_cahier(session, ledger, b"piece;date;libelle\r\n1;01/10/2024;x\r\n", by=None)
    assert "Colonnes manquantes" in caught.value.errors["ligne 1"][0]
    header = ";".join(cahier_format.FIXED_COLUMNS) + ";9999"
    with pytest.raises(ValidationErrors) as caught:
        cahier_format.import_cahier(session, ledger, (header + "\r\n").encode(), by=None)
    assert "9999" in caught.value.errors["ligne 1"][0]


def test_xlsx_export_has_real_numbers_and_totals(session, ledger):
    from openpyxl import load_workbook

    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    workbook = load_workbook(io.BytesIO(cahier_format.export_xlsx(session, ledger, "Cahier 2024-2025")))
    sheet = workbook.active
    header = [cell.value for cell in sheet[2]]
    assert header[:3] == ["piece", "date", "libelle"]
    r01 = next(row for row in sheet.iter_rows(min_row=3, values_only=True) if row[0] == "R01")
    assert r01[1].date() == date(2024, 9, 20)
    assert float(r01[header.index("banque_entree")]) == 1250.0
    totals = [cell.value for cell in sheet[sheet.max_row]]
    assert totals[0] == "Totaux" and float(totals[header.index("6288")]) == 3000.0


def test_csv_export_guards_formulas(session, ledger):
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="R1",
            date=date(2024, 10, 1),
            label='=HYPERLINK("http://x")',
            payment_mode="especes",
            kind="receipt",
            treasury=books.Treasury(cash_in=500),
            splits=[books.Split("708", 500)],
        ),
        by=None,
    )
    import csv as csv_module

    exported = cahier_format.export_csv(session, ledger)
    rows = list(csv_module.reader(io.StringIO(exported.decode("utf-8-sig")), delimiter=";"))
    assert rows[1][2] == '\'=HYPERLINK("http://x")'
    # importing our own export gives the label back without the guard
    second = Coop(number=3, name="Copie")
    session.add(second)
    session.flush()
    copy = books.open_ledger(session, second, 2024)
    cahier_format.import_cahier(session, copy, exported, by=None)
    assert session.scalar(sa.select(Entry.label).where(Entry.ledger_id == copy.id)) == '=HYPERLINK("http://x")'


# -- rules ---------------------------------------------------------------------------------------


def test_entry_lines_are_balanced_and_signed(session, ledger):
    entry = books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="R1",
            date=date(2024, 10, 1),
            label="Kermesse",
            payment_mode="remise",
            kind="receipt",
            treasury=books.Treasury(bank_in=12000, cash_in=3000),
            splits=[books.Split("756", 10000), books.Split("708", 5000)],
        ),
        by=None,
    )
    lines = {line.account.code: line.amount_cents for line in entry.lines}
    assert lines == {"512": 12000, "530": 3000, "756": -10000, "708": -5000}
    assert sum(lines.values()) == 0


@pytest.mark.parametrize(
    ("data", "box", "message"),
    [
        (dict(piece=""), "piece", "numéro de la pièce"),
        (dict(day=date(2025, 9, 1)), "date", "entre le 01/09/2024 et le 31/08/2025"),
        (dict(code="707"), "box7", "choisissez un compte de charge"),
        (dict(code="9999"), "box7", "n'existe pas"),
        (dict(cheque=""), "cheque_number", "numéro du chèque"),
    ],
)
def test_errors_name_the_faulty_box(session, ledger, data, box, message):
    with pytest.raises(DomainError) as caught:
        books.record_entry(session, ledger, expense(**data), by=None)
    assert caught.value.field == box and message in caught.value.message
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 0


def test_split_must_match_the_amount(session, ledger):
    data = expense(amount=1000)
    data.splits = [books.Split("6068", 600), books.Split("6181", 300)]
    with pytest.raises(DomainError, match="reste à ventiler 1,00\u202f€") as caught:
        books.record_entry(session, ledger, data, by=None)
    assert caught.value.field == "box7"


def test_piece_is_unique_in_the_ledger_and_suggested(session, ledger):
    books.record_entry(session, ledger, expense(piece="D09"), by=None)
    assert books.next_piece(session, ledger, "D") == "D10"
    assert books.next_cheque_number(session, ledger.coop_id) == "101"
    with pytest.raises(DomainError, match="existe déjà"):
        books.record_entry(session, ledger, expense(piece="D09", cheque="101"), by=None)


def test_inactive_account_refused(session, ledger):
    session.execute(sa.update(Account).where(Account.code == "6068").values(is_active=False))
    with pytest.raises(DomainError, match="n'est plus utilisé"):
        books.record_entry(session, ledger, expense(), by=None)


def test_closed_ledger_refuses_every_write(session, ledger):
    entry = books.record_entry(session, ledger, expense(), by=None)
    ledger.status = "closed"
    session.flush()
    with pytest.raises(DomainError, match="clôturé"):
        books.record_entry(session, ledger, expense(piece="D02", cheque="101"), by=None)
    with pytest.raises(DomainError, match="clôturé"):
        books.update_entry(session, entry, expense(amount=2000), expected_version=entry.version, by=None)
    with pytest.raises(DomainError, match="clôturé"):
        books.delete_entry(session, entry, by=None)
    with pytest.raises(DomainError, match="clôturé"):
        books.record_opening(session, ledger, bank=100, cash=0, by=None)
    with pytest.raises(ValidationErrors):
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)


def test_stale_edit_is_refused(session, ledger):
    entry = books.record_entry(session, ledger, expense(), by=None)
    version = entry.version
    books.update_entry(session, entry, expense(amount=1500), expected_version=version, by=None)
    with pytest.raises(DomainError, match="modifiée entre-temps"):
        books.update_entry(session, entry, expense(amount=9900), expected_version=version, by=None)
    assert books.balances(session, ledger).bank == -1500


def test_changing_a_cleared_amount_unclears_it(session, ledger):
    entry = books.record_entry(session, ledger, expense(), by=None)
    bank_line = next(line for line in entry.lines if line.account.code == "512")
    bank_line.cleared_on = date(2024, 10, 5)
    session.flush()
    assert (
        books.update_entry(session, entry, expense(label="Achat de colle"), expected_version=entry.version, by=None)
        is False
    )
    assert next(line for line in entry.lines if line.account.code == "512").cleared_on == date(2024, 10, 5)
    assert books.update_entry(session, entry, expense(amount=1200), expected_version=entry.version, by=None) is True
    assert next(line for line in entry.lines if line.account.code == "512").cleared_on is None


def test_idempotency_key_returns_the_first_entry(session, ledger):
    first = books.record_entry(session, ledger, expense(), by=None, idempotency_key="k1")
    again = books.record_entry(session, ledger, expense(piece="D02", cheque="101"), by=None, idempotency_key="k1")
    assert again.id == first.id
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 1


def test_advance_cycle_returns_to_zero(session, ledger):
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="G1",
            date=date(2024, 12, 2),
            label="Régie CP",
            payment_mode="cheque",
            cheque_number="102",
            kind="advance_paid",
            treasury=books.Treasury(bank_out=10000),
        ),
        by=None,
    )
    assert books.balances(session, ledger).advance == 10000
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="G2",
            date=date(2025, 6, 20),
            label="Justification",
            payment_mode="regie",
            kind="advance_justified",
            treasury=books.Treasury(),
            splits=[books.Split("6068", 8760)],
        ),
        by=None,
    )
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="G3",
            date=date(2025, 6, 20),
            label="Reliquat",
            payment_mode="remise",
            kind="advance_returned",
            treasury=books.Treasury(bank_in=1240),
        ),
        by=None,
    )
    assert books.balances(session, ledger) == books.Balances(bank=-8760, cash=0, advance=0)


def test_transfers_are_not_split(session, ledger):
    with pytest.raises(DomainError) as caught:
        books.record_entry(
            session,
            ledger,
            books.EntryData(
                piece="I1",
                date=date(2024, 10, 1),
                label="Dépôt",
                payment_mode="interne",
                kind="deposit",
                treasury=books.Treasury(bank_in=100, cash_out=100),
                splits=[books.Split("708", 100)],
            ),
            by=None,
        )
    assert caught.value.field == "box7"
    books.record_opening(session, ledger, bank=0, cash=100, by=None)
    entry = books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece="I1",
            date=date(2024, 10, 1),
            label="Dépôt",
            payment_mode="interne",
            kind="deposit",
            treasury=books.Treasury(bank_in=100, cash_out=100),
        ),
        by=None,
    )
    assert books.form_kind(entry) == "deposit" and entry.kind == "transfer"


def test_opening_is_replaced_not_duplicated(session, ledger):
    books.record_opening(session, ledger, bank=180000, cash=5000, by=None)
    books.record_opening(session, ledger, bank=170000, cash=5000, by=None)
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry).where(Entry.kind == "opening")) == 1
    assert books.balances(session, ledger) == books.Balances(bank=170000, cash=5000, advance=0)


# -- from the form's plain values (the rule the entry form used to hold) ---------------------------


@pytest.mark.parametrize(
    ("kind", "bank", "cash", "expected"),
    [
        ("receipt", 1200, 300, books.Treasury(bank_in=1200, cash_in=300)),
        ("advance_returned", 0, 500, books.Treasury(cash_in=500)),
        ("expense", 4560, 0, books.Treasury(bank_out=4560)),
        ("advance_paid", 0, 2000, books.Treasury(cash_out=2000)),
        ("deposit", 0, 700, books.Treasury(bank_in=700, cash_out=700)),
        ("deposit", 700, 700, books.Treasury(bank_in=700, cash_out=700)),
        ("withdrawal", 900, 0, books.Treasury(bank_out=900, cash_in=900)),
        ("advance_justified", 100, 100, books.Treasury()),
    ],
)
def test_treasury_follows_the_kind(kind, bank, cash, expected):
    assert books.treasury_for(kind, bank, cash) == expected


def test_a_move_between_cash_and_bank_has_one_amount():
    with pytest.raises(DomainError, match="indiquez un seul montant") as caught:
        books.treasury_for("deposit", 1000, 2000)
    assert caught.value.field == "box6"


@pytest.mark.parametrize(
    ("kind", "mode", "cheque", "slip", "expected_mode", "expected_number"),
    [
        ("expense", "cheque", "0001234", "", "cheque", "0001234"),  # a cheque the coop wrote
        ("advance_paid", "cheque", "0001234", "", "cheque", "0001234"),
        ("receipt", "cheque", "0001234", "", "cheque", ""),  # a cheque received: the pre-filled number is dropped
        ("expense", "virement", "0001234", "", "virement", ""),
        ("receipt", "remise", "0001234", "R-77", "remise", "R-77"),  # the deposit slip number
        ("deposit", "cheque", "0001234", "", "interne", ""),  # fixed modes
        ("withdrawal", "especes", "", "", "interne", ""),
        ("advance_justified", "cheque", "0001234", "", "regie", ""),
    ],
)
def test_entry_data_fixes_the_mode_and_keeps_only_meaningful_numbers(
    kind, mode, cheque, slip, expected_mode, expected_number
):
    data = books.entry_data(
        piece="P1",
        date=date(2024, 10, 1),
        label="Essai",
        kind=kind,
        payment_mode=mode,
        bank=1000,
        cash=0,
        splits=[],
        cheque_number=cheque,
        slip_number=slip,
    )
    assert (data.payment_mode, data.cheque_number) == (expected_mode, expected_number)


def test_entry_data_skips_blank_split_rows_and_names_box7_for_half_filled_ones():
    values = dict(piece="D1", date=date(2024, 10, 1), label="Achat", kind="expense", payment_mode="carte")
    data = books.entry_data(**values, bank=1500, cash=0, splits=[("6068", 1000), ("", None), ("6181", 500)])
    assert data.splits == [books.Split("6068", 1000), books.Split("6181", 500)]
    assert data.treasury == books.Treasury(bank_out=1500) and data.action_id is None
    for row, message in ((("", 500), "Choisissez le compte"), (("6068", None), "Indiquez le montant")):
        with pytest.raises(DomainError, match=message) as caught:
            books.entry_data(**values, bank=500, cash=0, splits=[row])
        assert caught.value.field == "box7"


def test_box6_amounts_invert_the_treasury(session, ledger):
    def stored(kind, bank, cash, splits=()):
        data = books.entry_data(
            piece=f"{kind}-{bank}-{cash}",
            date=date(2024, 10, 1),
            label="Essai",
            kind=kind,
            payment_mode="especes",
            bank=bank,
            cash=cash,
            splits=list(splits),
        )
        return books.record_entry(session, ledger, data, by=None)

    books.record_opening(session, ledger, bank=0, cash=1000, by=None)
    assert books.box6_amounts(stored("receipt", 1200, 300, [("708", 1500)])) == (1200, 300)
    assert books.box6_amounts(stored("expense", 0, 450, [("6068", 450)])) == (0, 450)
    assert books.box6_amounts(stored("deposit", 0, 700)) == (700, 0)
    assert books.box6_amounts(stored("withdrawal", 900, 0)) == (900, 0)


def _highest_then_next(values: list[str], prefix: str) -> str | None:
    """The suggestion as the form computed it in Python before the database did (the oracle)."""
    best = None
    for value in values:
        digits = value[len(prefix) :]
        in_series = digits.isdigit() and digits.isascii() and value[: len(prefix)].upper() == prefix.upper()
        if in_series and (best is None or int(digits) > best[0]):
            best = (int(digits), value[: len(prefix)], len(digits))
    return None if best is None else f"{best[1]}{best[0] + 1:0{best[2]}d}"


@pytest.mark.parametrize(
    ("pieces", "prefix"),
    [
        (["D9", "D10", "D09", "d11bis", "D2"], "D"),  # 10 after 9: numbers, not text
        (["d07", "D06", "RAN", "RAN-1", "D٣"], "D"),  # any case; an Arabic-Indic digit is not a digit here
        (["41", "0042", "7", "A99"], ""),  # no letters: zeros kept as typed
        (["R" + "9" * 19, "R1" + "0" * 18, "R" + "9" * 18], "R"),  # beyond 64-bit integers
        (["RAN", "Facture"], "D"),  # no series yet
    ],
)
def test_the_suggested_piece_is_the_highest_number_of_the_series_plus_one(session, ledger, pieces, prefix):
    for n, piece in enumerate(pieces):
        books.record_entry(session, ledger, expense(piece=piece, cheque=str(n)), by=None)
    expected = _highest_then_next(pieces, prefix) or (f"{prefix}01" if prefix else "1")
    assert books.next_piece(session, ledger, prefix) == expected


def test_the_suggested_cheque_is_the_coops_highest_plus_one(session, ledger, coop):
    other, fresh = (Coop(number=n, name=f"Coop {n}", school_name="École", postal_code="85000") for n in (2, 3))
    session.add_all([other, fresh])
    session.flush()
    numbers = ["0000998", "999", "1000", "12a", "0001001", "٣٣٣٣٣", "²", "①"]  # the last two broke int()
    for n, number in enumerate(numbers):
        books.record_entry(session, ledger, expense(piece=f"D{n}", cheque=number), by=None)
    other_ledger = books.open_ledger(session, other, 2024)
    books.record_entry(session, other_ledger, expense(piece="D1", cheque="5000000"), by=None)  # not this coop's
    assert books.next_cheque_number(session, coop.id) == "0001002" == _highest_then_next(numbers, "")
    assert books.next_cheque_number(session, other.id) == "5000001"
    assert books.next_cheque_number(session, fresh.id) == ""


def test_suggested_piece_continues_the_last_series(session, ledger):
    assert books.suggested_piece(session, None) == "1"
    books.record_entry(session, ledger, expense(piece="D07"), by=None)
    assert books.suggested_piece(session, ledger) == "D08"


def test_edits_and_openings_are_stamped_with_the_given_moment(session, ledger):
    moment = datetime(2024, 10, 2, 9, 30)
    entry = books.record_entry(session, ledger, expense(), by=None)
    books.update_entry(session, entry, expense(amount=1500), expected_version=entry.version, by=None, now=moment)
    assert (entry.updated_at, entry.version) == (moment, 2)
    opening = books.record_opening(session, ledger, bank=100, cash=0, by=None, now=moment)
    assert opening.updated_at == moment


def test_an_edit_of_the_lines_only_still_bumps_the_version_without_a_moment(session, ledger):
    entry = books.record_entry(session, ledger, expense(), by=None)
    books.update_entry(session, entry, expense(code="6181"), expected_version=entry.version, by=None)
    assert entry.version == 2


def test_actions_are_unique_per_coop_and_archivable(session, ledger):
    first = books.create_action(session, ledger.coop_id, "  Classe   de mer ", by=None)
    assert first.name == "Classe de mer"
    assert books.create_action(session, ledger.coop_id, "classe de mer", by=None).id == first.id
    other = books.create_action(session, ledger.coop_id, "Photos", by=None)
    with pytest.raises(DomainError, match="porte déjà ce nom"):
        books.rename_action(session, other, "CLASSE DE MER", by=None)
    books.set_action_archived(session, first, True, by=None)
    assert first.is_archived


def test_ledger_cli_import(app, make_coop, tmp_path):
    make_coop(7)
    result = app.test_cli_runner().invoke(args=["ledger", "import", "085-007", "2024-2025", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "13 opération(s) importée(s)" in result.output and "Banque : 2\u202f942,40\u202f€" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("20/09/2024", "31/02/2024"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["ledger", "import", "085-007", "2024", str(bad)])
    assert result.exit_code == 1 and "ligne 3" in result.output
    result = app.test_cli_runner().invoke(args=["ledger", "import", "085-404", "2024", str(EXAMPLE)])
    assert result.exit_code != 0 and "085-404" in result.output
    with app.app_context():
        ledgers = db.session.scalar(sa.select(sa.func.count()).select_from(Ledger))
        db.session.remove()
    assert ledgers == 1


# -- refunds and contra lines --------------------------------------------------------------------


def refund(kind, piece, amount, code, day=date(2024, 11, 4), **kw):
    money = books.Treasury(bank_in=amount) if kind == "refund_received" else books.Treasury(bank_out=amount)
    return books.EntryData(
        piece=piece,
        date=day,
        label=kw.pop("label", "Remboursement"),
        payment_mode=kw.pop("mode", "virement"),
        kind=kind,
        treasury=money,
        splits=kw.pop("splits", [books.Split(code, amount)]),
        **kw,
    )


def test_refunds_reduce_the_account_they_correct(session, ledger):
    books.record_entry(session, ledger, expense("D01", 10000, "6068"), by=None)
    received = books.record_entry(session, ledger, refund("refund_received", "R01", 2500, "6068"), by=None)
    assert {line.account.code: line.amount_cents for line in received.lines} == {"512": 2500, "6068": -2500}
    paid = books.record_entry(session, ledger, refund("refund_paid", "D02", 1200, "756", cheque_number=""), by=None)
    assert {line.account.code: line.amount_cents for line in paid.lines} == {"756": 1200, "512": -1200}
    sums = line_sums(session, ledger)
    assert sums["6068"] == 7500 and sums["756"] == 1200 and sums["512"] == -10000 + 2500 - 1200

    data = cahier_format.build_cahier(session, ledger)
    rows = {r.piece: r for r in data.rows}
    assert rows["R01"].bank_in == 2500 and rows["R01"].amounts == {"6068": -2500}
    assert rows["D02"].bank_out == 1200 and rows["D02"].amounts == {"756": -1200}
    assert data.account_totals == {"6068": 7500, "756": -1200}  # accounts are shown net


def test_a_refund_names_the_account_it_needs(session, ledger):
    with pytest.raises(DomainError, match="compte de charge") as caught:
        books.record_entry(session, ledger, refund("refund_received", "R01", 100, "708"), by=None)
    assert caught.value.field == "box7"
    with pytest.raises(DomainError, match="compte de produit") as caught:
        books.record_entry(session, ledger, refund("refund_paid", "D01", 100, "6068"), by=None)
    with pytest.raises(DomainError, match="indiquez le montant reçu") as caught:
        books.record_entry(
            session, ledger, replace_treasury(refund("refund_received", "R01", 100, "6068"), bank_out=100), by=None
        )
    assert caught.value.field == "box6"


def replace_treasury(data, **money):
    from dataclasses import replace

    return replace(data, treasury=books.Treasury(**money))


def test_a_receipt_may_carry_a_contra_line_on_the_signed_total(session, ledger):
    data = books.EntryData(
        "R01",
        date(2024, 10, 1),
        "Photos de classe, net d'un remboursement",
        "remise",
        "receipt",
        books.Treasury(bank_in=10000),
        [books.Split("707", 12000), books.Split("708", -2000)],
    )
    entry = books.record_entry(session, ledger, data, by=None)
    assert {line.account.code: line.amount_cents for line in entry.lines} == {"512": 10000, "707": -12000, "708": 2000}
    data.piece, data.splits = "R02", [books.Split("707", 12000), books.Split("708", -1000)]
    with pytest.raises(DomainError, match="reste à ventiler -10,00") as caught:
        books.record_entry(session, ledger, data, by=None)
    assert caught.value.field == "box7"
    assert books.split_amounts(entry, "receipt") == [("707", 12000), ("708", -2000)]


def test_refunds_and_contra_lines_survive_the_csv_round_trip(session, ledger, coop):
    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    books.record_entry(session, ledger, refund("refund_received", "A01", 1550, "6068"), by=None)
    books.record_entry(session, ledger, refund("refund_paid", "A02", 4000, "756", mode="especes"), by=None)
    contra = books.EntryData(
        "A03",
        date(2024, 12, 2),
        "Vente nette",
        "remise",
        "receipt",
        books.Treasury(bank_in=5000),
        [books.Split("707", 6000), books.Split("708", -1000)],
    )
    books.record_entry(session, ledger, contra, by=None)
    exported = cahier_format.export_csv(session, ledger)
    text = exported.decode("utf-8-sig")
    header = text.splitlines()[0].split(";")
    by_piece = {line.split(";")[0]: line.split(";") for line in text.splitlines()[1:]}
    assert by_piece["A01"][header.index("6068")] == "-15,50"
    assert by_piece["A02"][header.index("756")] == "-40,00"
    assert by_piece["A03"][header.index("708")] == "-10,00"

    second = Coop(number=2, name="Autre coop")
    session.add(second)
    session.flush()
    copy = books.open_ledger(session, second, 2024)
    cahier_format.import_cahier(session, copy, exported, by=None)
    assert cahier_format.export_csv(session, copy) == exported
    kinds = dict(session.execute(sa.select(Entry.piece, Entry.kind).where(Entry.ledger_id == copy.id)).all())
    assert (kinds["A01"], kinds["A02"], kinds["A03"]) == ("refund_received", "refund_paid", "receipt")
    assert line_sums(session, copy) == line_sums(session, ledger)


# -- the cash box never goes negative -----------------------------------------------------------


def cash_expense(piece, amount, day):
    return books.EntryData(
        piece,
        day,
        "Achat en espèces",
        "especes",
        "expense",
        books.Treasury(cash_out=amount),
        [books.Split("6068", amount)],
    )


def test_cash_never_goes_negative_on_any_date(session, ledger):
    books.record_opening(session, ledger, bank=100000, cash=11470, by=None)
    with pytest.raises(DomainError) as caught:
        books.record_entry(session, ledger, cash_expense("D01", 50000, date(2024, 10, 3)), by=None)
    assert caught.value.field == "cash_amount"
    assert "négative le 03/10/2024 (-385,30\u202f€)" in caught.value.message
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry).where(Entry.kind == "expense")) == 0

    # a cash receipt later in the year does not make an earlier expense possible
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            "R01",
            date(2024, 11, 5),
            "Kermesse",
            "especes",
            "receipt",
            books.Treasury(cash_in=50000),
            [books.Split("708", 50000)],
        ),
        by=None,
    )
    with pytest.raises(DomainError, match="négative le 03/10/2024"):
        books.record_entry(session, ledger, cash_expense("D01", 50000, date(2024, 10, 3)), by=None)
    spent = books.record_entry(session, ledger, cash_expense("D01", 50000, date(2024, 11, 5)), by=None)

    # moving the receipt after the expense, or deleting it, is refused naming the date
    receipt = session.scalar(sa.select(Entry).where(Entry.piece == "R01"))
    moved = books.EntryData(
        "R01",
        date(2024, 11, 6),
        "Kermesse",
        "especes",
        "receipt",
        books.Treasury(cash_in=50000),
        [books.Split("708", 50000)],
    )
    with pytest.raises(DomainError, match="négative le 05/11/2024"):
        books.update_entry(session, receipt, moved, expected_version=None, by=None)
    with pytest.raises(DomainError, match="négative le 05/11/2024"):
        books.delete_entry(session, receipt, by=None)
    books.record_entry(session, ledger, cash_expense("D02", 10000, date(2024, 10, 1)), by=None)
    with pytest.raises(DomainError, match="négative le 01/10/2024 \\(-50,00") as caught:
        books.record_opening(session, ledger, bank=100000, cash=5000, by=None)
    assert caught.value.field == "cash"
    books.delete_entry(session, spent, by=None)  # less cash spent is always possible
    assert books.balances(session, ledger).cash == 11470 + 50000 - 10000


def test_an_import_that_empties_the_cash_box_is_refused_and_changes_nothing(session, ledger):
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    # the deposit of cash at the bank moves more than the cash box ever held
    index = next(i for i, line in enumerate(lines) if line.startswith("I01;"))
    lines[index] = lines[index].replace(";310,00;;;310,00;", ";3100,00;;;3100,00;")
    with pytest.raises(ValidationErrors) as caught:
        cahier_format.import_cahier(session, ledger, "\r\n".join(lines).encode(), by=None)
    assert "La caisse serait négative le" in caught.value.errors["caisse"][0]
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 0


def test_bank_warning_only_when_negative():
    assert books.bank_warning(0) is None
    assert "négatif (-14\u202f685,62\u202f€)" in books.bank_warning(-1468562)


# -- the cahier CSV import never fails with anything but its French error ------------------------

EXAMPLE_LINES = EXAMPLE.read_text(encoding="utf-8").splitlines()


@st.composite
def mutated_cahier(draw):
    """The worked example with random lines and cells replaced, removed, duplicated or garbled."""
    lines = list(EXAMPLE_LINES)
    for _ in range(draw(st.integers(0, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["cell", "cell", "delete", "duplicate", "garble", "text"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "garble":
            lines[i] = draw(st.text(max_size=80))
        elif action == "text":
            lines[i] = ";".join(draw(st.lists(st.text(max_size=12), max_size=25)))
        else:
            cells = lines[i].split(";")
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = draw(
                st.one_of(
                    st.text(max_size=30),
                    st.sampled_from(
                        ["-1", "1e400000", "Infinity", "NaN", "9" * 30, "31/02/2025", "'=1+1", '"', "report", "cheque"]
                    ),
                    st.integers(-(10**16), 10**16).map(str),
                )
            )
            lines[i] = ";".join(cells)
    separator = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    text = separator.join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]))
    return text.encode(encoding, errors="replace")


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(mutated_cahier(), st.binary(max_size=400)))
def test_cahier_import_raises_only_its_french_error(session, ledger, content):
    savepoint = session.begin_nested()
    try:
        cahier_format.import_cahier(session, ledger, content, by=None)
    except ValidationErrors as exc:
        assert exc.errors and all(isinstance(m, str) and m for ms in exc.errors.values() for m in ms)
    finally:
        savepoint.rollback()


# -- random sequences ----------------------------------------------------------------------------

AMOUNTS = st.integers(min_value=1, max_value=500_000)
DAYS = st.dates(min_value=date(2024, 8, 25), max_value=date(2025, 9, 5))  # a few days outside the year too
EXPENSE_CODES = st.sampled_from(["6068", "6181", "6288", "6281"])
INCOME_CODES = st.sampled_from(["756", "708", "707", "744"])


class LedgerMachine(RuleBasedStateMachine):
    """Valid operations keep every entry balanced and every balance equal to the sum of its lines;
    invalid ones are refused and change nothing; the cash box is never negative at the end of a day."""

    def __init__(self):
        super().__init__()
        self.session = db.session
        coop = Coop(number=500 + LedgerMachine.counter, name="Coop hypothèse")
        LedgerMachine.counter += 1
        self.session.add(coop)
        self.session.flush()
        self.ledger = books.open_ledger(self.session, coop, 2024)
        self.expected = {"bank": 0, "cash": 0, "advance": 0}
        self.cash_days: dict[date, int] = {}  # the model of the cash box: net movement per day
        self.pieces = 0

    counter = 0

    def _piece(self):
        self.pieces += 1
        return f"P{self.pieces}"

    def _cash_stays_positive(self, day, cash):
        days = dict(self.cash_days)
        days[day] = days.get(day, 0) + cash
        running = 0
        for when in sorted(days):
            running += days[when]
            if running < 0:
                return False
        return True

    def _apply(self, data, bank=0, cash=0, advance=0):
        savepoint = self.session.begin_nested()
        before = self.session.scalar(sa.select(sa.func.count()).select_from(Entry))
        valid = self.ledger.school_year.contains(data.date)
        cash_ok = self._cash_stays_positive(data.date, cash)
        try:
            books.record_entry(self.session, self.ledger, data, by=None)
        except DomainError as exc:
            savepoint.rollback()
            assert self.session.scalar(sa.select(sa.func.count()).select_from(Entry)) == before
            if valid and not cash_ok:
                assert "négative le" in exc.message and exc.field == "cash_amount"
            return False
        savepoint.commit()
        assert valid, "an entry outside the school year was accepted"
        assert cash_ok, "an entry that empties the cash box was accepted"
        self.expected["bank"] += bank
        self.expected["cash"] += cash
        self.expected["advance"] += advance
        if cash:
            self.cash_days[data.date] = self.cash_days.get(data.date, 0) + cash
        return True

    @rule(
        day=DAYS,
        bank=st.integers(0, 300_000),
        cash=st.integers(0, 50_000),
        codes=st.lists(INCOME_CODES, min_size=1, max_size=3),
    )
    def receipt(self, day, bank, cash, codes):
        total = bank + cash
        if total == 0:
            data = books.EntryData(
                self._piece(), day, "Recette", "remise", "receipt", books.Treasury(), [books.Split(codes[0], 100)]
            )
            assert not self._apply(data)
            return
        shares = [total // len(codes)] * len(codes)
        shares[0] += total - sum(shares)
        splits = [books.Split(code, share) for code, share in zip(codes, shares, strict=True) if share]
        self._apply(
            books.EntryData(
                self._piece(), day, "Recette", "remise", "receipt", books.Treasury(bank_in=bank, cash_in=cash), splits
            ),
            bank=bank,
            cash=cash,
        )

    @rule(day=DAYS, amount=AMOUNTS, code=EXPENSE_CODES, off_by=st.sampled_from([0, 0, 0, 1, -1]))
    def expense(self, day, amount, code, off_by):
        split = amount + off_by
        data = books.EntryData(
            self._piece(),
            day,
            "Dépense",
            "cheque",
            "expense",
            books.Treasury(bank_out=amount),
            [books.Split(code, split)] if split > 0 else [],
            cheque_number="1",
        )
        accepted = self._apply(data, bank=-amount)
        if off_by:
            assert not accepted

    @rule(
        day=DAYS,
        amount=AMOUNTS,
        code=EXPENSE_CODES,
        in_cash=st.booleans(),
        contra=st.sampled_from([0, 0, 50, 120]),
    )
    def refund_received(self, day, amount, code, in_cash, contra):
        """A supplier's credit note: money in, the charge account credited (sometimes net of a contra line)."""
        splits = [books.Split(code, amount + contra)] + ([books.Split("6181", -contra)] if contra else [])
        money = books.Treasury(cash_in=amount) if in_cash else books.Treasury(bank_in=amount)
        self._apply(
            books.EntryData(self._piece(), day, "Avoir", "virement", "refund_received", money, splits),
            bank=0 if in_cash else amount,
            cash=amount if in_cash else 0,
        )

    @rule(day=DAYS, amount=AMOUNTS, code=INCOME_CODES, in_cash=st.booleans())
    def refund_paid(self, day, amount, code, in_cash):
        """A refund paid back to a family: money out, the income account debited."""
        money = books.Treasury(cash_out=amount) if in_cash else books.Treasury(bank_out=amount)
        self._apply(
            books.EntryData(
                self._piece(),
                day,
                "Trop-perçu",
                "especes" if in_cash else "virement",
                "refund_paid",
                money,
                [books.Split(code, amount)],
            ),
            bank=0 if in_cash else -amount,
            cash=-amount if in_cash else 0,
        )

    @rule(day=DAYS, amount=AMOUNTS)
    def deposit(self, day, amount):
        self._apply(
            books.EntryData(
                self._piece(), day, "Dépôt", "interne", "deposit", books.Treasury(bank_in=amount, cash_out=amount)
            ),
            bank=amount,
            cash=-amount,
        )

    @rule(day=DAYS, amount=AMOUNTS)
    def advance(self, day, amount):
        self._apply(
            books.EntryData(
                self._piece(),
                day,
                "Régie",
                "cheque",
                "advance_paid",
                books.Treasury(bank_out=amount),
                cheque_number="2",
            ),
            bank=-amount,
            advance=amount,
        )

    @rule(day=DAYS, amount=AMOUNTS, code=INCOME_CODES)
    def wrong_nature(self, day, amount, code):
        data = books.EntryData(
            self._piece(),
            day,
            "Dépense mal ventilée",
            "cheque",
            "expense",
            books.Treasury(bank_out=amount),
            [books.Split(code, amount)],
            cheque_number="3",
        )
        assert not self._apply(data)

    @rule()
    def delete_last(self):
        entry = self.session.scalar(
            sa.select(Entry).where(Entry.ledger_id == self.ledger.id).order_by(Entry.id.desc()).limit(1)
        )
        if entry is None:
            return
        cash = sum(line.amount_cents for line in entry.lines if line.account.code == "530")
        cash_ok = self._cash_stays_positive(entry.date, -cash)
        keys = {"512": "bank", "530": "cash", "541": "advance"}
        moves = [(keys[line.account.code], line.amount_cents) for line in entry.lines if line.account.code in keys]
        day = entry.date
        savepoint = self.session.begin_nested()
        try:
            books.delete_entry(self.session, entry, by=None)
        except DomainError as exc:
            savepoint.rollback()
            assert not cash_ok and "négative le" in exc.message
            return
        savepoint.commit()
        assert cash_ok, "a deletion that empties the cash box was accepted"
        for key, cents in moves:
            self.expected[key] -= cents
        if cash:
            self.cash_days[day] -= cash

    @invariant()
    def every_entry_balances(self):
        unbalanced = self.session.execute(
            sa.select(Entry.id)
            .join(EntryLine)
            .where(Entry.ledger_id == self.ledger.id)
            .group_by(Entry.id)
            .having(sa.func.sum(EntryLine.amount_cents) != 0)
        ).all()
        assert unbalanced == []

    @invariant()
    def cash_is_never_negative_at_the_end_of_a_day(self):
        days = books.cash_by_day(self.session, self.ledger)
        running = 0
        for day in sorted(days):
            running += days[day]
            assert running >= 0, day

    @invariant()
    def balances_are_sums_of_lines(self):
        balances = books.balances(self.session, self.ledger)
        assert (balances.bank, balances.cash, balances.advance) == (
            self.expected["bank"],
            self.expected["cash"],
            self.expected["advance"],
        )
        data = cahier_format.build_cahier(self.session, self.ledger)
        assert (data.bank_balance, data.cash_balance, data.advance_balance) == (
            balances.bank,
            balances.cash,
            balances.advance,
        )


def test_random_operation_sequences(session):
    LedgerMachine.counter = 0
    LedgerMachine.TestCase.settings = settings(
        max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    test = LedgerMachine.TestCase("runTest")
    test.runTest()


def test_home_card_shows_balances_advance_and_lines_to_point(app, client, make_coop, login_as, db_check):
    from app.models import school_year_start

    info = make_coop(1)
    year = school_year_start(paris_today())
    with app.app_context():
        coop = db.session.get(Coop, info.id)
        book = books.open_ledger(db.session, coop, year)
        books.record_opening(db.session, book, bank=123456, cash=2000, by=None)
        books.record_entry(
            db.session,
            book,
            books.EntryData(
                piece="G1",
                date=date(year, 9, 15),
                label="Régie CP",
                payment_mode="cheque",
                cheque_number="12",
                kind="advance_paid",
                treasury=books.Treasury(bank_out=15000),
            ),
            by=None,
        )
        db.session.commit()
        db.session.remove()
    login_as(info)
    page = client.get("/").get_data(as_text=True)
    assert (
        "Banque : 1\u202f084,56\u202f€ · caisse : 20,00\u202f€ · régies d&#39;avance en cours : 150,00\u202f€" in page
    )
    assert "1 ligne(s) de banque à pointer" in page and "En cours" in page

    def point_everything(s):
        for line in s.scalars(sa.select(EntryLine).where(EntryLine.cleared_on.is_(None))):
            line.cleared_on = date(year, 9, 30)
        s.commit()

    db_check(point_everything)
    page = client.get("/").get_data(as_text=True)
    assert "Banque : 1\u202f084,56\u202f€" in page and "tout est pointé" in page and "à pointer" not in page


# -- first year: items outstanding at 31 August in the previous tool (issue 13 §6) -----------------


def test_items_outstanding_in_the_previous_tool_are_pointed_in_the_first_year_never_reentered(session, ledger):
    from app import crf, reconciliation

    cheque = books.CarriedItem(date(2024, 8, 20), "Librairie", -12000, "0004321")
    deposit = books.CarriedItem(date(2024, 8, 28), "Remise photos", 4550)
    books.record_opening(session, ledger, bank=100000, cash=2000, items=[cheque, deposit], by=None)
    # the book balance is the one typed: the items are already in it
    assert books.balances(session, ledger).bank == 100000
    assert crf.opening_balances(session, ledger) == (100000, 2000)
    # they are bank lines of the year to point, with their cheque number, never operations to type again
    lines = {line.piece: line for line in reconciliation.pointage_lines(session, ledger)}
    assert set(lines) == {"RAN-1", "RAN-2"}
    assert (lines["RAN-1"].amount, lines["RAN-1"].number, lines["RAN-1"].cleared_on) == (-12000, "0004321", None)
    # the statement at 1 September shows the cheque not yet debited and the deposit not yet credited
    rec = reconciliation.reconcile(session, ledger, date(2024, 9, 1), 100000 + 12000 - 4550)
    assert rec.is_reconciled and rec.uncleared_count == 2
    # cleared like any other line when the cheque passes
    reconciliation.clear_line(session, ledger.coop_id, lines["RAN-1"].line_id, date(2024, 9, 10), by=None)
    rec = reconciliation.reconcile(session, ledger, date(2024, 9, 30), 100000 - 4550)
    assert rec.is_reconciled and rec.uncleared_count == 1
    # the classic view: grey rows, not editable; the pointed one then cannot be dropped silently
    assert [r.kind for r in cahier_format.build_cahier(session, ledger).rows][:3] == ["opening", "carried", "carried"]
    with pytest.raises(DomainError, match="déjà pointé"):
        books.record_opening(session, ledger, bank=100000, cash=2000, items=[], by=None)
    item = session.get(Entry, lines["RAN-2"].entry_id)
    with pytest.raises(DomainError, match="Report à nouveau"):
        books.delete_entry(session, item, by=None)


def test_carried_items_are_checked_and_replaced_with_the_opening(session, ledger):
    with pytest.raises(DomainError, match="d'avant le 01/09/2024") as refused:
        books.record_opening(
            session, ledger, bank=1000, cash=0, items=[books.CarriedItem(date(2024, 9, 2), "Tard", -100)], by=None
        )
    assert refused.value.field == "items"
    books.record_opening(
        session, ledger, bank=1000, cash=0, items=[books.CarriedItem(date(2024, 8, 2), "Chèque", -100)], by=None
    )
    books.record_opening(session, ledger, bank=1500, cash=0, items=[], by=None)
    assert books.carried_items(session, ledger) == []
    assert books.balances(session, ledger).bank == 1500
    assert books.check_ledger(session, ledger) == []


def test_a_change_to_a_line_changes_its_entry_version(session, ledger):
    """The classic view keeps each row by (entry id, version): a pointage alone must move the version."""
    entry = books.record_entry(session, ledger, expense(), by=None)
    version = entry.version
    entry.lines[1].cleared_on = date(2024, 10, 5)
    session.flush()
    assert entry.version == version + 1


def test_a_first_year_with_outstanding_items_survives_the_csv_round_trip(session, coop):
    """Issue 13 §6: the items outstanding in the previous tool (RAN-n) come back as carried items,
    with their own date and label, and the opening balances are unchanged."""
    first = books.open_ledger(session, coop, 2025)
    items = [
        books.CarriedItem(date=date(2025, 8, 20), label="Chèque libraire", amount=-4500, cheque_number="1234"),
        books.CarriedItem(date=date(2025, 8, 29), label="Remise photos", amount=12_000),
    ]
    books.record_opening(session, first, bank=100_000, cash=2_000, by=None, items=items)
    session.flush()
    exported = cahier_format.export_csv(session, first)
    other = Coop(number=2, name="Coopérative voisine")
    session.add(other)
    second = books.open_ledger(session, other, 2025)
    cahier_format.import_cahier(session, second, exported, by=None)
    session.flush()
    assert cahier_format.export_csv(session, second) == exported
    carried = [(e.date, e.label, e.cheque_number) for e in books.carried_items(session, second)]
    assert [(d, label.split(" (du")[0], cheque) for d, label, cheque in carried] == [
        (date(2025, 9, 1), "Chèque libraire", "1234"),
        (date(2025, 9, 1), "Remise photos", ""),
    ]
    assert books.balances(session, second).bank == books.balances(session, first).bank == 100_000
