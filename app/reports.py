"""Yearly reports: the CRF computed from the closed ledger, the CRA, the quitus, the supporting
documents and the submission to OCCE 85.

The CRF is a plain data object (`Crf`) built from the ledger by `build_crf`: result account by
account, balance sheet, bank reconciliation at 31 August, cash count, subsidy table, totals per
action. Templates and the JSON export only show what it holds. Amounts are integer cents.

Statuses of an `AnnualReport` move only through `transition` (`TRANSITIONS`):

    draft -> submitted        the coop sends its reports (`submit_report`)
    submitted -> approved     staff approve them (`approve_report`)
    submitted -> returned     staff return them, or reopen the year (`return_report`)
    returned -> submitted     the coop sends them again

Functions flush, never commit; the session, the acting user and the clock are passed in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit, documents
from app import ledger as books
from app.closing import BankReconciliation, CashCount, bank_reconciliation, opening_balances
from app.errors import DomainError, ValidationErrors
from app.formats import fr_date
from app.models import (
    Account,
    Action,
    AnnualReport,
    Coop,
    Document,
    Entry,
    EntryLine,
    Ledger,
    Membership,
    User,
    coop_login,
    occe_code,
)
from app.money import format_amount

STATUS_LABELS = {
    "draft": "En cours",
    "submitted": "Envoyé à l'OCCE 85",
    "returned": "Renvoyé par l'OCCE 85",
    "approved": "Approuvé par l'OCCE 85",
}
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"submitted"}),
    "submitted": frozenset({"approved", "returned"}),
    "returned": frozenset({"submitted"}),
    "approved": frozenset(),
}
AUDITOR_QUALITIES = {
    "parent": "Parent d'élève",
    "teacher": "Enseignant(e) n'ayant pas tenu les comptes",
    "other": "Autre personne",
}
MAX_AUDITORS = 4
MAX_CRA_CLASSES = 60
MAX_CRA_ACTIONS = 40
REPORT_MAX_BYTES = 20 * 1024 * 1024


def _euros(cents: int) -> str:
    return f"{format_amount(cents)} €"


# -- the CRF -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountAmount:
    """An expense or income account of the result, with its amount in its natural direction."""

    code: str
    display_code: str
    label: str
    amount: int


@dataclass(frozen=True)
class SubsidyLine:
    """A line on a subsidy account (74…): public money must be traceable."""

    date: date
    piece: str
    account_code: str
    display_code: str
    origin: str
    action: str
    label: str
    amount: int


@dataclass(frozen=True)
class ActionAmount:
    name: str
    charges: int
    produits: int

    @property
    def balance(self) -> int:
        return self.produits - self.charges


@dataclass(frozen=True)
class CoopIdentity:
    login: str
    name: str
    school_name: str
    uai: str
    address: str
    postal_code: str
    city: str

    @classmethod
    def of(cls, coop: Coop) -> CoopIdentity:
        return cls(
            coop_login(coop.number), coop.name, coop.school_name, coop.uai, coop.address, coop.postal_code, coop.city
        )


@dataclass(frozen=True)
class Crf:
    """The compte rendu financier of one coop-year, as plain data."""

    coop: CoopIdentity
    year_label: str
    starts_on: date
    ends_on: date
    is_closed: bool
    closed_at: datetime | None
    charges: tuple[AccountAmount, ...]
    produits: tuple[AccountAmount, ...]
    opening_bank: int
    opening_cash: int
    closing_bank: int
    closing_cash: int
    closing_advance: int
    reconciliation: BankReconciliation
    cash_count: CashCount | None
    subsidies: tuple[SubsidyLine, ...]
    actions: tuple[ActionAmount, ...]

    @property
    def total_charges(self) -> int:
        return sum(line.amount for line in self.charges)

    @property
    def total_produits(self) -> int:
        return sum(line.amount for line in self.produits)

    @property
    def result(self) -> int:
        """Produits − charges: an excédent when positive, a déficit when negative."""
        return self.total_produits - self.total_charges

    @property
    def opening_total(self) -> int:
        """Report à nouveau: what the coop had on 1 September (bank + cash)."""
        return self.opening_bank + self.opening_cash

    @property
    def liabilities_total(self) -> int:
        """Passif: report à nouveau ± résultat (the « situation actuelle »)."""
        return self.opening_total + self.result

    @property
    def assets_total(self) -> int:
        """Actif: bank + cash (+ advances not returned, zero once closed)."""
        return self.closing_bank + self.closing_cash + self.closing_advance

    @property
    def is_balanced(self) -> bool:
        """Équilibre du bilan: actif = report à nouveau + résultat."""
        return self.assets_total == self.liabilities_total

    @property
    def subsidies_total(self) -> int:
        return sum(line.amount for line in self.subsidies)

    def to_json(self) -> dict[str, Any]:
        """The figures with the keys of tests/data/exemple_2024-2025.expected.json (integer cents)."""
        return {
            "year": self.year_label,
            "statement_balance": self.reconciliation.statement_balance,
            "charges": {line.code: line.amount for line in self.charges},
            "produits": {line.code: line.amount for line in self.produits},
            "total_charges": self.total_charges,
            "total_produits": self.total_produits,
            "resultat": self.result,
            "opening": {"bank": self.opening_bank, "cash": self.opening_cash},
            "closing": {"bank": self.closing_bank, "cash": self.closing_cash, "advance": self.closing_advance},
            "uncleared": [
                {"piece": line.piece, "date": line.date.isoformat(), "cheque": line.cheque, "amount": line.amount}
                for line in self.reconciliation.uncleared
            ],
            "subsidies": [
                {
                    "account": line.account_code,
                    "piece": line.piece,
                    "date": line.date.isoformat(),
                    "action": line.action,
                    "amount": line.amount,
                }
                for line in self.subsidies
            ],
            "actions": {line.name: {"charges": line.charges, "produits": line.produits} for line in self.actions},
        }


_ORIGIN = re.compile(r"Origine\s*:\s*([^;]+)", re.IGNORECASE)


def subsidy_origin(account: Account) -> str:
    """The origin of a subsidy, from the chart of accounts (« Origine : Commune » in its notes)."""
    match = _ORIGIN.search(account.notes or "")
    return match.group(1).strip() if match else account.label


def build_crf(session: Session, ledger: Ledger) -> Crf:
    """Compute the CRF of `ledger` (meant for a closed ledger; an open one gives a provisional view)."""
    rows = session.execute(
        sa.select(Account.code, Account.label, Account.nature, sa.func.sum(EntryLine.amount_cents))
        .join(EntryLine.account)
        .join(EntryLine.entry)
        .where(Entry.ledger_id == ledger.id, Account.nature.in_(("expense", "income", "subsidy")))
        .group_by(Account.code, Account.label, Account.nature)
        .order_by(Account.code)
    ).all()
    charges, produits = [], []
    for code, label, nature, total in rows:
        if nature == "expense":
            charges.append(AccountAmount(code, occe_code(code), label, int(total)))
        else:
            produits.append(AccountAmount(code, occe_code(code), label, -int(total)))
    key = lambda line: line.display_code  # noqa: E731 - OCCE order: by the 8-digit code
    charges.sort(key=key)
    produits.sort(key=key)

    opening_bank, opening_cash = opening_balances(session, ledger)
    closing = books.balances(session, ledger)

    subsidy_rows = session.execute(
        sa.select(Entry.date, Entry.piece, Entry.label, Account, Action.name, EntryLine.amount_cents)
        .join(EntryLine.entry)
        .join(EntryLine.account)
        .outerjoin(Action, Action.id == Entry.action_id)
        .where(Entry.ledger_id == ledger.id, Account.nature == "subsidy")
        .order_by(Entry.date, Entry.piece, EntryLine.id)
    ).all()
    subsidies = tuple(
        SubsidyLine(
            day, piece, account.code, account.display_code, subsidy_origin(account), action or "", label, -int(amount)
        )
        for day, piece, label, account, action, amount in subsidy_rows
    )
    actions = tuple(
        ActionAmount(total.action.name, total.charges, total.produits)
        for total in books.action_totals(session, ledger.coop_id, ledger)
        if total.charges or total.produits
    )
    return Crf(
        coop=CoopIdentity.of(ledger.coop),
        year_label=ledger.school_year.label,
        starts_on=ledger.school_year.starts_on,
        ends_on=ledger.school_year.ends_on,
        is_closed=not ledger.is_open,
        closed_at=ledger.closed_at,
        charges=tuple(charges),
        produits=tuple(produits),
        opening_bank=opening_bank,
        opening_cash=opening_cash,
        closing_bank=closing.bank,
        closing_cash=closing.cash,
        closing_advance=closing.advance,
        reconciliation=bank_reconciliation(session, ledger),
        cash_count=CashCount.from_json(ledger.cash_count),
        subsidies=subsidies,
        actions=actions,
    )


# -- the report row ------------------------------------------------------------------------------


def find_report(session: Session, ledger: Ledger) -> AnnualReport | None:
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


def transition(report: AnnualReport, to: str) -> None:
    """Move `report` to status `to` if `TRANSITIONS` allows it; raises DomainError otherwise."""
    current = report.status
    if to not in TRANSITIONS:
        raise DomainError(f"Statut de compte rendu inconnu : {to}.")
    if to not in TRANSITIONS.get(current, frozenset()):
        raise DomainError(
            f"Un compte rendu « {STATUS_LABELS.get(current, current)} » ne peut pas passer à « {STATUS_LABELS[to]} »."
        )
    report.status = to


# -- CRA -----------------------------------------------------------------------------------------


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
    if len(named) < 2:
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


def quitus_of(report: AnnualReport | None) -> tuple[list[Auditor], str]:
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


# -- supporting documents ------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    key: str
    kind: str  # Document.kind
    label: str
    help: str
    required: bool


def document_slots(crf: Crf) -> list[Slot]:
    """The upload slots of the report: the quitus and the statement always; subsidy proofs when the
    subsidy table is not empty; one optional slot for anything else."""
    end = fr_date(crf.ends_on)
    return [
        Slot(
            "quitus",
            "report_quitus",
            "Quitus signé",
            "La page Quitus imprimée, signée par les vérificateurs et le mandataire.",
            True,
        ),
        Slot(
            "statement",
            "report_statement",
            f"Relevé bancaire au {end}",
            "Le dernier relevé de l'année (celui de juillet s'il n'y a eu aucun mouvement en août).",
            True,
        ),
        Slot(
            "subsidies",
            "report_subsidies",
            "Justificatifs des subventions",
            "Courriers d'attribution ou relevés montrant les versements des subventions publiques.",
            bool(crf.subsidies),
        ),
        Slot(
            "other",
            "report_other",
            "Autre document (facultatif)",
            "Par exemple le compte rendu financier signé par les enseignants.",
            False,
        ),
    ]


def report_documents(session: Session, report: AnnualReport | None) -> dict[str, Document]:
    """The document of each slot (by Document.kind)."""
    if report is None:
        return {}
    rows = session.scalars(
        sa.select(Document).where(Document.annual_report_id == report.id).order_by(Document.id)
    ).all()
    return {document.kind: document for document in rows}


def attach_document(
    session: Session,
    report: AnnualReport,
    slot: Slot,
    *,
    upload_dir: str,
    filename: str,
    content: bytes,
    by: User | None,
    ip: str = "",
) -> tuple[Document, list[str]]:
    """Store an upload (PDF, JPEG or PNG up to 20 MB, checked by content; photos become PDF) in `slot`,
    replacing the previous one. Returns the document and the storage keys to delete after commit."""
    check_editable(report)
    previous = report_documents(session, report).get(slot.kind)
    document = documents.store_document(
        session,
        upload_dir=upload_dir,
        coop_id=report.coop_id,
        kind=slot.kind,
        filename=filename,
        content=content,
        max_bytes=REPORT_MAX_BYTES,
        by=by,
        photos_as_pdf=True,
        ip=ip,
    )
    document.annual_report_id = report.id
    removed: list[str] = []
    if previous is not None:
        removed.append(previous.storage_key)
        audit.record(
            session,
            "document.replaced",
            actor=by,
            coop_id=report.coop_id,
            entity="document",
            entity_id=previous.id,
            before={"kind": previous.kind, "name": previous.original_name},
            ip=ip,
        )
        session.delete(previous)
    session.flush()
    return document, removed


# -- submission ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """Something still missing before the report can be sent; `step` names the page where to fix it."""

    step: str
    message: str


def missing_items(
    session: Session, report: AnnualReport | None, ledger: Ledger, crf: Crf, mandataires: list[str]
) -> list[Missing]:
    """What the coop still has to do before « Envoyer mon compte rendu » (empty: ready)."""
    missing: list[Missing] = []
    if ledger.is_open:
        return [Missing("closing", f"Clôturer le cahier {ledger.school_year.label}.")]
    if report is None or report.cra_saved_at is None:
        missing.append(Missing("cra", "Remplir et valider le compte rendu d'activités."))
    else:
        try:
            check_cra(cra_prefill(session, ledger, report))
        except ValidationErrors:
            missing.append(Missing("cra", "Compléter le compte rendu d'activités."))
    auditors, mandataire = quitus_of(report)
    if report is None or report.quitus_saved_at is None:
        missing.append(Missing("quitus", "Indiquer les vérificateurs aux comptes et le mandataire (page Quitus)."))
    else:
        try:
            check_quitus(auditors, mandataire, mandataires)
        except ValidationErrors as exc:
            missing.append(Missing("quitus", f"Corriger la page Quitus : {exc.message}"))
    present = report_documents(session, report)
    for slot in document_slots(crf):
        if slot.required and slot.kind not in present:
            missing.append(Missing("documents", f"Déposer : {slot.label}."))
    if not crf.is_balanced:  # pragma: no cover - guaranteed by double entry
        missing.append(Missing("crf", "Le bilan n'est pas équilibré : contactez l'OCCE 85."))
    return missing


def submit_report(
    session: Session,
    report: AnnualReport,
    crf: Crf,
    *,
    mandataires: list[str],
    by: User | None,
    now: datetime,
    ip: str = "",
) -> AnnualReport:
    """Send the reports to OCCE 85: draft/returned -> submitted, with a snapshot of the CRF figures.

    Raises ValidationErrors listing what is missing, or DomainError from another status.
    """
    check_editable(report)
    missing = missing_items(session, report, report.ledger, crf, mandataires)
    if missing:
        raise ValidationErrors({"submit": [item.message for item in missing]})
    before = report.status
    transition(report, "submitted")
    report.crf_snapshot = crf.to_json()
    report.submitted_at = now
    report.submitted_by_id = by.id if by is not None else None
    session.flush()
    audit.record(
        session,
        "report.submitted",
        actor=by,
        coop_id=report.coop_id,
        entity="annual_report",
        entity_id=report.id,
        before={"status": before},
        after={
            "status": "submitted",
            "resultat": crf.result,
            "closing_bank": crf.closing_bank,
            "closing_cash": crf.closing_cash,
        },
        ip=ip,
    )
    return report


def return_report(
    session: Session, report: AnnualReport, *, reason: str, by: User | None, now: datetime, ip: str = ""
) -> AnnualReport:
    """Staff send a submitted report back to the coop with a reason: submitted -> returned."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise DomainError("Indiquez le motif du renvoi.", field="reason")
    transition(report, "returned")
    report.return_reason = reason
    report.returned_at = now
    session.flush()
    audit.record(
        session,
        "report.returned",
        actor=by,
        coop_id=report.coop_id,
        entity="annual_report",
        entity_id=report.id,
        before={"status": "submitted"},
        after={"status": "returned", "reason": reason},
        ip=ip,
    )
    return report


def approve_report(
    session: Session, report: AnnualReport, *, by: User | None, now: datetime, ip: str = ""
) -> AnnualReport:
    """Staff approve a submitted report: submitted -> approved (final)."""
    transition(report, "approved")
    report.approved_at = now
    session.flush()
    audit.record(
        session,
        "report.approved",
        actor=by,
        coop_id=report.coop_id,
        entity="annual_report",
        entity_id=report.id,
        before={"status": "submitted"},
        after={"status": "approved"},
        ip=ip,
    )
    return report
