"""Year end: cash count, statement balance, closing confirmation, CRA, quitus, documents, submission."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from app.closing import DENOMINATIONS, MAX_PIECES, NOTES, CashCount, CountRow, count_rows, denomination_label
from app.cra import (
    AUDITOR_QUALITIES,
    MAX_AUDITORS,
    MAX_CRA_ACTIONS,
    MAX_CRA_CLASSES,
    Auditor,
    CraAction,
    CraAnswers,
    CraClass,
    can_add_auditor,
    check_cra,
    check_quitus,
)
from app.errors import ValidationErrors
from forms.fields import MoneyField, WholeNumberField
from forms.ledger import Required
from forms.validators import SingleLineForm

REQUIRED = "Ce champ est obligatoire."


def _count_field(value: int) -> WholeNumberField:
    what = "billets" if value in NOTES else "pièces"
    return WholeNumberField(
        f"Nombre de {what} de {denomination_label(value)}",
        default=0,
        validators=[Optional(), NumberRange(0, MAX_PIECES, f"Entre 0 et {MAX_PIECES}.")],
        render_kw={"inputmode": "numeric", "min": 0, "autocomplete": "off"},
    )


class CashCountForm(SingleLineForm):
    """The arrêté de caisse: how many notes and coins of each denomination are in the cash box."""

    submit = SubmitField("Enregistrer l'arrêté de caisse")

    def count_fields(self):
        return [(value, getattr(self, f"d{value}")) for value in DENOMINATIONS]

    def rows(self) -> list[tuple[CountRow, object]]:
        """Each row of the cash-count table (label, group, subtotal from `app.closing`) with its field."""
        fields = dict(self.count_fields())
        return [(row, fields[row.value]) for row in count_rows({value: f.data for value, f in fields.items()})]

    def cash_count(self) -> CashCount:
        return CashCount.from_counts({value: field.data or 0 for value, field in self.count_fields()})

    def fill(self, count: CashCount | None) -> None:
        for value, field in self.count_fields():
            field.data = count.number_of(value) if count else 0


for _value in DENOMINATIONS:
    setattr(CashCountForm, f"d{_value}", _count_field(_value))


class StatementForm(SingleLineForm):
    balance = MoneyField(
        "Solde du relevé bancaire au 31 août (en euros)",
        validators=[Required("Indiquez le solde du relevé au 31 août (négatif s'il est débiteur : -12,50).")],
        description="Le solde indiqué sur le relevé de votre banque au 31 août, tel qu'il est imprimé.",
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    submit = SubmitField("Enregistrer le solde du relevé")


class CloseForm(SingleLineForm):
    """The typed confirmation of the definitive closing (the coop's number)."""

    confirmation = StringField(
        "Pour confirmer, tapez le numéro de votre coopérative",
        validators=[DataRequired("Tapez le numéro de votre coopérative pour confirmer.")],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    # Shown only when the next year already has an opening typed by the coop that differs from the
    # closing balances (`app.closing.opening_conflict`): the domain refuses until it is ticked.
    replace_opening = BooleanField("Je confirme : la clôture remplace le report à nouveau déjà saisi")
    submit = SubmitField("Clôture définitive de ce cahier de compta")

    def __init__(self, *args, login: str = "", number: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.login, self.number = login, number

    def validate_confirmation(self, field) -> None:
        if not confirmation_matches(field.data, self.login, self.number):
            raise ValidationError(f"Ce n'est pas le numéro de votre coopérative : tapez {self.login}.")


def confirmation_matches(typed: str, login: str, number: int) -> bool:
    """« 085-001 », « 085001 », « 001 » or « 1 » confirm the closing of coop 1 (login 085-001)."""
    text = "".join((typed or "").split()).lower()
    if text == login.lower() or text.replace("-", "") == login.replace("-", "").lower():
        return True
    return text.isdigit() and int(text) == number


class CraClassForm(Form):
    name = StringField("Nom de la classe", validators=[DataRequired(REQUIRED), Length(max=100)])
    level = StringField("Niveau", validators=[Optional(), Length(max=30)])
    pupils = WholeNumberField(
        "Élèves",
        validators=[InputRequired(REQUIRED), NumberRange(0, 999, "Entre 0 et 999.")],
        render_kw={"inputmode": "numeric", "min": 0, "max": 999},
    )


class CraActionForm(Form):
    name = StringField("Action", validators=[Optional(), Length(max=100)])
    description = TextAreaField("Ce qui a été fait", validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})


class CraForm(SingleLineForm):
    """The compte rendu d'activités (only these fields reach the report)."""

    classes = FieldList(FormField(CraClassForm), min_entries=1, max_entries=MAX_CRA_CLASSES)
    council_count = WholeNumberField(
        "Nombre de conseils de coopérative tenus dans l'année",
        description="Les réunions où les élèves délibèrent sur la vie de la coopérative (0 si aucune).",
        validators=[
            InputRequired("Indiquez le nombre de conseils de coopérative (0 si aucun)."),
            NumberRange(0, 200, "Entre 0 et 200."),
        ],
        render_kw={"inputmode": "numeric", "min": 0},
    )
    actions = FieldList(FormField(CraActionForm), min_entries=1, max_entries=MAX_CRA_ACTIONS)
    occe_participation = RadioField(
        "La coopérative a-t-elle participé à des actions départementales de l'OCCE ?",
        choices=[("oui", "Oui"), ("non", "Non")],
        validators=[InputRequired("Répondez « Oui » ou « Non ».")],
    )
    occe_actions = TextAreaField(
        "Lesquelles ?",
        validators=[Optional(), Length(max=2000)],
        description="Par exemple : rencontres théâtre, Printemps des poètes, « Ensemble, agissons »…",
        render_kw={"rows": 2},
    )
    comment = TextAreaField("Commentaire libre", validators=[Optional(), Length(max=4000)], render_kw={"rows": 4})
    add_class = SubmitField("Ajouter une classe")
    add_action = SubmitField("Ajouter une action")
    save = SubmitField("Valider les modifications")
    next = SubmitField("Passer à la suite")

    def validate(self, extra_validators=None) -> bool:
        """The field checks, then the domain's rules (`app.cra.check_cra`), each message on its field."""
        if not super().validate(extra_validators):
            return False
        try:
            check_cra(self.answers())
        except ValidationErrors as exc:
            for name, messages in exc.errors.items():
                target = getattr(self, str(name), None) if name in self.FIELD_RULES else None
                (target.errors if target is not None else self.form_errors).extend(messages)
            return False
        return True

    FIELD_RULES = frozenset({"council_count", "occe_participation", "occe_actions"})  # the rest: the whole form

    def fill(self, answers: CraAnswers) -> None:
        for name in ("classes", "actions"):
            while len(getattr(self, name).entries):
                getattr(self, name).pop_entry()
        for row in answers.classes:
            self.classes.append_entry({"name": row.name, "level": row.level, "pupils": row.pupils})
        if not self.classes.entries:
            self.classes.append_entry()
        for action in answers.actions:
            self.actions.append_entry({"name": action.name, "description": action.description})
        self.actions.append_entry()  # a blank row for an action without money
        self.council_count.data = answers.council_count
        self.occe_participation.data = answers.occe_participation or None
        self.occe_actions.data = answers.occe_actions
        self.comment.data = answers.comment

    def answers(self) -> CraAnswers:
        return CraAnswers(
            classes=tuple(
                CraClass(e.form.name.data or "", e.form.level.data or "", e.form.pupils.data or 0)
                for e in self.classes.entries
            ),
            council_count=self.council_count.data,
            actions=tuple(
                CraAction(e.form.name.data or "", e.form.description.data or "")
                for e in self.actions.entries
                if (e.form.name.data or "").strip()
            ),
            occe_participation=self.occe_participation.data or "",
            occe_actions=self.occe_actions.data or "",
            comment=self.comment.data or "",
        )


class AuditorForm(Form):
    name = StringField("Nom et prénom", validators=[Optional(), Length(max=200)])
    quality = SelectField("Qualité", choices=[("", "— Choisir —"), *AUDITOR_QUALITIES.items()], validators=[Optional()])


class QuitusForm(SingleLineForm):
    """The vérificateurs aux comptes and the mandataire (the rules are the domain's)."""

    auditors = FieldList(FormField(AuditorForm), min_entries=2, max_entries=MAX_AUDITORS)
    mandataire_name = StringField(
        "Mandataire qui a tenu les comptes",
        validators=[DataRequired("Indiquez le nom du mandataire."), Length(max=200)],
    )
    add_auditor = SubmitField("Ajouter un vérificateur")
    save = SubmitField("Valider les modifications")

    def __init__(self, *args, mandataires: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mandataires = list(mandataires or ())

    def validate(self, extra_validators=None) -> bool:
        """The field checks, then the domain's rules (`app.cra.check_quitus`): a message about one
        vérificateur goes on its row, about the mandataire on that field, the others on the form."""
        if not super().validate(extra_validators):
            return False
        try:
            check_quitus(self.auditor_list(), self.mandataire_name.data or "", self.mandataires)
        except ValidationErrors as exc:
            for name, messages in exc.errors.items():
                row = str(name).removeprefix("auditors-")
                if row.isdigit() and int(row) < len(self.auditors.entries):
                    self.auditors.entries[int(row)].form.name.errors.extend(messages)
                elif name == "mandataire_name":
                    self.mandataire_name.errors.extend(messages)
                else:
                    self.form_errors.extend(messages)
            return False
        return True

    def can_add_auditor(self) -> bool:
        return can_add_auditor(len(self.auditors.entries))

    def fill(self, auditors: list[Auditor], mandataire_name: str) -> None:
        while len(self.auditors.entries):
            self.auditors.pop_entry()
        for auditor in auditors:
            self.auditors.append_entry({"name": auditor.name, "quality": auditor.quality})
        while len(self.auditors.entries) < 2:
            self.auditors.append_entry()
        self.mandataire_name.data = mandataire_name

    def auditor_list(self) -> list[Auditor]:
        return [Auditor(e.form.name.data or "", e.form.quality.data or "") for e in self.auditors.entries]


class DocumentForm(SingleLineForm):
    slot = HiddenField(validators=[DataRequired()])
    file = FileField("Fichier", validators=[FileRequired("Choisissez un fichier (PDF, JPEG ou PNG).")])
    submit = SubmitField("Envoyer ce fichier")


class RemoveDocumentForm(SingleLineForm):
    """The confirmation of « Retirer » a report document: only the CSRF token."""

    submit = SubmitField("Oui, retirer ce fichier")


class SubmitReportForm(SingleLineForm):
    submit = SubmitField("Envoyer mon compte rendu")
