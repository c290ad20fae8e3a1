"""Login and password forms."""

from __future__ import annotations

from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.passwords import MAX_LENGTH
from forms.validators import SingleLineForm

REQUIRED = "Ce champ est obligatoire."


class LoginForm(SingleLineForm):
    login = StringField(
        "Identifiant",
        validators=[DataRequired(REQUIRED), Length(max=64)],
        description="Pour une coopérative : 085- suivi de son numéro, par exemple 085-099.",
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        "Mot de passe",
        validators=[DataRequired(REQUIRED), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()


_NEW_HELP = (
    "Au moins 12 caractères. Une phrase de quelques mots est facile à retenir et difficile "
    "à deviner, par exemple « la classe de mer à Noirmoutier »."
)


class _NewPasswordMixin:
    new_password = PasswordField(
        "Nouveau mot de passe",
        description=_NEW_HELP,
        validators=[DataRequired(REQUIRED), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Confirmez le nouveau mot de passe",
        validators=[DataRequired(REQUIRED), EqualTo("new_password", "Les deux mots de passe ne sont pas identiques.")],
        render_kw={"autocomplete": "new-password"},
    )


class ChangePasswordForm(_NewPasswordMixin, SingleLineForm):
    current_password = PasswordField(
        "Mot de passe actuel (ou provisoire)",
        validators=[DataRequired(REQUIRED), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )

    field_order = ("current_password", "new_password", "confirm")


class ResetRequestForm(SingleLineForm):
    identifier = StringField(
        "Identifiant",
        validators=[DataRequired(REQUIRED), Length(max=254)],
        description="085-NNN pour une coopérative ; votre identifiant pour l'OCCE 85.",
        render_kw={"autocomplete": "username"},
    )


class ResetPasswordForm(_NewPasswordMixin, SingleLineForm):
    pass


class SecondFactorForm(SingleLineForm):
    code = StringField(
        "Code de l'application d'authentification",
        validators=[DataRequired(REQUIRED), Length(max=20, message="Un code fait 6 chiffres (ou 10 caractères).")],
        description="Les 6 chiffres affichés par l'application, ou l'un de vos codes de secours.",
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "autocapitalize": "none",
            "spellcheck": "false",
        },
    )


class EnrollSecondFactorForm(SingleLineForm):
    code = StringField(
        "Code affiché par l'application",
        validators=[DataRequired(REQUIRED), Length(max=20, message="Un code fait 6 chiffres.")],
        description="6 chiffres, renouvelés toutes les 30 secondes.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"},
    )
