"""The pointage screen's long parts, built in Python and kept between requests (a year can hold 10,000 lines).

Three parts of the page grow with the year: the bank lines, the proposals and the statement lines
missing from the cash-book. They are built here with plain string joins (every text coming from
users is escaped with the standard library's `html.escape`, quotes included), as UTF-8 bytes, and
put in the page rendered around their markers (`page_with_parts`), never copied through Jinja.

What is kept, per process:

- `pointage_cache.pages` holds, per year, the body (`Body`: the parts, the year's bank book, what the
  page's frame needs) built for the year's latest state (`reconciliation.pointage_state`: every
  ledger's revision and status, the coop's statements), so a repeated view reads one cheap statement
  and renders only the page's frame. The bodies live in the classic view's LRU of pages
  (`cahier_cache.pages`, emptied with it, as the tests' `app` fixture does).
- `pointage_cache.parts` holds, per ledger, each row's HTML keyed by everything the row shows (the
  line's own values, the proposal with its statement and cash-book lines), and the matching's
  outcome per independent group of lines, keyed by the group's lines (`match_in_groups`): after a
  change only the rows that changed are rendered again, and only the groups it touched are matched
  again. Keyed by content, never by id alone: never stale.

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

    book: rec.BankBook
    lines: bytes
    line_count: int
    proposals: bytes = b""
    has_proposals: bool = False
    has_suggestions: bool = False
    has_items: bool = False
    missing: bytes = b""
    has_missing: bool = False
    anomalies: tuple[str, ...] = ()
    # Reconciliations at a date, without the statement balance (the page's date moves with the days).
    reconciliations: dict = dataclasses.field(default_factory=dict)

    def summary(self, session, ledger: Ledger, today: date) -> rec.Reconciliation:
        """`reconciliation.summary`, from the book read once, kept by date."""
        on = rec.summary_date(ledger, today)
        if on < self.book.starts_on:  # a statement date typed before the year began
            return rec.summary(session, ledger, today)
        found = self.reconciliations.get(on)
        if found is None:
            if len(self.reconciliations) >= 8:  # a few dates at most in a body's life: today, the one typed
                self.reconciliations.clear()
            found = self.reconciliations[on] = self.book.reconciliation(on, None)
        typed = ledger.reconciliation_balance_cents if ledger.reconciliation_date else None
        return dataclasses.replace(found, statement_balance=typed)


class PointageCache:
    """What the pointage screen keeps between requests, per process (see the module's docstring)."""

    def __init__(self, ledgers: int = 16) -> None:
        self.parts = RenderCache(ledgers)

    @property
    def pages(self) -> RenderCache:
        return cahier_cache.pages

    def clear(self) -> None:
        """Forget the rows and matchings kept (the bodies go with `cahier_cache.clear()`)."""
        self.parts.clear()


pointage_cache = PointageCache()


def page_body(session, ledger: Ledger, year: int, coop_id: int) -> Body:
    """The body of the pointage page of `ledger` (the year starting in `year`), as kept for its state."""
    where = (ledger.id, ledger.created_at, year, request.script_root)  # created_at: SQLite may reuse an id
    state = rec.pointage_state(session, ledger)
    kept = pointage_cache.pages.get(("pointage", *where))
    if kept is not None and kept[0] == state:
        return kept[1]
    with gc_paused():
        body = _build(session, ledger, year, coop_id, where)
    # One body per year (the latest state's): a year of 10,000 lines weighs some 10 MB.
    pointage_cache.pages.put(("pointage", *where), (state, body), body_weight(body))
    return body


def body_weight(body: Body) -> int:
    """A kept body's estimated memory (its bytes, and the bank book's line objects: about as much again),
    so that the cache's budget (`CAHIER_CACHE_MB`) bounds the bodies of large years too."""
    return 2 * (len(body.lines) + len(body.proposals) + len(body.missing)) + 500 * body.line_count


def _build(session, ledger: Ledger, year: int, coop_id: int, where) -> Body:
    known = pointage_cache.parts.get(where) or {}
    kept: dict = {}
    book = rec.bank_book(session, ledger)  # the year's bank lines and those carried into it, read once
    rows_key = ("lines", ledger.is_open)  # a closed year's rows have no button
    shown = book.pointage_lines()
    lines, kept[rows_key] = line_rows(shown, year=year, editable=ledger.is_open, known=known.get(rows_key))
    body = Body(book, lines, len(shown))
    if ledger.is_open:  # a frozen year proposes nothing
        items = {item.id: item for item in rec.open_bank_items(session, coop_id, ledger)}
        uncleared = {line.line_id: line for line in book.book_lines()}
        # matched in independent groups, each kept by its inputs: a change matches its own group again
        matches, kept["match"] = rec.match_in_groups(list(items.values()), list(uncleared.values()), known.get("match"))
        body.proposals, kept["proposals"] = proposal_rows(matches, items, uncleared, known.get("proposals"))
        body.has_proposals, body.has_suggestions = bool(matches.proposals), bool(matches.suggestions)
        body.has_items, body.has_missing = bool(items), bool(matches.unmatched_bank)
        body.missing = missing_items(matches, items, ledger, year)
        body.anomalies = tuple(matches.anomalies)
    pointage_cache.parts.put(where, kept)
    return body


def page_with_parts(html: str, body: Body) -> Response:
    """The page rendered around the markers, with each long part (already UTF-8) put in its place and
    sent as one piece of the response: a year's parts weigh megabytes, never copied through Jinja."""
    pieces: list[bytes] = []
    rest = html
    parts = ((PROPOSALS_MARKER, body.proposals), (MISSING_MARKER, body.missing), (LINES_MARKER, body.lines))
    for marker, part in parts:
        before, found, after = rest.partition(marker)
        if not found:  # not on this page (a closed year, nothing to propose)
            continue
        pieces += [before.encode(), part]
        rest = after
    pieces.append(rest.encode())
    return current_app.response_class(pieces, mimetype="text/html")


def line_rows(lines, *, year: int, editable: bool, known: dict | None = None) -> tuple[bytes, dict]:
    """The <tr> elements of the bank lines (UTF-8), each with its button in an open year (no JS needed).

    `known` maps a line (every value its row shows) to its row, as last rendered: only new or
    changed lines are rendered again. Returns the rows and that map for the lines shown."""
    known = known or {}
    fresh = [line for line in lines if line not in known]
    rendered: dict = {}
    if fresh:
        base = url_for("pointage.clear", year=year, line_id=0).rsplit("/0/", 1)[0]
        render = _open_row if editable else _closed_row
        # Dates, amounts and modes repeat all year long: each is formatted once.
        day = {value: fr_date(value) for value in {line.date for line in fresh} | {line.cleared_on for line in fresh}}
        money = {value: euros(abs(value)) for value in {line.amount for line in fresh}}
        mode_of = {value: escape(MODE_LABELS.get(value, value)) for value in {line.mode for line in fresh}}
        rendered = {line: render(line, base, day, money, mode_of).encode() for line in fresh}
    kept = {line: known.get(line) or rendered[line] for line in lines}  # in the lines' order
    return b"\n".join(kept.values()), kept


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


def proposal_rows(matches: rec.MatchResult, items: dict, book: dict, known: dict | None = None) -> tuple[bytes, dict]:
    """The <tr> of the proposals table (sure ones checked, suggestions on yellow), UTF-8, and the map of
    each proposal (with the statement and cash-book lines it shows) to its row, for the next build."""
    known = known or {}
    kept: dict = {}
    dates: dict = {}  # dates repeat all year long: each is formatted once

    def day_of(value: date) -> str:
        return dates.get(value) or dates.setdefault(value, fr_date(value))

    for p in matches.proposals + matches.suggestions:
        item = items[p.bank_id]
        lines = tuple(book[line_id] for line_id in p.line_ids)
        key = (p.line_ids, p.rule, p.explanation, p.sure, item, lines)  # plain tuples: hashed in C
        row = known.get(key)
        if row is None:
            row = _proposal_row(p, item, lines, day_of).encode()
        kept[key] = row
    return b"\n".join(kept.values()), kept


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


def missing_items(matches: rec.MatchResult, items: dict, ledger: Ledger, year: int) -> bytes:
    """The statement lines absent from the cash-book (UTF-8), each with « Créer l'opération » in an open year."""
    create = escape(url_for("ledger.new_entry", year=year) + "?releve=")
    first, last = ledger.school_year.starts_on, ledger.school_year.ends_on
    can_create = ledger.is_open
    parts = []
    for item_id in matches.unmatched_bank:
        item = items[item_id]
        day = fr_date(item.date)
        button = (
            f'<a class="btn btn-sm btn-primary" href="{create}{item.id}">Créer l\'opération'
            f'<span class="visually-hidden"> du {day}</span></a>'
            if can_create and first <= item.date <= last
            else ""
        )
        parts.append(
            '<li class="list-group-item d-flex flex-wrap justify-content-between align-items-center gap-2">'
            f"<span>{day} — {escape(item.label)} : <strong>{euros(item.amount)}</strong></span>{button}</li>"
        )
    return "\n".join(parts).encode()
