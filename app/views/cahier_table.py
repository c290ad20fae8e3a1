"""HTML rows of the classic view, built in Python.

A year can hold 10,000 operations: rendering each of their 25-odd cells through Jinja macros
took seconds (bench/cahier.py). The same markup is built here with plain string joins; every text
coming from users is escaped with the standard library's `html.escape` (quotes included).
"""

from __future__ import annotations

import gc
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from html import escape  # stdlib: much faster than markupsafe on 10,000 rows; quote=True by default
from itertools import groupby
from typing import NamedTuple

from flask import Response, current_app, url_for
from markupsafe import Markup

from app.cahier import OPENING_KINDS, Cahier, EntryFigures
from app.cahier_days import Day, Year
from app.formats import NNBSP, fr_date
from app.formats import amount as format_amount

NEGATIVE = ' class="text-danger"'  # a bank balance below zero (allowed, but shown)


# The first account column of a row (after pièce, date, libellé, mode, action, the bank's, cash's and advance's
# in/out/balance cells and « pointé le »): css/cahier.css captions the fixed columns on a phone's cards.
FIRST_ACCOUNT_COLUMN = 15

Fragments = dict  # (entry key, action name) -> (before, between, after, bank balance, cash balance, whole row)

# Where the page's table body goes: escaped user text can never contain it (« < » is always escaped).
ROWS_MARKER = Markup(f"<!--rows-{secrets.token_hex(8)}-->")  # noqa: S704 - no user input


def page_with_rows(html: str, rows: bytes | list[bytes]) -> Response:
    """The page rendered around `ROWS_MARKER`, with the table body (already UTF-8, one piece or several)
    put in its place.

    The body of a 10,000-operation year weighs megabytes: passed through Jinja, each macro and block
    copies it again. Kept as bytes and sent as pieces of the response, it is never copied."""
    pieces = html.split(ROWS_MARKER, 1)
    if len(pieces) == 1:  # no table on the page (an empty year)
        return current_app.response_class(html, mimetype="text/html")
    body = rows if isinstance(rows, list) else [rows]
    return current_app.response_class([pieces[0].encode(), *body, pieces[1].encode()], mimetype="text/html")


def phone_captions(accounts) -> Markup:
    """A <style> giving each account column's cells their caption on a phone's card (the fixed columns'
    captions are in css/cahier.css). Account labels come from the chart: every character other than
    a letter, a digit or a space is written as a CSS escape, so no label can end the style element."""
    rules = "".join(
        f'table.cahier-screen tbody td:nth-child({FIRST_ACCOUNT_COLUMN + i})::before{{content:"{_css_text(account)}"}}'
        for i, account in enumerate(accounts)
    )
    return Markup(f"<style>@media (max-width:767.98px){{{rules}}}</style>") if rules else Markup("")  # noqa: S704


def _css_text(account) -> str:
    text = f"{account.display_code} {account.label}"
    return "".join(c if c.isalnum() or c == " " else f"\\{ord(c):x} " for c in text)


def cahier_rows(
    data: Cahier, modes: Mapping[str, str], *, links: bool, editable: bool, fragments: Fragments | None = None
) -> tuple[bytes, Fragments]:
    """The <tr> elements of the classic view's body (same columns as templates/ledger/_table.html), UTF-8.

    A row's cells depend on its operation only, except the two running balances. `fragments` keeps,
    by the operation's key and action name (for one set of columns), the row's HTML split around
    the two balance cells and the whole row as last shown with its balances: an unchanged operation
    whose balances did not move (every row before a changed date, and all of them after a label or
    a pointage change) is copied as it is; one whose balances moved gets only its two balances
    formatted again. Returns the rows and the fragments of the rows shown.

    The markup is kept small (a year of 10,000 operations is one page): no attribute a cell can do
    without; on a phone, each cell's caption comes from its column (css/cahier.css, `phone_captions`).
    Without links (the print view), the account columns are grouped in one « Ventilation » cell listing
    « code montant » per account line, so that A4 portrait holds every column."""
    known = fragments or {}
    kept: Fragments = {}
    row_pieces = _RowPieces(data, modes, links=links, editable=editable)
    parts: list[bytes] = []
    append = parts.append
    action_name = data.action_name
    for w in data.walked:
        entry_key, figures, bank, cash = w
        key = (entry_key, action_name(figures))
        pieces = known.get(key) if entry_key else None
        if pieces is None or pieces[3] != bank or pieces[4] != cash:
            before, between, after = pieces[:3] if pieces is not None else row_pieces(figures)
            pieces = (before, between, after, bank, cash, _row((before, between, after), bank, cash).encode())
        if entry_key:
            kept[key] = pieces
        append(pieces[5])
    return b"\n".join(parts), kept


KeptMonths = tuple  # (the action names the rows show, {(year, month): `KeptMonth`})


class KeptMonth(NamedTuple):
    """One month's rows as last shown, for a later view: sent as they were, with only their balance cells
    formatted again (when a change earlier in the year moved them), or assembled again from the days
    that did not change and the rows of the days that did.

    `cells` holds each row's five pieces, UTF-8: before the bank balance, the bank balance cell, between
    the two balances, the cash balance cell, after it (with the newline); `html` is their join."""

    days: tuple[Day, ...]  # the month's days, in order (another `Day` object when a day changed)
    starts: tuple[int, ...]  # each day's first row, then the number of rows
    bank: int  # the bank's and the cash's balances before the month
    cash: int
    html: bytes
    keys: list  # each row's (entry key, action name)
    cells: list
    banks: list  # each row's bank and cash balances after it
    cashes: list


def year_rows(
    data: Cahier, year: Year, modes: Mapping[str, str], *, links: bool, editable: bool, kept: KeptMonths | None = None
) -> tuple[list[bytes], KeptMonths]:
    """The <tr> elements of the whole year in date order (as `cahier_rows` makes them), one piece per month.

    `kept` holds what the same columns showed last time, per month: a month whose days (the same `Day`
    objects of `app.cahier_days`), opening balances and action names did not change is sent as it was;
    one whose balances moved (an amount changed earlier in the year moves the bank's or the cash's
    balance of every later row, rarely both) gets only the balance that moved formatted again, all of
    the month's in one go; a month with a changed day is assembled again from its unchanged days' rows
    and the changed day's, where only the changed operations are rendered. After a save, that is one
    day of the year (a new action too: only the days showing an action whose name changed are rendered
    again)."""
    names, known_months = kept if kept is not None else ({}, {})
    renamed = {i for i in names.keys() | data.action_names.keys() if names.get(i) != data.action_names.get(i)}
    render = _DayRows(data, _RowPieces(data, modes, links=links, editable=editable))
    made: dict = {}
    parts: list[bytes] = []
    bank = cash = 0
    for month, dates in groupby(year.order, key=lambda day: (day.year, day.month)):
        days = tuple(year.days[day] for day in dates)
        before = known_months.get(month)
        changed = (
            {i for i, day in enumerate(days) if any(f.action_id in renamed for _key, f in day.items)}
            if renamed
            else set()
        )
        if (
            before is not None
            and not changed
            and len(before.days) == len(days)
            and all(old is new for old, new in zip(before.days, days, strict=True))
        ):
            if before.bank != bank or before.cash != cash:  # the same rows, with other balances
                cells, banks, cashes = _moved(
                    before.cells, before.banks, before.cashes, bank - before.bank, cash - before.cash
                )
                before = before._replace(
                    bank=bank, cash=cash, html=b"".join(cells), cells=cells, banks=banks, cashes=cashes
                )
        else:
            before = _assembled(days, changed, before, bank, cash, render)
        made[month] = before
        parts.append(before.html)
        bank, cash = before.banks[-1], before.cashes[-1]
    return parts, (dict(data.action_names), made)


def _assembled(
    days: tuple[Day, ...], changed: set[int], before: KeptMonth | None, bank: int, cash: int, render: _DayRows
) -> KeptMonth:
    """A month's rows from its days: an unchanged day's rows taken from `before` (their balances formatted
    again if they moved), a changed day's made again (its unchanged operations' pieces kept)."""
    slots = {id(day): i for i, day in enumerate(before.days)} if before is not None else {}
    opening = (bank, cash)
    starts: list[int] = []
    keys: list = []
    cells: list[bytes] = []
    banks: list[int] = []
    cashes: list[int] = []
    known = None
    for i, day in enumerate(days):
        starts.append(len(keys))
        slot = slots.get(id(day)) if i not in changed else None
        if slot is not None:
            first, end = before.starts[slot], before.starts[slot + 1]
            day_cells, day_banks, day_cashes = _moved(
                before.cells[5 * first : 5 * end],
                before.banks[first:end],
                before.cashes[first:end],
                bank - (before.banks[first - 1] if first else before.bank),
                cash - (before.cashes[first - 1] if first else before.cash),
            )
            keys += before.keys[first:end]
        else:
            if known is None:  # pieces of the rows shown before, by operation and action name
                known = {} if before is None else dict(zip(before.keys, _row_pieces_of(before.cells), strict=True))
            day_keys, day_cells, day_banks, day_cashes = render(day, known, bank, cash)
            keys += day_keys
        cells += day_cells
        banks += day_banks
        cashes += day_cashes
        bank += day.bank
        cash += day.cash
    starts.append(len(keys))
    return KeptMonth(days, tuple(starts), *opening, b"".join(cells), keys, cells, banks, cashes)


def _row_pieces_of(cells: list[bytes]):
    """Each row's pieces around its two balance cells, from a month's cells."""
    return zip(cells[0::5], cells[2::5], cells[4::5], strict=True)


class _DayRows:
    """A changed day's rows: the pieces of an operation shown before (same key, same action name) are
    kept, the others rendered; then the running balances."""

    def __init__(self, data: Cahier, row_pieces: _RowPieces) -> None:
        self.data, self.row_pieces = data, row_pieces

    def __call__(self, day: Day, known: dict, bank: int, cash: int):
        keys, pieces_list, banks, cashes = [], [], [], []
        action_name = self.data.action_name
        for entry_key, figures in day.items:
            bank += figures.bank_in - figures.bank_out
            cash += figures.cash_in - figures.cash_out
            key = (entry_key, action_name(figures))
            pieces = known.get(key)
            if pieces is None:
                made = self.row_pieces(figures)
                pieces = (made[0].encode(), made[1].encode(), (made[2] + "\n").encode())
            keys.append(key)
            pieces_list.append(pieces)
            banks.append(bank)
            cashes.append(cash)
        cells: list[bytes] = []
        for (before, between, after), bank_cell, cash_cell in zip(
            pieces_list, balance_cells(banks, bank=True), balance_cells(cashes, bank=False), strict=True
        ):
            cells += (before, bank_cell, between, cash_cell, after)
        return keys, cells, banks, cashes


def _moved(cells: list[bytes], banks: list[int], cashes: list[int], moved_bank: int, moved_cash: int):
    """Rows' cells and balances with their balances moved by these amounts (`cells` is never changed: the
    kept months are shared by threads)."""
    if moved_bank or moved_cash:
        cells = cells.copy()
    if moved_bank:
        banks = [balance + moved_bank for balance in banks]
        cells[1::5] = balance_cells(banks, bank=True)
    if moved_cash:
        cashes = [balance + moved_cash for balance in cashes]
        cells[3::5] = balance_cells(cashes, bank=False)
    return cells, banks, cashes


# Below this many cents (a hundred billion euros), `cents / 100` formatted with two decimals gives the
# integer's exact figures: the float is within far less than half a cent of it.
_FLOAT_EXACT_BELOW = 10**13


def balance_cells(balances: list[int], *, bank: bool) -> list[bytes]:
    """The balance cells of many rows, UTF-8, as `_bank_cell` (`bank`) or `_cash_cell` make them one by
    one, at half their cost: a running balance that moved is formatted again in every later row of the
    year, so this is the classic view's hot loop after an early change.

    All the cells are formatted in one string, then its separators swapped to the French ones in one
    go (neither the markup nor `NEGATIVE` holds a comma or a period); the cells one by one for balances
    too large for the float's exactness (never seen in a coop's books)."""
    if not balances:
        return []
    if max(balances) >= _FLOAT_EXACT_BELOW or min(balances) <= -_FLOAT_EXACT_BELOW:
        one_cell = _bank_cell if bank else _cash_cell
        return [one_cell(balance).encode() for balance in balances]
    negative = NEGATIVE if bank else ""
    text = "\0".join([f"<td>{b / 100:,.2f}</td>" if b >= 0 else f"<td{negative}>{b / 100:,.2f}</td>" for b in balances])
    return text.replace(",", NNBSP).replace(".", ",").encode().split(b"\0")


def _bank_cell(bank: int) -> str:
    return f"<td{NEGATIVE if bank < 0 else ''}>{format_amount(bank)}</td>"


def _cash_cell(cash: int) -> str:
    return f"<td>{format_amount(cash)}</td>"


def _row(pieces: tuple[str, str, str], bank: int, cash: int) -> str:
    """A row from its pieces and its two running balances."""
    before, between, after = pieces
    return f"{before}{_bank_cell(bank)}{between}{_cash_cell(cash)}{after}"


def _url_templates() -> tuple:
    """The row links' URLs built once, then filled per row (url_for per row is the slow part otherwise)."""
    return (
        url_for("ledger.entry_detail", entry_id=0)[:-1],
        url_for("ledger.edit_entry", entry_id=0).rsplit("/0/", 1),
        url_for("ledger.delete_entry", entry_id=0).rsplit("/0/", 1),
    )


class _RowPieces:
    """Each operation's row HTML before the bank balance, between the two balances, and after the cash
    balance (the balances are the only cells that depend on the other operations).

    Made once per view: the account columns by account id, the payment modes' and actions' escaped
    names and the links' URLs are worked out once, not per row (a first view of a 10,000-operation year
    renders them all)."""

    def __init__(self, data: Cahier, modes: Mapping[str, str], *, links: bool, editable: bool) -> None:
        self.links, self.editable = links, editable
        self.urls = _url_templates()
        codes = [(account.code, escape(account.display_code)) for account in data.accounts]
        code_of = {account_id: column.code for account_id, column in data.chart.items()}
        self.code_of = code_of
        self.codes = codes
        # screen: one cell per column, by account id (ids of codes shown only)
        position = {code: i for i, (code, _caption) in enumerate(codes)}
        self.column_of = {account_id: position[code] for account_id, code in code_of.items() if code in position}
        self.empty = ["<td></td>"] * len(codes)
        self.modes = {mode: escape(label) for mode, label in modes.items()}
        self.actions = {action_id: escape(name) for action_id, name in data.action_names.items()}

    def __call__(self, f: EntryFigures) -> tuple[str, str, str]:
        piece = escape(f.piece)
        mode = self.modes.get(f.mode)
        if mode is None:
            mode = escape(f.mode)
        if f.cheque:
            mode = f"{mode} ({escape(f.cheque)})"
        if f.cleared_on:
            cleared = fr_date(f.cleared_on)
        elif (f.bank_in or f.bank_out) and f.kind != "opening":
            cleared = '<span class="text-body-secondary">non pointé</span>'
        else:
            cleared = ""
        if self.links:
            cells = self.empty.copy()
            column_of = self.column_of
            for account_id, value in f.amounts:  # a later line of the same account shows, as in `Cahier.row`
                i = column_of.get(account_id)
                if i is not None:
                    cells[i] = f"<td>{format_amount(value)}</td>"
            cells = "".join(cells)
        else:  # print view: one cell, one « code montant » line per account
            code_of = self.code_of
            amounts = {code_of[account_id]: value for account_id, value in f.amounts}
            cells = '<td class="split">{}</td>'.format(
                " ".join(
                    f"<span>{caption}&nbsp;{format_amount(amounts[code])}</span>"
                    for code, caption in self.codes
                    if code in amounts
                )
            )
        opening = ' class="table-secondary"' if f.kind in OPENING_KINDS else ""
        action = self.actions.get(f.action_id, "") if f.action_id else ""
        # an in/out column's cell is empty rather than 0,00 (six a row, most of them empty)
        bank_in, bank_out, cash_in, cash_out = f.bank_in, f.bank_out, f.cash_in, f.cash_out
        before = (
            f'<tr id="op-{f.entry_id}"{opening}><th scope="row">{piece}'
            f"{_paperclip(f.vouchers) if f.vouchers else ''}</th>"
            f"<td>{fr_date(f.date)}</td><td>{escape(f.label)}</td><td>{mode}</td><td>{action}</td>"
            f"<td>{format_amount(bank_in) if bank_in else ''}</td>"
            f"<td>{format_amount(bank_out) if bank_out else ''}</td>"
        )
        cash_in_cell = format_amount(cash_in) if cash_in else ""
        between = f"<td>{cash_in_cell}</td><td>{format_amount(cash_out) if cash_out else ''}</td>"
        advance_in, advance_out = f.advance_in, f.advance_out
        after = (
            f"<td>{format_amount(advance_in) if advance_in else ''}</td>"
            f"<td>{format_amount(advance_out) if advance_out else ''}</td><td>{cleared}</td>{cells}"
        )
        if self.links:
            view_url, edit_url, delete_url = self.urls
            entry_id = f.entry_id
            after += f'<td class="actions"><a href="{view_url}{entry_id}" aria-label="Voir la pièce {piece}">Voir</a>'
            if self.editable and f.kind not in OPENING_KINDS:
                after += (
                    f' <a href="{edit_url[0]}/{entry_id}/{edit_url[1]}" '
                    f'aria-label="Modifier la pièce {piece}">Modifier</a>'
                    f' <a href="{delete_url[0]}/{entry_id}/{delete_url[1]}" class="text-danger" '
                    f'aria-label="Supprimer la pièce {piece}">Supprimer</a>'
                )
            after += "</td>"
        return before, between, after + "</tr>"


def _paperclip(count: int) -> str:
    """The paperclip of an operation with vouchers, with their number (read out as « 2 justificatifs »)."""
    if not count:
        return ""
    words = "justificatif" if count == 1 else "justificatifs"
    return (
        f' <span class="vouchers" title="{count} {words}">{count}<span class="visually-hidden"> {words}</span></span>'
    )


_gc_lock = threading.Lock()
_gc_state = {"holders": 0, "was_enabled": False}


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a year's rows are built.

    Building 10,000 rows allocates some 100,000 tuples and lists that all survive until the page is
    done: each allocation burst triggers full collections that walk the whole process heap, which
    cost as much as the build itself (a cold 10,000-operation view: ~230 ms -> ~90 ms of figures).
    Nothing built here forms cycles. Counted, so that overlapping requests (threads) re-enable the
    collector only when the last one is done, and a collector someone else turned off stays off."""
    with _gc_lock:
        if _gc_state["holders"] == 0:
            _gc_state["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_state["holders"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_state["holders"] -= 1
            if _gc_state["holders"] == 0 and _gc_state["was_enabled"]:
                gc.enable()


class RenderCache:
    """A per-process LRU of what the classic view keeps, bounded by a number of items and, when given a
    budget, by the weight (an estimate of the memory, in bytes) of what it holds.

    Keys carry the ledger's revision or are brought up to date from it (`Ledger.revision` is bumped
    by every flush that touches its entries, lines or the coop's actions), so nothing kept is ever
    stale; a change simply makes a new key or a new value.
    """

    def __init__(self, size: int = 64, budget: int | None = None) -> None:
        self.size = size
        self.budget = budget
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._weights: dict[Hashable, int] = {}
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return default

    def put(self, key: Hashable, value: object, weight: int = 0) -> None:
        with self._lock:
            self._weight += weight - self._weights.get(key, 0)
            self._weights[key] = weight
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > 1 and (
                len(self._items) > self.size or (self.budget is not None and self._weight > self.budget)
            ):
                gone, _value = self._items.popitem(last=False)
                self._weight -= self._weights.pop(gone, 0)

    @property
    def weight(self) -> int:
        return self._weight

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._weights.clear()
            self._weight = 0


_MISSING = object()

# Estimated memory of what is kept, per operation or per byte of rows (tracemalloc, bench/cahier.py's
# years): a kept year ~1.2 KB per operation; a month's rows twice their bytes (the cells and the joined
# rows) plus ~420 bytes a row (the cells' objects, the balances, the key): 2.6 times the bytes of a screen
# row, 3.1 times those of a print row (shorter).
YEAR_BYTES_PER_OPERATION = 1300
MONTH_BYTES_PER_ROW = 420


class CahierCache:
    """What the classic view keeps between requests, per process, within a memory budget
    (`CAHIER_CACHE_MB`, set by the app factory; some 4 MB for a year of 1,000 operations):

    - `pages`: whole rendered tables by ledger revision (a view of an unchanged year);
    - `years`: per ledger, its operations by day as of a revision (`app.cahier_days.Year`): after a
      save, only the operations changed since are read;
    - `days`: per ledger and set of columns, the whole year's rows month by month, each month knowing
      its days' rows (`year_rows`): after a save, only the changed day is rendered again, and the rows
      after it get new balance cells if the change moved them;
    - `rows`: per ledger, the filtered and sorted views' cells by (entry key, action name), so that
      their rows whose operation did not change are not rendered again.

    A worker serves many coops in an evening of the campaign: what it keeps of one is worth keeping
    only if it is still there at that coop's next save, hence a budget rather than a few ledgers.
    """

    def __init__(self, budget_mb: int = 200) -> None:
        self.pages = RenderCache(64)  # the pointage page keeps its bodies here too (app/views/pointage_table.py)
        self.years = RenderCache(4096)
        self.days = RenderCache(8192)
        self.rows = RenderCache(1024)
        self.set_budget(budget_mb)

    def set_budget(self, budget_mb: int) -> None:
        """Share `budget_mb` megabytes: whole pages (and the pointage page's bodies) a fifth, kept years a
        fifth, their rows by month three tenths, the filtered views' cells a tenth; the last fifth goes to
        the pointage page's kept years (`PointageCache.keep`, given as much as the pages)."""
        budget = budget_mb * 1_000_000
        self.pages.budget, self.years.budget = budget // 5, budget // 5
        self.days.budget, self.rows.budget = budget * 3 // 10, budget // 10

    def clear(self) -> None:
        self.pages.clear()
        self.years.clear()
        self.days.clear()
        self.rows.clear()


def page_weight(table) -> int:
    """A kept table's weight: its rows' bytes when they are its own (the whole year's are the kept months')."""
    _data, rows = table
    return len(rows) if isinstance(rows, bytes) else 10_000


def year_weight(year: Year) -> int:
    return 2_000 + year.count * YEAR_BYTES_PER_OPERATION


def days_weight(kept: KeptMonths) -> int:
    return sum(2 * len(month.html) + MONTH_BYTES_PER_ROW * len(month.keys) for month in kept[1].values())


def fragments_weight(kept: dict) -> int:
    """The filtered views' kept cells: about 600 bytes per row's pieces."""
    return 600 * sum(len(fragments) for fragments in kept.values())


cahier_cache = CahierCache()
