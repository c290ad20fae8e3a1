"""The coop's identity step."""

from __future__ import annotations

from wtforms import EmailField, HiddenField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from app.coops import check_email
from app.identity import IDENTITY_FIELDS, check_bic, check_iban, check_phone, check_postal_code, check_uai
from forms.validators import Normalise, SingleLineForm

REQUIRED = "Ce champ est obligatoire."


class IdentityForm(SingleLineForm):
    """Identité de la coop. Only these fields reach the model (no mass assignment)."""

    name = StringField("Nom de la coopérative", validators=[DataRequired(REQUIRED), Length(max=200)])
    school_name = StringField("Nom de l'école", validators=[DataRequired(REQUIRED), Length(max=200)])
    uai = StringField(
        "Numéro UAI (ex-RNE) de l'école",
        validators=[DataRequired(REQUIRED), Normalise(check_uai)],
        description="7 chiffres et une lettre, par exemple 0850123H.",
        render_kw={"autocapitalize": "characters", "spellcheck": "false", "maxlength": 8},
    )
    address = StringField(
        "Adresse", validators=[DataRequired(REQUIRED), Length(max=300)], render_kw={"autocomplete": "street-address"}
    )
    postal_code = StringField(
        "Code postal",
        validators=[DataRequired(REQUIRED), Normalise(check_postal_code)],
        render_kw={"inputmode": "numeric", "autocomplete": "postal-code", "maxlength": 5},
    )
    city = StringField("Commune", validators=[DataRequired(REQUIRED), Length(max=100)])
    email = EmailField(
        "E-mail de la coopérative",
        validators=[DataRequired(REQUIRED), Normalise(check_email)],
        description="Les confirmations et rappels de l'OCCE 85 arrivent à cette adresse.",
        render_kw={"autocomplete": "email"},
    )
    phone = TelField(
        "Téléphone de l'école", validators=[Optional(), Normalise(check_phone)], render_kw={"autocomplete": "tel"}
    )
    director_name = StringField("Directrice ou directeur de l'école", validators=[Optional(), Length(max=200)])
    bank_name = StringField(
        "Banque",
        validators=[DataRequired(REQUIRED), Length(max=100)],
        description="Par exemple Crédit Mutuel, Caisse d'Épargne, La Banque Postale.",
    )
    iban = StringField(
        "IBAN",
        validators=[DataRequired(REQUIRED), Normalise(check_iban)],
        description="Sur votre RIB : 27 caractères commençant par FR76.",
        render_kw={"autocapitalize": "characters", "spellcheck": "false", "autocomplete": "off"},
    )
    bic = StringField(
        "BIC",
        validators=[DataRequired(REQUIRED), Normalise(check_bic)],
        description="8 ou 11 caractères, par exemple CMCIFR2A.",
        render_kw={"autocapitalize": "characters", "spellcheck": "false"},
    )
    version = HiddenField()

    def values(self) -> dict[str, object]:
        """The identity fields as the domain takes them (text trimmed)."""
        return {
            name: value.strip() if isinstance(value := getattr(self, name).data, str) else value
            for name in IDENTITY_FIELDS
        }

    def expected_version(self) -> int | None:
        try:
            return int(self.version.data)
        except (TypeError, ValueError):
            return None
