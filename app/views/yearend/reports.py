"""The yearly reports after the closing: overview, CRA, CRF (page and PDF), quitus (page and PDF),
supporting documents, sending to OCCE 85."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app import clock, cra, documents, submission
from app import crf_pdf as crf_document
from app import ledger as books
from app.annual_report import check_editable, ensure_report, find_report
from app.closing import denomination_label
from app.crf import build_crf
from app.errors import DomainError
from app.extensions import db, limiter
from app.formats import fr_date
from app.models import AnnualReport, Document, Ledger
from app.pdf import qr_data_uri
from app.views.yearend.blueprint import bp
from app.views.yearend.common import (
    check_year,
    context,
    coop,
    federation,
    find_ledger,
    label,
    last_year,
    mandataires,
    pdf_response,
    require_closed,
    today,
)
from app.web import notifications, uow
from app.web.downloads import send_document
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import owned_or_404
from forms.yearend import CraForm, DocumentForm, QuitusForm, RemoveDocumentForm, SubmitReportForm

# -- overview ------------------------------------------------------------------------------------


@bp.route("/coop/compte-rendu")
@access("coop")
def report_current():
    return redirect(url_for(".overview", year=last_year()))


@bp.route("/coop/compte-rendu/<int:year>")
@access("coop")
def overview(year: int):
    ledger = find_ledger(check_year(year))
    report = find_report(db.session, ledger) if ledger else None
    missing = []
    if ledger is not None and not ledger.is_open:
        crf = build_crf(db.session, ledger)
        missing = submission.missing_items(db.session, report, ledger, crf, mandataires())
    return render_template("yearend/overview.html", missing=missing, **context(year, ledger, report, "overview"))


# -- CRA -----------------------------------------------------------------------------------------


def _render_cra(year: int, ledger: Ledger, report: AnnualReport | None, form: CraForm):
    totals = {total.action.name: total for total in books.action_totals(db.session, ledger.coop_id, ledger)}
    return render_template(
        "yearend/cra.html",
        form=form,
        totals=totals,
        membership=cra.membership_for(db.session, ledger),
        **context(year, ledger, report, "cra"),
    )


@bp.route("/coop/compte-rendu/<int:year>/activites", methods=["GET", "POST"], endpoint="cra")
@access("coop")
def cra_page(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    form = CraForm()
    if request.method == "GET":
        form.fill(cra.cra_prefill(db.session, ledger, report))
    elif form.add_class.data or form.add_action.data:
        (form.classes if form.add_class.data else form.actions).append_entry()
    elif form.validate_on_submit():  # the CRA rules ran in the form; a refusal now: sent or changed meanwhile
        if not uow.run(lambda: _save_cra(ledger, form), flash_category="warning").ok:
            return redirect(url_for(".cra", year=year))
        if form.next.data:
            flash("Compte rendu d'activités enregistré. Vérifiez maintenant le compte rendu financier.", "success")
            return redirect(url_for(".crf", year=year))
        flash("Compte rendu d'activités enregistré.", "success")
        return redirect(url_for(".cra", year=year))
    return _render_cra(year, ledger, report, form)


def _save_cra(ledger: Ledger, form: CraForm) -> None:
    report = ensure_report(db.session, ledger)
    cra.save_cra(db.session, report, form.answers(), by=current_user, now=clock.now(), ip=client_ip())


# -- CRF -----------------------------------------------------------------------------------------


@bp.route("/coop/compte-rendu/<int:year>/financier")
@access("coop")
def crf(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    return render_template(
        "yearend/crf.html",
        crf=build_crf(db.session, ledger),
        denomination_label=denomination_label,
        **context(year, ledger, report, "crf"),
    )


@bp.route("/coop/compte-rendu/<int:year>/financier.pdf")
@access("coop")
@limiter.limit("30 per minute")
def crf_pdf(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    crf = build_crf(db.session, ledger)
    verify_url = (
        url_for("admin_closings.verify", code=crf.verification.code, _external=True) if crf.verification else None
    )
    issued_on = fr_date(today())
    html = render_template(
        "pdf/crf.html",
        crf=crf,
        federation=federation(),
        report=report,
        denomination_label=denomination_label,
        issued_on=issued_on,
        verify_url=verify_url,
        qr_code=qr_data_uri(verify_url) if verify_url else None,
        annexes=crf_document.annexes(crf),
        footer=crf_document.footer(crf, issued_on),
    )
    pdf = crf_document.render_crf_pdf(html, current_app.static_folder, crf, issued_on)
    filename = f"compte-rendu-financier-{label(year)}-{coop().login}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"},
    )


# -- quitus --------------------------------------------------------------------------------------


def _render_quitus(year: int, ledger: Ledger, report: AnnualReport | None, form: QuitusForm):
    return render_template(
        "yearend/quitus.html",
        form=form,
        crf=build_crf(db.session, ledger),
        qualities=cra.AUDITOR_QUALITIES,
        mandataires=form.mandataires,
        **context(year, ledger, report, "quitus"),
    )


@bp.route("/coop/compte-rendu/<int:year>/quitus", methods=["GET", "POST"])
@access("coop")
def quitus(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    form = QuitusForm(mandataires=mandataires())
    if request.method == "GET":
        auditors, mandataire = cra.quitus_of(report)
        form.fill(auditors, mandataire or next(iter(form.mandataires), ""))
    elif form.add_auditor.data:
        if form.can_add_auditor():
            form.auditors.append_entry()
    elif form.validate_on_submit():  # the quitus rules ran in the form; a refusal now: sent or changed meanwhile
        if uow.run(lambda: _save_quitus(ledger, form), flash_category="warning").ok:
            flash(_QUITUS_SAVED, "success")
            return redirect(url_for(".quitus", year=year, _anchor="imprimer"))
        return redirect(url_for(".quitus", year=year))
    return _render_quitus(year, ledger, report, form)


def _save_quitus(ledger: Ledger, form: QuitusForm) -> None:
    report = ensure_report(db.session, ledger)
    auditors, name = form.auditor_list(), form.mandataire_name.data
    now = clock.now()
    cra.save_quitus(
        db.session, report, auditors, name, mandataires=form.mandataires, by=current_user, now=now, ip=client_ip()
    )


_QUITUS_SAVED = (
    "Vérificateurs enregistrés. Imprimez la page Quitus, faites-la signer, puis déposez-la avec les justificatifs."
)


@bp.route("/coop/compte-rendu/<int:year>/quitus.pdf")
@access("coop")
@limiter.limit("30 per minute")
def quitus_pdf(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    if report is None or report.quitus_saved_at is None:
        flash(
            "Indiquez d'abord les vérificateurs aux comptes, puis cliquez sur « Valider les modifications ».", "warning"
        )
        return redirect(url_for(".quitus", year=year))
    auditors, mandataire = cra.quitus_of(report)
    html = render_template(
        "pdf/quitus.html",
        crf=build_crf(db.session, ledger),
        federation=federation(),
        auditors=auditors,
        mandataire=mandataire,
        qualities=cra.AUDITOR_QUALITIES,
        issued_on=fr_date(today()),
    )
    return pdf_response(html, f"quitus-{label(year)}-{coop().login}.pdf")


# -- supporting documents ------------------------------------------------------------------------


def _render_documents(year: int, ledger: Ledger, report: AnnualReport | None, *, errors: dict[str, str] | None = None):
    return render_template(
        "yearend/documents.html",
        slots=submission.document_slots(build_crf(db.session, ledger)),
        present=submission.report_documents(db.session, report),
        errors=errors or {},
        form=DocumentForm(formdata=None),
        max_mb=submission.REPORT_MAX_BYTES // (1024 * 1024),
        max_files=submission.MAX_FILES_PER_SLOT,
        **context(year, ledger, report, "documents"),
    )


def _upload_error(form: DocumentForm) -> str:
    """The one message shown on the slot of a refused upload (an expired page says so)."""
    csrf = getattr(form, "csrf_token", None)
    expired = ["La page a expiré : rechargez-la, puis choisissez à nouveau le fichier."] if csrf and csrf.errors else []
    return next(iter(form.file.errors or expired or ["Choisissez un fichier (PDF, JPEG ou PNG)."]))


@bp.route("/coop/compte-rendu/<int:year>/justificatifs", methods=["GET", "POST"], endpoint="documents")
@access("coop")
def documents_page(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    if request.method == "GET":
        return _render_documents(year, ledger, report)
    form = DocumentForm()
    slots = {slot.key: slot for slot in submission.document_slots(build_crf(db.session, ledger))}
    slot = slots.get(form.slot.data or "") or abort(400)
    if not form.validate_on_submit():
        return _render_documents(year, ledger, report, errors={slot.key: _upload_error(form)})
    outcome = uow.run(lambda: _attach(ledger, slot, form), form=form, after_commit=_remove_replaced)
    if outcome.ok:
        document, removed = outcome.value
        flash(_uploaded_message(ledger, slot, document, replaced=bool(removed)), "success")
        return redirect(url_for(".documents", year=year, _anchor=f"piece-{slot.key}"))
    if form.file.errors:  # the file itself was refused: shown on its slot
        return _render_documents(year, ledger, find_report(db.session, ledger), errors={slot.key: form.file.errors[-1]})
    for message in form.form_errors:  # the report was sent meanwhile, or changed elsewhere
        flash(message, "warning")
    return redirect(url_for(".documents", year=year))


def _uploaded_message(ledger: Ledger, slot: submission.Slot, document: Document, *, replaced: bool) -> str:
    """« Quitus signé : fichier remplacé (…) », or for a slot of several files how many it now holds."""
    message = f"{slot.label} : fichier {'remplacé' if replaced else 'déposé'} ({document.original_name})."
    present = submission.report_documents(db.session, find_report(db.session, ledger)) if slot.multiple else {}
    count = len(present.get(slot.kind, []))
    return message if count < 2 else f"{message} Cette ligne compte maintenant {count} fichiers."


def _attach(ledger: Ledger, slot: submission.Slot, form: DocumentForm):
    upload = form.file.data
    return submission.attach_document(
        db.session,
        ensure_report(db.session, ledger),
        slot,
        upload_dir=current_app.config["UPLOAD_DIR"],
        filename=upload.filename or "",
        content=upload.read(),
        by=current_user,
        ip=client_ip(),
    )


def _remove_replaced(value) -> None:
    """After the commit only: the files of the documents the upload replaced."""
    for key in value[1]:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)


def _report_document(ledger: Ledger, report: AnnualReport | None, document_id: int):
    """The coop's document `document_id` attached to this year's report, with its slot; 404 otherwise
    (another coop's document, a voucher, another year's report)."""
    document = owned_or_404(Document, document_id)
    slot = submission.slot_of(document, submission.document_slots(build_crf(db.session, ledger)))
    if report is None or document.annual_report_id != report.id or slot is None:
        abort(404)
    return document, slot


@bp.route("/coop/compte-rendu/<int:year>/justificatifs/<int:document_id>", endpoint="document")
@access("coop")
def document_view(year: int, document_id: int):
    """One file of the report (« Voir »), as an attachment that the phone or computer opens in its PDF
    reader: shown inline under the sandbox CSP, a PDF can stay blank (Safari, some Chrome versions).
    The consultation is audited."""
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    document, _slot = _report_document(*found, document_id)
    return send_document(document, inline=False, audited=True)


@bp.route("/coop/compte-rendu/<int:year>/justificatifs/<int:document_id>/retirer", methods=["GET", "POST"])
@access("coop")
def remove_document(year: int, document_id: int):
    """« Retirer » one file of a slot that takes several, after a confirmation page; the file itself
    goes after the commit. Refused once the report is sent or approved."""
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    document, slot = _report_document(ledger, report, document_id)
    if not slot.multiple:
        abort(404)
    back = url_for(".documents", year=year, _anchor=f"piece-{slot.key}")
    try:
        check_editable(report)
    except DomainError as exc:
        flash(exc.message, "warning")
        return redirect(back)
    form = RemoveDocumentForm()
    if not form.validate_on_submit():
        others = len(submission.report_documents(db.session, report).get(slot.kind, [])) - 1
        return render_template(
            "yearend/document_remove.html",
            document=document,
            slot=slot,
            others=others,
            form=form,
            expired=request.method == "POST",
            **context(year, ledger, report, "documents"),
        )
    name = document.original_name
    outcome = uow.run(
        lambda: submission.remove_report_document(db.session, report, document, by=current_user, ip=client_ip()),
        after_commit=lambda key: documents.remove_file(current_app.config["UPLOAD_DIR"], key),
        flash_category="warning",
    )
    if outcome.ok:
        flash(f"{slot.label} : fichier « {name} » retiré.", "success")
    return redirect(back)


# -- submission ----------------------------------------------------------------------------------


@bp.route("/coop/compte-rendu/<int:year>/envoi", methods=["GET", "POST"])
@access("coop")
def submit(year: int):
    found = require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    crf = build_crf(db.session, ledger)
    missing = submission.missing_items(db.session, report, ledger, crf, mandataires())
    form = SubmitReportForm()
    if not form.validate_on_submit():
        return _render_submit(year, ledger, report, form, crf, missing)
    if report is not None and report.status == "submitted":  # a double click or Back then submit
        flash(f"Votre compte rendu {label(year)} est déjà envoyé.", "info")
    elif missing:
        flash("Il manque encore des éléments : voyez la liste ci-dessous.", "warning")
    elif uow.run(lambda: _send(ledger, crf), flash_category="warning").ok:
        flash(
            f"Compte rendu {label(year)} envoyé à l'OCCE 85. Un accusé de réception vous a été envoyé par courriel.",
            "success",
        )
    return redirect(url_for(".submit", year=year))


def _render_submit(year: int, ledger: Ledger, report: AnnualReport | None, form, crf, missing):
    return render_template(
        "yearend/submit.html",
        form=form,
        crf=crf,
        missing=missing,
        present=submission.report_documents(db.session, report),
        slots=submission.document_slots(crf),
        **context(year, ledger, report, "submit"),
    )


def _send(ledger: Ledger, crf) -> AnnualReport:
    """Send the report and queue the acknowledgement mail, in the same transaction."""
    report = ensure_report(db.session, ledger)
    submission.submit_report(
        db.session, report, crf, mandataires=mandataires(), by=current_user, now=clock.now(), ip=client_ip()
    )
    notifications.report_submitted(db.session, report, crf)
    return report
