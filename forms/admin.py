"""Forms of the back office's own pages (coop import, direct debits, campaign reminders).

Model views (Flask-Admin `ModelView`) build their forms from the model and `form_args`; the forms
below are those of the custom pages.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from forms.ledger import FrenchDateField


class ConfirmForm(FlaskForm):
    """A button that changes something (export, « Prélèvement effectué »): only the CSRF token."""


class CoopImportForm(FlaskForm):
    file = FileField("Fichier CSV des coopératives", validators=[FileRequired("Choisissez un fichier CSV.")])


class DebitBatchForm(FlaskForm):
    collection_date = FrenchDateField(
        "Date d'échéance (prélèvement sur les comptes)",
        validators=[DataRequired("Indiquez la date d'échéance.")],
        render_kw={"type": "date"},
    )


class DebitRejectForm(FlaskForm):
    reason = StringField(
        "Motif du rejet (tel qu'indiqué par la banque)",
        validators=[DataRequired("Indiquez le motif du rejet."), Length(max=300)],
    )


class ReminderForm(FlaskForm):
    subject = StringField("Objet", validators=[DataRequired("Indiquez l'objet."), Length(max=200)])
    body = TextAreaField(
        "Message",
        validators=[DataRequired("Écrivez le message."), Length(max=5000)],
        description="Vous pouvez utiliser {nom}, {identifiant}, {ecole} et {annee} : ils sont "
        "remplacés pour chaque coopérative.",
        render_kw={"rows": 10},
    )
