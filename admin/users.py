"""OCCE 85 staff accounts."""

from __future__ import annotations

from flask import current_app, flash
from flask_admin.actions import action
from flask_login import current_user
from markupsafe import escape
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from admin.base import StaffModelView, format_datetime
from app.auth import STAFF_ROLES, reset_second_factor, staff_account_saved, staff_login_problem
from app.extensions import db
from app.identity import check_email
from app.models import User
from app.web import uow
from app.web.netutil import client_ip
from forms.validators import Normalise, SingleLine


def _staff_login(form, field) -> None:
    problem = staff_login_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class StaffUserAdmin(StaffModelView):
    """Staff logins (administrators only): created with a temporary password shown once; disabling ends
    every session."""

    def is_accessible(self) -> bool:
        return super().is_accessible() and current_user.role == "admin"

    column_list = ("login", "full_name", "email", "role", "is_enabled", "totp_enrolled_at", "last_login_at")
    column_labels = {
        "login": "Identifiant",
        "full_name": "Nom",
        "email": "E-mail",
        "role": "Rôle",
        "is_enabled": "Actif",
        "last_login_at": "Dernière connexion",
        "totp_enrolled_at": "Double authentification depuis",
        "must_change_password": "Doit changer son mot de passe",
    }
    column_formatters = {"last_login_at": format_datetime, "totp_enrolled_at": format_datetime}
    column_searchable_list = ("login", "full_name", "email")
    form_columns = ("login", "full_name", "email", "role", "is_enabled")
    form_choices = {"role": [("staff", "Équipe OCCE 85"), ("admin", "Administrateur")]}
    form_args = {
        "login": {
            "validators": [DataRequired(), Length(min=3, max=64), _staff_login],
            "description": "Par exemple prenom.nom (pas de la forme 085-NNN, réservée aux coopératives).",
        },
        "email": {
            "validators": [DataRequired(), Normalise(check_email)],
            "description": "Reçoit les liens de réinitialisation du mot de passe.",
        },
        "full_name": {"validators": [Optional(), Length(max=200), SingleLine()]},
    }
    can_delete = False  # disable instead: the audit trail keeps pointing at the account

    def get_query(self):
        return super().get_query().filter(User.role.in_(STAFF_ROLES))

    def get_count_query(self):
        return super().get_count_query().filter(User.role.in_(STAFF_ROLES))

    def get_one(self, id):
        user = super().get_one(id)
        return user if user is not None and user.is_staff else None

    def on_model_change(self, form, model, is_created):
        # Runs inside Flask-Admin's own commit (see admin/base.py): the domain flushes and audits.
        password = staff_account_saved(
            db.session,
            model,
            is_created=is_created,
            by=current_user,
            ip=client_ip(),
            hash_params=current_app.config["ARGON2_PARAMS"] or None,
        )
        if password is not None:
            flash(
                escape(
                    f"Compte créé. Identifiant : {model.login} — mot de passe provisoire : {password} "
                    "(affiché une seule fois)."
                ),
                "success",
            )

    @action(
        "reset_second_factor",
        "Réinitialiser la double authentification",
        "Réinitialiser la double authentification des comptes sélectionnés ? Leurs sessions seront fermées "
        "et ils devront enregistrer à nouveau leur téléphone à la prochaine connexion.",
    )
    def action_reset_second_factor(self, ids):
        ids = [int(i) for i in ids]

        def reset():
            users = db.session.scalars(db.select(User).where(User.id.in_(ids), User.role.in_(STAFF_ROLES))).all()
            for user in users:
                reset_second_factor(db.session, user, by=current_user, ip=client_ip())
            return [user.login for user in users]

        outcome = uow.run(reset, flash_unplaced=True)
        if outcome.ok:
            flash(
                escape(
                    "Double authentification réinitialisée : "
                    + ", ".join(outcome.value or [])
                    + ". À la prochaine connexion, la personne enregistrera à nouveau son téléphone."
                ),
                "success",
            )
