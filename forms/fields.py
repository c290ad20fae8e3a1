"""Fields for money (staff and teachers type euros, the database keeps cents) and rates."""

from __future__ import annotations

from wtforms import IntegerField, StringField

from app.money import format_amount, format_rate_ppm, parse_amount, parse_rate_ppm


class MoneyField(StringField):
    """Shows '1 234,56', gives integer cents; a French error when the text is not an amount."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return format_amount(self.data) if isinstance(self.data, int) else ""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = parse_amount(valuelist[0])
        except ValueError as exc:
            self.data = None
            raise ValueError(str(exc)) from None


class RateField(StringField):
    """A coefficient in euro per euro ('0,00688'), stored in millionths."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return format_rate_ppm(self.data) if isinstance(self.data, int) else ""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = parse_rate_ppm(valuelist[0])
        except ValueError as exc:
            self.data = None
            raise ValueError(str(exc)) from None


WHOLE = "Indiquez un nombre entier."
WHOLE_MAX_DIGITS = 9
WHOLE_TOO_BIG = f"Nombre trop grand : {WHOLE_MAX_DIGITS} chiffres au plus."


class WholeNumberField(IntegerField):
    """An integer field with a French message when the text is not a whole number (empty gives None)."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = valuelist[0].strip()
        if not text:
            self.data = None
            return
        digits = text.removeprefix("-").removeprefix("+")
        if not digits.isascii() or not digits.isdigit():
            self.data = None
            raise ValueError(WHOLE)
        if len(digits.lstrip("0")) > WHOLE_MAX_DIGITS:
            self.data = None
            raise ValueError(WHOLE_TOO_BIG)
        self.data = int(text)
