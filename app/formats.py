"""French display formats, in one pure module (no Flask): euros, dates, date-times.

French typography puts a narrow no-break space (U+202F) between thousands and before the euro
sign, so an amount never breaks across two lines on a screen or in a PDF. CSV files keep the
plain `1234,56` that spreadsheets read (`app.money.csv_amount`). `app/web/filters.py` registers
these functions with Jinja; the domain and PDFs call them directly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from babel.dates import format_date, format_datetime

from app.clock import PARIS

NNBSP = "\u202f"  # narrow no-break space


def amount(cents: int) -> str:
    """123456 -> '1 234,56' (narrow no-break space between thousands)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", NNBSP)
    return f"{sign}{grouped},{rest:02d}"


def euros(cents: int | None, symbol: bool = True) -> str:
    """123456 -> '1 234,56 €'; None -> '' (an unknown amount is shown as nothing, never as 0)."""
    if cents is None:
        return ""
    return f"{amount(cents)}{NNBSP}€" if symbol else amount(cents)


def fr_date(value: date | None, fmt: str = "dd/MM/yyyy") -> str:
    """A date as 31/08/2026, or in another Babel pattern ('d MMMM yyyy' -> '31 août 2026')."""
    if value is None:
        return ""
    if fmt == "dd/MM/yyyy":  # the common case, without Babel's pattern machinery (hot in long tables)
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    return format_date(value, fmt, locale="fr_FR")


def paris(moment: datetime) -> datetime:
    """A naive UTC datetime as an aware Paris one."""
    return moment.replace(tzinfo=UTC).astimezone(PARIS)


def fr_datetime(value: datetime | None, fmt: str = "dd/MM/yyyy 'à' HH:mm") -> str:
    """A naive UTC datetime shown in Paris time: 31/08/2026 à 18:05."""
    if value is None:
        return ""
    return format_datetime(paris(value), fmt, locale="fr_FR")


def fr_day(value: datetime | None) -> str:
    """The Paris date of a naive UTC datetime: 31/08/2026."""
    return "" if value is None else fr_date(paris(value).date())
