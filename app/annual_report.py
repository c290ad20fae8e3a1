"""The yearly report row (`AnnualReport`) of one coop-year: finding it, creating it, and whether the
coop may still write to it. Shared by the CRA and quitus (`app.cra`) and the submission
(`app.submission`); the CRF itself is computed from the ledger (`app.crf`).

Functions flush, never commit.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import DomainError
from app.models import AnnualReport, Ledger


def find_report(session: Session, ledger: Ledger) -> AnnualReport | None:
    """The yearly report of `ledger`, or None before the coop's first save (GET never creates it)."""
    return session.scalar(sa.select(AnnualReport).where(AnnualReport.ledger_id == ledger.id))


def ensure_report(session: Session, ledger: Ledger) -> AnnualReport:
    """The report of a closed ledger, created (draft) on first use. Raises DomainError while it is open."""
    if ledger.is_open:
        raise DomainError(
            f"Clôturez d'abord le cahier {ledger.school_year.label} : les comptes rendus se "
            "remplissent après la clôture."
        )
    report = find_report(session, ledger)
    if report is None:
        report = AnnualReport(
            coop_id=ledger.coop_id, ledger=ledger, school_year_id=ledger.school_year_id, status="draft"
        )
        session.add(report)
        session.flush()
    return report


def check_editable(report: AnnualReport) -> None:
    """Refuse changes once the report is sent (until staff return it) or while the year is reopened."""
    label = report.school_year.label
    if report.status == "submitted":
        raise DomainError(
            f"Votre compte rendu {label} a été envoyé à l'OCCE 85 : il ne peut plus être modifié. "
            "En cas d'erreur, contactez l'OCCE 85, qui peut vous le renvoyer."
        )
    if report.status == "approved":
        raise DomainError(f"Votre compte rendu {label} est approuvé par l'OCCE 85 : il ne peut plus être modifié.")
    if report.ledger.is_open:
        raise DomainError(
            f"Le cahier {label} a été rouvert : clôturez-le à nouveau avant de compléter le compte rendu."
        )
