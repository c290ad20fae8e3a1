"""Changes of mandataire in the back office: the dossiers by status, one page per dossier with its
documents viewable inline, and the decisions « Valider », « Renvoyer », « Envoyé à la banque » (with
the merged PDF for the coop's bank), « Délégation créée »; the mandates of every coop.

Dossiers and mandates are read-only lists: statuses only move through `app.mandates`. Each POST below
is CSRF-protected by the global CSRFProtect and runs through `app.web.uow.run` (one commit, the coop's
mail queued in it, replaced files removed after it); the domain audits it. The cover page of the bank
PDF is a Jinja template: the view hands its renderer to the domain, which renders it as often as its
page numbers need.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from markupsafe import Markup

from admin.base import StaffAccessMixin, StaffModelView, format_date, format_datetime
from app import clock, documents
from app.extensions import db
from app.mandate_pdf import page_count
from app.mandates import (
    COOP_DOCUMENTS,
    DOCUMENT_LABELS,
    REASONS,
    STATUS_LABELS,
    attach_bank_document,
    bank_of,
    changes_of,
    complete_change,
    documents_of,
    is_credit_mutuel,
    mark_sent_to_bank,
    return_change,
    status_dates,
    validate_change,
)
from app.models import Document, Mandate, MandateChange, coop_login
from app.web import notifications, uow
from app.web.downloads import send_document
from app.web.netutil import client_ip
from forms.mandates import BankDocumentUpload, DecisionForm, ReturnForm

DOSSIER_ENDPOINT = "admin_mandate_dossiers.dossier"
# The status tabs of the list, in the order staff work: what waits for them first.
STAFF_TABS = ("submitted", "validated", "sent_to_bank", "returned", "draft", "completed")


def _reference(view, context, model: MandateChange, name) -> Markup:
    return Markup("<a href='{}'>{}</a>").format(url_for(DOSSIER_ENDPOINT, id=model.id), model.reference)


def _coop(view, context, model, name) -> str:
    return f"{coop_login(model.coop.number)} {model.coop.name}"


class MandateChangeAdmin(StaffModelView):
    """Every dossier, by status (tabs above the list); the reference opens the dossier page."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    list_template = "mandates/admin_list.html"
    column_list = (
        "reference",
        "coop",
        "incoming_last_name",
        "effective_date",
        "bank_name",
        "status",
        "submitted_at",
        "updated_at",
    )
    column_default_sort = ("updated_at", True)
    column_sortable_list = (
        "reference",
        "incoming_last_name",
        "effective_date",
        "status",
        "submitted_at",
        "updated_at",
        ("coop", "coop.number"),
    )
    column_searchable_list = ("reference", "incoming_last_name", "incoming_first_name", "coop.name")
    # The status tabs (?statut=submitted) instead of Flask-Admin's filter menu, whose items carry inline
    # onclick handlers that the CSP (script nonces only) refuses.
    column_labels = {
        "reference": "Dossier",
        "coop": "Coopérative",
        "incoming_last_name": "Nouveau mandataire",
        "effective_date": "Date d'effet",
        "bank_name": "Banque",
        "status": "Statut",
        "submitted_at": "Envoyé le",
        "updated_at": "Modifié le",
        "coop.number": "N° de coopérative",
        "coop.name": "Nom de la coopérative",
        "incoming_first_name": "Prénom",
    }
    column_formatters = {
        "reference": _reference,
        "coop": _coop,
        "incoming_last_name": lambda v, c, m, n: m.incoming_full_name,
        "bank_name": lambda v, c, m, n: bank_of(m),
        "status": lambda v, c, m, n: STATUS_LABELS[m.status],
        "effective_date": format_date,
        "submitted_at": format_datetime,
        "updated_at": format_datetime,
    }

    @staticmethod
    def _status() -> str | None:
        status = request.args.get("statut")
        return status if status in STATUS_LABELS else None

    def get_query(self):
        query = super().get_query()
        return query.filter(MandateChange.status == self._status()) if self._status() else query

    def get_count_query(self):
        query = super().get_count_query()
        return query.filter(MandateChange.status == self._status()) if self._status() else query

    def render(self, template, **kwargs):
        if template == self.list_template:
            counts = dict(
                db.session.execute(
                    sa.select(MandateChange.status, sa.func.count()).group_by(MandateChange.status)
                ).all()
            )
            kwargs.update(
                status_counts=[(status, STATUS_LABELS[status], counts.get(status, 0)) for status in STAFF_TABS],
                current_status=self._status(),
            )
        return super().render(template, **kwargs)


class MandateAdmin(StaffModelView):
    """The mandates of every coop (mandataires and co-signataires): the history, read-only here.

    They change through the coop's record (« Coopératives ») or a completed change of mandataire.
    """

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    column_list = ("coop", "role", "civility", "first_name", "last_name", "email", "phone", "started_on", "ended_on")
    column_default_sort = [("coop.number", False), ("started_on", True)]
    column_sortable_list = ("role", "last_name", "started_on", "ended_on", ("coop", "coop.number"))
    column_searchable_list = ("last_name", "first_name", "email", "coop.name")
    column_filters = ("coop.number", "role", "started_on", "ended_on")
    column_labels = {
        "coop": "Coopérative",
        "role": "Rôle",
        "civility": "Civilité",
        "first_name": "Prénom",
        "last_name": "Nom",
        "email": "E-mail",
        "phone": "Téléphone",
        "started_on": "Début",
        "ended_on": "Fin",
        "coop.number": "N° de coopérative",
        "coop.name": "Nom de la coopérative",
    }
    column_formatters = {"coop": _coop, "started_on": format_date, "ended_on": format_date}


class MandateDossierView(StaffAccessMixin, BaseView):
    """One dossier: details, documents (inline), the coop's mandates, and the staff decisions."""

    def is_visible(self) -> bool:  # reached from the list of dossiers, not from the menu
        return False

    def _change(self, id: int) -> MandateChange:
        change = db.session.get(MandateChange, id)
        if change is None:
            abort(404)
        return change

    def _page(
        self,
        change: MandateChange,
        *,
        return_form: ReturnForm | None = None,
        bank_form: BankDocumentUpload | None = None,
        status: int = 200,
    ):
        upload_dir = current_app.config["UPLOAD_DIR"]
        docs = documents_of(change)
        pages = {kind: page_count(upload_dir, doc) for kind, doc in docs.items()}
        mandates = db.session.scalars(
            sa.select(Mandate)
            .where(Mandate.coop_id == change.coop_id)
            .order_by(Mandate.started_on.desc(), Mandate.id.desc())
        ).all()
        today = clock.today()
        return self.render(
            "mandates/admin_dossier.html",
            change=change,
            coop=change.coop,
            docs=docs,
            pages=pages,
            labels=DOCUMENT_LABELS,
            coop_documents=COOP_DOCUMENTS,
            status_labels=STATUS_LABELS,
            reasons=REASONS,
            steps=status_dates(change),
            bank=bank_of(change),
            is_credit_mutuel=is_credit_mutuel(bank_of(change)),
            mandates=mandates,
            today=today,
            others=[c for c in changes_of(db.session, change.coop) if c.id != change.id],
            decision_form=DecisionForm(),
            return_form=return_form or ReturnForm(formdata=None),
            bank_form=bank_form or BankDocumentUpload(formdata=None),
            outgoing_ends_on=change.effective_date - timedelta(days=1),
            proof_age_days=(today - change.proof_of_address_date).days if change.proof_of_address_date else None,
        ), status

    @expose("/")
    def index(self):
        return redirect(url_for("admin_mandate_changes.index_view"))

    @expose("/<int:id>")
    def dossier(self, id: int):
        return self._page(self._change(id))

    def _decide(self, id: int, target: str, decide: Callable[[MandateChange], Any], success: str):
        """Run one decision: PRG, one flash, the coop's mail in the same transaction."""
        change = self._change(id)
        if not DecisionForm().validate_on_submit():
            abort(400)
        if change.status == target:  # a double click, or a colleague was faster
            flash(f"Ce dossier est déjà « {STATUS_LABELS[target]} ».", "info")
        elif uow.run(lambda: _and_tell_the_coop(change, decide)).ok:
            flash(success, "success")
        return redirect(url_for(".dossier", id=id))

    @expose("/<int:id>/valider", methods=("POST",))
    def validate(self, id: int):
        return self._decide(
            id,
            "validated",
            lambda change: validate_change(
                db.session,
                change,
                render_html=_render_cover,
                static_dir=current_app.static_folder,
                upload_dir=current_app.config["UPLOAD_DIR"],
                by=current_user,
                ip=client_ip(),
                now=clock.now(),
            ),
            "Dossier validé ; la coopérative est prévenue par courriel. Le PDF pour la banque est "
            "prêt : téléchargez-le, envoyez-le, puis cliquez sur « Envoyé à la banque ».",
        )

    @expose("/<int:id>/renvoyer", methods=("POST",))
    def send_back(self, id: int):
        change = self._change(id)
        form = ReturnForm()
        if not form.validate_on_submit():
            return self._page(change, return_form=form)
        outcome = uow.run(
            lambda: _and_tell_the_coop(
                change,
                lambda c: return_change(
                    db.session, c, form.reason.data, by=current_user, ip=client_ip(), now=clock.now()
                ),
            ),
            form=form,
            flash_unplaced=True,
        )
        if outcome.ok:
            flash("Dossier renvoyé à la coopérative avec votre motif ; elle est prévenue par courriel.", "success")
        elif outcome.on_field:
            return self._page(change, return_form=form)
        return redirect(url_for(".dossier", id=id))

    @expose("/<int:id>/banque", methods=("POST",))
    def sent_to_bank(self, id: int):
        return self._decide(
            id,
            "sent_to_bank",
            lambda change: mark_sent_to_bank(db.session, change, by=current_user, ip=client_ip(), now=clock.now()),
            "Dossier noté « Envoyé à la banque » ; la coopérative est prévenue par courriel.",
        )

    @expose("/<int:id>/delegation", methods=("POST",))
    def completed(self, id: int):
        return self._decide(
            id,
            "completed",
            lambda change: complete_change(db.session, change, by=current_user, ip=client_ip(), now=clock.now()),
            "Délégation créée : le nouveau mandat est enregistré, l'ancien prend fin la veille de "
            "la date d'effet. La coopérative et le nouveau mandataire sont prévenus par courriel.",
        )

    @expose("/<int:id>/document-banque", methods=("POST",))
    def bank_document(self, id: int):
        change = self._change(id)
        form = BankDocumentUpload()
        if not form.validate_on_submit():
            return self._page(change, bank_form=form)
        outcome = uow.run(
            lambda: _forward_bank_document(change, form.file.data.read()),
            form=form,
            flash_unplaced=True,
            after_commit=_remove_files,
        )
        if outcome.ok:
            flash(
                "Document de la banque transmis : la coopérative peut le télécharger et a été prévenue par courriel.",
                "success",
            )
        elif outcome.on_field:  # a refused file
            return self._page(change, bank_form=form)
        return redirect(url_for(".dossier", id=id))

    def _document(self, document_id: int) -> Document:
        document = db.session.get(Document, document_id)
        if document is None or document.mandate_change_id is None:
            abort(404)
        return document

    @expose("/document/<int:document_id>")
    def document(self, document_id: int):
        """The document shown by the browser (inline), sandboxed: staff only, audited."""
        return send_document(self._document(document_id), inline=True, audited=True)

    @expose("/document/<int:document_id>/telecharger")
    def download(self, document_id: int):
        return send_document(self._document(document_id), audited=True)


def _render_cover(context: dict[str, Any]) -> str:
    """The HTML of the bank dossier's cover page, from the context `app.mandates` gives."""
    return render_template("pdf/mandate_cover.html", **context)


def _and_tell_the_coop(change: MandateChange, decide: Callable[[MandateChange], Any]) -> MandateChange:
    """A staff decision and the mail that tells the coop (and the new mandataire) where the dossier stands."""
    decide(change)
    notifications.mandate_status(db.session, change)
    return change


def _forward_bank_document(change: MandateChange, content: bytes) -> list[str]:
    """Crédit Mutuel's document for the coop, and the mail that announces it; the files it replaced."""
    _, removed = attach_bank_document(
        db.session, change, content, upload_dir=current_app.config["UPLOAD_DIR"], by=current_user, ip=client_ip()
    )
    notifications.mandate_bank_document(db.session, change)
    return removed


def _remove_files(storage_keys: list[str]) -> None:
    """After the commit: remove the files of the documents a decision replaced."""
    for key in storage_keys:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)
