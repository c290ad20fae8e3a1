"""Jinja filters and globals: the French formats of `app.formats`, IBAN display, the CSP nonce."""

from __future__ import annotations

from flask import Flask

from app.formats import euros, fr_date, fr_datetime
from app.identity import format_iban
from app.web.security import csp_nonce

money = euros  # the name templates and admin columns use


def register(app: Flask) -> None:
    app.jinja_env.filters.update(money=euros, fr_date=fr_date, fr_datetime=fr_datetime, iban=format_iban)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
