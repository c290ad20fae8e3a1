"""Forms of the pointage screen."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, SubmitField
from wtforms.validators import Optional

from forms.fields import MoneyField
from forms.ledger import FrenchDateField, Required


class StatementBalanceForm(FlaskForm):
    """The summary box: the statement's date and balance, as printed by the bank."""

    # Required, not DataRequired: « Date invalide » stays the message of 31/02, and 0,00 is a balance.
    on = FrenchDateField(
        "Date du relevé", validators=[Required("Indiquez la date du relevé.")], render_kw={"type": "date"}
    )
    balance = MoneyField(
        "Solde du relevé à cette date (€)",
        validators=[Required("Indiquez le solde du relevé.")],
        description="Le solde imprimé sur le relevé, négatif s'il est débiteur (ex. -12,50).",
    )
    submit = SubmitField("Calculer l'écart")


class StatementImportForm(FlaskForm):
    file = FileField(
        "Relevé téléchargé de votre banque (OFX, CSV, CAMT.053 ou QIF)",
        validators=[FileRequired("Choisissez le fichier du relevé.")],
    )
    submit = SubmitField("Importer le relevé")


class MappingForm(FlaskForm):
    """Column mapping for a CSV layout the portal does not know."""

    date = SelectField("Colonne de la date", validate_choice=False)
    label = SelectField("Colonne du libellé", validate_choice=False)
    amount = SelectField("Colonne du montant signé (ou laissez vide)", validate_choice=False, validators=[Optional()])
    debit = SelectField("Colonne des débits (sorties)", validate_choice=False, validators=[Optional()])
    credit = SelectField("Colonne des crédits (entrées)", validate_choice=False, validators=[Optional()])
    submit = SubmitField("Importer avec ces colonnes")


class ConfirmMatchesForm(FlaskForm):
    """Checked proposals, each `statement_line_id:line,line`."""

    submit = SubmitField("Confirmer les correspondances cochées")


class LineActionForm(FlaskForm):
    on = HiddenField()
    confirme = HiddenField()
