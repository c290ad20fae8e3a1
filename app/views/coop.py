"""The coop face: home checklist, identity step, history of changes."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from app import clock
from app.extensions import db
from app.identity import update_identity
from app.mandates import current_mandate
from app.models import AuditEvent, User, school_year_label, school_year_start
from app.web import uow
from app.web.home import checklist
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import owned, owned_or_404
from forms.identity import IdentityForm

bp = Blueprint("coop", __name__)

_FIELD_LABELS = {
    name: field.args[0] for name, field in IdentityForm.__dict__.items() if hasattr(field, "args") and field.args
}
# What a coop sees of its own audit trail: changes to its data and, for transparency, the OCCE 85
# consulting its documents. Never logins, refused accesses or other internal events.
_ACTION_LABELS = {
    "coop.identity_updated": "Identité modifiée",
    "coop.updated": "Fiche mise à jour par l'OCCE 85 (import)",
    "coop.updated_by_staff": "Fiche modifiée par l'OCCE 85",
    "coop.created": "Coopérative créée",
    "mandate.created_by_staff": "Mandataire ajouté par l'OCCE 85",
    "mandate.updated_by_staff": "Mandataire modifié par l'OCCE 85",
    "mandate.deleted_by_staff": "Mandataire retiré par l'OCCE 85",
}
_DOCUMENT_ACTIONS = ("document.viewed", "document.downloaded")


def _visible_events():
    """The coop's events it may read: its data changes, and staff consulting its documents."""
    staff_ids = sa.select(User.id).where(User.role.in_(("staff", "admin")))
    return owned(AuditEvent).where(
        sa.or_(
            AuditEvent.action.in_(list(_ACTION_LABELS)),
            sa.and_(AuditEvent.action.in_(_DOCUMENT_ACTIONS), AuditEvent.actor_id.in_(staff_ids)),
        )
    )


def _label(event: AuditEvent) -> str:
    if event.action in _DOCUMENT_ACTIONS:
        kind = (event.after or {}).get("kind") or "document"
        return f"L'OCCE 85 a consulté la pièce « {_DOCUMENT_KINDS.get(kind, kind)} »"
    return _ACTION_LABELS.get(event.action, event.action)


_DOCUMENT_KINDS = {
    "identity": "pièce d'identité du mandataire",
    "address_proof": "justificatif de domicile du mandataire",
    "mandate_form": "formulaire de changement de mandataire",
    "bank_document": "document de la banque",
    "bank_dossier": "dossier pour la banque",
    "report_quitus": "quitus",
    "report_statement": "relevé bancaire du compte rendu",
    "report_subsidies": "justificatif de subventions",
    "report_other": "pièce du compte rendu",
    "voucher": "justificatif d'opération",
}


def _coop():
    return current_user.coop


@bp.route("/")
@access("authenticated")
def index():
    if current_user.is_staff:
        return redirect(url_for("admin.index"))
    today = clock.today()
    label = school_year_label(school_year_start(today))
    return render_template("coop/home.html", coop=_coop(), steps=checklist(_coop(), today, label), year_label=label)


@bp.route("/coop/identite", methods=["GET", "POST"])
@access("coop")
def identity():
    coop = _coop()
    form = IdentityForm(obj=coop)
    if form.validate_on_submit():
        outcome = uow.run(
            lambda: update_identity(
                db.session,
                coop,
                form.values(),
                expected_version=form.expected_version(),
                by=current_user,
                ip=client_ip(),
            )
        )
        if outcome.ok and outcome.value:
            flash(
                f"Les modifications ont été enregistrées ({len(outcome.value)} information(s) mise(s) à jour).",
                "success",
            )
        elif outcome.ok:
            flash("Aucune modification : les informations étaient déjà à jour.", "info")
        return redirect(url_for("coop.identity"))
    form.version.data = coop.version
    return render_template("coop/identity.html", form=form, coop=coop, mandate=current_mandate(coop, clock.today()))


@bp.route("/coop/modifications")
@access("coop")
def history():
    events = db.session.scalars(_visible_events().order_by(AuditEvent.created_at.desc()).limit(100)).all()
    return render_template("coop/history.html", events=events, label=_label)


@bp.route("/coop/modifications/<int:event_id>")
@access("coop")
def history_event(event_id: int):
    event = owned_or_404(AuditEvent, event_id)
    if db.session.scalar(_visible_events().where(AuditEvent.id == event.id)) is None:
        abort(404)  # an internal event of this coop (a login, a refused access): not for the coop to read
    return render_template("coop/history_event.html", event=event, label=_label, field_labels=_FIELD_LABELS)
