"""Yearly reports in the back office: the read-only list by status, and « Rouvrir le cahier ».

Reports are read-only here: their status only moves through `app.submission` (the full CRA/CRF
review is another screen, `admin.review`). Reopening a closed year goes through
`app.submission.reopen_year`, with a mandatory reason written to the audit log; a submitted report
is thereby returned to the coop, which is told by mail.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy.orm import contains_eager

from admin.base import StaffAccessMixin, StaffModelView, format_datetime
from app import clock, cra, submission
from app import crf as year_figures
from app.annual_report import find_report
from app.extensions import db
from app.formats import euros, fr_datetime
from app.models import AnnualReport, Coop, Document, Ledger, SchoolYear, coop_login
from app.web import notifications, uow
from app.web.netutil import client_ip
from forms.admin_reports import ReopenForm

PAGE_SIZE = 50
DOCUMENT_LABELS = {
    "report_quitus": "Quitus signé",
    "report_statement": "Relevé au 31 août",
    "report_subsidies": "Justificatifs des subventions",
    "report_other": "Autre document",
}


def _documents(view, context, model: AnnualReport, name) -> Markup:
    rows = db.session.scalars(
        sa.select(Document).where(Document.annual_report_id == model.id).order_by(Document.id)
    ).all()
    if not rows:
        return Markup("—")
    items = Markup("").join(
        Markup("<li>{} : <a href='{}'>{}</a></li>").format(
            DOCUMENT_LABELS.get(d.kind, d.kind),
            url_for("admin_review.document", report_id=model.id, document_id=d.id, telecharger=1),
            d.original_name,
        )
        for d in rows
    )
    return Markup("<ul class='mb-0'>{}</ul>").format(items)


def _auditors(view, context, model: AnnualReport, name) -> Markup:
    rows = [
        f"{a.get('name', '')} ({cra.AUDITOR_QUALITIES.get(a.get('quality', ''), '')})" for a in model.auditors or ()
    ]
    return Markup("<br>").join(escape(row) for row in rows) if rows else Markup("—")


def _figures(view, context, model: AnnualReport, name) -> str:
    snapshot = model.crf_snapshot
    if not snapshot:
        return "—"
    return (
        f"Résultat {euros(snapshot['resultat'])} · banque {euros(snapshot['closing']['bank'])} · caisse "
        f"{euros(snapshot['closing']['cash'])} · relevé {euros(snapshot['statement_balance'])}"
    )


def _reopen_link(view, context, model: AnnualReport, name) -> Markup:
    if model.ledger.is_open:
        return Markup("Cahier rouvert")
    return Markup("<a href='{}'>Rouvrir le cahier</a>").format(url_for("admin_closings.reopen", id=model.ledger_id))


class AnnualReportAdmin(StaffModelView):
    """Every coop's yearly report with its status; read-only."""

    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("coop", "school_year", "status", "submitted_at", "returned_at", "approved_at", "reopen")
    column_default_sort = ("submitted_at", True)
    column_sortable_list = (
        "status",
        "submitted_at",
        "returned_at",
        "approved_at",
        ("coop", "coop.number"),
        ("school_year", "school_year.start_year"),
    )
    column_filters = ("status", "school_year.start_year", "coop.number", "submitted_at")
    column_choices = {"status": list(submission.STATUS_LABELS.items())}
    column_labels = {
        "coop": "Coopérative",
        "school_year": "Année scolaire",
        "status": "Statut",
        "submitted_at": "Envoyé le",
        "returned_at": "Renvoyé le",
        "approved_at": "Approuvé le",
        "reopen": "Cahier",
        "documents": "Justificatifs",
        "auditors": "Vérificateurs",
        "mandataire_name": "Mandataire",
        "figures": "Chiffres envoyés",
        "return_reason": "Motif du renvoi",
        "council_count": "Conseils de coopérative",
        "school_year.start_year": "Année de rentrée",
        "coop.number": "N° de coopérative",
    }
    column_formatters = {
        "coop": lambda v, c, m, n: f"{coop_login(m.coop.number)} {m.coop.name}",
        "submitted_at": format_datetime,
        "returned_at": format_datetime,
        "approved_at": format_datetime,
        "documents": _documents,
        "auditors": _auditors,
        "figures": _figures,
        "reopen": _reopen_link,
    }
    column_details_list = (
        "coop",
        "school_year",
        "status",
        "figures",
        "council_count",
        "auditors",
        "mandataire_name",
        "documents",
        "submitted_at",
        "returned_at",
        "return_reason",
        "approved_at",
        "reopen",
    )


class ClosingAdminView(StaffAccessMixin, BaseView):
    """Closed cash-books, and « Rouvrir le cahier » with a mandatory reason."""

    @expose("/")
    def index(self):
        search = (request.args.get("coop") or "").strip()[:20]
        page = max(request.args.get("page", 1, type=int), 1)
        query = (
            sa.select(Ledger)
            .join(Coop, Coop.id == Ledger.coop_id)
            .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
            .where(Ledger.status == "closed")
        )
        digits = search.replace("085-", "").replace("-", "")
        if digits.isdigit():
            query = query.where(Coop.number == int(digits))
        elif search:
            query = query.where(Coop.name.ilike(f"%{search}%"))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        ledgers = db.session.scalars(
            query.options(contains_eager(Ledger.coop), contains_eager(Ledger.school_year))
            .order_by(SchoolYear.start_year.desc(), Coop.number)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()  # coop and year loaded with the page: no query per row
        statuses = dict(
            db.session.execute(
                sa.select(AnnualReport.ledger_id, AnnualReport.status).where(
                    AnnualReport.ledger_id.in_([lg.id for lg in ledgers])
                )
            ).all()
        )
        return self.render(
            "admin/closings.html",
            ledgers=ledgers,
            statuses=statuses,
            labels=submission.STATUS_LABELS,
            search=search,
            page=page,
            pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            total=total,
            fr_datetime=fr_datetime,
        )

    @expose("/verifier")
    def verify(self):
        """A paper CRF against the record: the code printed on it gives the coop, the year, the
        closing date and the result stored at closing, and whether the figures are intact."""
        code = (request.args.get("code") or "").strip()[:40]
        found = year_figures.verify(db.session, code) if code else None
        return self.render(
            "admin/review_verify.html",
            code=code,
            normalized=year_figures.normalize_code(code),
            found=found,
            fr_datetime=fr_datetime,
        )

    @expose("/rouvrir/<int:id>", methods=("GET", "POST"))
    def reopen(self, id: int):
        ledger = db.session.get(Ledger, id)
        if ledger is None:
            abort(404)
        form = ReopenForm()
        label, login = ledger.school_year.label, ledger.coop.login
        if not ledger.is_open and form.validate_on_submit():
            outcome = uow.run(lambda: _reopen(ledger, form.reason.data), form=form)
            if outcome.ok:
                returned = " ; son compte rendu lui est renvoyé par courriel." if outcome.value else "."
                flash(
                    f"Cahier {label} de {login} rouvert{returned} Il pourra le clôturer à nouveau depuis le portail.",
                    "success",
                )
                return redirect(url_for(".index", coop=login))
            form.reason.errors = outcome.errors  # every refusal under the reason, where staff look
        return self.render(
            "admin/reopen_ledger.html",
            ledger=ledger,
            form=form,
            report=find_report(db.session, ledger),
            labels=submission.STATUS_LABELS,
            fr_datetime=fr_datetime,
        )


def _reopen(ledger: Ledger, reason: str) -> AnnualReport | None:
    """Reopen the year; a submitted report goes back to the coop, which is told by mail."""
    returned = submission.reopen_year(
        db.session, ledger, reason=reason, by=current_user, now=clock.now(), ip=client_ip()
    )
    if returned is not None:
        notifications.report_reopened(db.session, returned)
    return returned
