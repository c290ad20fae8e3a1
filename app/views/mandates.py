"""Change of mandataire on the coop face: « Changement pour le compte bancaire… », the request form to
print and sign, the three uploads, « Envoyer », and the dossier's statuses with their dates.

Every POST goes through `app.web.uow.run` (one commit; a refusal lands on its form field, or is
flashed before a redirect when it concerns the whole dossier); files replaced or dropped are removed
after the commit. GET requests never commit (a document download is audited aside).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app import clock, documents
from app.extensions import db, limiter
from app.formats import fr_date
from app.mandates import (
    COOP_DOCUMENTS,
    DOCUMENT_LABELS,
    EFFECTIVE_DATE_MAX_PAST_DAYS,
    REASONS,
    STATUS_LABELS,
    attach_document,
    bank_of,
    changes_of,
    current_mandate,
    documents_of,
    is_credit_mutuel,
    is_editable,
    missing_items,
    oldest_proof_of_address,
    open_change,
    start_change,
    status_dates,
    submit_change,
    update_details,
)
from app.models import Document, Federation, MandateChange
from app.pdf import render_pdf
from app.web import notifications, uow
from app.web.downloads import send_document
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import owned_or_404
from forms.mandates import AddressProofUpload, IdentityUpload, MandateChangeForm, SendForm, SignedFormUpload

bp = Blueprint("mandates", __name__)

UPLOAD_FORMS = {"mandate_form": SignedFormUpload, "identity": IdentityUpload, "address_proof": AddressProofUpload}
# Where a refused upload's message goes: the date of a proof of address, else the file field.
UPLOAD_FIELDS = {"identity": "file", "": "file"}
DOSSIER_STARTED = (
    "Le dossier est commencé. Imprimez maintenant le formulaire de demande, faites-le dater et signer, "
    "puis ajoutez-le avec les justificatifs."
)
SIGNED_FORM_DROPPED = (
    "Informations enregistrées. Elles figurent sur le formulaire de demande : imprimez le nouveau "
    "formulaire, faites-le signer et ajoutez-le à nouveau."
)


def _coop():
    return current_user.coop


def _remove_files(storage_keys: list[str]) -> None:
    """After the commit: remove the files of the documents the change replaced or dropped."""
    for key in storage_keys:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)


# --- Pages ---------------------------------------------------------------------------------------


@bp.route("/coop/mandataire")
@access("coop")
def step():
    """The mandataire step: the open dossier if there is one, else the current mandataire and « Changement… »."""
    coop = _coop()
    change = open_change(db.session, coop)
    if change is not None:
        return redirect(url_for(".dossier", id=change.id))
    return render_template(
        "mandates/step.html",
        coop=coop,
        mandate=current_mandate(coop, clock.today()),
        history=changes_of(db.session, coop),
        status_labels=STATUS_LABELS,
    )


def _render_details(form: MandateChangeForm, change: MandateChange | None, status: int = 200):
    coop = _coop()
    return render_template(
        "mandates/details.html",
        form=form,
        change=change,
        coop=coop,
        mandate=current_mandate(coop, clock.today()),
        max_past_days=EFFECTIVE_DATE_MAX_PAST_DAYS,
    ), status


@bp.route("/coop/mandataire/nouveau", methods=["GET", "POST"])
@access("coop")
def new():
    coop = _coop()
    existing = open_change(db.session, coop)
    if existing is not None:
        if request.method == "POST":  # a double click or the Back button: one dossier only
            flash("Un changement de mandataire est déjà en cours : le voici.", "info")
        return redirect(url_for(".dossier", id=existing.id))
    form = MandateChangeForm()
    if form.validate_on_submit():
        outcome = uow.run(
            lambda: start_change(
                db.session, coop, form.details(), by=current_user, ip=client_ip(), today=clock.today()
            ),
            form=form,
            flash_unplaced=True,
        )
        if outcome.ok:
            flash(DOSSIER_STARTED, "success")
            return redirect(url_for(".dossier", id=outcome.value.id))
        if not outcome.on_field:
            return redirect(url_for(".step"))
    elif request.method == "GET":
        form.prefill_outgoing(current_mandate(coop, clock.today()))
    return _render_details(form, None)


@bp.route("/coop/mandataire/<int:id>/modifier", methods=["GET", "POST"])
@access("coop")
def edit(id: int):
    change = owned_or_404(MandateChange, id)
    if not is_editable(change):
        flash(f"Le dossier est « {STATUS_LABELS[change.status]} » : il ne peut plus être modifié.", "info")
        return redirect(url_for(".dossier", id=change.id))
    form = MandateChangeForm() if request.method == "POST" else MandateChangeForm(obj=change)
    if form.validate_on_submit():
        outcome = uow.run(
            lambda: update_details(
                db.session, change, form.details(), by=current_user, ip=client_ip(), today=clock.today()
            ),
            form=form,
            flash_unplaced=True,
            after_commit=_remove_files,
        )
        if outcome.ok:  # the value: the files dropped, i.e. the signed form that no longer matches
            flash(*((SIGNED_FORM_DROPPED, "warning") if outcome.value else ("Informations enregistrées.", "success")))
        if outcome.ok or not outcome.on_field:
            return redirect(url_for(".dossier", id=id))
    elif request.method == "GET":
        form.effective_date.data = change.effective_date
    return _render_details(form, change)


def _render_dossier(change: MandateChange, forms: dict | None = None, status: int = 200):
    coop = _coop()
    today = clock.today()
    forms = forms or {}
    upload_forms = {
        kind: forms.get(kind) or form_class(formdata=None, prefix=kind) for kind, form_class in UPLOAD_FORMS.items()
    }
    if change.proof_of_address_date and "address_proof" not in forms:
        upload_forms["address_proof"].proof_date.data = change.proof_of_address_date
    return render_template(
        "mandates/dossier.html",
        change=change,
        coop=coop,
        mandate=current_mandate(coop, today),
        forms=upload_forms,
        missing=missing_items(change, today) if is_editable(change) else {},
        editable=is_editable(change),
        status_labels=STATUS_LABELS,
        reasons=REASONS,
        steps=status_dates(change),
        labels=DOCUMENT_LABELS,
        coop_documents=COOP_DOCUMENTS,
        docs=documents_of(change),
        oldest_proof=oldest_proof_of_address(today),
        bank=bank_of(change),
        is_credit_mutuel=is_credit_mutuel(bank_of(change)),
        history=[c for c in changes_of(db.session, coop) if c.id != change.id],
    ), status


@bp.route("/coop/mandataire/<int:id>")
@access("coop")
def dossier(id: int):
    return _render_dossier(owned_or_404(MandateChange, id))


def _attach(change: MandateChange, kind: str, form) -> tuple[Document, list[str]]:
    return attach_document(
        db.session,
        change,
        kind,
        form.files(),
        upload_dir=current_app.config["UPLOAD_DIR"],
        by=current_user,
        ip=client_ip(),
        today=clock.today(),
        proof_date=form.proof_date_value(),
    )


def _upload(id: int, kind: str):
    """The three upload routes below: add or replace one document of an editable dossier."""
    change = owned_or_404(MandateChange, id)
    if not is_editable(change):
        flash(
            f"Le dossier est « {STATUS_LABELS[change.status]} » : ses documents ne peuvent plus être changés.", "info"
        )
        return redirect(url_for(".dossier", id=id))
    form = UPLOAD_FORMS[kind](prefix=kind)
    if not form.validate_on_submit():
        return _render_dossier(change, {kind: form})
    outcome = uow.run(
        lambda: _attach(change, kind, form),
        form=form,
        flash_unplaced=True,
        fields=UPLOAD_FIELDS,
        after_commit=lambda added: _remove_files(added[1]),
    )
    if outcome.ok:
        what = "remplacé" if outcome.value[1] else "ajouté"
        flash(f"{DOCUMENT_LABELS[kind].split(' (')[0]} : document {what}.", "success")
        return redirect(url_for(".dossier", id=id, _anchor=f"piece-{kind}"))
    if outcome.on_field:
        return _render_dossier(change, {kind: form})
    return redirect(url_for(".dossier", id=id))


@bp.route("/coop/mandataire/<int:id>/formulaire-signe", methods=["POST"])
@access("coop")
@limiter.limit("30 per minute")
def upload_form(id: int):
    return _upload(id, "mandate_form")


@bp.route("/coop/mandataire/<int:id>/piece-identite", methods=["POST"])
@access("coop")
@limiter.limit("30 per minute")
def upload_identity(id: int):
    return _upload(id, "identity")


@bp.route("/coop/mandataire/<int:id>/justificatif-domicile", methods=["POST"])
@access("coop")
@limiter.limit("30 per minute")
def upload_address_proof(id: int):
    return _upload(id, "address_proof")


def _why_not_send(change: MandateChange) -> tuple[str, str] | None:
    """The flash (message, category) when the dossier cannot be sent: sent already, or incomplete."""
    if not is_editable(change):  # sent already: a double click or the Back button changes nothing
        return f"Le dossier est déjà « {STATUS_LABELS[change.status]} ».", "info"
    missing = missing_items(change, clock.today())
    if missing:
        return "Le dossier n'est pas complet : " + " ".join(m for ms in missing.values() for m in ms), "warning"
    return None


def _submit(change: MandateChange) -> MandateChange:
    """« Envoyer » and the coop's acknowledgement mail, in one transaction."""
    submit_change(db.session, change, by=current_user, ip=client_ip(), now=clock.now(), today=clock.today())
    notifications.mandate_status(db.session, change)
    return change


@bp.route("/coop/mandataire/<int:id>/envoyer", methods=["GET", "POST"])
@access("coop")
def send(id: int):
    """« Envoyer »: a confirmation page, then the dossier goes to OCCE 85 (and a mail to the coop)."""
    change = owned_or_404(MandateChange, id)
    refusal = _why_not_send(change)
    if refusal is not None:
        flash(*refusal)
        return redirect(url_for(".dossier", id=id))
    form = SendForm()
    if form.validate_on_submit():
        if uow.run(lambda: _submit(change)).ok:
            flash(
                f"Dossier {change.reference} envoyé à l'OCCE 85. Vous recevrez un courriel à chaque étape ; "
                "l'OCCE 85 se charge de l'envoyer à la banque.",
                "success",
            )
        return redirect(url_for(".dossier", id=id))
    return _render_send(change, form)


def _render_send(change: MandateChange, form: SendForm):
    """The confirmation page of « Envoyer »: what goes to OCCE 85, and that it can no longer change."""
    return render_template(
        "mandates/send.html",
        change=change,
        coop=change.coop,
        form=form,
        reasons=REASONS,
        labels=DOCUMENT_LABELS,
        coop_documents=COOP_DOCUMENTS,
        docs=documents_of(change),
        bank=bank_of(change),
    )


@bp.route("/coop/mandataire/<int:id>/formulaire.pdf")
@access("coop")
@limiter.limit("30 per minute")
def request_form(id: int):
    """The request form, prefilled, to print, date and sign (rendered on the fly: it follows the details)."""
    change = owned_or_404(MandateChange, id)
    pdf = render_pdf(render_request_form(change), current_app.static_folder)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="demande-changement-mandataire-{change.reference}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def render_request_form(change: MandateChange) -> str:
    """The HTML of the request form (also the first part of the bank dossier, as signed)."""
    return render_template(
        "pdf/mandate_form.html",
        change=change,
        coop=change.coop,
        federation=Federation.settings(db.session),
        reasons=REASONS,
        bank=bank_of(change),
        printed_on=fr_date(clock.today()),
    )


@bp.route("/coop/mandataire/document/<int:document_id>")
@access("coop")
@limiter.limit("60 per minute")
def document(document_id: int):
    """A document of the coop's own dossier (its uploads, the bank's document), as an attachment."""
    found = owned_or_404(Document, document_id)
    if found.mandate_change_id is None:
        abort(404)
    return send_document(found, audited=True)
