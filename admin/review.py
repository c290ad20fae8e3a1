"""Review of the yearly reports (CRA / CRF) by OCCE 85 staff: figures, answers, documents inline,
automatic checks, then « Approuver » or « Renvoyer » with a comment, or « Rouvrir le cahier »."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from admin.base import StaffAccessMixin
from app import closing, reports
from app.errors import DomainError
from app.extensions import db
from app.models import Coop, Document, SchoolYear, utcnow
from app.models.reports import AnnualReport
from app.web import notifications
from app.web.downloads import send_document
from app.web.netutil import client_ip

_ORDER = ("submitted", "returned", "draft", "approved")


class CommentForm(FlaskForm):
    reason = TextAreaField(
        "Commentaire pour la coopérative",
        validators=[DataRequired("Indiquez ce que la coopérative doit corriger."), Length(max=2000)],
        render_kw={"rows": 3},
    )


class EmptyForm(FlaskForm):
    pass


def automatic_checks(crf: reports.Crf, missing: list[reports.Missing]) -> list[tuple[bool, str]]:
    """What staff would otherwise check by hand, each with its verdict."""
    checks = [
        (crf.is_balanced, "Le bilan est équilibré (actif = report à nouveau + résultat)."),
        (crf.is_closed, "Le cahier est clôturé."),
    ]
    reconciliation = crf.reconciliation
    explained = reconciliation.statement_balance is not None and reconciliation.is_reconciled
    checks.append((explained, "Le rapprochement bancaire au 31 août est expliqué (relevé = banque − non pointées)."))
    checks.append((crf.closing_advance == 0, "Les régies d'avance sont soldées."))
    documents = [m for m in missing if m.step == "documents"]
    checks.append(
        (
            not documents,
            "Les justificatifs obligatoires sont déposés."
            if not documents
            else "Justificatifs manquants : " + " ".join(m.message for m in documents),
        )
    )
    return checks


def _report_or_404(report_id: int) -> AnnualReport:
    report = db.session.get(AnnualReport, report_id)
    if report is None:
        abort(404)
    return report


class ReviewView(StaffAccessMixin, BaseView):
    @expose("/")
    def index(self):
        status = request.args.get("etat", "submitted")
        if status not in reports.STATUS_LABELS:
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
            labels=reports.STATUS_LABELS,
            order=_ORDER,
        )

    @expose("/<int:report_id>")
    def report(self, report_id: int):
        report = _report_or_404(report_id)
        crf = reports.build_crf(db.session, report.ledger)
        mandataires = reports.current_mandataires(report.coop, utcnow().date())
        missing = reports.missing_items(db.session, report, report.ledger, crf, mandataires)
        documents = db.session.scalars(
            sa.select(Document).where(Document.annual_report_id == report.id).order_by(Document.kind)
        ).all()
        auditors, mandataire = reports.quitus_of(report)
        return self.render(
            "admin/review_report.html",
            report=report,
            crf=crf,
            checks=automatic_checks(crf, missing),
            documents=documents,
            auditors=auditors,
            mandataire=mandataire,
            labels=reports.STATUS_LABELS,
            qualities=reports.AUDITOR_QUALITIES,
            form=EmptyForm(),
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
        if not EmptyForm().validate_on_submit():
            abort(400)
        try:
            reports.approve_report(db.session, report, by=current_user, now=utcnow(), ip=client_ip())
            notifications.report_reviewed(db.session, report, "report_approved")
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            flash(f"Compte rendu de {report.coop.login} approuvé ; la coopérative est prévenue.", "success")
        return redirect(url_for(".report", report_id=report.id))

    @expose("/<int:report_id>/renvoyer", methods=("POST",))
    def send_back(self, report_id: int):
        report = _report_or_404(report_id)
        form = CommentForm()
        if not form.validate_on_submit():
            flash(form.reason.errors[0] if form.reason.errors else "Formulaire expiré.", "danger")
            return redirect(url_for(".report", report_id=report.id))
        try:
            reports.return_report(
                db.session, report, reason=form.reason.data, by=current_user, now=utcnow(), ip=client_ip()
            )
            notifications.report_reviewed(db.session, report, "report_returned_review", reason=report.return_reason)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            flash(f"Compte rendu renvoyé à {report.coop.login} avec votre commentaire.", "success")
        return redirect(url_for(".report", report_id=report.id))

    @expose("/<int:report_id>/rouvrir", methods=("POST",))
    def reopen(self, report_id: int):
        report = _report_or_404(report_id)
        form = CommentForm()
        if not form.validate_on_submit():
            flash("Indiquez le motif de la réouverture du cahier.", "danger")
            return redirect(url_for(".report", report_id=report.id))
        try:
            returned = closing.reopen_ledger(
                db.session, report.ledger, reason=form.reason.data, by=current_user, ip=client_ip(), now=utcnow()
            )
            if returned is not None:
                notifications.report_reviewed(db.session, report, "report_returned", reason=form.reason.data)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            flash(f"Cahier {report.ledger.school_year.label} de {report.coop.login} rouvert.", "success")
        return redirect(url_for(".report", report_id=report.id))
