"""Change of mandataire (changement de mandataire): the coop's dossier, OCCE 85's decisions, the bank.

Plain functions: the session, the acting user, the client address and the clock are passed in;
they flush, never commit. Files are written before the commit (a row never points to a missing
file); files replaced or dropped are returned to the caller, which removes them after its commit.
The PDF work (photos turned into pages, the identity document on one page, the cover page and the
merge of the bank dossier) is `app.mandate_pdf`'s.

Statuses and their moves live in `TRANSITIONS` and only `transition` changes a status:

    draft -> submitted          the coop sends a complete dossier (`submit_change`)
    submitted -> returned       OCCE 85 sends it back with a reason the coop reads (`return_change`)
    returned -> submitted       the coop fixed it and sends it again
    submitted -> validated      OCCE 85 accepts it; the merged PDF for the bank is built (`validate_change`)
    validated -> sent_to_bank   OCCE 85 sent that PDF to the coop's bank (`mark_sent_to_bank`)
    sent_to_bank -> completed   the bank created the delegation (`complete_change`): mandates switch

Rules (DOMAIN.md §7): the new mandataire is a teacher of the school; the proof of address is less
than `PROOF_OF_ADDRESS_MONTHS` months old when the dossier is sent; the identity document shows
front and back on one page; the effective date is at most `EFFECTIVE_DATE_MAX_PAST_DAYS` days in
the past and at most `EFFECTIVE_DATE_MAX_FUTURE_DAYS` days ahead.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.documents import document_path, write_for_transaction
from app.errors import DomainError, ValidationErrors
from app.formats import fr_date, fr_day
from app.mandate_pdf import (
    HtmlRenderer,
    as_pdf,
    identity_on_one_page,
    merge_pdfs,
    pdf_page_count,
    photo_as_pdf,
    render_cover,
)
from app.models import Coop, Document, Federation, Mandate, MandateChange, User
from app.pdf import PdfError

STATUS_LABELS = {
    "draft": "À compléter",
    "submitted": "Envoyé à l'OCCE 85",
    "returned": "Renvoyé pour correction",
    "validated": "Validé par l'OCCE 85",
    "sent_to_bank": "Envoyé à la banque",
    "completed": "Délégation créée",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"submitted"}),
    "submitted": frozenset({"validated", "returned"}),
    "returned": frozenset({"submitted"}),
    "validated": frozenset({"sent_to_bank"}),
    "sent_to_bank": frozenset({"completed"}),
    "completed": frozenset(),
}
EDITABLE_STATUSES = frozenset({"draft", "returned"})

REASONS = {
    "mutation": "Départ de l'école (mutation)",
    "retraite": "Départ à la retraite",
    "conge": "Congé de longue durée",
    "equipe": "Nouvelle répartition décidée par l'équipe enseignante",
    "autre": "Autre motif",
}
CIVILITIES = ("Mme", "M.")

# What the coop uploads, in the order of the merged PDF for the bank.
COOP_DOCUMENTS = ("mandate_form", "identity", "address_proof")
DOCUMENT_LABELS = {
    "mandate_form": "Formulaire de demande daté et signé",
    "identity": "Pièce d'identité du nouveau mandataire (recto et verso sur une page)",
    "address_proof": "Justificatif de domicile de moins de 6 mois",
    "bank_document": "Document de la banque",
    "bank_dossier": "Dossier complet pour la banque",
}

PROOF_OF_ADDRESS_MONTHS = 6
# A teacher's posting ends on 31 August and many coops only learn at the rentrée that their
# mandataire left: 45 days covers a dossier sent until mid-October for a change on 1 September,
# while an older date (weeks of operations signed by nobody known to the bank) is a matter for
# OCCE 85 staff, who correct mandates in the coop's record.
EFFECTIVE_DATE_MAX_PAST_DAYS = 45
# Further ahead than a school year is a typing slip (2062 for 2026).
EFFECTIVE_DATE_MAX_FUTURE_DAYS = 366

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_DOSSIER_BYTES = 60 * 1024 * 1024
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone


def documents_of(change: MandateChange) -> dict[str, Document]:
    """The change's documents by kind (the latest of each kind), in the order of DOCUMENT_LABELS."""
    return {kind: doc for kind in DOCUMENT_LABELS if (doc := change.document(kind)) is not None}


def current_mandate(coop: Coop, today: date) -> Mandate | None:
    """The coop's current mandataire (the latest started among those running today)."""
    running = [m for m in coop.mandates if m.role == "mandataire" and m.is_current(today)]
    return max(running, key=lambda m: m.started_on, default=None)


@dataclass(frozen=True)
class ChangeDetails:
    """What the coop types: the incoming mandataire, the outgoing one, the effective date, the reason."""

    incoming_civility: str
    incoming_last_name: str
    incoming_first_name: str
    incoming_email: str
    incoming_phone: str
    incoming_is_teacher: bool
    outgoing_civility: str
    outgoing_last_name: str
    outgoing_first_name: str
    effective_date: date
    reason: str
    reason_details: str = ""

    @classmethod
    def of(cls, change: MandateChange) -> ChangeDetails:
        return cls(**{name: getattr(change, name) for name in DETAIL_FIELDS})


DETAIL_FIELDS = tuple(ChangeDetails.__dataclass_fields__)
# Details printed on the request form: changing one makes the signed form obsolete.
_PRINTED_FIELDS = tuple(name for name in DETAIL_FIELDS if name != "incoming_is_teacher")


# --- Dates ---------------------------------------------------------------------------------------


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier, clamped to the month's end (31 Aug - 6 months = 28/29 Feb)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def oldest_proof_of_address(today: date) -> date:
    """The oldest accepted date of a proof of address on `today`: it must be *less* than six months old,
    so a proof dated exactly six months ago is refused and one dated the day after is accepted."""
    return months_before(today, PROOF_OF_ADDRESS_MONTHS) + timedelta(days=1)


def check_proof_of_address_date(proof_date: date | None, today: date) -> None:
    """Raises DomainError (field ``proof_date``) unless `proof_date` is set, not in the future and recent."""
    if proof_date is None:
        raise DomainError("Indiquez la date du justificatif de domicile.", field="proof_date")
    if proof_date > today:
        raise DomainError("La date du justificatif de domicile ne peut pas être dans le futur.", field="proof_date")
    if proof_date < oldest_proof_of_address(today):
        raise DomainError(
            f"Ce justificatif de domicile date du {fr_date(proof_date)} : il a plus de {PROOF_OF_ADDRESS_MONTHS} "
            f"mois. Envoyez un justificatif daté du {fr_date(oldest_proof_of_address(today))} ou après "
            "(facture d'énergie, de téléphone, avis d'imposition, quittance de loyer…).",
            field="proof_date",
        )


def check_effective_date(effective_date: date, today: date) -> None:
    """Raises DomainError (field ``effective_date``) outside [today - 45 days, today + 366 days]."""
    earliest = today - timedelta(days=EFFECTIVE_DATE_MAX_PAST_DAYS)
    if effective_date < earliest:
        raise DomainError(
            f"La date d'effet ne peut pas être antérieure de plus de {EFFECTIVE_DATE_MAX_PAST_DAYS} jours à "
            f"aujourd'hui (au plus tôt le {fr_date(earliest)}). Pour un changement plus ancien, contactez "
            "l'OCCE 85.",
            field="effective_date",
        )
    if effective_date > today + timedelta(days=EFFECTIVE_DATE_MAX_FUTURE_DAYS):
        raise DomainError("La date d'effet est à plus d'un an : vérifiez l'année.", field="effective_date")


# --- Reading -------------------------------------------------------------------------------------


def open_change(session: Session, coop: Coop) -> MandateChange | None:
    """The coop's dossier that is not completed yet (at most one, by a unique constraint)."""
    return session.scalar(sa.select(MandateChange).where(MandateChange.open_for_coop_id == coop.id))


def changes_of(session: Session, coop: Coop) -> Sequence[MandateChange]:
    """Every dossier of the coop, newest first."""
    return session.scalars(
        sa.select(MandateChange)
        .where(MandateChange.coop_id == coop.id)
        .order_by(MandateChange.created_at.desc(), MandateChange.id.desc())
    ).all()


def is_editable(change: MandateChange) -> bool:
    return change.status in EDITABLE_STATUSES


def missing_items(change: MandateChange, today: date) -> dict[str, list[str]]:
    """What prevents sending the dossier, by form field (empty when « Envoyer » is possible)."""
    errors: dict[str, list[str]] = {}
    if not change.incoming_is_teacher:
        errors["incoming_is_teacher"] = ["Le nouveau mandataire doit être enseignant à l'école."]
    try:
        check_effective_date(change.effective_date, today)
    except DomainError as exc:
        errors["effective_date"] = [exc.message]
    if change.document("mandate_form") is None:
        errors["mandate_form"] = ["Ajoutez le formulaire de demande imprimé, daté et signé."]
    if change.document("identity") is None:
        errors["identity"] = ["Ajoutez la pièce d'identité du nouveau mandataire (recto et verso)."]
    if change.document("address_proof") is None:
        errors["address_proof"] = ["Ajoutez le justificatif de domicile du nouveau mandataire."]
    else:
        try:
            check_proof_of_address_date(change.proof_of_address_date, today)
        except DomainError as exc:
            errors["address_proof"] = [exc.message]
    return errors


def status_dates(change: MandateChange) -> list[tuple[str, datetime]]:
    """The dossier's steps with their dates, oldest first (what the coop and staff read as a timeline)."""
    steps = [
        ("Dossier commencé", change.created_at),
        ("Envoyé à l'OCCE 85", change.submitted_at),
        ("Renvoyé pour correction", change.returned_at),
        ("Validé par l'OCCE 85", change.validated_at),
        ("Envoyé à la banque", change.sent_to_bank_at),
        ("Délégation créée", change.completed_at),
    ]
    return sorted(((label, when) for label, when in steps if when is not None), key=lambda item: item[1])


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def is_credit_mutuel(bank_name: str) -> bool:
    """Crédit Mutuel (any spelling: « CREDIT MUTUEL OCEAN », « Crédit-Mutuel »…): the bank sends its own
    document, which OCCE 85 forwards to the coop (guide of the mandataire)."""
    return "credit mutuel" in _normalise(bank_name)


def bank_of(change: MandateChange) -> str:
    """The bank the dossier goes to: the one recorded at validation, else the coop's bank today."""
    return change.bank_name or change.coop.bank_name or "la banque de la coopérative"


# --- Status moves --------------------------------------------------------------------------------


def check_transition(change: MandateChange, to: str) -> None:
    """Raise DomainError unless `TRANSITIONS` allows `change` to move to `to` (changes nothing)."""
    current = change.status
    if to not in TRANSITIONS:
        raise DomainError(f"Statut de dossier inconnu : {to}.")
    if to not in TRANSITIONS.get(current, frozenset()):
        raise DomainError(
            f"Un dossier « {STATUS_LABELS.get(current, current)} » ne peut pas passer à « {STATUS_LABELS[to]} »."
        )


def transition(change: MandateChange, to: str) -> None:
    """Move `change` to status `to` if `TRANSITIONS` allows it; raises DomainError otherwise.

    A completed change no longer counts as the coop's open dossier (`open_for_coop_id` is cleared).
    """
    check_transition(change, to)
    change.status = to
    change.open_for_coop_id = None if to == "completed" else change.coop_id


def _new_reference(session: Session, coop: Coop) -> str:
    for _ in range(10):
        suffix = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(6))
        reference = f"MDT-{coop.number:03d}-{suffix}"
        if session.scalar(sa.select(MandateChange.id).where(MandateChange.reference == reference)) is None:
            return reference
    raise RuntimeError("no free mandate change reference")  # pragma: no cover - 32^6 choices per coop


def check_details(details: ChangeDetails, today: date) -> None:
    """Refuse details that cannot be sent: raises ValidationErrors by field, in French."""
    errors: dict[str, list[str]] = {}
    for name in DETAIL_FIELDS:
        value = getattr(details, name)
        allowed = "\r\n\t" if name == "reason_details" else ""
        if isinstance(value, str) and any(
            unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch not in allowed for ch in value
        ):
            errors[name] = ["Ce champ contient un caractère de contrôle : retapez-le."]
    for name, label in (
        ("incoming_last_name", "le nom"),
        ("incoming_first_name", "le prénom"),
        ("incoming_email", "l'adresse e-mail"),
        ("incoming_phone", "le téléphone"),
    ):
        if not getattr(details, name).strip():
            errors[name] = [f"Indiquez {label} du nouveau mandataire."]
    if details.incoming_civility not in CIVILITIES:
        errors["incoming_civility"] = ["Choisissez la civilité du nouveau mandataire."]
    if details.outgoing_civility and details.outgoing_civility not in CIVILITIES:
        errors["outgoing_civility"] = ["Choisissez la civilité du mandataire sortant."]
    if not details.incoming_is_teacher:
        errors["incoming_is_teacher"] = [
            "Seul un enseignant de l'école peut être mandataire de la coopérative (statuts de l'OCCE)."
        ]
    if details.reason not in REASONS:
        errors["reason"] = ["Choisissez le motif du changement."]
    elif details.reason == "autre" and not details.reason_details.strip():
        errors["reason_details"] = ["Précisez le motif du changement."]
    same = _normalise(details.incoming_last_name) == _normalise(details.outgoing_last_name) and _normalise(
        details.incoming_first_name
    ) == _normalise(details.outgoing_first_name)
    if same and details.incoming_last_name.strip():
        errors["incoming_last_name"] = ["Le nouveau mandataire est la même personne que le mandataire sortant."]
    try:
        check_effective_date(details.effective_date, today)
    except DomainError as exc:
        errors["effective_date"] = [exc.message]
    if errors:
        raise ValidationErrors(errors)


def _apply(change: MandateChange, details: ChangeDetails) -> dict[str, object]:
    """Copy `details` onto `change`; return the printed fields that changed (before values)."""
    changed: dict[str, object] = {}
    for name in DETAIL_FIELDS:
        value = getattr(details, name)
        value = value.strip() if isinstance(value, str) else value
        if getattr(change, name) != value:
            if name in _PRINTED_FIELDS:
                changed[name] = getattr(change, name)
            setattr(change, name, value)
    return changed


def start_change(
    session: Session, coop: Coop, details: ChangeDetails, *, by: User | None, ip: str = "", today: date
) -> MandateChange:
    """Open the coop's dossier (status draft) with `details`; the outgoing mandate is today's mandataire.

    Raises ValidationErrors for invalid details, DomainError when the coop already has an open dossier.
    """
    check_details(details, today)
    if open_change(session, coop) is not None:
        raise DomainError("Un changement de mandataire est déjà en cours pour la coopérative : reprenez-le.")
    change = MandateChange(
        coop=coop,
        coop_id=coop.id,
        open_for_coop_id=coop.id,
        status="draft",
        reference=_new_reference(session, coop),
        created_by_id=by.id if by else None,
    )
    outgoing = current_mandate(coop, today)
    change.outgoing_mandate_id = outgoing.id if outgoing is not None else None
    _apply(change, details)
    session.add(change)
    session.flush()
    audit.record(
        session,
        "mandate_change.started",
        actor=by,
        coop_id=coop.id,
        entity="mandate_change",
        entity_id=change.id,
        after={
            "reference": change.reference,
            "incoming": change.incoming_full_name,
            "effective_date": change.effective_date,
        },
        ip=ip,
    )
    return change


def _require_editable(change: MandateChange) -> None:
    if not is_editable(change):
        raise DomainError(
            f"Le dossier {change.reference} est « {STATUS_LABELS[change.status]} » : il ne peut plus être modifié."
        )


def _drop(session: Session, document: Document) -> str:
    key = document.storage_key
    session.delete(document)
    session.flush()
    return key


def update_details(
    session: Session, change: MandateChange, details: ChangeDetails, *, by: User | None, ip: str = "", today: date
) -> list[str]:
    """Save new details on an editable dossier; returns the storage keys of files to remove after commit.

    When a detail printed on the request form changed, the signed form no longer matches it: that
    document is dropped (its key is returned) and the coop prints and signs the new form. Raises
    ValidationErrors for invalid details, DomainError once the dossier is sent.
    """
    _require_editable(change)
    check_details(details, today)
    before = _apply(change, details)
    removed: list[str] = []
    if before:
        signed = change.document("mandate_form")
        if signed is not None:
            removed.append(_drop(session, signed))
            session.expire(change, ["documents"])
        session.flush()
        audit.record(
            session,
            "mandate_change.updated",
            actor=by,
            coop_id=change.coop_id,
            entity="mandate_change",
            entity_id=change.id,
            before=before,
            after={name: getattr(change, name) for name in before},
            ip=ip,
        )
    return removed


# --- Documents -----------------------------------------------------------------------------------


def _write_pdf(
    session: Session,
    *,
    upload_dir: str,
    change: MandateChange,
    kind: str,
    filename: str,
    content: bytes,
    by: User | None,
    ip: str,
    action: str = "document.uploaded",
) -> Document:
    """Store a PDF that was checked (or built by the portal from checked parts): mode 0600, random key,
    attached to `change`. Like `app.documents.store_document`, without scanning the bytes again: the
    raw image data inside a photo turned into PDF may contain any byte sequence (« /JS » included).
    The file is written all or nothing and listed for the unit of work, which removes it if the
    transaction does not commit (as `store_document` does)."""
    key = secrets.token_hex(16)
    write_for_transaction(session, upload_dir, key, content)
    document = Document(
        coop_id=change.coop_id,
        mandate_change_id=change.id,
        kind=kind,
        original_name=filename,
        content_type="application/pdf",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        storage_key=key,
        uploaded_by_id=by.id if by else None,
    )
    session.add(document)
    session.flush()
    audit.record(
        session,
        action,
        actor=by,
        coop_id=change.coop_id,
        entity="document",
        entity_id=document.id,
        after={"kind": kind, "name": filename, "size": len(content)},
        ip=ip,
    )
    return document


def attach_document(
    session: Session,
    change: MandateChange,
    kind: str,
    files: Sequence[tuple[str, bytes]],
    *,
    upload_dir: str,
    by: User | None,
    ip: str = "",
    today: date,
    proof_date: date | None = None,
) -> tuple[Document, list[str]]:
    """Add (or replace) one of the coop's documents; returns it and the storage keys to remove after commit.

    Every file is checked by content; photos become PDF pages. The identity document is put on one page
    (`identity_on_one_page`). The proof of address needs its date, less than six months old. Raises
    DomainError on a sent dossier, a refused file (field ``file``, ``identity`` or ``proof_date``) or an
    unknown kind.
    """
    _require_editable(change)
    if kind not in COOP_DOCUMENTS:
        raise DomainError(f"Type de document inconnu : {kind}.")
    if kind == "address_proof":
        check_proof_of_address_date(proof_date, today)
    if not files or not files[0][1]:
        raise DomainError("Le fichier est vide.", field="file")
    names = {"mandate_form": "formulaire-signe", "identity": "piece-identite", "address_proof": "justificatif-domicile"}
    if kind == "identity":
        content, is_pdf = identity_on_one_page(files, max_bytes=MAX_DOCUMENT_BYTES)
        content = content if is_pdf else photo_as_pdf(content)
    else:
        content = as_pdf(files[0][1], max_bytes=MAX_DOCUMENT_BYTES)
    previous = change.document(kind)
    document = _write_pdf(
        session,
        upload_dir=upload_dir,
        change=change,
        kind=kind,
        filename=f"{names[kind]}-{change.reference}.pdf",
        content=content,
        by=by,
        ip=ip,
    )
    removed = [_drop(session, previous)] if previous is not None else []
    if kind == "address_proof":
        change.proof_of_address_date = proof_date
    session.flush()
    session.expire(change, ["documents"])
    audit.record(
        session,
        "mandate_change.document_added",
        actor=by,
        coop_id=change.coop_id,
        entity="mandate_change",
        entity_id=change.id,
        after={
            "kind": kind,
            "document_id": document.id,
            "replaced": bool(removed),
            **({"proof_of_address_date": proof_date} if kind == "address_proof" else {}),
        },
        ip=ip,
    )
    return document, removed


# --- The coop sends; OCCE 85 decides ------------------------------------------------------------


def _record(
    session: Session, change: MandateChange, action: str, before: str, *, by: User | None, ip: str, **after: object
) -> None:
    audit.record(
        session,
        action,
        actor=by,
        coop_id=change.coop_id,
        entity="mandate_change",
        entity_id=change.id,
        before={"status": before},
        after={"status": change.status, **after},
        ip=ip,
    )


def submit_change(
    session: Session, change: MandateChange, *, by: User | None, ip: str = "", now: datetime, today: date
) -> MandateChange:
    """« Envoyer »: draft or returned -> submitted, once every document is there and still valid.

    The outgoing mandate is frozen here (today's mandataire). Raises ValidationErrors naming what is
    missing (signed form, identity, proof of address, or a proof older than six months) and DomainError
    for a dossier that is not the coop's to send.
    """
    _require_editable(change)
    errors = missing_items(change, today)
    outgoing = current_mandate(change.coop, today)
    if outgoing is not None and change.effective_date <= outgoing.started_on:
        errors.setdefault("effective_date", []).append(
            f"La date d'effet doit suivre le début du mandat actuel ({fr_date(outgoing.started_on)})."
        )
    if errors:
        raise ValidationErrors(errors)
    before = change.status
    transition(change, "submitted")
    change.outgoing_mandate_id = outgoing.id if outgoing is not None else None
    change.submitted_at = now
    session.flush()
    _record(
        session,
        change,
        "mandate_change.submitted",
        before,
        by=by,
        ip=ip,
        proof_of_address_date=change.proof_of_address_date,
    )
    return change


def return_change(
    session: Session, change: MandateChange, reason: str, *, by: User | None, ip: str = "", now: datetime
) -> MandateChange:
    """« Renvoyer »: submitted -> returned with a reason the coop reads. Raises DomainError without a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Indiquez ce que la coopérative doit corriger : elle lira ce motif.", field="reason")
    before = change.status
    transition(change, "returned")
    change.return_reason = reason[:1000]
    change.returned_at = now
    change.returned_by_id = by.id if by else None
    session.flush()
    _record(session, change, "mandate_change.returned", before, by=by, ip=ip, reason=change.return_reason)
    return change


def _bank_slug(bank: str) -> str:
    return "-".join(_normalise(bank).split())[:40] or "banque"


def _bank_dossier_parts(upload_dir: str, change: MandateChange) -> list[tuple[str, bytes]]:
    """The coop's documents in the order of the bank dossier: (label, PDF bytes). Raises DomainError."""
    parts = []
    for kind in COOP_DOCUMENTS:
        document = change.document(kind)
        if document is None:
            raise DomainError(f"Il manque un document au dossier : {DOCUMENT_LABELS[kind]}.")
        parts.append((DOCUMENT_LABELS[kind], document_path(upload_dir, document).read_bytes()))
    return parts


def build_bank_dossier(
    session: Session,
    change: MandateChange,
    *,
    render_html: HtmlRenderer,
    static_dir: str | Path,
    upload_dir: str,
    by: User | None,
    ip: str = "",
) -> Document:
    """The one PDF for the bank: the cover page, then the signed form, the identity document and the
    proof of address, in that order; stored as a Document (kind ``bank_dossier``) so that the same
    bytes are downloaded every time. Idempotent: an existing dossier is returned as it is.

    `render_html(context)` renders the cover (``templates/pdf/mandate_cover.html``) from `change`,
    `coop`, `bank`, `federation`, `parts` (label, first page, last page), `validated_on` and
    `validated_by`. Raises DomainError when a document is missing, the cover cannot be rendered or the
    result is too large.
    """
    existing = change.document("bank_dossier")
    if existing is not None:
        return existing
    parts = _bank_dossier_parts(upload_dir, change)
    bank = bank_of(change)
    context = {
        "change": change,
        "coop": change.coop,
        "bank": bank,
        "federation": Federation.settings(session),
        "validated_on": fr_day(change.validated_at),
        "validated_by": (by.full_name or by.login) if by is not None else "",
    }
    try:
        cover = render_cover(
            render_html, context, [(label, pdf_page_count(content)) for label, content in parts], static_dir=static_dir
        )
    except PdfError as exc:
        raise DomainError("Le PDF pour la banque n'a pas pu être produit.") from exc
    merged = merge_pdfs(
        [cover, *(content for _, content in parts)],
        title=f"Changement de mandataire {change.reference} — {change.coop.login} — {bank}",
    )
    if len(merged) > MAX_DOSSIER_BYTES:
        raise DomainError(
            "Le dossier complet dépasse 60 Mo : renvoyez-le à la coopérative pour des fichiers plus légers."
        )
    document = _write_pdf(
        session,
        upload_dir=upload_dir,
        change=change,
        kind="bank_dossier",
        filename=f"dossier-banque-{change.reference}-{_bank_slug(bank)}.pdf",
        content=merged,
        by=by,
        ip=ip,
        action="document.generated",
    )
    session.expire(change, ["documents"])
    return document


def validate_change(
    session: Session,
    change: MandateChange,
    *,
    render_html: HtmlRenderer,
    static_dir: str | Path,
    upload_dir: str,
    by: User | None,
    ip: str = "",
    now: datetime,
) -> MandateChange:
    """« Valider »: submitted -> validated; records the coop's bank as the dossier's bank and builds the
    merged PDF for that bank (`build_bank_dossier`, same arguments), so that a validated dossier always
    has it. Raises DomainError from any other status, when a document is missing or the PDF fails.
    """
    check_transition(change, "validated")
    for kind in COOP_DOCUMENTS:
        if change.document(kind) is None:
            raise DomainError(f"Il manque un document au dossier : {DOCUMENT_LABELS[kind]}.")
    before = change.status
    transition(change, "validated")
    change.bank_name = change.coop.bank_name or ""
    change.validated_at = now
    change.validated_by_id = by.id if by else None
    session.flush()
    _record(session, change, "mandate_change.validated", before, by=by, ip=ip, bank=change.bank_name)
    build_bank_dossier(
        session, change, render_html=render_html, static_dir=static_dir, upload_dir=upload_dir, by=by, ip=ip
    )
    return change


def mark_sent_to_bank(
    session: Session, change: MandateChange, *, by: User | None, ip: str = "", now: datetime
) -> MandateChange:
    """« Envoyé à la banque »: validated -> sent_to_bank, once the bank dossier exists. Raises DomainError."""
    check_transition(change, "sent_to_bank")
    if change.document("bank_dossier") is None:
        raise DomainError("Le dossier pour la banque n'a pas été préparé.")
    before = change.status
    transition(change, "sent_to_bank")
    change.sent_to_bank_at = now
    change.sent_to_bank_by_id = by.id if by else None
    session.flush()
    _record(session, change, "mandate_change.sent_to_bank", before, by=by, ip=ip, bank=bank_of(change))
    return change


def attach_bank_document(
    session: Session, change: MandateChange, content: bytes, *, upload_dir: str, by: User | None, ip: str = ""
) -> tuple[Document, list[str]]:
    """Crédit Mutuel: the bank's own document, which OCCE 85 forwards to the coop (replaces a previous one).

    Allowed once the dossier went to the bank. Raises DomainError for another bank, an earlier status or
    a refused file. Returns the document and the storage keys to remove after commit.
    """
    if not is_credit_mutuel(bank_of(change)):
        raise DomainError("Seul le Crédit Mutuel envoie un document à transmettre à la coopérative.")
    if change.status not in ("sent_to_bank", "completed"):
        raise DomainError("Le document de la banque arrive après l'envoi du dossier à la banque.")
    previous = change.document("bank_document")
    document = _write_pdf(
        session,
        upload_dir=upload_dir,
        change=change,
        kind="bank_document",
        filename=f"document-banque-{change.reference}.pdf",
        content=as_pdf(content, max_bytes=MAX_DOCUMENT_BYTES),
        by=by,
        ip=ip,
    )
    removed = [_drop(session, previous)] if previous is not None else []
    session.flush()
    session.expire(change, ["documents"])
    audit.record(
        session,
        "mandate_change.bank_document_added",
        actor=by,
        coop_id=change.coop_id,
        entity="mandate_change",
        entity_id=change.id,
        after={"document_id": document.id, "replaced": bool(removed)},
        ip=ip,
    )
    return document, removed


def complete_change(
    session: Session, change: MandateChange, *, by: User | None, ip: str = "", now: datetime
) -> Mandate:
    """« Délégation créée »: sent_to_bank -> completed; the old Mandate ends and the new one starts.

    The outgoing mandate ends on ``effective_date - 1 day`` and the new one starts on
    ``effective_date``. The day before, not the effective date itself: `Mandate.is_current` counts
    both ends of a period, so ending on the effective date would give the coop two current
    mandataires that day; this way exactly one person holds the delegation on any day, with no gap.
    An outgoing mandate that already ended earlier is left alone.

    Idempotent: a completed change returns the mandate it created, without creating another (double
    click, two staff members). Raises DomainError from any other status, or when the effective date
    does not follow the start of the outgoing mandate.
    """
    if change.status == "completed" and change.new_mandate is not None:
        return change.new_mandate
    before = change.status
    transition(change, "completed")
    end = change.effective_date - timedelta(days=1)
    outgoing = change.outgoing_mandate
    ended = None
    if outgoing is not None and (outgoing.ended_on is None or outgoing.ended_on > end):
        if end < outgoing.started_on:
            raise DomainError(
                f"La date d'effet ({fr_date(change.effective_date)}) doit suivre le début du mandat "
                f"de {outgoing.full_name} ({fr_date(outgoing.started_on)})."
            )
        outgoing.ended_on = end
        ended = outgoing.id
    mandate = Mandate(
        coop_id=change.coop_id,
        role="mandataire",
        civility=change.incoming_civility,
        last_name=change.incoming_last_name,
        first_name=change.incoming_first_name,
        email=change.incoming_email,
        phone=change.incoming_phone,
        started_on=change.effective_date,
    )
    session.add(mandate)
    session.flush()
    change.new_mandate_id = mandate.id
    change.completed_at = now
    change.completed_by_id = by.id if by else None
    session.flush()
    session.expire(change.coop, ["mandates"])
    _record(
        session,
        change,
        "mandate_change.completed",
        before,
        by=by,
        ip=ip,
        new_mandate_id=mandate.id,
        started_on=mandate.started_on,
        ended_mandate_id=ended,
        ended_on=end if ended else None,
    )
    return mandate


# --- Home page -----------------------------------------------------------------------------------


def home_card(session: Session | None, coop: Coop, mandate: Mandate | None) -> tuple[str, str, str]:
    """The mandataire card of the home page: (status, summary, action label)."""
    current = f"Mandataire actuel : {mandate.full_name}." if mandate else "Aucun mandataire enregistré."
    change = open_change(session, coop) if session is not None else None
    if change is None:
        return ("done" if mandate else "todo", current, "Changement pour le compte bancaire…")
    if change.status == "draft":
        return (
            "todo",
            f"{current} Changement en cours vers {change.incoming_full_name} : complétez le dossier puis envoyez-le.",
            "Reprendre le dossier",
        )
    if change.status == "returned":
        return (
            "todo",
            f"{current} Le dossier a été renvoyé par l'OCCE 85 le {fr_day(change.returned_at)} : "
            "corrigez-le puis "
            "envoyez-le à nouveau.",
            "Corriger le dossier",
        )
    what, when = {
        "submitted": ("dossier envoyé à l'OCCE 85", change.submitted_at),
        "validated": ("dossier validé par l'OCCE 85", change.validated_at),
        "sent_to_bank": ("dossier envoyé à la banque", change.sent_to_bank_at),
    }[change.status]
    return (
        "waiting",
        f"{current} Changement vers {change.incoming_full_name} : {what} le {fr_day(when)}.",
        "Suivre le dossier",
    )
