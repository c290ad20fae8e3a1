"""Federation exports (coops, memberships, consolidated CRF) as tables, written as CSV or XLSX.

CSV for French Excel users: `;`, UTF-8 with BOM, CRLF, decimal comma; text cells that could be read
as formulas get a leading quote (CWE-1236, `guard_cell`). XLSX keeps real numbers (euros) and dates;
its text cells are written as text (`xlsx_text`), never as formulas, and show no quote. Every export
of the portal (the cash-book's included) goes through these two functions.
The consolidated CRF reads a closed ledger's figures as stored at closing (`app.crf.closed_crfs`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app import crf as crfs
from app.mandates import current_mandate
from app.models import Account, Coop, Entry, EntryLine, Ledger, Membership, SchoolYear, coop_login
from app.models.reports import LedgerClosing


@dataclass(frozen=True)
class Money:
    """An amount in cents inside an export row (written 1234,56 in CSV, 1234.56 as a number in XLSX)."""

    cents: int


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A negative amount typed as text ("-12,50", "-3") is read as a number by a spreadsheet, never as a formula.
_PLAIN_NUMBER = re.compile(r"-\d+(?:[.,]\d+)?")


def guard_cell(value):
    """A CSV cell safe to open in a spreadsheet (CWE-1236): text starting with = + - @, a tab or a
    carriage return gets a leading quote; negative numbers, numbers, dates and None are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def xlsx_text(cell, value=None) -> None:
    """Make an openpyxl cell hold text (`value`, or its current value when None): shown as typed,
    never run as a formula and without a visible quote (type string, format « @ »)."""
    if value is not None:
        cell.value = value
    if isinstance(cell.value, str):
        cell.data_type = "s"
        cell.number_format = "@"


def to_csv(table: Table) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(table.header)
    for row in table.rows:
        cells = []
        for value in row:
            if isinstance(value, Money):
                sign = "-" if value.cents < 0 else ""
                whole, cents = divmod(abs(value.cents), 100)
                cells.append(f"{sign}{whole},{cents:02d}")
            elif isinstance(value, (date, datetime)):
                cells.append(value.strftime("%d/%m/%Y"))
            elif value is None:
                cells.append("")
            elif isinstance(value, str):
                cells.append(guard_cell(value))
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(table: Table, *more: Table) -> bytes:
    """An Excel workbook with one sheet per table (real numbers and dates, text cells as text)."""
    from openpyxl import Workbook

    workbook = Workbook()
    _fill_sheet(workbook.active, table)
    for other in more:
        _fill_sheet(workbook.create_sheet(), other)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _fill_sheet(sheet, table: Table) -> None:
    from openpyxl.styles import Font

    sheet.title = table.title[:31]
    sheet.append(table.header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        xlsx_text(cell)
    for row in table.rows:
        sheet.append([Decimal(v.cents) / 100 if isinstance(v, Money) else v for v in row])
        for cell, value in zip(sheet[sheet.max_row], row, strict=True):
            if isinstance(value, Money):
                cell.number_format = "#,##0.00"
            elif isinstance(value, date):
                cell.number_format = "DD/MM/YYYY"
            elif isinstance(value, str):
                xlsx_text(cell)
    sheet.freeze_panes = "A2"


def coops_table(session: Session, today: date) -> Table:
    """Every coop with its identity and current mandataire."""
    coops = session.scalars(sa.select(Coop).order_by(Coop.number)).all()
    rows = []
    for coop in coops:
        mandate = current_mandate(coop, today)
        rows.append(
            [
                coop.login,
                coop.name,
                coop.school_name,
                coop.uai,
                coop.address,
                coop.postal_code,
                coop.city,
                coop.email,
                coop.phone,
                coop.director_name,
                coop.bank_name,
                coop.iban,
                coop.bic,
                coop.debit_mandate_ref,
                coop.debit_mandate_signed_on,
                "oui" if coop.is_active else "non",
                mandate.full_name if mandate else "",
                mandate.email if mandate else "",
            ]
        )
    return Table(
        "Coopératives",
        [
            "identifiant",
            "nom",
            "ecole",
            "uai",
            "adresse",
            "code_postal",
            "commune",
            "email",
            "telephone",
            "direction",
            "banque",
            "iban",
            "bic",
            "rum",
            "mandat_signe_le",
            "active",
            "mandataire",
            "email_mandataire",
        ],
        rows,
    )


def memberships_table(session: Session, start_year: int) -> Table:
    """The year's memberships with their frozen headcounts and fees."""
    rows = []
    memberships = session.scalars(
        sa.select(Membership)
        .join(Membership.school_year)
        .join(Membership.coop)
        .where(SchoolYear.start_year == start_year)
        .order_by(Coop.number)
    ).all()
    for m in memberships:
        rows.append(
            [
                m.coop.login,
                m.coop.name,
                m.status,
                m.payment_method or "",
                m.pupils_count,
                m.teachers_count,
                m.insured_count,
                Money(m.property_value_cents or 0),
                Money(m.cotisation_cents) if m.cotisation_cents is not None else None,
                Money(m.total_cents - m.cotisation_cents) if m.total_cents is not None else None,
                Money(m.total_cents) if m.total_cents is not None else None,
                m.reference or "",
                m.committed_at,
                m.paid_at,
            ]
        )
    return Table(
        f"Adhésions {start_year}-{start_year + 1}",
        [
            "identifiant",
            "nom",
            "statut",
            "paiement",
            "eleves",
            "enseignants",
            "assures",
            "biens_declares",
            "cotisation",
            "assurance",
            "total",
            "reference",
            "engagee_le",
            "reglee_le",
        ],
        rows,
    )


def _not_frozen(start_year: int):
    """The year's ledgers whose CRF is computed from their lines: open ones, and closed ones without a stored record."""
    frozen = sa.select(LedgerClosing.ledger_id).where(LedgerClosing.superseded_at.is_(None))
    return (
        sa.select(Ledger.id)
        .join(Ledger.school_year)
        .where(SchoolYear.start_year == start_year, sa.or_(Ledger.status != "closed", Ledger.id.not_in(frozen)))
    )


# The column of the consolidated CRF by coop that each nature of account adds to (income and subsidy
# lines are credits: negative amounts, counted as positive produits).
_COOP_COLUMNS = {"expense": 0, "income": 1, "subsidy": 1, "bank": 2, "cash": 3, "advance": 4}


def _entry_ids(session: Session, live: sa.Select) -> tuple[int, int] | None:
    """The lowest and highest id of the live ledgers' entries (None without any): a year's operations are
    written during that year, so their ids, and their lines' `entry_id`, fill one narrow range of the
    tables. Bounding both sides of the join by it lets the database read that range by index instead of
    every year's operations; it never changes the result (the join still filters by ledger)."""
    query = sa.select(sa.func.min(Entry.id), sa.func.max(Entry.id)).where(Entry.ledger_id.in_(live))
    if session.get_bind().dialect.name == "postgresql":
        # Ledger by ledger (LATERAL): each ledger's lowest and highest id come from an index of its own
        # operations; with an index on entry (ledger_id, id) that is two index probes per ledger.
        ledgers = live.subquery()
        ends = (
            sa.select(sa.func.min(Entry.id).label("lowest"), sa.func.max(Entry.id).label("highest"))
            .where(Entry.ledger_id == ledgers.c.id)
            .lateral()
        )
        query = sa.select(sa.func.min(ends.c.lowest), sa.func.max(ends.c.highest)).select_from(
            ledgers.join(ends, sa.true())
        )
    lowest, highest = session.execute(query).one()
    return None if lowest is None else (lowest, highest)


def _sums_per_ledger_and_account(session: Session, live: sa.Select, entry_ids: tuple[int, int] | None) -> list:
    """(ledger id, account id, sum of the lines) for the live ledgers of the year: the only pass over their
    lines (a few sums per coop come back, never the lines themselves)."""
    if entry_ids is None:
        return []
    query = (
        sa.select(Entry.ledger_id, EntryLine.account_id, sa.func.sum(EntryLine.amount_cents))
        .join(EntryLine.entry)
        .where(Entry.ledger_id.in_(live), Entry.id.between(*entry_ids), EntryLine.entry_id.between(*entry_ids))
        .group_by(Entry.ledger_id, EntryLine.account_id)
    )
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(query).all()
    # For this statement only: one hash of the year's operations shared by the parallel workers (a nested
    # loop would have each worker build its own from a million index lookups), held in memory rather
    # than spilled to disk, and no JIT compilation (it costs more than it saves on one pass).
    planner = ("enable_nestloop", "work_mem", "jit")
    previous = session.execute(sa.select(*(sa.func.current_setting(name) for name in planner))).one()
    _set_local(session, dict(zip(planner, ("off", "64MB", "off"), strict=True)))
    try:
        return session.execute(query).all()
    finally:
        _set_local(session, dict(zip(planner, previous, strict=True)))


def _among(session: Session, column, values) -> sa.ColumnElement[bool]:
    """`column IN values`; on PostgreSQL one array parameter (`= ANY`), not a placeholder per value."""
    values = sorted(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.literal(values, ARRAY(sa.Integer)))
    return column.in_(values)


def _set_local(session: Session, settings: dict[str, str]) -> None:
    session.execute(sa.select(*(sa.func.set_config(name, value, True) for name, value in settings.items())))


def consolidated_crf(session: Session, start_year: int) -> tuple[Table, Table, Table]:
    """For every account the sum over all coops' CRF of the year; for every coop its result and balances;
    the inventory register (durable goods) of every coop.

    A closed ledger counts with the figures stored at its closing (`app.crf.closed_crfs`), never with
    its lines as they are now; an open ledger with its lines.
    """
    closed = crfs.closed_crfs(session, start_year)
    live = _not_frozen(start_year)
    accounts_by_id = {
        row.id: row for row in session.execute(sa.select(Account.id, Account.code, Account.label, Account.nature))
    }
    ledgers = {
        row.id: row
        for row in session.execute(
            sa.select(Ledger.id, Ledger.coop_id, Ledger.status, Coop.number, Coop.name)
            .join(Coop, Coop.id == Ledger.coop_id)
            .where(Ledger.id.in_(live))
        )
    }
    totals: dict[str, list] = {}  # code -> [label, nature, amount, coop logins]
    per_ledger: dict[int, list[int]] = {}  # ledger id -> [charges, produits, bank, cash, advance]
    entry_ids = _entry_ids(session, live)
    durable_goods_ids = {id_ for id_, account in accounts_by_id.items() if account.code == crfs.DURABLE_GOODS}
    with_durable_goods: set[int] = set()  # the live ledgers that have lines on account 68
    for ledger_id, account_id, total in _sums_per_ledger_and_account(session, live, entry_ids):
        account, ledger, total = accounts_by_id[account_id], ledgers[ledger_id], int(total)
        if account_id in durable_goods_ids:
            with_durable_goods.add(ledger_id)
        sums = per_ledger.setdefault(ledger_id, [0, 0, 0, 0, 0])
        if account.nature in _COOP_COLUMNS:
            sums[_COOP_COLUMNS[account.nature]] += -total if account.nature in ("income", "subsidy") else total
        if account.nature in ("expense", "income", "subsidy"):
            kind = "charge" if account.nature == "expense" else "produit"
            line = totals.setdefault(account.code, [account.label, kind, 0, set()])
            line[2] += total if account.nature == "expense" else -total
            line[3].add(("live", ledger.coop_id))
    for crf in closed:
        for kind, lines in (("charge", crf.charges), ("produit", crf.produits)):
            for account in lines:
                line = totals.setdefault(account.code, [account.label, kind, 0, set()])
                line[2] += account.amount
                line[3].add(("closed", crf.coop.login))
    accounts = Table(
        "Comptes",
        ["compte", "code_occe", "libelle", "nature", "montant", "cooperatives"],
        [
            [code, code.ljust(7, "0") + "8", label, kind, Money(amount), len(coops)]
            for code, (label, kind, amount, coops) in sorted(totals.items())
        ],
    )
    coop_rows = [
        [
            coop_login(ledgers[ledger_id].number),
            ledgers[ledger_id].name,
            "clôturé" if ledgers[ledger_id].status == "closed" else "ouvert",
            Money(charges),
            Money(produits),
            Money(produits - charges),
            Money(bank),
            Money(cash),
            Money(advance),
        ]
        for ledger_id, (charges, produits, bank, cash, advance) in per_ledger.items()
    ] + [
        [
            crf.coop.login,
            crf.coop.name,
            "clôturé",
            Money(crf.total_charges),
            Money(crf.total_produits),
            Money(crf.result),
            Money(crf.closing_bank),
            Money(crf.closing_cash),
            Money(crf.closing_advance),
        ]
        for crf in closed
    ]
    coops = Table(
        "Coopératives",
        ["identifiant", "nom", "cahier", "charges", "produits", "resultat", "banque", "caisse", "regies"],
        sorted(coop_rows, key=lambda row: row[0]),
    )
    inventory_rows = [
        [crf.coop.login, crf.coop.name, line.date, line.piece, line.label, Money(line.amount)]
        for crf in closed
        for line in crf.inventory
    ]
    # What `app.crf.inventory_register` lists, for every open ledger at once: read only for the ledgers the
    # pass above found lines of account 68 in (none, most years: no statement at all).
    durable_goods = (
        session.execute(
            sa.select(Coop.number, Coop.name, Entry.date, Entry.piece, Entry.label, EntryLine.amount_cents)
            .join(EntryLine.entry)
            .join(Coop, Coop.id == Entry.coop_id)
            .where(
                _among(session, Entry.ledger_id, with_durable_goods),
                _among(session, EntryLine.account_id, durable_goods_ids),
                Entry.id.between(*entry_ids),
                EntryLine.entry_id.between(*entry_ids),
            )
        ).all()
        if with_durable_goods and entry_ids is not None
        else []
    )
    inventory_rows += [
        [coop_login(number), name, day, piece, label, Money(int(amount))]
        for number, name, day, piece, label, amount in durable_goods
    ]
    inventory = Table(
        "Inventaire",
        ["identifiant", "nom", "date", "piece", "libelle", "montant"],
        sorted(inventory_rows, key=lambda row: (row[0], row[2], row[3])),
    )
    return accounts, coops, inventory
