"""Review of the yearly reports (CRA / CRF) by OCCE 85 staff: figures, answers, documents inline
(every file of every slot, the several subsidy proofs included),
automatic checks (`app.submission.automatic_checks`), then « Approuver » or « Renvoyer » with a
comment, or « Rouvrir le cahier ». Each action runs through the unit of work and redirects."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin
from app import clock, cra, submission
from app.crf import build_crf
from app.extensions import db
from app.models import Coop, Document, SchoolYear
from app.models.reports import AnnualReport
from app.web import notifications, uow
from app.web.downloads import send_document
from app.web.netutil import client_ip
from forms.admin_reports import CommentForm, ReviewActionForm

_ORDER = ("submitted", "returned", "draft", "approved")


def _report_or_404(report_id: int) -> AnnualReport:
    report = db.session.get(AnnualReport, report_id)
    if report is None:
        abort(404)
    return report


def _approve(report: AnnualReport) -> None:
    submission.approve_report(db.session, report, by=current_user, now=clock.now(), ip=client_ip())
    notifications.report_reviewed(db.session, report, "report_approved")


def _send_back(report: AnnualReport, reason: str) -> None:
    submission.return_report(db.session, report, reason=reason, by=current_user, now=clock.now(), ip=client_ip())
    notifications.report_reviewed(db.session, report, "report_returned_review", reason=report.return_reason)


def _reopen(report: AnnualReport, reason: str) -> None:
    returned = submission.reopen_year(
        db.session, report.ledger, reason=reason, by=current_user, now=clock.now(), ip=client_ip()
    )
    if returned is not None:
        notifications.report_reviewed(db.session, report, "report_returned", reason=reason)


class ReviewView(StaffAccessMixin, BaseView):
    @expose("/")
    def index(self):
        status = request.args.get("etat", "submitted")
        if status not in submission.STATUS_LABELS:
            abort(404)
        rows = db.session.execute(
            sa.select(AnnualReport, Coop, SchoolYear)
            .join(Coop, Coop.id == AnnualReport.coop_id)
            .join(SchoolYear, SchoolYear.id == AnnualReport.school_year_id)
            .where(AnnualReport.status == status)
            .order_by(SchoolYear.start_year.desc(), Coop.number)
        ).all()
        counts = dict(
            db.session.execute(sa.select(AnnualReport.status, sa.func.count()).group_by(AnnualReport.status)).all()
        )
        return self.render(
            "admin/review_index.html",
            rows=rows,
            status=status,
            counts=counts,
            labels=submission.STATUS_LABELS,
            order=_ORDER,
        )

    @expose("/<int:report_id>")
    def report(self, report_id: int):
        report = _report_or_404(report_id)
        crf = build_crf(db.session, report.ledger)
        mandataires = cra.current_mandataires(report.coop, clock.now().date())
        missing = submission.missing_items(db.session, report, report.ledger, crf, mandataires)
        present = submission.report_documents(db.session, report)
        slots = [slot for slot in submission.document_slots(crf) if slot.required or slot.kind in present]
        auditors, mandataire = cra.quitus_of(report)
        return self.render(
            "admin/review_report.html",
            report=report,
            crf=crf,
            checks=submission.automatic_checks(crf, missing),
            slots=slots,
            present=present,
            auditors=auditors,
            mandataire=mandataire,
            labels=submission.STATUS_LABELS,
            qualities=cra.AUDITOR_QUALITIES,
            form=ReviewActionForm(),
            comment_form=CommentForm(),
        )

    @expose("/<int:report_id>/document/<int:document_id>")
    def document(self, report_id: int, document_id: int):
        document = db.session.get(Document, document_id)
        if document is None or document.annual_report_id != report_id:
            abort(404)
        return send_document(document, inline=request.args.get("telecharger") is None, audited=True)

    @expose("/<int:report_id>/approuver", methods=("POST",))
    def approve(self, report_id: int):
        report = _report_or_404(report_id)
        if not ReviewActionForm().validate_on_submit():
            abort(400)
        login = report.coop.login
        if uow.run(lambda: _approve(report)).ok:
            flash(f"Compte rendu de {login} approuvé ; la coopérative est prévenue.", "success")
        return redirect(url_for(".report", report_id=report_id))

    @expose("/<int:report_id>/renvoyer", methods=("POST",))
    def send_back(self, report_id: int):
        report = _report_or_404(report_id)
        form = CommentForm()
        if not form.validate_on_submit():
            flash(form.reason.errors[0] if form.reason.errors else "Formulaire expiré.", "danger")
        elif uow.run(lambda: _send_back(report, form.reason.data)).ok:
            flash(f"Compte rendu renvoyé à {report.coop.login} avec votre commentaire.", "success")
        return redirect(url_for(".report", report_id=report_id))

    @expose("/<int:report_id>/rouvrir", methods=("POST",))
    def reopen(self, report_id: int):
        report = _report_or_404(report_id)
        form = CommentForm()
        if not form.validate_on_submit():
            flash("Indiquez le motif de la réouverture du cahier.", "danger")
        elif uow.run(lambda: _reopen(report, form.reason.data)).ok:
            flash(f"Cahier {report.ledger.school_year.label} de {report.coop.login} rouvert.", "success")
        return redirect(url_for(".report", report_id=report_id))
