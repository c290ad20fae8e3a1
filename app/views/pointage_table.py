"""The pointage screen's long parts, built in Python and kept between requests (a year can hold 10,000 lines).

Three parts of the page grow with the year: the bank lines, the proposals and the statement lines
missing from the cash-book. They are built here with plain string joins (every text coming from
users is escaped with the standard library's `html.escape`, quotes included), as UTF-8 bytes, and
put in the page rendered around their markers (`page_with_parts`), never copied through Jinja.

What is kept, per process:

- `pointage_cache.pages` holds, per year, the body (`Body`: the parts, what the page's frame needs)
  built for the year's latest state (`reconciliation.year_state`: every ledger's revision and status,
  the coop's statements, read with the year's ledger in one statement), so a repeated view reads
  that statement only and renders the page's frame. The bodies live in the classic view's LRU of
  pages (`cahier_cache.pages`, emptied with it, as the tests' `app` fixture does).
- `pointage_cache.parts` holds, per year, what the body was made from (`Kept`): the year's bank
  lines and open statement lines (`reconciliation.PointageYear`), the matching
  (`reconciliation.Matching`) and the rows rendered, in blocks (`Rows`). After a change of the
  year's own operations (a line pointed, a match confirmed, an operation saved) only the operations
  changed since are read, only what their lines touch is matched again, only their rows and the
  proposals they touch are rendered again, and only their blocks are joined again. A change in
  another year's ledger (a carried line pointed) reads the carried lines and the open statement
  lines again; an import, a closing or a reopening reads the year whole and compares it with what
  was kept. Keyed by the state read before the rows, never stale: tests/test_pointage_cache.py
  compares the kept page with the one built from nothing after every kind of change.

The bank lines sit in one form of the page (one CSRF token for the page, not one per line): each
« Pointer » / « Dépointer » button posts it to its own line's address (`formaction`), so the page
works the same without JavaScript, and weighs about half as much.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from datetime import date
from html import escape  # stdlib: much faster than markupsafe on 10,000 rows; quote=True by default

from flask import Response, current_app, request, url_for
from markupsafe import Markup

from app import reconciliation as rec
from app.formats import euros, fr_date
from app.ledger import MODE_LABELS
from app.models import Ledger
from app.statements import normalise_number
from app.views.cahier_table import RenderCache, cahier_cache, gc_paused

_CLEAR = ("clear", "btn-outline-primary", "Pointer")
_UNCLEAR = ("unclear", "btn-outline-secondary", "Dépointer")
_EARLIER_ROW = ' class="table-info"'
_EARLIER = ' <span class="badge text-bg-info">année précédente</span>'

# Where each long part goes: escaped user text can never contain them (« < » is always escaped).
LINES_MARKER = Markup(f"<!--lines-{secrets.token_hex(8)}-->")  # noqa: S704 - no user input
PROPOSALS_MARKER = Markup(f"<!--proposals-{secrets.token_hex(8)}-->")  # noqa: S704 - no user input
MISSING_MARKER = Markup(f"<!--missing-{secrets.token_hex(8)}-->")  # noqa: S704 - no user input


@dataclasses.dataclass
class Body:
    """The year's long parts (UTF-8) and what the page's frame needs to know about them."""

    lines: list[bytes]  # blocks of rows, sent as they are
    line_count: int
    ledger_id: int  # the year's ledger (the summary's bank balance is its lines')
    rows: tuple  # the year's bank lines as of this body (the kept year moves on with later changes)
    proposals: list[bytes] = dataclasses.field(default_factory=list)
    has_proposals: bool = False
    has_suggestions: bool = False
    has_items: bool = False
    missing: list[bytes] = dataclasses.field(default_factory=list)
    has_missing: bool = False
    anomalies: tuple[str, ...] = ()
    # The summary box's figures by date, without the statement balance (the page's date moves with the days).
    # The kept year's own dict: a date computed for a page is then moved by the next change rather than
    # computed again (one key written at a time, atomic under the GIL; the next build copies the items).
    figures: dict = dataclasses.field(default_factory=dict)

    def summary(self, session, ledger: Ledger, today: date) -> rec.Summary | rec.Reconciliation:
        """`reconciliation.summary`'s figures, from the lines read once, kept by date."""
        on = rec.summary_date(ledger, today)
        if on < ledger.school_year.starts_on:  # a statement date typed before the year began
            return rec.summary(session, ledger, today)
        found = self.figures.get(on)
        if found is None:
            if len(self.figures) >= 8:  # a few dates at most in a body's life: today, the one typed
                self.figures.clear()
            found = self.figures[on] = rec.summary_figures(self.ledger_id, self.rows, on)
        typed = ledger.reconciliation_balance_cents if ledger.reconciliation_date else None
        return rec.Summary(on, *found, typed)


class Rows:
    """Rendered rows in page order, kept in blocks (`block_of` a row's key: a month of lines, say),
    each joined once: a change joins its own blocks again, and the page sends the blocks as they are
    (a year's rows weigh megabytes: joining them all again would cost more than the change)."""

    def __init__(self, block_of) -> None:
        self.block_of = block_of
        self.blocks: dict = {}  # block -> its rows (`reconciliation.Ordered`)
        self.joined: dict = {}  # block -> its rows as one piece
        self.order: list = []  # the blocks, in page order
        self.count = 0

    def change(self, dropped: list, added: list[tuple]) -> None:
        """Remove the rows of the `dropped` keys and put in the `added` (key, row) pairs."""
        touched: dict = {}
        for key in dropped:
            touched.setdefault(self.block_of(key), ([], []))[0].append(key)
        for pair in added:
            touched.setdefault(self.block_of(pair[0]), ([], []))[1].append(pair)
        blocks = self.blocks
        before = len(blocks)
        for block, (gone, came) in touched.items():
            rows = blocks.get(block) or blocks.setdefault(block, rec.Ordered())
            self.count += len(came) - len(gone)
            rows.change(gone, came)
            if rows.keys:
                self.joined[block] = b"\n".join(rows.values) + b"\n"
            else:
                del blocks[block], self.joined[block]
        if len(blocks) != before or any(block not in self.joined for block in self.order):
            self.order = sorted(blocks)

    def pieces(self) -> list[bytes]:
        return [self.joined[block] for block in self.order]


def _month(key: tuple) -> tuple:
    """A line's or a statement line's key starts with its date: its block is its month."""
    return key[0].year, key[0].month


def _proposal_block(key: tuple) -> tuple:
    """A proposal's key: (rule, pass, date, amount, id): a block per rule, pass and month."""
    return key[0], key[1], key[2].year, key[2].month


def _suggestion_block(key: tuple) -> tuple:
    """A suggestion's key: (days apart, -similarity, line id, id): a block per number of days apart."""
    return key[:1]


@dataclasses.dataclass
class Kept:
    """What a year's page is brought up to date from (owned by one request at a time: `KeptYears.take`):
    the year's lines and statement lines, the matching, and the rows rendered, each in page order."""

    year: rec.PointageYear
    editable: bool
    matching: rec.Matching | None  # a closed year proposes nothing
    lines: Rows = dataclasses.field(default_factory=lambda: Rows(_month))  # keys (date, line id)
    proposals: Rows = dataclasses.field(default_factory=lambda: Rows(_proposal_block))  # `rec.Matching`'s keys
    suggestions: Rows = dataclasses.field(default_factory=lambda: Rows(_suggestion_block))
    missing: Rows = dataclasses.field(default_factory=lambda: Rows(_month))
    figures: dict = dataclasses.field(default_factory=dict)  # the last body's

    def weight(self) -> int:
        """Estimated memory: the rows' bytes twice (each row, and its block joined), and some 1.7 KB per
        line and statement line (the lines, the matching's indexes and outcomes; tracemalloc, a year
        of 1,000 lines of bench/pointage.py: 5.3 MB with its body, 6.4 MB estimated)."""
        rows = (self.lines, self.proposals, self.suggestions, self.missing)
        size = sum(len(piece) for part in rows for piece in part.joined.values())
        return 2 * size + 1700 * (len(self.year.rows) + len(self.year.items or ()))


class KeptYears(RenderCache):
    """The `Kept` of each year, taken out while a request brings it up to date: a request that comes
    meanwhile for the same year finds none and builds its own, so none is ever changed by two."""

    def take(self, key):
        with self._lock:
            self._weight -= self._weights.pop(key, 0)
            return self._items.pop(key, None)


class PointageCache:
    """What the pointage screen keeps between requests, per process (see the module's docstring)."""

    def __init__(self, ledgers: int = 16) -> None:
        self.parts = KeptYears(ledgers)

    @property
    def pages(self) -> RenderCache:
        return cahier_cache.pages

    def clear(self) -> None:
        """Forget the years kept (the bodies go with `cahier_cache.clear()`)."""
        self.parts.clear()

    def keep(self, where, kept: Kept) -> None:
        """Keep a year, the years kept weighing at most as much as the bodies may (a fifth of
        `CAHIER_CACHE_MB`, set by the app factory; the latest year is always kept)."""
        self.parts.budget = self.pages.budget
        self.parts.put(where, kept, kept.weight())


pointage_cache = PointageCache()


def page_body(session, ledger: Ledger, state: tuple, year: int) -> Body:
    """The body of the pointage page of `ledger` (the year starting in `year`) as of `state`
    (`reconciliation.year_state`): the one kept for that state, or the kept year brought up to date."""
    where = (ledger.id, ledger.created_at, year, request.script_root)  # created_at: SQLite may reuse an id
    kept = pointage_cache.pages.get(("pointage", *where))
    if kept is not None and kept[0] == state:
        return kept[1]
    with gc_paused():
        body = _build(session, ledger, state, year, where)
    # One body per year (the latest state's): a year of 10,000 lines weighs some 10 MB.
    pointage_cache.pages.put(("pointage", *where), (state, body), body_weight(body))
    return body


def body_weight(body: Body) -> int:
    """A kept body's estimated memory: its parts' bytes (shared with the year kept, but they may outlive
    it) and its tuple of the year's lines, so that the cache's budget (`CAHIER_CACHE_MB`) bounds the
    bodies of large years too."""
    return sum(len(piece) for part in (body.lines, body.proposals, body.missing) for piece in part) + (
        100 * body.line_count
    )


def _build(session, ledger: Ledger, state: tuple, year: int, where) -> Body:
    kept = pointage_cache.parts.take(where)
    if kept is not None and kept.editable != ledger.is_open:  # every row and button changes
        kept = None
    book, change = rec.pointage_year(session, ledger, kept.year if kept else None, state)
    if kept is None:
        kept = Kept(book, ledger.is_open, rec.Matching() if ledger.is_open else None)
    kept.year = book
    _move_lines(kept, change, ledger, year)
    # The summary's figures at the dates the last body knew, moved by the lines that changed.
    kept.figures = {on: book.moved(figures, on, change) for on, figures in list(kept.figures.items())}
    body = Body(kept.lines.pieces(), kept.lines.count, book.ledger_id, tuple(book.rows.values()), figures=kept.figures)
    if kept.matching is not None:
        _move_matches(kept, change, ledger, year)
        body.proposals = kept.proposals.pieces() + kept.suggestions.pieces()
        body.has_proposals, body.has_suggestions = bool(kept.proposals.count), bool(kept.suggestions.count)
        body.has_items, body.has_missing = bool(kept.matching.bank), bool(kept.missing.count)
        body.missing = kept.missing.pieces()
        body.anomalies = tuple(kept.matching.parts[rec.ANOMALIES].values)
    pointage_cache.keep(where, kept)
    return body


def _movement(row: rec.BankRow) -> bool:
    return row.kind != "opening"


def _move_lines(kept: Kept, change: rec.YearChange, ledger: Ledger, year: int) -> None:
    """The bank lines' rows: those of the changed lines only are rendered again."""
    fresh = [rec.PointageLine.of(r, ledger.id) for r in change.rows_new if _movement(r)]
    rendered = line_rows(fresh, year=year, editable=kept.editable)
    kept.lines.change(
        [(r.date, r.line_id) for r in change.rows_gone if _movement(r)],
        [((line.date, line.line_id), row) for line, row in zip(fresh, rendered, strict=True)],
    )


def _move_matches(kept: Kept, change: rec.YearChange, ledger: Ledger, year: int) -> None:
    """The matching brought up to date by the changed lines, and the rows of what it changed."""
    matching = kept.matching
    uncleared = [r for r in change.rows_gone if _movement(r) and r.cleared_on is None]
    new = [
        rec.BookLine(r.line_id, r.entry_id, r.date, r.amount, r.mode, normalise_number(r.number), r.label, r.piece)
        for r in change.rows_new
        if _movement(r) and r.cleared_on is None
    ]
    moved = matching.update(
        [item.id for item in change.items_gone], change.items_new, [r.line_id for r in uncleared], new
    )
    dates: dict = {}  # dates repeat all year long: each is formatted once

    def day_of(value: date) -> str:
        return dates.get(value) or dates.setdefault(value, fr_date(value))

    def proposal(p: rec.Proposal) -> bytes:
        lines = tuple(matching.book[line_id] for line_id in p.line_ids)
        return _proposal_row(p, matching.bank[p.bank_id], lines, day_of).encode()

    for part, rows in ((rec.PROPOSALS, kept.proposals), (rec.SUGGESTIONS, kept.suggestions)):
        dropped, added = moved[part]
        rows.change(dropped, [(key, proposal(p)) for key, p in added])
    dropped, added = moved[rec.UNMATCHED_BANK]
    kept.missing.change(dropped, [(key, missing_item(matching.bank[ident], ledger, year)) for key, ident in added])


def page_with_parts(html: str, body: Body) -> Response:
    """The page rendered around the markers, with each long part (already UTF-8, in blocks) put in its
    place and sent as pieces of the response: a year's parts weigh megabytes, never copied through Jinja."""
    pieces: list[bytes] = []
    rest = html
    parts = ((PROPOSALS_MARKER, body.proposals), (MISSING_MARKER, body.missing), (LINES_MARKER, body.lines))
    for marker, part in parts:
        before, found, after = rest.partition(marker)
        if not found:  # not on this page (a closed year, nothing to propose)
            continue
        pieces += [before.encode(), *part]
        rest = after
    pieces.append(rest.encode())
    return current_app.response_class(pieces, mimetype="text/html")


def line_rows(lines, *, year: int, editable: bool) -> list[bytes]:
    """The <tr> elements of these bank lines (UTF-8), each with its button in an open year (no JS needed)."""
    if not lines:
        return []
    base = url_for("pointage.clear", year=year, line_id=0).rsplit("/0/", 1)[0]
    render = _open_row if editable else _closed_row
    # Dates, amounts and modes repeat all year long: each is formatted once.
    day = {value: fr_date(value) for value in {line.date for line in lines} | {line.cleared_on for line in lines}}
    money = {value: euros(abs(value)) for value in {line.amount for line in lines}}
    mode_of = {value: escape(MODE_LABELS.get(value, value)) for value in {line.mode for line in lines}}
    return [render(line, base, day, money, mode_of).encode() for line in lines]


def _open_row(line, base: str, day: Mapping, money: Mapping, mode_of: Mapping) -> str:
    piece = escape(line.piece)
    number = f" {escape(line.number)}" if line.number else ""
    kind, style, text = _CLEAR if line.cleared_on is None else _UNCLEAR
    amount = line.amount
    earlier = line.earlier_year
    return (
        f'<tr id="ligne-{line.line_id}"{_EARLIER_ROW if earlier else ""}>'
        f'<td class="text-nowrap">{day[line.date]}</td><th scope="row">{piece}</th>'
        f"<td>{escape(line.label)}{_EARLIER if earlier else ''}</td><td>{mode_of[line.mode]}{number}</td>"
        f'<td class="text-end text-nowrap">{money[amount] if amount > 0 else ""}</td>'
        f'<td class="text-end text-nowrap">{money[amount] if amount < 0 else ""}</td>'
        f'<td class="cleared">{day[line.cleared_on]}</td>'
        f'<td class="line-action"><button class="btn btn-sm {style}" data-kind="{kind}" '
        f'formaction="{base}/{line.line_id}/{"pointer" if kind == "clear" else "depointer"}">'
        f'{text}<span class="visually-hidden"> {piece}</span></button></td></tr>'
    )


def _closed_row(line, _base: str, day: Mapping, money: Mapping, mode_of: Mapping) -> str:
    """A line of a closed year: shown, not pointable."""
    number = f" {escape(line.number)}" if line.number else ""
    amount = line.amount
    return (
        f'<tr id="ligne-{line.line_id}"><td class="text-nowrap">{day[line.date]}</td>'
        f'<th scope="row">{escape(line.piece)}</th><td>{escape(line.label)}</td><td>{mode_of[line.mode]}{number}</td>'
        f'<td class="text-end text-nowrap">{money[amount] if amount > 0 else ""}</td>'
        f'<td class="text-end text-nowrap">{money[amount] if amount < 0 else ""}</td>'
        f'<td class="cleared">{day[line.cleared_on]}</td><td></td></tr>'
    )


def _proposal_row(p: rec.Proposal, item: rec.BankItem, lines: tuple, day_of) -> str:
    value = f"{p.bank_id}:{','.join(map(str, p.line_ids))}"
    day = day_of(item.date)
    several = len(lines) > 1
    row_class = "" if p.sure else ' class="table-warning"'
    cells = "".join(
        f"<div>{escape(b.piece)} du {day_of(b.date)} — {escape(b.label)}"
        f"{f' ({euros(b.amount)})' if several else ''}</div>"
        for b in lines
    )
    return (
        f"<tr{row_class}>"
        f'<td><input class="form-check-input" type="checkbox" name="match" value="{value}" id="m-{p.bank_id}"'
        f"{' checked' if p.sure else ''}></td>"
        f'<td><label for="m-{p.bank_id}">{day} — {escape(item.label)}</label></td>'
        f'<td class="text-end text-nowrap">{euros(item.amount)}</td><td>{cells}</td>'
        f'<td class="small">{"" if p.sure else "<strong>À vérifier :</strong> "}{escape(p.explanation)}</td>'
        f'<td><button class="btn btn-sm btn-outline-success" type="submit" name="un" value="{value}">Confirmer'
        f'<span class="visually-hidden"> la ligne du {day}</span></button></td></tr>'
    )


def missing_item(item: rec.BankItem, ledger: Ledger, year: int) -> bytes:
    """A statement line absent from the cash-book (UTF-8), with « Créer l'opération » in an open year."""
    day = fr_date(item.date)
    button = ""
    if ledger.is_open and ledger.school_year.contains(item.date):
        create = escape(url_for("ledger.new_entry", year=year) + "?releve=")
        button = (
            f'<a class="btn btn-sm btn-primary" href="{create}{item.id}">Créer l\'opération'
            f'<span class="visually-hidden"> du {day}</span></a>'
        )
    return (
        '<li class="list-group-item d-flex flex-wrap justify-content-between align-items-center gap-2">'
        f"<span>{day} — {escape(item.label)} : <strong>{euros(item.amount)}</strong></span>{button}</li>"
    ).encode()
