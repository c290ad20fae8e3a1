"""The membership step: classes with their headcounts, other adults, declared property, engagement."""

from __future__ import annotations

from wtforms import FieldList, Form, FormField, RadioField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.membership import (
    MAX_ADULTS,
    MAX_CLASSES,
    MAX_PUPILS_PER_CLASS,
    MAX_TEACHERS_PER_CLASS,
    Headcounts,
    headcounts_from_rows,
)
from forms.fields import MoneyField, WholeNumberField
from forms.validators import SingleLineForm

REQUIRED = "Ce champ est obligatoire."

# Suggestions for the level (a free text: mixed classes such as « GS-CP » exist).
LEVELS = ("TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2", "ULIS", "UPE2A", "École entière")


class ClassForm(Form):
    """One row of the table of classes (a sub-form: the CSRF token belongs to the page form)."""

    name = StringField("Nom de la classe", validators=[DataRequired(REQUIRED), Length(max=100)])
    level = StringField("Niveau", validators=[Optional(), Length(max=30)])
    pupils = WholeNumberField(
        "Élèves",
        validators=[
            InputRequired(REQUIRED),
            NumberRange(1, MAX_PUPILS_PER_CLASS, "Entre 1 et %(max)s élèves (supprimez une classe vide)."),
        ],
        render_kw={"inputmode": "numeric", "min": 1, "max": MAX_PUPILS_PER_CLASS},
    )
    teachers = WholeNumberField(
        "Enseignants",
        validators=[
            InputRequired(REQUIRED),
            NumberRange(1, MAX_TEACHERS_PER_CLASS, "Au moins un enseignant par classe (au plus %(max)s)."),
        ],
        render_kw={"inputmode": "numeric", "min": 1, "max": MAX_TEACHERS_PER_CLASS},
    )


def _adults_field(label: str, description: str) -> WholeNumberField:
    return WholeNumberField(
        label,
        description=description,
        default=0,
        validators=[InputRequired(REQUIRED), NumberRange(0, MAX_ADULTS, "Entre 0 et %(max)s.")],
        render_kw={"inputmode": "numeric", "min": 0, "max": MAX_ADULTS},
    )


class MembershipForm(SingleLineForm):
    """Adhésion: only these fields reach the membership (no mass assignment)."""

    classes = FieldList(FormField(ClassForm), min_entries=1, max_entries=MAX_CLASSES)
    atsem = _adults_field("ATSEM", "Agents territoriaux spécialisés des écoles maternelles.")
    aesh = _adults_field("AESH", "Accompagnants d'élèves en situation de handicap (ex-AVS).")
    other_adults = _adults_field(
        "Autres adultes", "Autres personnels ou intervenants qui adhèrent (EVS, enseignants sans classe…)."
    )
    property_value = MoneyField(
        "Valeur des biens durables de la coopérative (en euros)",
        default=0,
        description="Matériel acheté par la coopérative et toujours en usage. Les "
        "premiers 2 000 € sont assurés sans supplément.",
        validators=[InputRequired(REQUIRED)],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    engagement = RadioField(
        "Êtes-vous la ou le mandataire de la coopérative cette année ?",
        choices=[("oui", "Oui"), ("non", "Non")],
        validators=[Optional()],
    )
    # Buttons of the page without JavaScript: add a row, remove row N, save.
    add_class = SubmitField("Ajouter une classe")
    remove_class = StringField(validators=[Optional()])
    submit = SubmitField("Mettre à jour ces informations")

    def validate_property_value(self, field) -> None:
        if field.data is not None and not 0 <= field.data <= 100_000_000:
            raise ValueError("La valeur des biens doit être comprise entre 0 et 1 000 000 €.")

    def fill(self, headcounts: Headcounts) -> None:
        """Show `headcounts` (a GET): last year's classes, or this year's draft."""
        while len(self.classes.entries):
            self.classes.pop_entry()
        for row in headcounts.classes or ():
            self.classes.append_entry(
                {"name": row.name, "level": row.level, "pupils": row.pupils, "teachers": row.teachers}
            )
        if not self.classes.entries:
            self.classes.append_entry()
        self.atsem.data = headcounts.atsem
        self.aesh.data = headcounts.aesh
        self.other_adults.data = headcounts.other_adults
        self.property_value.data = headcounts.property_value_cents

    def headcounts(self) -> Headcounts:
        """The declared values, once the form is valid."""
        rows = [
            (
                entry.form.name.data.strip(),
                (entry.form.level.data or "").strip(),
                entry.form.pupils.data,
                entry.form.teachers.data,
            )
            for entry in self.classes.entries
        ]
        return headcounts_from_rows(
            rows,
            atsem=self.atsem.data,
            aesh=self.aesh.data,
            other_adults=self.other_adults.data,
            property_value_cents=self.property_value.data,
        )


class EngagementForm(SingleLineForm):
    """The confirmation page: one button, « Je m'engage à être mandataire »."""

    submit = SubmitField("Je m'engage à être mandataire")
