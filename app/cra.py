"""What the coop writes on its yearly report: the compte rendu d'activités (CRA) and the quitus
(vérificateurs aux comptes and mandataire), with their rules.

The CRA is prefilled from the year's membership and actions (`cra_prefill`) and checked by
`check_cra`; the quitus is checked by `check_quitus` (at least `MIN_AUDITORS`, at most
`MAX_AUDITORS` vérificateurs, one of them a parent, none a mandataire). Forms run the same checks
to show each message on its field; `save_cra` / `save_quitus` check again before writing.

Functions flush, never commit; the session, the acting user and the clock are passed in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app import ledger as books
from app.annual_report import check_editable
from app.errors import ValidationErrors
from app.models import AnnualReport, Coop, Ledger, Membership, User

AUDITOR_QUALITIES = {
    "parent": "Parent d'élève",
    "teacher": "Enseignant(e) n'ayant pas tenu les comptes",
    "other": "Autre personne",
}
MIN_AUDITORS = 2
MAX_AUDITORS = 4
MAX_CRA_CLASSES = 60
MAX_CRA_ACTIONS = 40


@dataclass(frozen=True)
class CraClass:
    name: str
    level: str
    pupils: int


@dataclass(frozen=True)
class CraAction:
    name: str
    description: str


@dataclass(frozen=True)
class CraAnswers:
    """The compte rendu d'activités: classes and pupils, conseils held, actions, OCCE actions, comment."""

    classes: tuple[CraClass, ...] = ()
    council_count: int | None = None
    actions: tuple[CraAction, ...] = ()
    occe_participation: str = ""  # "oui" / "non"
    occe_actions: str = ""
    comment: str = ""

    @property
    def pupils(self) -> int:
        return sum(row.pupils for row in self.classes)


def membership_for(session: Session, ledger: Ledger) -> Membership | None:
    """The coop's membership of the ledger's year, if any."""
    return session.scalar(
        sa.select(Membership).where(
            Membership.coop_id == ledger.coop_id, Membership.school_year_id == ledger.school_year_id
        )
    )


def cra_prefill(session: Session, ledger: Ledger, report: AnnualReport | None) -> CraAnswers:
    """What the CRA shows: the saved answers, else the classes of the year's membership and the year's
    actions (those with money in the ledger). Writes nothing."""
    if report is not None and report.cra_saved_at is not None:
        return CraAnswers(
            classes=tuple(
                CraClass(c.get("name", ""), c.get("level", ""), int(c.get("pupils", 0)))
                for c in report.cra_classes or ()
            ),
            council_count=report.council_count,
            actions=tuple(CraAction(a.get("name", ""), a.get("description", "")) for a in report.cra_actions or ()),
            occe_participation=report.occe_participation,
            occe_actions=report.occe_actions,
            comment=report.cra_comment,
        )
    membership = membership_for(session, ledger)
    classes = tuple(CraClass(c.name, c.level, c.pupils) for c in membership.classes) if membership else ()
    actions = tuple(
        CraAction(total.action.name, "")
        for total in books.action_totals(session, ledger.coop_id, ledger)
        if total.charges or total.produits
    )
    return CraAnswers(classes=classes, actions=actions)


def check_cra(answers: CraAnswers) -> None:
    """Refuse an incomplete CRA, by field: raises ValidationErrors with French messages."""
    errors: dict[str, list[str]] = {}
    if not answers.classes:
        errors["classes"] = ["Indiquez au moins une classe avec son nombre d'élèves."]
    if len(answers.classes) > MAX_CRA_CLASSES:
        errors["classes"] = [f"Au plus {MAX_CRA_CLASSES} classes."]
    for index, row in enumerate(answers.classes):
        problems = []
        if not row.name.strip():
            problems.append("indiquez le nom de la classe")
        if not 0 <= row.pupils <= 999:
            problems.append("le nombre d'élèves doit être compris entre 0 et 999")
        if problems:
            errors[f"classes-{index}"] = [f"Classe {row.name.strip() or index + 1} : " + " ; ".join(problems) + "."]
    if answers.council_count is None:
        errors["council_count"] = ["Indiquez le nombre de conseils de coopérative tenus dans l'année (0 si aucun)."]
    elif not 0 <= answers.council_count <= 200:
        errors["council_count"] = ["Le nombre de conseils de coopérative doit être compris entre 0 et 200."]
    if len(answers.actions) > MAX_CRA_ACTIONS:
        errors["actions"] = [f"Au plus {MAX_CRA_ACTIONS} actions."]
    if answers.occe_participation not in ("oui", "non"):
        errors["occe_participation"] = [
            "Indiquez si la coopérative a participé à des actions départementales de l'OCCE."
        ]
    elif answers.occe_participation == "oui" and not answers.occe_actions.strip():
        errors["occe_actions"] = ["Indiquez les actions de l'OCCE auxquelles la coopérative a participé."]
    if errors:
        raise ValidationErrors(errors)


def save_cra(
    session: Session, report: AnnualReport, answers: CraAnswers, *, by: User | None, now: datetime, ip: str = ""
) -> None:
    """Record the CRA answers of an editable report. Raises ValidationErrors / DomainError."""
    check_editable(report)
    check_cra(answers)
    report.cra_classes = [
        {"name": c.name.strip(), "level": c.level.strip(), "pupils": c.pupils} for c in answers.classes
    ]
    report.council_count = answers.council_count
    report.cra_actions = [
        {"name": a.name.strip(), "description": a.description.strip()} for a in answers.actions if a.name.strip()
    ]
    report.occe_participation = answers.occe_participation
    report.occe_actions = answers.occe_actions.strip() if answers.occe_participation == "oui" else ""
    report.cra_comment = answers.comment.strip()
    report.cra_saved_at = now
    session.flush()
    audit.record(
        session,
        "report.cra_saved",
        actor=by,
        coop_id=report.coop_id,
        entity="annual_report",
        entity_id=report.id,
        after={
            "classes": len(answers.classes),
            "pupils": answers.pupils,
            "councils": answers.council_count,
            "actions": len(report.cra_actions),
        },
        ip=ip,
    )


# -- quitus --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Auditor:
    """A vérificateur aux comptes: name and quality (parent, teacher, other)."""

    name: str
    quality: str


_CIVILITIES = {"m", "mr", "mme", "mlle", "monsieur", "madame", "mademoiselle", "dr"}


def person_key(name: str) -> frozenset[str]:
    """A name compared without case, accents, civility or word order (« MOREAU Claire » = « Mme Claire Moreau »)."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(ch))
    words = re.findall(r"[a-z0-9]+", plain)
    return frozenset(word for word in words if word not in _CIVILITIES)


def current_mandataires(coop: Coop, today: date) -> list[str]:
    """Names of the coop's mandataire(s) and co-signataire(s) running today."""
    return [mandate.full_name for mandate in coop.mandates if mandate.is_current(today)]


def check_quitus(auditors: list[Auditor], mandataire_name: str, mandataires: list[str]) -> None:
    """At least two vérificateurs, at least one parent of a pupil, none a current mandataire (nor the
    mandataire named here), each a different person. Raises ValidationErrors (French, by field)."""
    errors: dict[str, list[str]] = {}
    named = [auditor for auditor in auditors if auditor.name.strip()]
    for index, auditor in enumerate(auditors):
        if auditor.name.strip() and auditor.quality not in AUDITOR_QUALITIES:
            errors[f"auditors-{index}"] = [f"Choisissez la qualité de {auditor.name.strip()}."]
    if len(named) < MIN_AUDITORS:
        errors["auditors"] = ["Indiquez au moins deux vérificateurs aux comptes."]
    elif len(named) > MAX_AUDITORS:
        errors["auditors"] = [f"Au plus {MAX_AUDITORS} vérificateurs."]
    elif not any(auditor.quality == "parent" for auditor in named):
        errors["auditors"] = ["Au moins un des vérificateurs doit être parent d'élève."]
    keys = [person_key(auditor.name) for auditor in named]
    if len(set(keys)) != len(keys):
        errors.setdefault("auditors", []).append("Chaque vérificateur doit être une personne différente.")
    forbidden = {person_key(name): name for name in [*mandataires, mandataire_name] if person_key(name)}
    for index, auditor in enumerate(auditors):
        if person_key(auditor.name) in forbidden:
            errors[f"auditors-{index}"] = [
                f"{auditor.name.strip()} est mandataire de la coopérative : un mandataire "
                "ne peut pas vérifier les comptes qu'il a tenus."
            ]
    if not mandataire_name.strip():
        errors["mandataire_name"] = ["Indiquez le nom du mandataire qui a tenu les comptes."]
    if errors:
        raise ValidationErrors(errors)


def can_add_auditor(rows: int) -> bool:
    """Whether the quitus page may offer one more vérificateur row (`rows` shown already)."""
    return rows < MAX_AUDITORS


def quitus_of(report: AnnualReport | None) -> tuple[list[Auditor], str]:
    """The vérificateurs and the mandataire saved on `report` (none without a report)."""
    if report is None:
        return [], ""
    return [Auditor(a.get("name", ""), a.get("quality", "")) for a in report.auditors or ()], report.mandataire_name


def save_quitus(
    session: Session,
    report: AnnualReport,
    auditors: list[Auditor],
    mandataire_name: str,
    *,
    mandataires: list[str],
    by: User | None,
    now: datetime,
    ip: str = "",
) -> None:
    """Record the vérificateurs and the mandataire of an editable report (rules of `check_quitus`)."""
    check_editable(report)
    check_quitus(auditors, mandataire_name, mandataires)
    report.auditors = [{"name": " ".join(a.name.split()), "quality": a.quality} for a in auditors if a.name.strip()]
    report.mandataire_name = " ".join(mandataire_name.split())[:200]
    report.quitus_saved_at = now
    session.flush()
    audit.record(
        session,
        "report.quitus_saved",
        actor=by,
        coop_id=report.coop_id,
        entity="annual_report",
        entity_id=report.id,
        after={"auditors": [a["name"] for a in report.auditors], "mandataire": report.mandataire_name},
        ip=ip,
    )
