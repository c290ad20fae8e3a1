"""HTML rows of the pointage screen's bank lines, built in Python (a year can hold 10,000 lines)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape  # stdlib: much faster than markupsafe on 10,000 rows; quote=True by default

from flask import url_for
from markupsafe import Markup

from app.formats import euros, fr_date


def pointage_rows(lines, modes: Mapping[str, str], *, year: int, csrf_token: str) -> Markup:
    """The <tr> elements of the pointage screen's bank lines (one small form per line, no JS needed)."""
    clear_url = url_for("pointage.clear", year=year, line_id=0).rsplit("/0/", 1)
    unclear_url = url_for("pointage.unclear", year=year, line_id=0).rsplit("/0/", 1)
    token = f'<input id="csrf_token" name="csrf_token" type="hidden" value="{escape(csrf_token)}">'
    parts = []
    for line in lines:
        piece = escape(line.piece)
        badge = ' <span class="badge text-bg-info">année précédente</span>' if line.earlier_year else ""
        number = f" {escape(line.number)}" if line.number else ""
        cleared = line.cleared_on is not None
        url = unclear_url if cleared else clear_url
        action = f"{url[0]}/{line.line_id}/{url[1]}"
        button = (
            f'<button type="submit" class="btn btn-sm {"btn-outline-secondary" if cleared else "btn-outline-primary"}">'
            f'{"Dépointer" if cleared else "Pointer"}<span class="visually-hidden"> {piece}</span></button>'
        )
        row_class = ' class="table-info"' if line.earlier_year else ""
        parts.append(
            f'<tr id="ligne-{line.line_id}"{row_class}>'
            f'<td class="text-nowrap">{fr_date(line.date)}</td><th scope="row">{piece}</th>'
            f"<td>{escape(line.label)}{badge}</td><td>{escape(modes.get(line.mode, line.mode))}{number}</td>"
            f'<td class="text-end text-nowrap">{euros(line.amount) if line.amount > 0 else ""}</td>'
            f'<td class="text-end text-nowrap">{euros(-line.amount) if line.amount < 0 else ""}</td>'
            f'<td class="cleared">{fr_date(line.cleared_on)}</td>'
            f'<td><form method="post" class="line-action" data-kind="{"unclear" if cleared else "clear"}" '
            f'action="{action}">{token}{button}</form></td></tr>'
        )
    return Markup("\n".join(parts))  # noqa: S704 - user text goes through html.escape above
