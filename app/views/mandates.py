"""Change of mandataire on the coop face: « Changement pour le compte bancaire… », the request form to
print and sign, the three uploads, « Envoyer », and the dossier's statuses with their dates."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from app import documents
from app.clock import now
from app.errors import DomainError, ValidationErrors
from app.extensions import db, limiter
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
from app.web import notifications
from app.web.downloads import send_document
from app.web.filters import fr_datetime
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import owned_or_404
from forms.mandates import AddressProofUpload, IdentityUpload, MandateChangeForm, SendForm, SignedFormUpload

bp = Blueprint("mandates", __name__)

UPLOAD_FORMS = {"mandate_form": SignedFormUpload, "identity": IdentityUpload, "address_proof": AddressProofUpload}


def _coop():
    return current_user.coop


def _today():
    return now().date()


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
        mandate=current_mandate(coop, _today()),
        history=changes_of(db.session, coop),
        status_labels=STATUS_LABELS,
    )


def _prefill_outgoing(form: MandateChangeForm) -> None:
    mandate = current_mandate(_coop(), _today())
    if mandate is not None:
        form.outgoing_civility.data = mandate.civility if mandate.civility in ("Mme", "M.") else None
        form.outgoing_last_name.data = mandate.last_name
        form.outgoing_first_name.data = mandate.first_name


def _show_errors(form, errors: dict[str, list[str]], *, fallback: str | None = None) -> None:
    for name, messages in errors.items():
        field = getattr(form, name, None) or (getattr(form, fallback, None) if fallback else None)
        if field is not None:
            field.errors = [*field.errors, *messages]
        else:
            form.form_errors.extend(messages)


def _render_details(form: MandateChangeForm, change: MandateChange | None, status: int = 200):
    coop = _coop()
    return render_template(
        "mandates/details.html",
        form=form,
        change=change,
        coop=coop,
        mandate=current_mandate(coop, _today()),
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
    if request.method == "GET":
        _prefill_outgoing(form)
        return _render_details(form, None)
    if not form.validate_on_submit():
        return _render_details(form, None)
    try:
        change = start_change(db.session, coop, form.details(), by=current_user, ip=client_ip(), today=_today())
        db.session.commit()
    except ValidationErrors as exc:
        db.session.rollback()
        _show_errors(form, exc.errors)
        return _render_details(form, None)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
        return redirect(url_for(".step"))
    flash(
        "Le dossier est commencé. Imprimez maintenant le formulaire de demande, faites-le dater et signer, "
        "puis ajoutez-le avec les justificatifs.",
        "success",
    )
    return redirect(url_for(".dossier", id=change.id))


@bp.route("/coop/mandataire/<int:id>/modifier", methods=["GET", "POST"])
@access("coop")
def edit(id: int):
    change = owned_or_404(MandateChange, id)
    if not is_editable(change):
        flash(f"Le dossier est « {STATUS_LABELS[change.status]} » : il ne peut plus être modifié.", "info")
        return redirect(url_for(".dossier", id=change.id))
    form = MandateChangeForm(obj=change) if request.method == "GET" else MandateChangeForm()
    if request.method == "GET":
        form.effective_date.data = change.effective_date
        return _render_details(form, change)
    if not form.validate_on_submit():
        return _render_details(form, change)
    try:
        removed = update_details(db.session, change, form.details(), by=current_user, ip=client_ip(), today=_today())
        db.session.commit()
    except ValidationErrors as exc:
        db.session.rollback()
        _show_errors(form, exc.errors)
        return _render_details(form, change)
    except (DomainError, StaleDataError) as exc:
        db.session.rollback()
        flash(getattr(exc, "message", "Le dossier a changé entre-temps : vérifiez-le."), "warning")
        return redirect(url_for(".dossier", id=id))
    for key in removed:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)
    if removed:
        flash(
            "Informations enregistrées. Elles figurent sur le formulaire de demande : imprimez le nouveau "
            "formulaire, faites-le signer et ajoutez-le à nouveau.",
            "warning",
        )
    else:
        flash("Informations enregistrées.", "success")
    return redirect(url_for(".dossier", id=id))


def _render_dossier(change: MandateChange, forms: dict | None = None, status: int = 200):
    coop = _coop()
    today = _today()
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


def _upload(id: int, kind: str):
    change = owned_or_404(MandateChange, id)
    form = UPLOAD_FORMS[kind](prefix=kind)
    if not is_editable(change):
        flash(
            f"Le dossier est « {STATUS_LABELS[change.status]} » : ses documents ne peuvent plus être changés.", "info"
        )
        return redirect(url_for(".dossier", id=id))
    if not form.validate_on_submit():
        return _render_dossier(change, {kind: form})
    files = [(form.file.data.filename or "", form.file.data.read())]
    if kind == "identity" and form.back.data:
        files.append((form.back.data.filename or "", form.back.data.read()))
    try:
        _, removed = attach_document(
            db.session,
            change,
            kind,
            files,
            upload_dir=current_app.config["UPLOAD_DIR"],
            by=current_user,
            ip=client_ip(),
            today=_today(),
            proof_date=form.proof_date.data if kind == "address_proof" else None,
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        target = "proof_date" if exc.field == "proof_date" else "file"
        getattr(form, target).errors = [*getattr(form, target).errors, exc.message]
        return _render_dossier(change, {kind: form})
    except StaleDataError:
        db.session.rollback()
        flash("Le dossier a changé entre-temps : vérifiez-le.", "warning")
        return redirect(url_for(".dossier", id=id))
    for key in removed:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)
    flash(f"{DOCUMENT_LABELS[kind].split(' (')[0]} : document {'remplacé' if removed else 'ajouté'}.", "success")
    return redirect(url_for(".dossier", id=id, _anchor=f"piece-{kind}"))


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


@bp.route("/coop/mandataire/<int:id>/envoyer", methods=["GET", "POST"])
@access("coop")
def send(id: int):
    """« Envoyer »: a confirmation page, then the dossier goes to OCCE 85 (and a mail to the coop)."""
    change = owned_or_404(MandateChange, id)
    if not is_editable(change):  # sent already: a double click or the Back button changes nothing
        flash(f"Le dossier est déjà « {STATUS_LABELS[change.status]} ».", "info")
        return redirect(url_for(".dossier", id=id))
    missing = missing_items(change, _today())
    if missing:
        flash(
            "Le dossier n'est pas complet : " + " ".join(m for messages in missing.values() for m in messages),
            "warning",
        )
        return redirect(url_for(".dossier", id=id))
    form = SendForm()
    if form.validate_on_submit():
        try:
            submit_change(db.session, change, by=current_user, ip=client_ip(), now=now(), today=_today())
            notifications.mandate_status(db.session, change)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            messages = (
                [m for ms in exc.errors.values() for m in ms] if isinstance(exc, ValidationErrors) else [exc.message]
            )
            flash(" ".join(messages), "danger")
            return redirect(url_for(".dossier", id=id))
        except StaleDataError:
            db.session.rollback()
            flash("Le dossier a changé entre-temps : vérifiez-le.", "warning")
            return redirect(url_for(".dossier", id=id))
        flash(
            f"Dossier {change.reference} envoyé à l'OCCE 85. Vous recevrez un courriel à chaque étape ; "
            "l'OCCE 85 se charge de l'envoyer à la banque.",
            "success",
        )
        return redirect(url_for(".dossier", id=id))
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
        printed_on=fr_datetime(now(), "dd/MM/yyyy"),
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


