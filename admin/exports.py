"""Federation exports, as CSV (Excel, `;`) or XLSX."""

from __future__ import annotations

from flask import Response, abort, request
from flask_admin import BaseView, expose

from admin.base import StaffAccessMixin
from app import clock, exports
from app.extensions import db
from app.models import school_year_start

_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _send(table: exports.Table, name: str, fmt: str, *more_sheets: exports.Table) -> Response:
    if fmt not in _TYPES:
        abort(404)
    content = exports.to_csv(table) if fmt == "csv" else exports.to_xlsx(table, *more_sheets)
    return Response(
        content, content_type=_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    )


class ExportView(StaffAccessMixin, BaseView):
    @expose("/")
    def index(self):
        current = school_year_start(clock.today())
        return self.render("admin/exports.html", years=[current, current - 1, current - 2])

    @expose("/coops.<fmt>")
    def coops(self, fmt: str):
        return _send(exports.coops_table(db.session, clock.today()), "cooperatives", fmt)

    @expose("/adhesions-<int:year>.<fmt>")
    def memberships(self, year: int, fmt: str):
        return _send(exports.memberships_table(db.session, year), f"adhesions-{year}-{year + 1}", fmt)

    @expose("/crf-<int:year>.<fmt>")
    def crf(self, year: int, fmt: str):
        accounts, coops, inventory = exports.consolidated_crf(db.session, year)
        name = f"crf-consolide-{year}-{year + 1}"
        if request.args.get("par") == "coop":
            return _send(coops, f"{name}-par-cooperative", fmt)
        if request.args.get("par") == "inventaire":
            return _send(inventory, f"{name}-inventaire", fmt)
        # the Excel workbook by account also carries the inventory register on a second sheet
        return _send(accounts, f"{name}-par-compte", fmt, inventory)
