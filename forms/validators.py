"""Adapters between domain validators and WTForms."""

from __future__ import annotations

from collections.abc import Callable

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
