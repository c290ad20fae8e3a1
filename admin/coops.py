"""Coops: list, search, create (with their login), edit; bulk import from CSV."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.model.form import InlineFormAdmin
from flask_login import current_user
from markupsafe import escape
from wtforms import HiddenField
from wtforms.validators import DataRequired, Length, Optional

from admin.base import StaffAccessMixin, StaffModelView
from app import audit, clock, debits
from app.coops import create_coop_login, credentials_csv, import_coops, reset_coop_password
from app.errors import DomainError, ValidationErrors
from app.extensions import db
from app.identity import (
    check_bic,
    check_email,
    check_iban,
    check_phone,
    check_postal_code,
    check_uai,
    format_iban,
)
from app.models import Mandate, User, coop_login
from app.web import uow
from app.web.netutil import client_ip
from forms.admin import CoopImportForm
from forms.validators import Normalise


def _hash_params():
    return current_app.config["ARGON2_PARAMS"] or None


class MandateInline(InlineFormAdmin):
    form_columns = ("id", "role", "civility", "first_name", "last_name", "email", "phone", "started_on", "ended_on")
    form_label = "Mandataire"
    column_labels = {
        "role": "Rôle",
        "civility": "Civilité",
        "first_name": "Prénom",
        "last_name": "Nom",
        "email": "E-mail",
        "phone": "Téléphone",
        "started_on": "Début",
        "ended_on": "Fin",
    }
    form_choices = {
        "role": [("mandataire", "Mandataire"), ("co-signataire", "Co-signataire")],
        "civility": [("", ""), ("Mme", "Mme"), ("M.", "M.")],
    }


class CoopAdmin(StaffModelView):
    column_list = ("number", "name", "school_name", "city", "email", "bank_name", "is_active")
    column_default_sort = "number"
    column_searchable_list = ("name", "school_name", "city", "uai", "email")
    column_filters = ("is_active", "city", "bank_name", "postal_code")
    column_labels = {
        "number": "Identifiant",
        "name": "Nom",
        "school_name": "École",
        "uai": "UAI",
        "address": "Adresse",
        "postal_code": "Code postal",
        "city": "Commune",
        "email": "E-mail",
        "phone": "Téléphone",
        "director_name": "Direction",
        "bank_name": "Banque",
        "iban": "IBAN",
        "bic": "BIC",
        "debit_mandate_ref": "Référence unique de mandat (RUM)",
        "debit_mandate_signed_on": "Mandat signé le",
        "is_active": "Active",
        "mandates": "Mandataires",
        "created_at": "Créée le",
        "updated_at": "Modifiée le",
    }
    column_formatters = {
        "number": lambda v, c, m, n: coop_login(m.number),
        "iban": lambda v, c, m, n: format_iban(m.iban),
    }
    column_details_list = (
        "number",
        "name",
        "school_name",
        "uai",
        "address",
        "postal_code",
        "city",
        "email",
        "phone",
        "director_name",
        "bank_name",
        "iban",
        "bic",
        "debit_mandate_ref",
        "debit_mandate_signed_on",
        "is_active",
        "mandates",
        "created_at",
        "updated_at",
    )
    form_columns = (
        "number",
        "name",
        "school_name",
        "uai",
        "address",
        "postal_code",
        "city",
        "email",
        "phone",
        "director_name",
        "bank_name",
        "iban",
        "bic",
        "debit_mandate_ref",
        "debit_mandate_signed_on",
        "is_active",
        "mandates",
        "expected_version",
    )
    form_args = {
        "number": {"description": "Le login sera 085- suivi de ce numéro sur 3 chiffres (4 au-delà de 999)."},
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "uai": {"validators": [Optional(), Normalise(check_uai)]},
        "postal_code": {"validators": [Optional(), Normalise(check_postal_code)]},
        "email": {"validators": [Optional(), Normalise(check_email)]},
        "phone": {"validators": [Optional(), Normalise(check_phone)]},
        "iban": {"validators": [Optional(), Normalise(check_iban)]},
        "bic": {"validators": [Optional(), Normalise(check_bic)]},
        "debit_mandate_ref": {"validators": [Optional(), Normalise(debits.check_mandate_ref)]},
        "debit_mandate_signed_on": {
            "validators": [Optional(), Normalise(lambda day: debits.check_mandate_signed_on(day, today=clock.today()))]
        },
    }
    inline_models = (MandateInline(Mandate),)
    # The version the form was opened at (not a model column: populate_obj only sets a plain attribute).
    form_extra_fields = {"expected_version": HiddenField()}
    can_delete = False  # a coop with history is deactivated, never deleted

    def on_model_change(self, form, model, is_created):
        # Runs inside Flask-Admin's own commit (see admin/base.py): the domain flushes and audits.
        if is_created:
            db.session.flush()
            credential = create_coop_login(db.session, model, hash_params=_hash_params())
            audit.record(
                db.session,
                "coop.created",
                actor=current_user,
                coop_id=model.id,
                entity="coop",
                entity_id=model.id,
                ip=client_ip(),
            )
            flash(
                escape(
                    f"Coopérative créée. Identifiant : {credential.login} — mot de passe provisoire : "
                    f"{credential.password} (affiché une seule fois : notez-le ou transmettez-le "
                    "maintenant ; il devra être changé à la première connexion)."
                ),
                "success",
            )
        if not is_created and form.expected_version.data and str(model.version) != form.expected_version.data:
            # Issue 12 §1: a coop (or a colleague) saved this record after the form was opened; never
            # overwrite their change silently. Flask-Admin rolls back and shows the form again.
            raise DomainError(
                "Cette fiche a été modifiée entre-temps (par la coopérative ou un collègue) : rien n'a été "
                "enregistré. Rouvrez la fiche pour voir la version actuelle, puis refaites votre modification."
            )
        # After the version check: this query flushes the change (and moves the version).
        other = debits.mandate_ref_taken(db.session, model.debit_mandate_ref, model.id)
        if other is not None:
            raise DomainError(
                f"La RUM {model.debit_mandate_ref} est déjà celle de la coopérative {other.login} : une RUM est "
                "unique pour l'OCCE 85."
            )
        # Every change (inline mandataires included) is audited by the hook of StaffModelView.

    def on_form_prefill(self, form, id):
        model = self.get_one(id)
        if model is not None:
            form.expected_version.data = str(model.version)

    @action(
        "new_password",
        "Nouveau mot de passe provisoire",
        "Donner un nouveau mot de passe provisoire aux coopératives sélectionnées ? "
        "Leurs sessions en cours seront fermées.",
    )
    def action_new_password(self, ids):
        ids = [int(i) for i in ids]

        def reset_passwords():
            users = db.session.scalars(db.select(User).where(User.role == "coop", User.coop_id.in_(ids))).all()
            return [
                reset_coop_password(db.session, user, by=current_user, ip=client_ip(), hash_params=_hash_params())
                for user in users
            ]

        outcome = uow.run(reset_passwords)
        for cred in outcome.value or []:
            flash(
                escape(f"{cred.login} : nouveau mot de passe provisoire {cred.password} (affiché une seule fois)."),
                "success",
            )


class CoopImportView(StaffAccessMixin, BaseView):
    """Upload of the coop list: all or nothing; new logins come back as a mail-merge CSV."""

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = CoopImportForm()
        errors: dict[str, list[str]] = {}
        if form.validate_on_submit():
            content = form.file.data.read()

            def run_import():
                try:
                    return import_coops(
                        db.session, content, by=current_user, ip=client_ip(), hash_params=_hash_params()
                    )
                except ValidationErrors as exc:
                    errors.update(exc.errors)  # shown line by line on the page, not as one flash each
                    raise

            outcome = uow.run(run_import, form=form)
            if outcome.ok:
                result = outcome.value
                message = (
                    f"Import terminé : {len(result.created)} coopérative(s) créée(s), "
                    f"{len(result.updated)} mise(s) à jour."
                )
                if result.created:
                    flash(
                        message + " Le fichier des identifiants et mots de passe provisoires a été "
                        "téléchargé : conservez-le en lieu sûr et supprimez-le après le publipostage.",
                        "success",
                    )
                    stamp = clock.now().strftime("%Y%m%d-%H%M")
                    return Response(
                        credentials_csv(result.created),
                        content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="identifiants-coops-{stamp}.csv"'},
                    )
                flash(message, "success")
                return redirect(url_for(".index"))
        return self.render("admin/coop_import.html", form=form, errors=errors)
