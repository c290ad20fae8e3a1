"""Direct debits in the back office: choose the memberships, create a run, export SEPA XML and CSV,
mark it done, mark single rejections. Every state change goes through app.debits."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin
from app import clock, debits
from app.extensions import db
from app.formats import euros
from app.models import Debit, DebitBatch, Federation
from app.web import notifications, uow
from app.web.netutil import client_ip
from forms.admin import ConfirmForm, DebitBatchForm, DebitRejectForm


def _batch_or_404(batch_id: int) -> DebitBatch:
    batch = db.session.get(DebitBatch, batch_id)
    if batch is None:
        abort(404)
    return batch


class DebitRunView(StaffAccessMixin, BaseView):
    """/admin/prelevements/: the runs, and the memberships waiting for one."""

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = DebitBatchForm()
        federation = db.session.scalar(sa.select(Federation))
        today = clock.today()
        earliest = debits.earliest_collection_date(today, federation.debit_lead_days if federation else 5)
        eligible = debits.eligible_memberships(db.session)
        if form.validate_on_submit():
            chosen = [int(value) for value in request.form.getlist("membership") if value.isdigit()]
            if not chosen:
                flash("Cochez au moins une adhésion.", "warning")
            else:
                outcome = uow.run(
                    lambda: debits.create_batch(
                        db.session, chosen, form.collection_date.data, today=today, by=current_user, ip=client_ip()
                    )
                )
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
                            f"Prélèvement n° {batch.id} préparé : {batch.count} adhésion(s). Exportez-le pour la "
                            "banque.",
                            "success",
                        )
                        return redirect(url_for(".batch", batch_id=batch.id))
                    return redirect(url_for(".index"))
        elif request.method == "GET":
            form.collection_date.data = earliest
        batches = db.session.scalars(sa.select(DebitBatch).order_by(DebitBatch.id.desc()).limit(50)).all()
        problems = {m.id: debits.debit_problems(m) for m in eligible}
        return self.render(
            "admin/debits_index.html",
            form=form,
            eligible=eligible,
            problems=problems,
            batches=batches,
            earliest=earliest,
            creditor=debits.creditor_problems(federation),
            federation=federation,
        )

    @expose("/<int:batch_id>")
    def batch(self, batch_id: int):
        batch = _batch_or_404(batch_id)
        return self.render("admin/debits_batch.html", batch=batch, form=ConfirmForm(), reject_form=DebitRejectForm())

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
                f"Fichiers prêts : {batch.count} prélèvement(s), total {euros(batch.control_sum_cents)}. "
                "Téléchargez le fichier SEPA et déposez-le sur le site de la banque.",
                "success",
            )
        return redirect(url_for(".batch", batch_id=batch.id))

    def _download(self, batch_id: int, kind: str):
        batch = _batch_or_404(batch_id)
        if batch.status == "draft":
            abort(404)
        content = batch.xml_content if kind == "xml" else batch.csv_content
        name = f"prelevements-{batch.collection_date:%Y-%m-%d}-n{batch.id}"
        mimetype = "application/xml" if kind == "xml" else "text/csv; charset=utf-8"
        extension = f"{batch.schema}.xml" if kind == "xml" else "csv"
        return Response(
            content, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'}
        )

    @expose("/<int:batch_id>/sepa.xml")
    def download_xml(self, batch_id: int):
        return self._download(batch_id, "xml")

    @expose("/<int:batch_id>/export.csv")
    def download_csv(self, batch_id: int):
        return self._download(batch_id, "csv")

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
        batch = _batch_or_404(batch_id)
        debit = db.session.get(Debit, debit_id)
        if debit is None or debit.batch_id != batch.id:
            abort(404)
        form = DebitRejectForm()
        if not form.validate_on_submit():
            for errors in form.errors.values():
                flash(errors[0], "danger")
            return redirect(url_for(".batch", batch_id=batch.id))

        def reject():
            membership = debits.reject_debit(
                db.session, debit, reason=form.reason.data, by=current_user, now=clock.now(), ip=client_ip()
            )
            notifications.membership_debit_rejected(db.session, membership, debit)

        if uow.run(reject).ok:
            flash(f"Prélèvement de {debit.coop.login} marqué rejeté ; la coopérative est prévenue.", "success")
        return redirect(url_for(".batch", batch_id=batch.id))
