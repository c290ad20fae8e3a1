"""Sending the yearly report to OCCE 85 and its review: supporting documents, what is still
missing, the status transitions, the automatic checks staff read, and reopening a year.

Statuses of an `AnnualReport` move only through `transition` (`TRANSITIONS`):

    draft -> submitted        the coop sends its reports (`submit_report`)
    submitted -> approved     staff approve them (`approve_report`)
    submitted -> returned     staff return them (`return_report`), or reopen the year (`reopen_year`)
    returned -> submitted     the coop sends them again

Reopening a closed year is `app.closing.reopen_ledger` (the ledger's rules); `reopen_year` adds the
report's side: a submitted report goes back to the coop with the reason.

Functions flush, never commit; the session, the acting user and the clock are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit, closing, documents
from app.annual_report import check_editable, find_report
from app.cra import check_cra, check_quitus, cra_prefill, quitus_of
from app.crf import Crf
from app.errors import DomainError, ValidationErrors
from app.formats import fr_date
from app.models import AnnualReport, Document, Ledger, User

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
REPORT_MAX_BYTES = 20 * 1024 * 1024
MAX_FILES_PER_SLOT = 10  # a slot that takes several files (subsidy proofs): at most this many


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


# -- supporting documents ------------------------------------------------------------------------

# The kinds of the slots that take several files, each upload adding one; only those files can be
# removed one by one (the quitus and the statement are replaced by a new upload instead).
MULTIPLE_KINDS = frozenset({"report_subsidies", "report_other"})


@dataclass(frozen=True)
class Slot:
    key: str
    kind: str  # Document.kind
    label: str
    help: str
    required: bool

    @property
    def multiple(self) -> bool:
        """Each upload adds a file (else it replaces the slot's file)."""
        return self.kind in MULTIPLE_KINDS


def document_slots(crf: Crf) -> list[Slot]:
    """The upload slots of the report: the quitus and the statement always (one file each); subsidy
    proofs when the subsidy table is not empty, and an optional slot for anything else (several files each)."""
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
            "Courriers d'attribution ou relevés montrant les versements des subventions publiques : "
            "déposez-en autant que nécessaire, un fichier à la fois.",
            bool(crf.subsidies),
        ),
        Slot(
            "other",
            "report_other",
            "Autres documents (facultatif)",
            "Par exemple le compte rendu financier signé par les enseignants.",
            False,
        ),
    ]


def report_documents(session: Session, report: AnnualReport | None) -> dict[str, list[Document]]:
    """The documents of each slot (by Document.kind), oldest first; a kind without any is absent."""
    if report is None:
        return {}
    rows = session.scalars(
        sa.select(Document).where(Document.annual_report_id == report.id).order_by(Document.id)
    ).all()
    present: dict[str, list[Document]] = {}
    for document in rows:
        present.setdefault(document.kind, []).append(document)
    return present


def slot_of(document: Document, slots: list[Slot]) -> Slot | None:
    """The slot `document` belongs to, among `slots` (None for a kind no slot takes)."""
    return next((slot for slot in slots if slot.kind == document.kind), None)


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
    """Store an upload (PDF, JPEG or PNG up to 20 MB, checked by content; photos become PDF) in `slot`:
    added to the slot's files when it takes several (at most `MAX_FILES_PER_SLOT`), else replacing the
    previous one. Returns the document and the storage keys to delete after commit.

    Raises DomainError once the report is sent or approved, or when the slot is full."""
    check_editable(report)
    previous = report_documents(session, report).get(slot.kind, [])
    if slot.multiple and len(previous) >= MAX_FILES_PER_SLOT:
        raise DomainError(
            f"Vous avez déjà déposé {MAX_FILES_PER_SLOT} fichiers ici, le maximum : retirez-en un "
            "ou réunissez plusieurs pages dans un seul PDF.",
            field="file",
        )
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
    for replaced in [] if slot.multiple else previous:
        removed.append(replaced.storage_key)
        audit.record(
            session,
            "document.replaced",
            actor=by,
            coop_id=report.coop_id,
            entity="document",
            entity_id=replaced.id,
            before={"kind": replaced.kind, "name": replaced.original_name},
            ip=ip,
        )
        session.delete(replaced)
    session.flush()
    return document, removed


def remove_report_document(
    session: Session, report: AnnualReport, document: Document, *, by: User | None, ip: str = ""
) -> str:
    """Remove one file of a slot that takes several (audited as document.removed). Returns the storage
    key to delete after commit.

    Raises DomainError once the report is sent or approved (the same rule as for an upload), or for a
    document that is not one of this report's removable files."""
    check_editable(report)
    if document.annual_report_id != report.id or document.kind not in MULTIPLE_KINDS:
        raise DomainError("Ce fichier ne peut pas être retiré : déposez plutôt un autre fichier à sa place.")
    key = document.storage_key
    documents.remove_document(session, document, by=by, ip=ip)
    return key


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


def reopen_year(
    session: Session, ledger: Ledger, *, reason: str, by: User | None, now: datetime, ip: str = ""
) -> AnnualReport | None:
    """Staff reopen a closed year (`app.closing.reopen_ledger`, whose refusals it raises) and send a
    submitted report back to the coop with the same reason. Returns that report (to tell the coop by
    mail), else None."""
    reopening = closing.reopen_ledger(session, ledger, reason=reason, by=by, ip=ip, now=now)
    report = find_report(session, ledger)
    if report is None or report.status != "submitted":
        return None
    return return_report(session, report, reason=reopening.reason, by=by, now=now, ip=ip)


# -- review ----------------------------------------------------------------------------------------


class ReviewCheck(NamedTuple):
    """One automatic check shown to staff reviewing a report: its verdict and what it says."""

    ok: bool
    message: str


def automatic_checks(crf: Crf, missing: list[Missing]) -> list[ReviewCheck]:
    """What staff would otherwise check by hand on a report, each with its verdict (French)."""
    reconciliation = crf.reconciliation
    explained = reconciliation.statement_balance is not None and reconciliation.is_reconciled
    documents_missing = [item for item in missing if item.step == "documents"]
    return [
        ReviewCheck(crf.is_balanced, "Le bilan est équilibré (actif = report à nouveau + résultat)."),
        ReviewCheck(crf.is_closed, "Le cahier est clôturé."),
        ReviewCheck(explained, "Le rapprochement bancaire au 31 août est expliqué (relevé = banque − non pointées)."),
        ReviewCheck(crf.closing_advance == 0, "Les régies d'avance sont soldées."),
        ReviewCheck(
            not documents_missing,
            "Les justificatifs obligatoires sont déposés."
            if not documents_missing
            else "Justificatifs manquants : " + " ".join(item.message for item in documents_missing),
        ),
    ]
