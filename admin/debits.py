"""Direct debits in the back office: the run to come (every membership that can be debited, minus those
staff set aside; its count and total confirmed), create it (the coops are pre-notified),
export its SEPA XML and CSV files, mark it done, record rejections and returns by hand or from the
bank's pain.002 / camt.054 files, re-present or switch a coop to cheque. Every state change goes
through app.debits."""

from __future__ import annotations

import gc
import unicodedata
from contextlib import contextmanager
from datetime import date

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


PAGE_SIZE = 50  # memberships of the run to come shown per page
PROBLEMS_SHOWN = 100  # memberships that cannot be debited listed at once (a search finds the others)
WAITING_LABELS = {
    "committed": "engagée",
    "rejected": "rejeté, à représenter",
    "returned": "retourné après règlement, à représenter",
}


@contextmanager
def _no_cycle_collection():
    """Build the preview without the cyclic garbage collector: its tens of thousands of small tuples (no
    cycle among them, freed by reference counting) would otherwise set off a full collection of the
    worker's heap in one view out of three at 10,000 coops (0.1 s -> 0.3 s of CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _matching(memberships: list[debits.WaitingMembership], search: str) -> list[debits.WaitingMembership]:
    """The memberships whose coop's identifier (085-012, 12) or name contains `search` (case and accents ignored)."""
    if not search:
        return memberships
    folded = _fold(search)
    digits = search.removeprefix("085-").lstrip("0")
    return [
        m
        for m in memberships
        if folded in _fold(m.coop.name) or folded in m.coop.login or (digits.isdigit() and str(m.coop.number) == digits)
    ]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _page_url(set_aside: list[int], search: str, current_page: int, **changes) -> str:
    """The run page's address with its state (coops set aside, search, page), `changes` applied:
    `exclure`/`reintegrer` add or remove one membership from those set aside."""
    aside = set(set_aside)
    if "exclure" in changes:
        aside.add(changes.pop("exclure"))
    if "reintegrer" in changes:
        aside.discard(changes.pop("reintegrer"))
    args = {"q": search or None, "page": current_page, "exclure": sorted(aside) or None}
    args.update(changes)
    return url_for(".index", **{key: value for key, value in args.items() if value not in (None, "", 1)})


class DebitRunView(StaffAccessMixin, BaseView):
    """/admin/prelevements/: the runs, and the memberships waiting for one."""

    @expose("/", methods=("GET", "POST"))
    def index(self):
        """The runs, and the run to come: every membership that can be debited is in it by default; the page
        shows its count and total, the memberships that cannot be debited (with why), those set aside, and
        the included ones by pages with a search. Staff set a coop aside with a link (the set-aside ids
        travel in the address, then as hidden fields of the form, never as thousands of checkboxes)."""
        form = DebitBatchForm()
        federation = db.session.scalar(sa.select(Federation))
        today = clock.today()
        earliest = debits.earliest_for(federation, today)
        values = request.form if request.method == "POST" else request.args
        set_aside = sorted({int(value) for value in values.getlist("exclure") if value.isdigit()})
        if form.validate_on_submit():
            expected = tuple(request.form.get(name, "") for name in ("nombre", "total"))
            if not all(value.isdigit() for value in expected):
                abort(400)

            def create():
                batch, excluded = debits.create_batch(
                    db.session,
                    None,
                    form.collection_date.data,
                    today=today,
                    by=current_user,
                    shorter_notice_agreed=form.shorter_notice_agreed.data,
                    ip=client_ip(),
                    set_aside=set_aside,
                    expected=(int(expected[0]), int(expected[1])),
                )
                if batch is not None:
                    notifications.debit_prenotifications(db.session, batch, federation)
                return batch, excluded

            outcome = uow.run(create, form=form)
            if outcome.ok:
                batch, excluded = outcome.value
                if batch is None:
                    flash("Aucune adhésion ne peut être prélevée : corrigez les fiches ci-dessous.", "danger")
                    return redirect(url_for(".index"))
                flash(
                    f"Prélèvement n° {batch.id} préparé : {batch.count} adhésion(s). Chaque coopérative "
                    "est prévenue par courriel du montant et de la date. Exportez-le pour la banque.",
                    "success",
                )
                if excluded:
                    flash(
                        f"{len(excluded)} adhésion(s) ne pouvai(en)t pas être prélevée(s) et reste(nt) en attente "
                        "(voir « À corriger avant tout prélèvement »).",
                        "warning",
                    )
                return redirect(url_for(".batch", batch_id=batch.id))
        elif request.method == "GET":
            form.collection_date.data = earliest
        collection_date = form.collection_date.data if isinstance(form.collection_date.data, date) else earliest
        with _no_cycle_collection():
            preview = debits.run_preview(db.session, today=today, collection_date=collection_date, set_aside=set_aside)
        search = (request.args.get("q") or "").strip()[:100]
        shown = _matching(preview.included, search)
        page_count = max(1, -(-len(shown) // PAGE_SIZE))
        page = min(max(1, request.args.get("page", 1, type=int) or 1), page_count)
        batches = db.session.scalars(sa.select(DebitBatch).order_by(DebitBatch.id.desc()).limit(50)).all()
        return self.render(
            "admin/debits_index.html",
            form=form,
            preview=preview,
            set_aside=set_aside,
            collection_date=collection_date,
            search=search,
            shown=shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
            shown_count=len(shown),
            page=page,
            page_count=page_count,
            problems=_matching(preview.problems, search),
            problems_shown=PROBLEMS_SHOWN,
            page_url=lambda **changes: _page_url(set_aside, search, page, **changes),
            batches=batches,
            earliest=earliest,
            creditor=debits.creditor_problems(federation),
            federation=federation,
            notice_days=federation.debit_notice_days if federation else debits.DEFAULT_NOTICE_DAYS,
            lead_days=federation.debit_lead_days if federation else debits.DEFAULT_LEAD_DAYS,
            cheque_form=ConfirmForm(),
            waiting_labels=WAITING_LABELS,
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
