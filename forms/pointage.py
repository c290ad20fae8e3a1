"""Forms of the pointage screen."""

from __future__ import annotations

import re
from datetime import date

from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import Optional, ValidationError

from app.statements import CsvMapping
from forms.fields import MoneyField
from forms.ledger import FrenchDateField, Required
from forms.validators import SingleLineForm


class StatementBalanceForm(SingleLineForm):
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


class StatementImportForm(SingleLineForm):
    file = FileField(
        "Relevé téléchargé de votre banque (OFX, CSV, CAMT.053 ou QIF)",
        validators=[FileRequired("Choisissez le fichier du relevé.")],
    )
    submit = SubmitField("Importer le relevé")


class MappingForm(SingleLineForm):
    """Column mapping for a CSV layout the portal does not know."""

    date = SelectField("Colonne de la date", validate_choice=False)
    label = SelectField("Colonne du libellé", validate_choice=False)
    amount = SelectField("Colonne du montant signé (ou laissez vide)", validate_choice=False, validators=[Optional()])
    debit = SelectField("Colonne des débits (sorties)", validate_choice=False, validators=[Optional()])
    credit = SelectField("Colonne des crédits (entrées)", validate_choice=False, validators=[Optional()])
    submit = SubmitField("Importer avec ces colonnes")

    def offer(self, columns: list[str]) -> None:
        """Offer the file's columns (by position; an unnamed one is « Colonne n ») in every select."""
        choices = [("", "—")] + [(str(i), name or f"Colonne {i + 1}") for i, name in enumerate(columns)]
        for select in (self.date, self.label, self.amount, self.debit, self.credit):
            select.choices = choices

    @staticmethod
    def _column(select: SelectField) -> int | None:
        return int(select.data) if (select.data or "").isdigit() else None

    def validate(self, extra_validators=None) -> bool:
        """The date and the label, and either a signed amount or both the debit and credit columns."""
        if not super().validate(extra_validators):
            return False
        column = self._column
        if column(self.date) is None or column(self.label) is None:
            self.form_errors.append("Indiquez au moins la colonne de la date et celle du libellé.")
        elif column(self.amount) is None and (column(self.debit) is None or column(self.credit) is None):
            self.form_errors.append("Indiquez la colonne du montant, ou bien celles des débits et des crédits.")
        return not self.form_errors

    def csv_mapping(self) -> CsvMapping:
        """The columns chosen, as the statement parser takes them (after `validate`)."""
        return CsvMapping(
            date=self._column(self.date),
            label=(self._column(self.label),),
            amount=self._column(self.amount),
            debit=self._column(self.debit),
            credit=self._column(self.credit),
        )


_MATCH_VALUE = re.compile(r"(\d+):(\d+(?:,\d+)*)")


class ConfirmMatchesForm(SingleLineForm):
    """Checked proposals, each `statement_line_id:line,line`; `un` is the « Confirmer » of one row."""

    match = SelectMultipleField(validate_choice=False)  # the checkboxes, written by the template
    un = StringField()
    submit = SubmitField("Confirmer les correspondances cochées")

    def chosen(self) -> list[tuple[int, tuple[int, ...]]]:
        """(statement line id, cash-book line ids) of the row confirmed alone, else of every checked
        row; values that are not of that shape are ignored."""
        values = [self.un.data] if self.un.data else self.match.data or []
        chosen = []
        for value in values:
            found = _MATCH_VALUE.fullmatch(value)
            if found:
                chosen.append((int(found.group(1)), tuple(int(i) for i in found.group(2).split(","))))
        return chosen


class LineActionForm(SingleLineForm):
    """« Pointer » / « Dépointer » one line: `on` is the statement date (ISO, optional), `confirme`
    says the user answered yes to « Dépointer ? »."""

    on = HiddenField()
    confirme = HiddenField()

    def validate_on(self, field: HiddenField) -> None:
        if field.data:
            try:
                date.fromisoformat(field.data)
            except ValueError:
                raise ValidationError("Date invalide.") from None

    def statement_date(self) -> date | None:
        return date.fromisoformat(self.on.data) if self.on.data else None

    @property
    def is_confirmed(self) -> bool:
        return self.confirme.data == "oui"


class ConfirmOutsideYearForm(SingleLineForm):
    """« Importer quand même » once the lines dated outside the year were shown."""

    submit = SubmitField("Importer quand même")
