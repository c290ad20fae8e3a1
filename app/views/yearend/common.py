"""What every year-end page shares: the year asked for, the coop's ledger of that year, the steps."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Response, abort, current_app, flash, redirect, url_for
from flask_login import current_user

from app import clock
from app.annual_report import find_report
from app.cra import current_mandataires
from app.extensions import db
from app.models import AnnualReport, Coop, Federation, Ledger, SchoolYear, school_year_start
from app.pdf import render_pdf
from app.submission import STATUS_LABELS
from app.web.tenancy import owned

STEPS = (
    ("closing", "Clôture du cahier", "yearend.closing"),
    ("cra", "Compte rendu d'activités", "yearend.cra"),
    ("crf", "Compte rendu financier", "yearend.crf"),
    ("quitus", "Quitus", "yearend.quitus"),
    ("documents", "Justificatifs", "yearend.documents"),
    ("submit", "Envoi", "yearend.submit"),
)


def today() -> date:
    """The date the closing checks use (`close_ledger` takes `now.date()`, the same)."""
    return clock.now().date()


def last_year() -> int:
    """The school year to close and report on: the one that ended last 31 August."""
    return school_year_start(today()) - 1


def check_year(year: int) -> int:
    """`year` when it is a school year the coop may look at (404 otherwise)."""
    if not 2000 <= year <= school_year_start(today()):
        abort(404)
    return year


def find_ledger(year: int) -> Ledger | None:
    """The logged-in coop's ledger of `year` (never created here)."""
    return db.session.scalar(owned(Ledger).join(Ledger.school_year).where(SchoolYear.start_year == year))


def coop() -> Coop:
    return current_user.coop


def label(year: int) -> str:
    return f"{year}-{year + 1}"


def federation() -> Federation | None:
    return db.session.scalar(sa.select(Federation).limit(1))


def mandataires() -> list[str]:
    return current_mandataires(coop(), today())


def context(year: int, ledger: Ledger | None, report: AnnualReport | None, step: str, **extra: Any) -> dict:
    """What every year-end page shows: the year, the steps and where the coop stands."""
    return {
        "year": year,
        "year_label": label(year),
        "next_label": label(year + 1),
        "ledger": ledger,
        "report": report,
        "step": step,
        "steps": STEPS,
        "coop": coop(),
        "status_labels": STATUS_LABELS,
        **extra,
    }


def require_closed(year: int) -> tuple[Ledger, AnnualReport | None] | Response:
    """The closed ledger and its report (None until the first save), or a redirect to the wizard."""
    ledger = find_ledger(check_year(year))
    if ledger is None or ledger.is_open:
        flash(f"Clôturez d'abord le cahier {label(year)} : les comptes rendus se remplissent après la clôture.", "info")
        return redirect(url_for("yearend.closing", year=year))
    return ledger, find_report(db.session, ledger)


def pdf_response(html: str, filename: str) -> Response:
    pdf = render_pdf(html, current_app.static_folder)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"},
    )
