"""Cash-books, read-only for staff: corrections go through the domain (the coop, or a reopening)."""

from __future__ import annotations

from flask import url_for
from flask_admin.contrib.sqla.filters import IntEqualFilter
from markupsafe import Markup, escape
from sqlalchemy.orm import joinedload

from admin.base import StaffModelView, format_date, format_datetime
from app.extensions import db
from app.formats import euros, fr_date
from app.ledger import KIND_LABELS, MODE_LABELS, form_kind
from app.models import Document, Entry, Ledger


def _lines(view, context, model, name):
    items = []
    for line in model.lines:
        cleared = f" (pointé le {fr_date(line.cleared_on)})" if line.cleared_on else ""
        items.append(
            f"<li>{escape(line.account.display_code)} {escape(line.account.label)} : "
            f"{escape(euros(line.amount_cents))}{cleared}</li>"
        )
    return Markup(f"<ul class='mb-0'>{''.join(items)}</ul>")  # noqa: S704 - every value escaped above


def _vouchers(view, context, model, name):
    documents = db.session.scalars(db.select(Document).where(Document.entry_id == model.id)).all()
    if not documents:
        return "—"
    links = "".join(
        f"<li><a href='{url_for('ledger.download_document', document_id=d.id)}'>{escape(d.original_name)}</a></li>"
        for d in documents
    )
    return Markup(f"<ul class='mb-0'>{links}</ul>")  # noqa: S704 - names escaped, URLs built by url_for


class EntryAdmin(StaffModelView):
    """Every coop's operations, searchable; never editable here.

    The table holds every operation of every coop and year (millions at federation scale): the list
    does not count its rows (`simple_list_pager`), sorts on the indexed date, and loads each row's
    ledger, coop and year with the page instead of one query per row.
    """

    simple_list_pager = True
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("coop_id", "ledger", "piece", "date", "label", "kind", "payment_mode", "cheque_number")
    column_default_sort = ("date", True)
    column_labels = {
        "coop_id": "Coop",
        "ledger": "Année",
        "piece": "Pièce",
        "date": "Date",
        "label": "Libellé",
        "kind": "Type",
        "payment_mode": "Mode",
        "cheque_number": "Chèque",
        "lines": "Écriture",
        "vouchers": "Justificatifs",
        "action": "Action",
        "created_at": "Saisie le",
    }
    column_formatters = {
        "coop_id": lambda v, c, m, n: m.ledger.coop.login,
        "ledger": lambda v, c, m, n: m.ledger.school_year.label,
        "date": format_date,
        "created_at": format_datetime,
        "kind": lambda v, c, m, n: KIND_LABELS.get(form_kind(m), "Report à nouveau"),
        "payment_mode": lambda v, c, m, n: MODE_LABELS.get(m.payment_mode, m.payment_mode),
        "lines": _lines,
        "vouchers": _vouchers,
    }
    column_details_list = (
        "coop_id",
        "ledger",
        "piece",
        "date",
        "label",
        "kind",
        "payment_mode",
        "cheque_number",
        "action",
        "lines",
        "vouchers",
        "created_at",
    )
    column_searchable_list = ("piece", "label", "cheque_number")

    def get_query(self):
        return (
            super()
            .get_query()
            .options(
                joinedload(Entry.ledger).joinedload(Ledger.coop),
                joinedload(Entry.ledger).joinedload(Ledger.school_year),
            )
        )

    column_filters = (IntEqualFilter(Entry.coop_id, "Coopérative (n° interne)"), "date", "kind", "payment_mode")
