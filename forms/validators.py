"""Adapters between domain validators and WTForms."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.meta import DefaultMeta
from wtforms.validators import StopValidation


class Normalise:
    """Run a domain check (`raw -> normalised`, ValueError with a French message) on a field.

    Empty values are left to Optional/DataRequired; a valid value is replaced by its normal form.
    """

    def __init__(self, check: Callable[[str], str]) -> None:
        self.check = check

    def __call__(self, form, field) -> None:
        if not field.data:
            return
        try:
            field.data = self.check(field.data)
        except ValueError as exc:
            raise StopValidation(str(exc)) from None


# Line breaks, tabs and every other control character (C0, DEL, C1), and the Unicode line/paragraph
# separators: none belongs in a name, a label or a reference, and each can break a mail header, a CSV
# line or a log record downstream.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SINGLE_LINE_MESSAGE = "Ce champ tient sur une seule ligne, sans retour à la ligne ni tabulation."


def has_control_characters(text: str) -> bool:
    """True when `text` holds a line break, a tab or another control character."""
    return bool(_CONTROL.search(text))


class SingleLine:
    """Refuse control characters and line breaks in a one-line text field."""

    def __init__(self, message: str = SINGLE_LINE_MESSAGE) -> None:
        self.message = message

    def __call__(self, form, field) -> None:
        if isinstance(field.data, str) and has_control_characters(field.data):
            raise StopValidation(self.message)


def is_single_line(field) -> bool:
    """A text input on one line: StringField and its kin, not a textarea, a password or a hidden value."""
    return isinstance(field, StringField) and not isinstance(field, TextAreaField | HiddenField | PasswordField)


class SingleLineMeta(DefaultMeta):
    """Form meta that gives every one-line text field the `SingleLine` check when the form is built."""

    def bind_field(self, form, unbound_field, options):
        field = super().bind_field(form, unbound_field, options)
        if is_single_line(field) and not any(isinstance(v, SingleLine) for v in field.validators):
            field.validators = [*field.validators, SingleLine()]
        return field


class SingleLineForm(FlaskForm):
    """FlaskForm whose one-line text fields refuse control characters (use it instead of FlaskForm)."""

    class Meta(SingleLineMeta):
        pass
