"""Forms of the back office's own pages (coop import, direct debits, campaign reminders).

Model views (Flask-Admin `ModelView`) build their forms from the model and `form_args`; the forms
below are those of the custom pages.
"""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, ValidationError

from app.campaign import placeholder_problem
from app.debits import REASON_LABELS
from forms.ledger import FrenchDateField
from forms.validators import SingleLineForm


class ConfirmForm(SingleLineForm):
    """A button that changes something (export, « Prélèvement effectué »): only the CSRF token."""


class CoopImportForm(SingleLineForm):
    file = FileField("Fichier CSV des coopératives", validators=[FileRequired("Choisissez un fichier CSV.")])


class DebitBatchForm(SingleLineForm):
    collection_date = FrenchDateField(
        "Date d'échéance (prélèvement sur les comptes)",
        validators=[DataRequired("Indiquez la date d'échéance.")],
        render_kw={"type": "date"},
    )
    shorter_notice_agreed = BooleanField(
        "Les coopératives ont accepté d'être prévenues moins longtemps à l'avance (délai plus court convenu)",
        default=False,
    )


REASON_CHOICES = [("", "— motif donné par la banque —")] + [
    (code, f"{code} : {label}") for code, label in REASON_LABELS.items()
]


class DebitRejectForm(SingleLineForm):
    """A debit that came back: before settlement (rejected) or after it (returned / refunded)."""

    reason_code = SelectField(
        "Code motif (ISO 20022, sur l'avis de la banque)",
        choices=REASON_CHOICES,
        validators=[
            DataRequired("Choisissez le code motif donné par la banque."),
            AnyOf(list(REASON_LABELS), message="Code motif inconnu."),
        ],
    )
    note = StringField("Précision (facultatif)", validators=[Optional(), Length(max=300)])


class DebitReportForm(SingleLineForm):
    file = FileField(
        "Fichier de la banque (compte rendu pain.002 ou avis d'opérations camt.054, XML)",
        validators=[FileRequired("Choisissez le fichier XML reçu de la banque.")],
    )


class ReminderForm(SingleLineForm):
    subject = StringField("Objet", validators=[DataRequired("Indiquez l'objet."), Length(max=200)])
    body = TextAreaField(
        "Message",
        validators=[DataRequired("Écrivez le message."), Length(max=5000)],
        description="Vous pouvez utiliser {nom}, {identifiant}, {ecole} et {annee} : ils sont "
        "remplacés pour chaque coopérative.",
        render_kw={"rows": 10},
    )

    def validate_subject(self, field) -> None:
        _known_placeholders_only(field)

    def validate_body(self, field) -> None:
        _known_placeholders_only(field)


def _known_placeholders_only(field) -> None:
    problem = placeholder_problem(field.data or "")
    if problem:
        raise ValidationError(problem)
