"""Direct debits in the back office: choose the memberships, create a run (the coops are pre-notified),
export its SEPA XML and CSV files, mark it done, record rejections and returns by hand or from the
bank's pain.002 / camt.054 files, re-present or switch a coop to cheque. Every state change goes
through app.debits."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin
from app import clock, debits
from app.extensions import db
from app.formats import euros
from app.models import Debit, DebitBatch, DebitReport, Federation, Membership
from app.web import notifications, uow
from app.web.netutil import client_ip
from forms.admin import ConfirmForm, DebitBatchForm, DebitRejectForm, DebitReportForm

CSV_TYPE = "text/csv; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"


def _batch_or_404(batch_id: int) -> DebitBatch:
    batch = db.session.get(DebitBatch, batch_id)
    if batch is None:
        abort(404)
    return batch


def _attachment(content: bytes, content_type: str, name: str) -> Response:
    # `content_type`, not `mimetype`: Flask adds no second charset to it.
    return Response(
        content, content_type=content_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


class DebitRunView(StaffAccessMixin, BaseView):
    """/admin/prelevements/: the runs, and the memberships waiting for one."""

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = DebitBatchForm()
        federation = db.session.scalar(sa.select(Federation))
        today = clock.today()
        earliest = debits.earliest_for(federation, today)
        if form.validate_on_submit():
            chosen = [int(value) for value in request.form.getlist("membership") if value.isdigit()]
            if not chosen:
                flash("Cochez au moins une adhésion.", "warning")
            else:

                def create():
                    batch, excluded = debits.create_batch(
                        db.session,
                        chosen,
                        form.collection_date.data,
                        today=today,
                        by=current_user,
                        shorter_notice_agreed=form.shorter_notice_agreed.data,
                        ip=client_ip(),
                    )
                    if batch is not None:
                        for debit in batch.debits:
                            notifications.debit_prenotification(db.session, debit, federation)
                    return batch, excluded

                outcome = uow.run(create, form=form)
                if outcome.ok:
                    batch, excluded = outcome.value
                    for exclusion in excluded:
                        flash(
                            f"{exclusion.coop.login} {exclusion.coop.name} laissée de côté : "
                            + ", ".join(exclusion.reasons)
                            + ".",
                            "warning",
                        )
                    if batch is None:
                        flash("Aucune adhésion ne peut être prélevée : corrigez les fiches ci-dessus.", "danger")
                    else:
                        flash(
                            f"Prélèvement n° {batch.id} préparé : {batch.count} adhésion(s). Chaque coopérative "
                            "est prévenue par courriel du montant et de la date. Exportez-le pour la banque.",
                            "success",
                        )
                        return redirect(url_for(".batch", batch_id=batch.id))
                    return redirect(url_for(".index"))
        elif request.method == "GET":
            form.collection_date.data = earliest
        batches = db.session.scalars(sa.select(DebitBatch).order_by(DebitBatch.id.desc()).limit(50)).all()
        eligible = debits.waiting_memberships(db.session, debits.MandateFacts.load(db.session), today=today)
        return self.render(
            "admin/debits_index.html",
            form=form,
            eligible=eligible,
            batches=batches,
            earliest=earliest,
            creditor=debits.creditor_problems(federation),
            federation=federation,
            notice_days=federation.debit_notice_days if federation else debits.DEFAULT_NOTICE_DAYS,
            lead_days=federation.debit_lead_days if federation else debits.DEFAULT_LEAD_DAYS,
            cheque_form=ConfirmForm(),
            status_labels=debits.memberships.STATUS_LABELS,
        )

    @expose("/<int:batch_id>")
    def batch(self, batch_id: int):
        batch = _batch_or_404(batch_id)
        return self.render(
            "admin/debits_batch.html",
            batch=batch,
            form=ConfirmForm(),
            reject_form=DebitRejectForm(),
            status_label=debits.status_label,
        )

    @expose("/<int:batch_id>/exporter", methods=("POST",))
    def export(self, batch_id: int):
        batch = _batch_or_404(batch_id)
        if not ConfirmForm().validate_on_submit():
            abort(400)
        outcome = uow.run(
            lambda: debits.export_batch(db.session, batch, by=current_user, now=clock.now(), ip=client_ip())
        )
        if outcome.ok:
            flash(
                f"Fichiers prêts : {batch.count} prélèvement(s) en {len(batch.files)} fichier(s), total "
                f"{euros(batch.control_sum_cents)}. Téléchargez chaque fichier SEPA et déposez-le sur le site "
                "de la banque.",
                "success",
            )
        return redirect(url_for(".batch", batch_id=batch.id))

    def _download(self, batch_id: int, sequence: int, kind: str):
        batch = _batch_or_404(batch_id)
        file = debits.batch_file(batch, sequence)
        if batch.status == "draft" or file is None:
            abort(404)
        suffix = f"-f{sequence}" if len(batch.files) > 1 else ""
        name = f"prelevements-{batch.collection_date:%Y-%m-%d}-n{batch.id}{suffix}"
        if kind == "xml":
            return _attachment(file.xml_content, XML_TYPE, f"{name}.{batch.schema}.xml")
        return _attachment(file.csv_content, CSV_TYPE, f"{name}.csv")

    @expose("/<int:batch_id>/sepa.xml")
    def download_xml(self, batch_id: int):
        return self._download(batch_id, 1, "xml")

    @expose("/<int:batch_id>/export.csv")
    def download_csv(self, batch_id: int):
        return self._download(batch_id, 1, "csv")

    @expose("/<int:batch_id>/fichier/<int:sequence>/sepa.xml")
    def download_file_xml(self, batch_id: int, sequence: int):
        return self._download(batch_id, sequence, "xml")

    @expose("/<int:batch_id>/fichier/<int:sequence>/export.csv")
    def download_file_csv(self, batch_id: int, sequence: int):
        return self._download(batch_id, sequence, "csv")

    @expose("/<int:batch_id>/effectue", methods=("POST",))
    def settle(self, batch_id: int):
        batch = _batch_or_404(batch_id)
        if not ConfirmForm().validate_on_submit():
            abort(400)
        federation = db.session.scalar(sa.select(Federation))

        def settle():
            paid = debits.settle_batch(
                db.session,
                batch,
                by=current_user,
                now=clock.now(),
                ip=client_ip(),
                post_to_ledgers=bool(federation and federation.post_debits_to_ledgers),
            )
            for membership in paid:
                notifications.membership_paid(db.session, membership)
            return paid

        outcome = uow.run(settle)
        if outcome.ok:
            flash(
                f"Prélèvement effectué : {len(outcome.value)} adhésion(s) réglée(s), les coopératives sont "
                "prévenues par courriel.",
                "success",
            )
        return redirect(url_for(".batch", batch_id=batch.id))

    @expose("/<int:batch_id>/rejet/<int:debit_id>", methods=("POST",))
    def reject(self, batch_id: int, debit_id: int):
        """A debit came back: rejected before settlement, or returned / refunded after it."""
        batch = _batch_or_404(batch_id)
        debit = db.session.get(Debit, debit_id)
        if debit is None or debit.batch_id != batch.id:
            abort(404)
        form = DebitRejectForm()
        if not form.validate_on_submit():
            for errors in form.errors.values():
                flash(errors[0], "danger")
            return redirect(url_for(".batch", batch_id=batch.id))
        after_settlement = debit.status == "paid"

        def record():
            if after_settlement:
                returned = debits.return_debit(
                    db.session,
                    debit,
                    code=form.reason_code.data,
                    note=form.note.data or "",
                    on=clock.today(),
                    by=current_user,
                    now=clock.now(),
                    ip=client_ip(),
                )
                notifications.membership_debit_returned(db.session, debit, returned)
            else:
                membership = debits.reject_debit(
                    db.session,
                    debit,
                    code=form.reason_code.data,
                    note=form.note.data or "",
                    by=current_user,
                    now=clock.now(),
                    ip=client_ip(),
                )
                notifications.membership_debit_rejected(db.session, membership, debit)

        if uow.run(record).ok:
            what = "retourné après règlement (adhésion à régler de nouveau)" if after_settlement else "rejeté"
            flash(f"Prélèvement de {debit.coop.login} marqué {what} ; la coopérative est prévenue.", "success")
        return redirect(url_for(".batch", batch_id=batch.id))

    @expose("/adhesion/<int:membership_id>/cheque", methods=("POST",))
    def switch_to_cheque(self, membership_id: int):
        membership = db.session.get(Membership, membership_id)
        if membership is None:
            abort(404)
        if not ConfirmForm().validate_on_submit():
            abort(400)
        outcome = uow.run(lambda: debits.switch_to_cheque(db.session, membership, by=current_user, ip=client_ip()))
        if outcome.ok:
            flash(
                f"{membership.coop.login} réglera son adhésion par chèque : enregistrez le chèque à sa réception "
                "(Adhésions).",
                "success",
            )
        return redirect(url_for(".index"))

    # -- the bank's files -------------------------------------------------------------------------

    @expose("/retours", methods=("GET", "POST"))
    def reports(self):
        form = DebitReportForm()
        if form.validate_on_submit():
            upload = form.file.data
            content = upload.read(debits.MAX_REPORT_BYTES + 1)
            outcome = uow.run(
                lambda: debits.store_report(db.session, content, upload.filename or "", by=current_user), form=form
            )
            if outcome.ok:
                report = outcome.value
                if report.applied_at is not None:
                    flash(f"Ce fichier a déjà été appliqué le {report.applied_at:%d/%m/%Y} : rien à refaire.", "info")
                return redirect(url_for(".report", report_id=report.id))
        recent = db.session.scalars(sa.select(DebitReport).order_by(DebitReport.id.desc()).limit(20)).all()
        return self.render("admin/debits_reports.html", form=form, reports=recent)

    @expose("/retours/<int:report_id>")
    def report(self, report_id: int):
        report = db.session.get(DebitReport, report_id)
        if report is None:
            abort(404)
        plan = debits.report_plan(db.session, report)
        return self.render("admin/debits_report.html", report=report, plan=plan, form=ConfirmForm())

    @expose("/retours/<int:report_id>/appliquer", methods=("POST",))
    def apply_report(self, report_id: int):
        report = db.session.get(DebitReport, report_id)
        if report is None:
            abort(404)
        if not ConfirmForm().validate_on_submit():
            abort(400)

        def apply():
            applied = debits.apply_report(
                db.session, report, today=clock.today(), by=current_user, now=clock.now(), ip=client_ip()
            )
            for change in applied:
                if change.returned is None:
                    notifications.membership_debit_rejected(db.session, change.membership, change.debit)
                else:
                    notifications.membership_debit_returned(db.session, change.debit, change.returned)
            return applied

        outcome = uow.run(apply)
        if outcome.ok:
            flash(
                f"Fichier appliqué : {len(outcome.value)} prélèvement(s) mis à jour, les coopératives concernées "
                "sont prévenues.",
                "success",
            )
        return redirect(url_for(".report", report_id=report.id))
