"""Jinja filters and globals: French formats (Babel), the CSP nonce."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from flask import Flask

from app.identity import format_iban
from app.money import format_amount
from app.security import csp_nonce

PARIS = ZoneInfo("Europe/Paris")


def money(cents: int | None, symbol: bool = True) -> str:
    """123456 -> '1 234,56 €'."""
    if cents is None:
        return ""
    return f"{format_amount(cents)}\u00a0€" if symbol else format_amount(cents)


def fr_date(value: date | None, fmt: str = "dd/MM/yyyy") -> str:
    if value is None:
        return ""
    if fmt == "dd/MM/yyyy":  # the common case, without Babel's pattern machinery (hot in long tables)
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    return format_date(value, fmt, locale="fr_FR")


def fr_datetime(value: datetime | None, fmt: str = "dd/MM/yyyy 'à' HH:mm") -> str:
    """A naive UTC datetime shown in Paris time."""
    if value is None:
        return ""
    return format_datetime(value.replace(tzinfo=ZoneInfo("UTC")).astimezone(PARIS), fmt, locale="fr_FR")


def register(app: Flask) -> None:
    app.jinja_env.filters.update(money=money, fr_date=fr_date, fr_datetime=fr_datetime, iban=format_iban)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
