"""The cahier as a table (RETKOOP's « visualisation classique ») and its CSV / XLSX formats.

The CSV format is the one of the worked example (`;`, UTF-8 with BOM, CRLF, decimal comma,
dd/mm/yyyy): piece;date;libelle;mode;cheque;action;pointe;banque_entree;banque_sortie;
caisse_entree;caisse_sortie;regie_entree;regie_sortie, then one column per account code holding
the amount on that account, positive in the account's natural direction (charges as debits,
products as credits): a refund, which reduces the account it corrects, is negative there (a
supplier's credit note is -30,00 in its 6… column). Export then import gives the same ledger.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from app import audit
from app import ledger as books
from app.errors import DomainError, ValidationErrors
from app.exports import FORMULA_START as _FORMULA_START
from app.exports import guard_cell, xlsx_text
from app.models import Account, Action, Document, Entry, EntryLine, Ledger, User
from app.models.account import occe_code
from app.models.base import utcnow
from app.money import parse_amount

FIXED_COLUMNS = (
    "piece",
    "date",
    "libelle",
    "mode",
    "cheque",
    "action",
    "pointe",
    "banque_entree",
    "banque_sortie",
    "caisse_entree",
    "caisse_sortie",
    "regie_entree",
    "regie_sortie",
)
SPLIT_NATURES = ("expense", "income", "subsidy")
OPENING_KINDS = books.OPENING_KINDS


@dataclass(slots=True)
class Row:
    """One line of the classic view; amounts in cents, balances after this operation (in date order)."""

    entry_id: int
    version: int
    piece: str
    date: date
    label: str
    mode: str
    cheque: str
    action: str
    action_id: int | None
    kind: str
    bank_in: int = 0
    bank_out: int = 0
    cash_in: int = 0
    cash_out: int = 0
    advance_in: int = 0
    advance_out: int = 0
    bank_balance: int = 0
    cash_balance: int = 0
    cleared_on: date | None = None
    amounts: dict[str, int] = field(default_factory=dict)
    key: tuple = ()  # the entry's cache key (id, version, created_at): its rendered cells are kept by it
    vouchers: int = 0  # files attached to the operation (the paperclip of the classic view)


@dataclass(frozen=True)
class AccountColumn:
    """An account used in the ledger, as shown in a column header (plain data, safe to cache)."""

    code: str
    display_code: str
    label: str
    nature: str


# One operation of the year with the running balances after it (in date order): (key, figures, bank, cash).
# A plain tuple, read by position: 10,000 of them are made on every view after a change, and a named
# tuple costs several times more to build.
Walked = tuple


@dataclass
class Cahier:
    """The classic view of a year: the operations shown (`walked`), with totals and balances.

    `walked` is given, or made on first use by `walk_later` (the whole year's view after a save
    renders its changed days only, from `app.cahier_days`, and never needs it). `rows` (one `Row` per operation
    shown, with account codes and action names) is built on first use only."""

    accounts: list[AccountColumn]
    totals: dict[str, int]
    account_totals: dict[str, int]
    bank_balance: int
    cash_balance: int
    advance_balance: int
    uncleared_count: int
    count: int  # operations shown
    carried: tuple[int, int] | None = None  # month view: (bank, cash) balances at the end of the month before
    months: list[date] = field(default_factory=list)  # months that have operations, for the month view
    action_names: dict[int, str] = field(default_factory=dict)
    has_opening: bool = False  # the year has its report à nouveau
    chart: dict[int, AccountColumn] = field(default_factory=dict)  # every split account by id, in code order
    walk_later: Callable[[], list[Walked]] | None = field(default=None, repr=False)
    _walked: list[Walked] | None = field(default=None, repr=False)
    _rows: list[Row] | None = field(default=None, repr=False)

    @property
    def walked(self) -> list[Walked]:
        if self._walked is None:
            self._walked = self.walk_later() if self.walk_later is not None else []
        return self._walked

    @property
    def rows(self) -> list[Row]:
        if self._rows is None:
            self._rows = [self.row(w) for w in self.walked]
        return self._rows

    def action_name(self, figures: EntryFigures) -> str:
        return self.action_names.get(figures.action_id, "") if figures.action_id else ""

    def row(self, w: Walked) -> Row:
        key, f, bank, cash = w
        chart = self.chart
        return Row(
            f.entry_id,
            f.version,
            f.piece,
            f.date,
            f.label,
            f.mode,
            f.cheque,
            self.action_name(f),
            f.action_id,
            f.kind,
            f.bank_in,
            f.bank_out,
            f.cash_in,
            f.cash_out,
            f.advance_in,
            f.advance_out,
            bank,
            cash,
            f.cleared_on,
            {chart[account_id].code: value for account_id, value in f.amounts},
            key,
            f.vouchers,
        )


def piece_key(piece: str) -> tuple:
    """Natural order of piece numbers: D2 before D10, then by prefix."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.upper()) for part in re.findall(r"\d+|\D+", piece))


class EntryFigures(NamedTuple):
    """What one operation shows in the classic view by itself (no running balance): its own sums.

    Depends only on the entry and its lines, so it can be kept per (entry id, version, created_at):
    every change to an entry or to one of its lines (pointage included) bumps the entry's version
    (`app.models.ledger._bump_entry_version`), and created_at tells apart an id SQLite reused.
    A named tuple: 10,000 of them are built on a first view, and a frozen dataclass costs ~15 µs each.
    """

    entry_id: int
    version: int
    piece: str
    date: date
    label: str
    mode: str
    cheque: str
    kind: str
    action_id: int | None
    bank_in: int
    bank_out: int
    cash_in: int
    cash_out: int
    advance_in: int
    advance_out: int
    cleared_on: date | None
    amounts: tuple[tuple[int, int], ...]  # (split account id, amount in the account's natural direction)
    vouchers: int  # files attached (a voucher added or removed bumps the entry's version too)


EntryKey = tuple  # (entry id, version, created_at as the database returns it)

# Above this many operations, reading the whole year's lines beats a list of ids.
_BY_IDS_LIMIT = 500


def entry_columns() -> tuple:
    """What `current_figures` reads of each operation: its key (id, version, created_at as the database
    returns it), then piece, date, label, mode, cheque, kind and action."""
    return (
        Entry.id,
        Entry.version,
        sa.type_coerce(Entry.created_at, sa.String),
        Entry.piece,
        Entry.date,
        Entry.label,
        Entry.payment_mode,
        Entry.cheque_number,
        Entry.kind,
        Entry.action_id,
    )


def current_figures(session: Session, ledger: Ledger) -> list[tuple[EntryKey, EntryFigures]]:
    """The ledger's operations in date order (then id), each with its key (id, version, created_at) and
    figures: the year's entries, then their lines and vouchers, in flat indexed queries summed here in
    one pass (grouping in SQL cost SQLite several times more, bench/cahier.py). After a save, the
    classic view reads only what changed (`app.cahier_days`)."""
    rows = (
        session.connection()
        .execute(sa.select(*entry_columns()).where(Entry.ledger_id == ledger.id).order_by(Entry.date, Entry.id))
        .all()
    )
    made = figures_of(session, ledger, rows, whole=len(rows) > _BY_IDS_LIMIT)
    return [((row[0], row[1], row[2]), made[row[0]]) for row in rows]


def figures_of(session: Session, ledger: Ledger, rows: list, *, whole: bool = False) -> dict[int, EntryFigures]:
    """The figures of the operations read with `entry_columns()`, by entry id: their lines and vouchers are
    read by ids (or for the whole ledger when `whole`, cheaper for many operations)."""
    if not rows:
        return {}
    by_ids = None if whole else [row[0] for row in rows]
    return _figures(rows, _line_sums(session, ledger, by_ids), _voucher_counts(session, ledger, by_ids))


def _figures(rows: Iterable, sums: dict[int, tuple], vouchers: dict[int, int]) -> dict[int, EntryFigures]:
    """Each operation's figures from its `entry_columns()` row, its lines' sums and its voucher count."""
    made = {}
    for row in rows:
        entry_id, version, _created, piece, day, label, mode, cheque, kind, action_id = row
        s = sums.get(entry_id) or _NO_LINES
        made[entry_id] = EntryFigures(
            entry_id,
            version,
            piece,
            day,
            label,
            mode,
            cheque,
            kind,
            action_id,
            *s[:7],
            s[7],
            vouchers.get(entry_id, 0),
        )
    return made


# The operations changed since a revision (their `entry_columns()`), each line (account, amount, pointage)
# with its account's nature, the operation's voucher count and the ledger's number of operations: one
# statement (one round trip), built once.
_ENTRY_WIDTH = len(entry_columns())
_counted = aliased(Entry)
_CHANGED = (
    sa.select(
        *entry_columns(),
        EntryLine.account_id,
        EntryLine.amount_cents,
        EntryLine.cleared_on,
        Account.nature,
        sa.select(sa.func.count()).where(Document.entry_id == Entry.id).scalar_subquery(),
        sa.select(sa.func.count())
        .select_from(_counted)
        .where(_counted.ledger_id == sa.bindparam("ledger"))
        .scalar_subquery(),
    )
    .select_from(Entry)
    .outerjoin(EntryLine, EntryLine.entry_id == Entry.id)
    .outerjoin(Account, Account.id == EntryLine.account_id)
    .where(Entry.ledger_id == sa.bindparam("ledger"), Entry.ledger_revision > sa.bindparam("since"))
)
_COUNT = sa.select(sa.func.count()).select_from(Entry).where(Entry.ledger_id == sa.bindparam("ledger"))


def changed_figures(session: Session, ledger: Ledger, since: int) -> tuple[int, list]:
    """The ledger's number of operations now, and each operation stamped with a revision above `since`
    (`Entry.ledger_revision`) as its `entry_columns()` row with its figures: one round trip after a
    save (two when none was stamped: a deletion)."""
    connection = session.connection()
    rows = connection.execute(_CHANGED, {"ledger": ledger.id, "since": since}).all()
    if not rows:
        return connection.execute(_COUNT, {"ledger": ledger.id}).scalar_one(), []
    line, nature, vouchers, count = _ENTRY_WIDTH, _ENTRY_WIDTH + 3, _ENTRY_WIDTH + 4, _ENTRY_WIDTH + 5
    entries = {row[0]: row[:_ENTRY_WIDTH] for row in rows}
    natures = {row[line]: row[nature] for row in rows if row[line] is not None}
    lines = [row[:1] + row[line : line + 3] for row in rows if row[line] is not None]
    made = _figures(entries.values(), _sum_lines(lines, natures), {row[0]: row[vouchers] for row in rows})
    return rows[0][count], [(row, made[row[0]]) for row in entries.values()]


_NO_LINES = (0, 0, 0, 0, 0, 0, None, ())


def _voucher_counts(session: Session, ledger: Ledger, entry_ids: list[int] | None) -> dict[int, int]:
    """Per entry id (of `entry_ids`, or of the whole ledger): how many files are attached."""
    counts = sa.select(Document.entry_id, sa.func.count()).group_by(Document.entry_id)
    if entry_ids is None:
        counts = counts.join(Entry, Entry.id == Document.entry_id).where(Entry.ledger_id == ledger.id)
    else:
        counts = counts.where(Document.entry_id.in_(entry_ids))
    return dict(session.connection().execute(counts).all())


def _line_sums(session: Session, ledger: Ledger, entry_ids: list[int] | None) -> dict[int, tuple]:
    """Per entry id: bank in/out, cash in/out, advance in/out, last pointage of a bank line and the split
    amounts ((account id, amount in the account's natural direction), by account id)."""
    columns = (EntryLine.entry_id, EntryLine.account_id, EntryLine.amount_cents, EntryLine.cleared_on)
    connection = session.connection()
    if entry_ids is None:  # the whole year: the chart's natures read once rather than joined to every line
        natures = dict(connection.execute(sa.select(Account.id, Account.nature)).all())
        rows = connection.execute(
            sa.select(*columns).join(Entry, Entry.id == EntryLine.entry_id).where(Entry.ledger_id == ledger.id)
        ).all()
    else:  # a few operations (after a save): their lines come with their accounts' natures, in one query
        read = sa.select(*columns, Account.nature).join(Account, Account.id == EntryLine.account_id)
        with_natures = connection.execute(read.where(EntryLine.entry_id.in_(entry_ids))).all()
        natures = {row[1]: row[4] for row in with_natures}
        rows = [row[:4] for row in with_natures]
    return _sum_lines(rows, natures)


def _sum_lines(rows: Iterable[tuple], natures: dict[int, str]) -> dict[int, list]:
    """`_line_sums` from the lines (entry id, account id, amount, pointage) and the accounts' natures."""
    flows = {"bank": 0, "cash": 2, "advance": 4}
    acc: dict[int, list] = {}
    for entry_id, account_id, cents, cleared_on in rows:
        s = acc.get(entry_id)
        if s is None:
            s = acc[entry_id] = [0, 0, 0, 0, 0, 0, None, None]
        nature = natures[account_id]
        slot = flows.get(nature)
        if slot is not None:
            if cents > 0:
                s[slot] += cents
            elif cents < 0:
                s[slot + 1] -= cents
            # the pointage is the bank line's (a date left on another line is not shown)
            if slot == 0 and cleared_on is not None and (s[6] is None or cleared_on > s[6]):
                s[6] = cleared_on
        elif nature in SPLIT_NATURES:
            amounts = s[7]
            if amounts is None:
                amounts = s[7] = {}
            amounts[account_id] = amounts.get(account_id, 0) + cents
    for s in acc.values():
        amounts = s[7]
        # charges as debits, products as credits: each positive in its natural direction
        s[7] = (
            tuple(
                (account_id, total if natures[account_id] == "expense" else -total)
                for account_id, total in sorted(amounts.items())
            )
            if amounts
            else ()
        )
    return acc


def build_cahier(
    session: Session,
    ledger: Ledger,
    *,
    sort: str = "date",
    text: str = "",
    account: str = "",
    action_id: int | None = None,
    mode: str = "",
    month: date | None = None,
    figures: list[tuple[EntryKey, EntryFigures]] | None = None,
    chart: Chart | None = None,
) -> Cahier:
    """All the ledger's operations with running balances (computed in date order), then filtered and sorted.

    `figures` (from `current_figures`) saves reading the lines again; `month` (its first day) keeps
    that month's operations, with the balances carried from the months before it (`carried`)."""
    # One cheap walk in date order (sums only); what a row shows is built later, for the rows that
    # need it. This page must stay fast for a 10,000-operation year (see bench/cahier.py).
    if figures is None:
        figures = current_figures(session, ledger)
    action_names, split_accounts = reference_names(session, ledger, chart)
    walked, year_totals, used, uncleared = walk(figures)
    shown, carried = _filtered(
        walked, split_accounts, month=month, text=text, account=account, action_id=action_id, mode=mode
    )
    if sort == "piece":
        shown = sorted(shown, key=lambda w: piece_key(w[1].piece))
    totals, by_account = (year_totals, used) if shown is walked else _totals(shown)
    return assemble(
        (action_names, split_accounts),
        year_totals,
        totals,
        by_account,
        uncleared,
        len(shown),
        carried=carried,
        months=_months(walked),
        has_opening=any(f.kind == "opening" for _key, f in figures),  # dated 1 September: found first
        walked=shown,
    )


class Chart(NamedTuple):
    """The chart of accounts as the classic view uses it: the split accounts' columns (charges, products,
    subsidies, by id in code order) and a signature of every account's code and nature, which a kept
    year's figures depend on (staff may edit the chart: `app.cahier_days` reads the year again then)."""

    columns: dict[int, AccountColumn]
    signature: tuple


_CHART = sa.select(Account.id, Account.code, Account.label, Account.nature).order_by(Account.code)
_ACTION_NAMES = sa.select(Action.id, Action.name).where(Action.coop_id == sa.bindparam("coop"))
_last_chart: tuple = (None, None)  # the rows last read and the Chart made of them (one tuple: threads swap it whole)


def read_chart(session: Session) -> Chart:
    """The chart of accounts in one query (some two hundred accounts). The chart made from the same rows
    last time is given again rather than made anew (the rows are read every time: never stale)."""
    global _last_chart
    rows = tuple(session.connection().execute(_CHART).all())
    rows_before, chart = _last_chart
    if rows == rows_before:
        return chart
    columns = {
        account_id: AccountColumn(code, occe_code(code), label, nature)
        for account_id, code, label, nature in rows
        if nature in SPLIT_NATURES
    }
    chart = Chart(columns, tuple((account_id, code, nature) for account_id, code, _label, nature in rows))
    _last_chart = (rows, chart)
    return chart


def reference_names(
    session: Session, ledger: Ledger, chart: Chart | None = None
) -> tuple[dict[int, str], dict[int, AccountColumn]]:
    """The coop's action names by id, and the split accounts (charges, products, subsidies) by id."""
    action_names = dict(session.connection().execute(_ACTION_NAMES, {"coop": ledger.coop_id}).all())
    return action_names, (chart or read_chart(session)).columns


def assemble(
    names: tuple[dict[int, str], dict[int, AccountColumn]],
    year_totals: dict[str, int],
    totals: dict[str, int],
    by_account: dict[int, int],
    uncleared: int,
    count: int,
    *,
    carried: tuple[int, int] | None = None,
    months: list[date],
    has_opening: bool,
    walked: list[Walked] | None = None,
    walk_later: Callable[[], list[Walked]] | None = None,
) -> Cahier:
    """The classic view from its sums: the year's in/out totals give the balances; `totals` and `by_account`
    are those of the operations shown (the account columns are the accounts they use)."""
    action_names, split_accounts = names
    accounts = sorted((split_accounts[i] for i in by_account), key=lambda a: (a.nature != "expense", a.display_code))
    account_totals = {a.code: 0 for a in accounts}
    for account_id, total in by_account.items():
        account_totals[split_accounts[account_id].code] = total
    return Cahier(
        accounts,
        totals,
        account_totals,
        year_totals["bank_in"] - year_totals["bank_out"],
        year_totals["cash_in"] - year_totals["cash_out"],
        year_totals["advance_in"] - year_totals["advance_out"],
        uncleared,
        count,
        carried=carried,
        months=months,
        action_names=action_names,
        has_opening=has_opening,
        chart=split_accounts,
        walk_later=walk_later,
        _walked=walked,
    )


def walk(figures: list[tuple[EntryKey, EntryFigures]]) -> tuple[list[Walked], dict[str, int], dict[int, int], int]:
    """The operations in date order, each with the balances after it; the year's in/out totals, its totals
    per split account id and its bank lines not yet pointed (`sums_of`)."""
    walked: list[Walked] = []
    append = walked.append
    bank = cash = 0
    for key, f in figures:
        bank += f.bank_in - f.bank_out
        cash += f.cash_in - f.cash_out
        append((key, f, bank, cash))
    sums, by_account, uncleared = sums_of(f for _key, f in figures)
    return walked, in_out(*sums), {account_id: total for account_id, (total, _uses) in by_account.items()}, uncleared


def sums_of(figures: Iterable[EntryFigures]) -> tuple[tuple[int, ...], dict[int, list[int]], int]:
    """What some operations add up to: the bank, cash and advance in/out sums (in that order), per split
    account id its total and the number of operations using it, and the bank movements not yet pointed
    (the report à nouveau aside)."""
    bank_in = bank_out = cash_in = cash_out = advance_in = advance_out = uncleared = 0
    by_account: dict[int, list[int]] = {}
    for f in figures:
        bank_in += f.bank_in
        bank_out += f.bank_out
        cash_in += f.cash_in
        cash_out += f.cash_out
        advance_in += f.advance_in
        advance_out += f.advance_out
        for account_id, value in f.amounts:
            total = by_account.get(account_id)
            if total is None:
                by_account[account_id] = [value, 1]
            else:
                total[0] += value
                total[1] += 1
        if f.cleared_on is None and (f.bank_in or f.bank_out) and f.kind != "opening":
            uncleared += 1
    return (bank_in, bank_out, cash_in, cash_out, advance_in, advance_out), by_account, uncleared


def _filtered(
    walked: list[Walked], split_accounts: dict, *, month, text: str, account: str, action_id, mode: str
) -> tuple[list[Walked], tuple[int, int] | None]:
    """The operations a month and the filters keep, and the balances carried into the month."""
    shown, carried = walked, None
    if month is not None:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        before = [w for w in walked if w[1].date < month]
        carried = (before[-1][2], before[-1][3]) if before else (0, 0)
        shown = [w for w in walked if month <= w[1].date < following]
    if text:
        needle = text.lower()
        shown = [
            w for w in shown if needle in w[1].label.lower() or needle in w[1].piece.lower() or needle in w[1].cheque
        ]
    if account:
        ids = {account_id for account_id, a in split_accounts.items() if a.code == account}
        shown = [w for w in shown if any(account_id in ids for account_id, _value in w[1].amounts)]
    if action_id:
        shown = [w for w in shown if w[1].action_id == action_id]
    if mode:
        shown = [w for w in shown if w[1].mode == mode]
    return shown, carried


def _totals(shown: list[Walked]) -> tuple[dict[str, int], dict[int, int]]:
    """The in/out totals of the operations shown, and their totals per split account id."""
    sums, by_account, _uncleared = sums_of(w[1] for w in shown)
    return in_out(*sums), {account_id: total for account_id, (total, _uses) in by_account.items()}


def in_out(*sums: int) -> dict[str, int]:
    """The in/out totals by column name (bank, cash, advance), in that order."""
    return dict(zip(("bank_in", "bank_out", "cash_in", "cash_out", "advance_in", "advance_out"), sums, strict=True))


def _months(walked: list[Walked]) -> list[date]:
    """The first day of every month that has an operation, in order (the month-by-month view's choices)."""
    return sorted({day.replace(day=1) for day in {w[1].date for w in walked}})


# -- export --------------------------------------------------------------------------------------


def _cents_text(cents: int) -> str:
    if not cents:
        return ""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole},{rest:02d}"


def _text_cell(value: str) -> str:
    """Formula-injection guard (CWE-1236) of every export (`app.exports.guard_cell`); the import removes
    the added quote again."""
    return guard_cell(value)


def _export_order(figures: list[tuple[EntryKey, EntryFigures]]) -> list[EntryFigures]:
    """The opening first, then the operations in date order (as the import expects them)."""
    opening = [f for _key, f in figures if f.kind == "opening"]
    return [*opening, *(f for _key, f in figures if f.kind != "opening")] if opening else [f for _k, f in figures]


def _export_columns(session: Session, ledger: Ledger, order: list[EntryFigures]) -> tuple[list[int], dict, list[str]]:
    """The split accounts used (ids in column order), the action names and the header."""
    used = {account_id for f in order for account_id, _value in f.amounts}
    columns = sorted(
        session.scalars(sa.select(Account).where(Account.id.in_(used))),
        key=lambda a: (a.nature != "expense", a.display_code),
    )
    action_names = dict(
        session.execute(sa.select(Action.id, Action.name).where(Action.coop_id == ledger.coop_id)).all()
    )
    return [a.id for a in columns], action_names, [*FIXED_COLUMNS, *(a.code for a in columns)]


def export_table(
    session: Session, ledger: Ledger, figures: list[tuple[EntryKey, EntryFigures]] | None = None
) -> tuple[list[str], list[list]]:
    """Header and rows of the cahier in the exchange format (amounts in cents, dates as dates)."""
    order = _export_order(figures if figures is not None else current_figures(session, ledger))
    ids, action_names, header = _export_columns(session, ledger, order)
    rows = []
    for f in order:
        amounts = dict(f.amounts)
        rows.append(
            [
                f.piece,
                f.date,
                f.label,
                f.mode,
                f.cheque,
                action_names.get(f.action_id, ""),
                f.cleared_on,
                f.bank_in,
                f.bank_out,
                f.cash_in,
                f.cash_out,
                f.advance_in,
                f.advance_out,
                *[amounts.get(account_id, 0) for account_id in ids],
            ]
        )
    return header, rows


_CSV_CHUNK = 1000  # rows per streamed piece of the CSV export


def export_csv_chunks(
    session: Session, ledger: Ledger, figures: list[tuple[EntryKey, EntryFigures]] | None = None
) -> Iterator[bytes]:
    """The cahier as CSV (`;`, UTF-8 with BOM, CRLF, decimal comma, dd/mm/yyyy), in pieces to stream.

    Everything is read from the database here; the returned generator only formats, so it can run
    after the request's session is gone. `figures` (from `current_figures`) saves reading the lines."""
    order = _export_order(figures if figures is not None else current_figures(session, ledger))
    ids, action_names, header = _export_columns(session, ledger, order)
    return _csv_pieces(order, ids, action_names, header)


def _csv_pieces(order: list[EntryFigures], ids: list[int], action_names: dict, header: list[str]) -> Iterator[bytes]:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(header)
    days: dict[date, str] = {}  # a year has 365 dates and thousands of rows: each formatted once
    actions = {action_id: _text_cell(name) for action_id, name in action_names.items()}
    cents = _cents_text
    for start in range(0, len(order), _CSV_CHUNK):
        rows = []
        for f in order[start : start + _CSV_CHUNK]:
            day = days.get(f.date)
            if day is None:
                day = days[f.date] = f.date.strftime("%d/%m/%Y")
            cleared = f.cleared_on
            if cleared is not None:
                cleared_text = days.get(cleared)
                if cleared_text is None:
                    cleared_text = days[cleared] = cleared.strftime("%d/%m/%Y")
            else:
                cleared_text = ""
            amounts = dict(f.amounts) if f.amounts else None
            rows.append(
                [
                    _text_cell(f.piece),
                    day,
                    _text_cell(f.label),
                    f.mode,
                    _text_cell(f.cheque),
                    actions.get(f.action_id, ""),
                    cleared_text,
                    cents(f.bank_in),
                    cents(f.bank_out),
                    cents(f.cash_in),
                    cents(f.cash_out),
                    cents(f.advance_in),
                    cents(f.advance_out),
                    *[cents(amounts.get(account_id, 0)) if amounts else "" for account_id in ids],
                ]
            )
        writer.writerows(rows)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # an empty year: the header alone
        yield buffer.getvalue().encode("utf-8")


def export_csv(session: Session, ledger: Ledger, figures: list[tuple[EntryKey, EntryFigures]] | None = None) -> bytes:
    """The cahier as CSV in one piece (see `export_csv_chunks`)."""
    return b"".join(export_csv_chunks(session, ledger, figures))


def export_xlsx(session: Session, ledger: Ledger, title: str) -> bytes:
    """The cahier as an Excel workbook: real dates and numbers (euros), a totals row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    header, rows = export_table(session, ledger)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Cahier"
    sheet.append([title])
    sheet["A1"].font = Font(bold=True)
    sheet.append(header)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        values = [row[0], row[1], row[2], row[3], row[4], row[5], row[6]]
        values += [Decimal(value) / 100 if value else None for value in row[7:]]
        sheet.append(values)
        for cell in sheet[sheet.max_row][:6]:  # text cells: never a formula, no visible quote
            if cell.column != 2:
                xlsx_text(cell)
    for column in sheet.iter_cols(min_row=3, min_col=2, max_col=2):
        for cell in column:
            cell.number_format = "DD/MM/YYYY"
    for column in sheet.iter_cols(min_row=3, min_col=7, max_col=7):
        for cell in column:
            cell.number_format = "DD/MM/YYYY"
    for column in sheet.iter_cols(min_row=3, min_col=8, max_col=len(header)):
        for cell in column:
            cell.number_format = "#,##0.00"
    totals = ["Totaux", None, None, None, None, None, None]
    totals += [Decimal(sum(row[i] for row in rows)) / 100 for i in range(7, len(header))]
    sheet.append(totals)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "D3"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# -- import --------------------------------------------------------------------------------------


MAX_IMPORT_LINES = 20_000  # a coop's year is a few hundred operations; the bench imports 10,000
MAX_LISTED_ERRORS = 50  # lines listed on the page; the rest are counted
# Bounds of the text columns (the database's own lengths, so that PostgreSQL never refuses a row).
TEXT_BOUNDS = {"piece": 20, "libelle": 200, "cheque": 20, "action": 100}


@dataclass
class ParsedRow:
    line: int
    data: books.EntryData | None  # None for the opening line
    opening: tuple[int, int] | None
    cleared_on: date | None
    action_name: str
    lines: list[tuple[str, int]] = field(default_factory=list)  # (account code, signed cents), checked
    carried: list[books.CarriedItem] = field(default_factory=list)  # the opening's outstanding items


# How the export writes an item outstanding in the previous tool (see `app.ledger.record_opening`).
_CARRIED_LABEL = re.compile(r"^(?P<label>.*) \(du (?P<day>\d\d/\d\d/\d{4}), en attente au 31/08\)$")


def _carried_item(piece: str, label: str, values: dict[str, int], cheque: str, year) -> books.CarriedItem | None:
    """A `RAN-n` row of an exported first year: the item it stands for, or None if it is not one."""
    if not piece.startswith("RAN-") or values["caisse_entree"] or values["caisse_sortie"]:
        return None
    amount = values["banque_entree"] - values["banque_sortie"]
    match = _CARRIED_LABEL.match(label)
    day = year.starts_on - timedelta(days=1)
    if match:
        try:
            day = datetime.strptime(match["day"], "%d/%m/%Y").date()
        except ValueError:
            return None
        label = match["label"]
    return books.CarriedItem(date=day, label=label, amount=amount, cheque_number=cheque) if amount else None


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationErrors({"fichier": ["Le fichier n'est ni en UTF-8 ni en Windows-1252."]})


def _untext(value: str) -> str:
    value = value.strip()
    if value.startswith("'") and value[1:2] in _FORMULA_START:
        return value[1:]
    return value


_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})|(\d{4})-(\d{2})-(\d{2})")


def _parse_date(value: str, what: str) -> date:
    """dd/mm/yyyy (or dd/mm/yy, or yyyy-mm-dd); ValueError (French) otherwise. No strptime: 20,000 lines."""
    text = value.strip()
    match = _DATE.fullmatch(text) if len(text) <= 10 else None
    if match:
        day, month, year, iso_year, iso_month, iso_day = match.groups()
        if iso_year:
            year, month, day = iso_year, iso_month, iso_day
        elif len(year) == 2:
            year = str(datetime.strptime(year, "%y").year)  # the same century rule as strptime's %y
        try:
            return date(int(year), int(month), int(day))
        except ValueError:
            pass
    raise ValueError(f"{what} : « {text[:20]} » n'est pas une date jj/mm/aaaa.")


def _detect_kind(values: dict[str, int], natures: set[str]) -> str:
    """The kind of operation of a CSV line, from its treasury columns and the natures of its accounts."""
    if values["regie_entree"]:
        return "advance_paid"
    if values["regie_sortie"]:
        return "advance_returned" if values["banque_entree"] or values["caisse_entree"] else "advance_justified"
    if not natures:
        if values["banque_entree"] and values["caisse_sortie"]:
            return "deposit"
        if values["banque_sortie"] and values["caisse_entree"]:
            return "withdrawal"
        raise ValueError("ni ventilation ni mouvement entre caisse et banque : opération incomplète.")
    money_in = bool(values["banque_entree"] or values["caisse_entree"])
    if natures <= {"income", "subsidy"}:
        return "receipt" if money_in else "refund_paid"
    if natures == {"expense"}:
        return "refund_received" if money_in else "expense"
    raise ValueError("une même ligne ne peut pas mêler charges (6…) et produits (7…).")


def _splits_of(kind: str, columns: dict[str, int], accounts: dict) -> list[books.Split]:
    """Box 7 from the account columns, which hold amounts in each account's natural direction
    (charges as debits, products as credits): a refund is negative in its account's column."""
    splits = []
    for code, value in columns.items():
        if not value:
            continue
        line = value if accounts[code].nature == "expense" else -value  # signed line: debit > 0
        splits.append(books.Split(code, books.SPLIT_SIGN.get(kind, 1) * line))
    return splits


def _csv_rows(text: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > MAX_IMPORT_LINES + 1:
                too_long = f"Le fichier dépasse {MAX_IMPORT_LINES} lignes : découpez-le ou vérifiez son contenu."
                raise ValidationErrors({"fichier": [too_long]})
    except csv.Error:
        unreadable = f"Ligne {reader.line_num} : le fichier n'est pas un CSV lisible (guillemets, champ trop long…)."
        raise ValidationErrors({"fichier": [unreadable]}) from None
    return rows


def _bounded_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    if len(errors) <= MAX_LISTED_ERRORS:
        return errors
    shown = dict(list(errors.items())[:MAX_LISTED_ERRORS])
    shown["autres lignes"] = [f"{len(errors) - MAX_LISTED_ERRORS} autre(s) ligne(s) en erreur, non détaillées ici."]
    return shown


def parse_cahier_csv(session: Session, ledger: Ledger, content: bytes) -> list[ParsedRow]:
    """Read and check a whole file against the ledger; raise ValidationErrors listing every bad line.

    Any input gives rows or ValidationErrors (French), never another exception; nothing is written.
    """
    text = _decode(content)
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
    rows = _csv_rows(text, delimiter)
    if not rows:
        raise ValidationErrors({"fichier": ["Le fichier est vide."]})
    header = [cell.strip().lower()[:40] for cell in rows[0]]
    missing = [column for column in FIXED_COLUMNS if column not in header]
    if missing:
        raise ValidationErrors({"ligne 1": ["Colonnes manquantes : " + ", ".join(missing) + "."]})
    accounts = books.accounts_by_code(session)
    codes = list(dict.fromkeys(column for column in header if column not in FIXED_COLUMNS and column))
    unknown = [code for code in codes if code not in accounts or accounts[code].nature not in SPLIT_NATURES]
    if unknown:
        raise ValidationErrors({"ligne 1": ["Comptes inconnus ou non ventilables : " + ", ".join(unknown[:20]) + "."]})
    index = {column: i for i, column in enumerate(header)}
    existing_pieces = set(session.scalars(sa.select(Entry.piece).where(Entry.ledger_id == ledger.id)))
    has_opening = books.opening_entry(session, ledger) is not None
    opening_row: ParsedRow | None = None  # the file's report à nouveau, which its RAN-n items belong to
    errors: dict[str, list[str]] = {}
    parsed: list[ParsedRow] = []
    seen: dict[str, int] = {}
    year = ledger.school_year
    amount_columns = FIXED_COLUMNS[7:]
    for line_number, raw in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in raw):
            continue
        cell = {column: (raw[i].strip() if i < len(raw) else "") for column, i in index.items()}
        problems: list[str] = []
        try:
            values = {column: parse_amount(cell[column]) if cell[column] else 0 for column in amount_columns}
            splits_raw = {code: parse_amount(cell[code]) if cell[code] else 0 for code in codes}
            day = _parse_date(cell["date"], "date")
            cleared = _parse_date(cell["pointe"], "pointe") if cell["pointe"] else None
        except ValueError as exc:
            errors[f"ligne {line_number}"] = [str(exc)]
            continue
        piece = _untext(cell["piece"])
        for column, bound in TEXT_BOUNDS.items():
            if len(_untext(cell[column])) > bound:
                problems.append(f"{column} : {bound} caractères au plus.")
        if not piece:
            problems.append("piece : obligatoire.")
        elif piece in seen:
            problems.append(f"piece : {piece[:20]} figure déjà ligne {seen[piece]}.")
        elif piece in existing_pieces:
            problems.append(f"piece : {piece[:20]} existe déjà dans le cahier.")
        seen.setdefault(piece, line_number)
        if not year.contains(day):
            problems.append(f"date : {day:%d/%m/%Y} hors de l'année {year.label}.")
        mode = cell["mode"].lower()
        if mode == "report":
            if has_opening:
                problems.append("le cahier a déjà un report à nouveau.")
            has_opening = True
            if any(splits_raw.values()):
                problems.append("un report à nouveau ne se ventile pas.")
            opening = (
                values["banque_entree"] - values["banque_sortie"],
                values["caisse_entree"] - values["caisse_sortie"],
            )
            if opening[1] < 0:
                problems.append("une caisse ne peut pas être négative.")
            opening_row = ParsedRow(line_number, None, opening, cleared, "")
            parsed.append(opening_row)
            if problems:
                errors[f"ligne {line_number}"] = problems
            continue
        item = (
            _carried_item(piece, _untext(cell["libelle"]), values, cell["cheque"], year)
            if opening_row is not None and not any(splits_raw.values())
            else None
        )
        if item is not None:  # an item outstanding in the previous tool: part of the opening
            opening_row.carried.append(item)
            if problems:
                errors[f"ligne {line_number}"] = problems
            continue
        if mode not in books.MODE_LABELS:
            problems.append(f"mode : « {cell['mode'][:20]} » inconnu (attendu : {', '.join(books.MODE_LABELS)}).")
        try:
            kind = _detect_kind(values, {accounts[code].nature for code, value in splits_raw.items() if value})
            splits = _splits_of(kind, splits_raw, accounts)
            treasury = books.Treasury(
                values["banque_entree"], values["banque_sortie"], values["caisse_entree"], values["caisse_sortie"]
            )
            lines = books.build_lines(kind, treasury, splits, accounts)
        except ValueError as exc:
            problems.append(str(exc))
        except DomainError as exc:
            problems.append(exc.message)
        else:
            cheque = cell["cheque"]
            if mode == "cheque" and treasury.bank_out and not cheque:
                problems.append("cheque : indiquez le numéro du chèque émis.")
            data = books.EntryData(
                piece=piece,
                date=day,
                label=_untext(cell["libelle"]) or piece,
                payment_mode=mode,
                kind=kind,
                treasury=treasury,
                splits=splits,
                cheque_number=cheque,
            )
            row = ParsedRow(line_number, data, None, cleared, " ".join(_untext(cell["action"]).split()))
            row.lines = [(account.code, amount) for account, amount in lines]
            parsed.append(row)
        if problems:
            errors[f"ligne {line_number}"] = problems
    if errors:
        raise ValidationErrors(_bounded_errors(errors))
    if not parsed:
        raise ValidationErrors({"fichier": ["Aucune opération dans le fichier."]})
    return parsed


def _check_import_cash(session: Session, ledger: Ledger, parsed: list[ParsedRow]) -> None:
    """The cash box never goes negative with the file's operations added (checked before any write)."""
    before = books.cash_by_day(session, ledger)
    after = dict(before)
    for row in parsed:
        day = row.data.date if row.data is not None else ledger.school_year.starts_on
        cash = sum(amount for code, amount in row.lines if code == books.CASH) if row.data else row.opening[1]
        if cash:
            after[day] = after.get(day, 0) + cash
    try:
        books.check_cash_never_negative(before, after, field=None)
    except DomainError as exc:
        raise ValidationErrors({"caisse": [exc.message]}) from None


def import_cahier(
    session: Session, ledger: Ledger, content: bytes, *, by: User | None, ip: str = "", now: datetime | None = None
) -> int:
    """Import a whole cahier CSV into an open ledger, all or nothing; return the number of operations.

    Every check runs before the first write (so SQLite's write lock is not held while parsing);
    then the entries and their lines are inserted in bulk, and one audit event records the import.
    `now` stamps the new rows and a replaced opening entry (`app.ledger.record_opening`).
    """
    if not ledger.is_open:
        raise ValidationErrors({"cahier": [f"Le cahier {ledger.school_year.label} est clôturé."]})
    parsed = parse_cahier_csv(session, ledger, content)
    _check_import_cash(session, ledger, parsed)
    accounts = books.accounts_by_code(session)
    stamp = now or utcnow()
    action_ids: dict[str, int] = {}
    entries: list[dict] = []
    operations = [row for row in parsed if row.data is not None]
    try:
        for row in parsed:
            if row.data is None:
                # The exported opening line holds the book balance before the outstanding items.
                bank = row.opening[0] + sum(item.amount for item in row.carried)
                opening = books.record_opening(
                    session, ledger, bank=bank, cash=row.opening[1], by=by, ip=ip, now=now, items=row.carried or None
                )
                if row.cleared_on is not None and opening is not None:
                    for line in opening.lines:
                        if line.account.code == books.BANK:
                            line.cleared_on = row.cleared_on
            elif row.action_name and row.action_name not in action_ids:
                action = books.create_action(session, ledger.coop_id, row.action_name, by=by)
                action_ids[row.action_name] = action.id
    except DomainError as exc:
        raise ValidationErrors({f"ligne {row.line}": [exc.message]}) from None
    for row in operations:
        data = row.data
        entries.append(
            {
                "ledger_id": ledger.id,
                "coop_id": ledger.coop_id,
                "piece": data.piece,
                "date": data.date,
                "label": data.label,
                "payment_mode": data.payment_mode,
                "cheque_number": data.cheque_number,
                "kind": "transfer" if data.kind in ("deposit", "withdrawal") else data.kind,
                "action_id": action_ids.get(row.action_name),
                "created_by_id": by.id if by else None,
                "created_at": stamp,
                "updated_at": stamp,
                "version": 1,
            }
        )
    # Bulk inserts bypass the flush listener that bumps the revision (the classic view's cache key) and
    # stamps each entry with it (app.cahier_days reads the entries changed since a revision).
    session.execute(sa.update(Ledger).where(Ledger.id == ledger.id).values(revision=Ledger.revision + 1))
    revision = session.scalar(sa.select(Ledger.revision).where(Ledger.id == ledger.id))
    for entry in entries:
        entry["ledger_revision"] = revision
    if entries:
        # Core executemany (one statement, no RETURNING: the ORM's bulk RETURNING path is quadratic on
        # SQLite); pieces are unique in a ledger, so one query gives the new ids back.
        session.execute(sa.insert(Entry.__table__), entries)
        id_of = dict(
            session.execute(
                sa.select(Entry.piece, Entry.id).where(Entry.ledger_id == ledger.id, Entry.kind != "opening")
            ).all()
        )
        ids = [id_of[row.data.piece] for row in operations]
        session.execute(
            sa.insert(EntryLine.__table__),
            [
                {
                    "entry_id": entry_id,
                    "account_id": accounts[code].id,
                    "amount_cents": amount,
                    "cleared_on": row.cleared_on if code == books.BANK else None,
                }
                for entry_id, row in zip(ids, operations, strict=True)
                for code, amount in row.lines
            ],
        )
    session.expire(ledger, ["revision", "entries"])
    audit.record(
        session,
        "cahier.imported",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        after={
            "operations": len(operations),
            "opening": any(row.data is None for row in parsed),
            "pieces": [operations[0].data.piece, operations[-1].data.piece] if operations else [],
        },
        ip=ip,
    )
    session.flush()
    return len(parsed)
