"""HTML rows of the pointage screen's bank lines, built in Python (a year can hold 10,000 lines).

The rows sit in one form of the page (one CSRF token for the page, not one per line): each
« Pointer » / « Dépointer » button posts it to its own line's address (`formaction`), so the page
works the same without JavaScript, and weighs about half as much.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape  # stdlib: much faster than markupsafe on 10,000 rows; quote=True by default

from flask import url_for
from markupsafe import Markup

from app.formats import euros, fr_date

_CLEAR = ("clear", "btn-outline-primary", "Pointer")
_UNCLEAR = ("unclear", "btn-outline-secondary", "Dépointer")
_EARLIER_ROW = ' class="table-info"'
_EARLIER = ' <span class="badge text-bg-info">année précédente</span>'


def pointage_rows(lines, modes: Mapping[str, str], *, year: int) -> Markup:
    """The <tr> elements of the pointage screen's bank lines, each with its button (no JS needed)."""
    base = url_for("pointage.clear", year=year, line_id=0).rsplit("/0/", 1)[0]
    # Dates, amounts and modes repeat all year long: each is formatted once.
    day = {value: fr_date(value) for value in {line.date for line in lines} | {line.cleared_on for line in lines}}
    money = {value: euros(abs(value)) for value in {line.amount for line in lines}}
    mode_of = {value: escape(modes.get(value, value)) for value in {line.mode for line in lines}}
    parts = []
    for line in lines:
        piece = escape(line.piece)
        number = f" {escape(line.number)}" if line.number else ""
        kind, style, text = _CLEAR if line.cleared_on is None else _UNCLEAR
        amount = line.amount
        earlier = line.earlier_year
        parts.append(
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
    return Markup("\n".join(parts))  # noqa: S704 - user text goes through html.escape above
