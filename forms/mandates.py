"""Change of mandataire: the coop's request, its three uploads and « Envoyer »; the staff decisions."""

from __future__ import annotations

from datetime import date

from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, EmailField, RadioField, SelectField, StringField, SubmitField, TelField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.coops import check_email
from app.identity import check_phone
from app.mandates import CIVILITIES, DETAIL_FIELDS, REASONS, ChangeDetails
from app.models import Mandate
from forms.ledger import FrenchDateField, Required
from forms.validators import Normalise, SingleLineForm

REQUIRED = "Ce champ est obligatoire."
FILE_HELP = "PDF, JPEG ou PNG, 10 Mo au plus. Une photo prise avec un téléphone convient."


def _civility(label: str, *, required: bool) -> RadioField:
    validators = [DataRequired("Choisissez la civilité.")] if required else [Optional()]
    return RadioField(label, choices=[(c, c) for c in CIVILITIES], validators=validators)


class MandateChangeForm(SingleLineForm):
    """« Changement pour le compte bancaire… »: only these fields reach the dossier (no mass assignment)."""

    incoming_civility = _civility("Civilité", required=True)
    incoming_last_name = StringField(
        "Nom", validators=[DataRequired(REQUIRED), Length(max=100)], render_kw={"autocomplete": "off"}
    )
    incoming_first_name = StringField(
        "Prénom", validators=[DataRequired(REQUIRED), Length(max=100)], render_kw={"autocomplete": "off"}
    )
    incoming_email = EmailField(
        "E-mail personnel ou académique",
        validators=[DataRequired(REQUIRED), Normalise(check_email), Length(max=254)],
        description="La banque et l'OCCE 85 écriront à cette adresse.",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    incoming_phone = TelField(
        "Téléphone portable",
        validators=[DataRequired(REQUIRED), Normalise(check_phone)],
        description="La banque peut en avoir besoin pour l'accès aux comptes en ligne.",
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    incoming_is_teacher = BooleanField(
        "Cette personne enseigne à l'école",
        validators=[
            DataRequired("Seul un enseignant de l'école peut être mandataire de la coopérative (statuts de l'OCCE).")
        ],
    )
    outgoing_civility = _civility("Civilité", required=False)
    outgoing_last_name = StringField("Nom", validators=[Optional(), Length(max=100)], render_kw={"autocomplete": "off"})
    outgoing_first_name = StringField(
        "Prénom", validators=[Optional(), Length(max=100)], render_kw={"autocomplete": "off"}
    )
    effective_date = FrenchDateField(
        "Date d'effet du changement",
        validators=[Required(REQUIRED)],
        description="Le jour où le nouveau mandataire prend la suite, par exemple le 1er septembre.",
        render_kw={"type": "date"},
    )
    reason = SelectField(
        "Motif du changement",
        choices=[("", "— Choisir —"), *REASONS.items()],
        validators=[DataRequired("Choisissez le motif du changement.")],
    )
    reason_details = TextAreaField(
        "Précisions (facultatif, obligatoire pour « Autre motif »)",
        validators=[Optional(), Length(max=500)],
        render_kw={"rows": 2},
    )
    submit = SubmitField("Enregistrer")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.reason.data == "autre" and not (self.reason_details.data or "").strip():
            self.reason_details.errors = [*self.reason_details.errors, "Précisez le motif du changement."]
            valid = False
        return valid

    def prefill_outgoing(self, mandate: Mandate | None) -> None:
        """A new dossier starts with the current mandataire as the outgoing one."""
        if mandate is not None:
            self.outgoing_civility.data = mandate.civility if mandate.civility in CIVILITIES else None
            self.outgoing_last_name.data = mandate.last_name
            self.outgoing_first_name.data = mandate.first_name

    def details(self) -> ChangeDetails:
        """The typed values, once the form is valid."""
        values = {name: getattr(self, name).data for name in DETAIL_FIELDS}
        values = {
            name: (value or "").strip() if name not in ("effective_date", "incoming_is_teacher") else value
            for name, value in values.items()
        }
        values["incoming_is_teacher"] = bool(values["incoming_is_teacher"])
        values["incoming_last_name"] = values["incoming_last_name"].upper()
        values["outgoing_last_name"] = values["outgoing_last_name"].upper()
        return ChangeDetails(**values)


class DocumentUpload(SingleLineForm):
    """One of the dossier's uploads; `files()` and `proof_date_value()` are what `attach_document` takes."""

    def files(self) -> list[tuple[str, bytes]]:
        """The uploaded files as (name, content): the file, then the back side when there is one."""
        back = getattr(self, "back", None)
        uploads = [self.file.data, back.data if back is not None else None]
        return [(upload.filename or "", upload.read()) for upload in uploads if upload]

    def proof_date_value(self) -> date | None:
        """The date of a proof of address (None for the other documents)."""
        proof_date = getattr(self, "proof_date", None)
        return proof_date.data if proof_date is not None else None


class SignedFormUpload(DocumentUpload):
    file = FileField(
        "Formulaire daté et signé (scan ou photo)",
        description=FILE_HELP,
        validators=[FileRequired("Choisissez le formulaire signé.")],
    )
    submit = SubmitField("Ajouter le formulaire signé")


class IdentityUpload(DocumentUpload):
    file = FileField(
        "Recto (ou un seul fichier avec les deux faces)",
        description=FILE_HELP,
        validators=[FileRequired("Choisissez la photo ou le scan de la pièce d'identité.")],
    )
    back = FileField(
        "Verso (si vous avez une photo par face)",
        validators=[Optional()],
        description="Les deux photos sont assemblées sur une seule page.",
    )
    submit = SubmitField("Ajouter la pièce d'identité")


class AddressProofUpload(DocumentUpload):
    file = FileField(
        "Justificatif de domicile",
        description=FILE_HELP,
        validators=[FileRequired("Choisissez le justificatif de domicile.")],
    )
    proof_date = FrenchDateField(
        "Date du justificatif",
        validators=[Required(REQUIRED)],
        description="La date imprimée sur la facture ou l'avis : moins de 6 mois.",
        render_kw={"type": "date"},
    )
    submit = SubmitField("Ajouter le justificatif de domicile")


class SendForm(SingleLineForm):
    """The confirmation page of « Envoyer »."""

    submit = SubmitField("Envoyer le dossier à l'OCCE 85")


# --- Back office ---------------------------------------------------------------------------------


class DecisionForm(SingleLineForm):
    """A staff decision without input (Valider, Envoyé à la banque, Délégation créée)."""

    submit = SubmitField("Confirmer")


class ReturnForm(SingleLineForm):
    reason = TextAreaField(
        "Ce que la coopérative doit corriger",
        validators=[
            DataRequired("Indiquez ce que la coopérative doit corriger : elle lira ce motif."),
            Length(max=1000),
        ],
        render_kw={"rows": 3},
    )
    submit = SubmitField("Renvoyer à la coopérative")


class BankDocumentUpload(SingleLineForm):
    file = FileField(
        "Document du Crédit Mutuel à transmettre à la coopérative",
        description=FILE_HELP,
        validators=[FileRequired("Choisissez le document de la banque.")],
    )
    submit = SubmitField("Transmettre à la coopérative")
