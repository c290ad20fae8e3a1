"""Direct debits of membership fees: runs, SEPA pain.008 and CSV exports, settlement and rejections.

Business validation comes first and says, per coop, why it is left out (IBAN, mandate reference,
signature date, amount, creditor identifier). The XML is built with sepaxml on a fresh `SepaDD`
per file (its `export()` is not idempotent), `clean=False`, every text already reduced to the SEPA
character set here, one collection date and sequence RCUR, and validated against the XSD bundled
with sepaxml. The exported bytes are stored with their hash: a second download gives the same file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy.orm import Session
from stdnum.eu import at_02

from app import audit
from app import ledger as books
from app import membership as memberships
from app.errors import DomainError
from app.models import Coop, Debit, DebitBatch, Federation, Membership, User

SCHEMAS = ("pain.008.001.08", "pain.008.001.02")
_SEPA_ID = re.compile(r"[A-Za-z0-9/\-?:().,'+]{1,35}")
_NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


def sepa_text(text: str, max_length: int) -> str:
    """Reduce free text to the EPC Latin set: accents removed, & -> +, anything else -> space, truncated."""
    decomposed = unicodedata.normalize("NFKD", (text or "").replace("&", "+").replace("œ", "oe").replace("Œ", "OE"))
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    cleaned = " ".join(_NOT_SEPA.sub(" ", ascii_text).split())
    return cleaned[:max_length].rstrip()


def is_sepa_id(value: str) -> bool:
    """RUM, EndToEndId, MsgId: 1 to 35 characters of the SEPA set, no space (validated, never rewritten)."""
    return bool(_SEPA_ID.fullmatch(value or ""))


def check_creditor_id(value: str) -> str:
    """Normalise the federation's SEPA creditor id (ICS); ValueError (French) when its check digits fail."""
    compact = (value or "").replace(" ", "").upper()
    if not at_02.is_valid(compact):
        raise ValueError("Identifiant créancier SEPA invalide (13 caractères, clé de contrôle fausse ?).")
    return compact


@dataclass(frozen=True)
class Exclusion:
    coop: Coop
    membership: Membership | None
    reasons: tuple[str, ...]


def debit_problems(membership: Membership) -> list[str]:
    """Why a membership cannot be debited (French, for the staff list); empty when it can."""
    coop = membership.coop
    problems = []
    if membership.status not in ("committed", "rejected"):
        problems.append(f"adhésion au statut « {memberships.STATUS_LABELS.get(membership.status, membership.status)} »")
    if membership.payment_method != "debit":
        problems.append("se règle par chèque")
    if not membership.total_cents or membership.total_cents <= 0:
        problems.append("montant nul")
    try:
        IBAN(coop.iban or "", validate_bban=True)
    except SchwiftyException:
        problems.append("IBAN absent ou invalide")
    if not coop.debit_mandate_ref:
        problems.append("référence unique de mandat (RUM) manquante")
    elif not is_sepa_id(coop.debit_mandate_ref):
        problems.append("RUM invalide (35 caractères au plus : lettres, chiffres et / - ? : ( ) . , ' + sans espace)")
    if coop.debit_mandate_signed_on is None:
        problems.append("date de signature du mandat manquante")
    return problems


def creditor_problems(federation: Federation | None) -> list[str]:
    """What is missing on OCCE 85's side before any file can be built."""
    if federation is None:
        return ["réglages de l'OCCE 85 absents"]
    problems = []
    if not at_02.is_valid(federation.creditor_id or ""):
        problems.append("identifiant créancier SEPA (ICS) invalide")
    try:
        IBAN(federation.iban or "", validate_bban=True)
    except SchwiftyException:
        problems.append("IBAN de l'OCCE 85 invalide")
    if federation.sepa_schema == "pain.008.001.02" and not federation.bic:
        problems.append("BIC de l'OCCE 85 manquant (obligatoire en pain.008.001.02)")
    return problems


def eligible_memberships(session: Session) -> list[Membership]:
    """Memberships waiting for a debit: committed (or rejected, to present again), paying by debit."""
    return list(
        session.scalars(
            sa.select(Membership)
            .join(Membership.coop)
            .where(Membership.status.in_(("committed", "rejected")), Membership.payment_method == "debit")
            .order_by(Coop.number)
        )
    )


def earliest_collection_date(today: date, lead_days: int) -> date:
    """The first collection date the bank can take: `lead_days` business days (Monday-Friday) after today."""
    day, left = today, lead_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def create_batch(
    session: Session, membership_ids: list[int], collection_date: date, *, today: date, by: User | None, ip: str = ""
) -> tuple[DebitBatch | None, list[Exclusion]]:
    """A draft run of the chosen memberships that pass the checks; the others are returned with reasons."""
    federation = session.scalar(sa.select(Federation))
    problems = creditor_problems(federation)
    if problems:
        raise DomainError("Impossible de préparer un prélèvement : " + ", ".join(problems) + ".")
    earliest = earliest_collection_date(today, federation.debit_lead_days)
    if collection_date < earliest:
        raise DomainError(
            f"La date d'échéance doit être au plus tôt le {earliest:%d/%m/%Y} "
            f"({federation.debit_lead_days} jours ouvrés de délai pour la banque).",
            field="collection_date",
        )
    chosen = session.scalars(sa.select(Membership).where(Membership.id.in_(membership_ids))).all()
    excluded, kept = [], []
    for membership in sorted(chosen, key=lambda m: m.coop.number):
        problems = debit_problems(membership)
        if problems:
            excluded.append(Exclusion(membership.coop, membership, tuple(problems)))
        else:
            kept.append(membership)
    if not kept:
        return None, excluded
    stamp = collection_date.strftime("%Y%m%d")
    sequence = session.scalar(sa.select(sa.func.count()).select_from(DebitBatch)) + 1
    batch = DebitBatch(
        collection_date=collection_date,
        schema=federation.sepa_schema,
        message_id=f"OCCE85-SDD-{stamp}-{sequence:04d}",
        created_by_id=by.id if by else None,
    )
    session.add(batch)
    session.flush()
    for membership in kept:
        memberships.transition(membership, "in_batch")
        coop = membership.coop
        batch.debits.append(
            Debit(
                membership=membership,
                coop=coop,
                amount_cents=membership.total_cents,
                end_to_end_id=f"OCCE85-{membership.school_year.start_year}-{coop.number:03d}-{batch.id}",
                mandate_ref=coop.debit_mandate_ref,
                iban=IBAN(coop.iban).compact,
            )
        )
    batch.count = len(batch.debits)
    batch.control_sum_cents = sum(debit.amount_cents for debit in batch.debits)
    session.flush()
    audit.record(
        session,
        "debit_batch.created",
        actor=by,
        entity="debit_batch",
        entity_id=batch.id,
        after={
            "collection_date": collection_date.isoformat(),
            "count": batch.count,
            "sum": batch.control_sum_cents,
            "excluded": len(excluded),
        },
        ip=ip,
    )
    return batch, excluded


def _remittance(debit: Debit) -> str:
    year = debit.membership.school_year
    return sepa_text(f"Adhesion OCCE {year.label} cooperative {debit.coop.login}", 140)


def build_xml(batch: DebitBatch, federation: Federation) -> bytes:
    """The pain.008 file of `batch`, validated against sepaxml's bundled XSD (fresh SepaDD every time)."""
    from sepaxml import SepaDD
    from sepaxml.validation import ValidationError

    config = {
        "name": sepa_text(federation.name, 70),
        "IBAN": IBAN(federation.iban).compact,
        "BIC": federation.bic or "",
        "batch": True,
        "creditor_id": federation.creditor_id,
        "currency": "EUR",
    }
    if batch.schema == "pain.008.001.08" and not federation.bic:
        config.pop("BIC")
    sdd = SepaDD(dict(config), schema=batch.schema, clean=False)
    # sepaxml 2.7.0 has no msg_id option: set ours (stable, unique) on the header it built.
    sdd._xml.find("CstmrDrctDbtInitn/GrpHdr/MsgId").text = batch.message_id
    for debit in batch.debits:
        if debit.status == "rejected":
            continue
        coop = debit.coop
        payment = {
            "name": sepa_text(coop.name, 70),
            "IBAN": debit.iban,
            "amount": debit.amount_cents,
            "type": "RCUR",
            "collection_date": batch.collection_date,
            "mandate_id": debit.mandate_ref,
            "mandate_date": coop.debit_mandate_signed_on,
            "description": _remittance(debit),
            "endtoend_id": debit.end_to_end_id,
        }
        if coop.bic:
            payment["BIC"] = coop.bic
        sdd.add_payment(dict(payment))
    try:
        return sdd.export(validate=True, pretty_print=True)
    except ValidationError as exc:
        raise DomainError(
            f"Le fichier SEPA n'est pas valide selon le schéma {batch.schema} : {exc.__cause__ or exc}"
        ) from None


def _csv_cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def build_csv(batch: DebitBatch) -> bytes:
    """The CSV companion (BANKING.md §2.3): `;`, UTF-8 with BOM, CRLF, decimal comma, dd/mm/yyyy."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            "Date d'échéance",
            "Séquence",
            "N° coopérative",
            "Débiteur",
            "IBAN",
            "BIC",
            "RUM",
            "Date signature mandat",
            "Référence de bout en bout",
            "Libellé",
            "Montant (EUR)",
        ]
    )
    for debit in batch.debits:
        if debit.status == "rejected":
            continue
        coop = debit.coop
        whole, cents = divmod(debit.amount_cents, 100)
        signed = coop.debit_mandate_signed_on
        writer.writerow(
            [
                batch.collection_date.strftime("%d/%m/%Y"),
                "RCUR",
                coop.login,
                _csv_cell(coop.name),
                debit.iban,
                coop.bic,
                debit.mandate_ref,
                signed.strftime("%d/%m/%Y") if signed else "",
                debit.end_to_end_id,
                _csv_cell(_remittance(debit)),
                f"{whole},{cents:02d}",
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def export_batch(session: Session, batch: DebitBatch, *, by: User | None, now: datetime, ip: str = "") -> DebitBatch:
    """Build and store both files once (draft -> exported); later calls keep the stored bytes."""
    if batch.status != "draft":
        return batch
    federation = session.scalar(sa.select(Federation))
    problems = creditor_problems(federation)
    if problems:
        raise DomainError("Export impossible : " + ", ".join(problems) + ".")
    xml = build_xml(batch, federation)
    csv_bytes = build_csv(batch)
    batch.xml_content, batch.xml_sha256 = xml, hashlib.sha256(xml).hexdigest()
    batch.csv_content, batch.csv_sha256 = csv_bytes, hashlib.sha256(csv_bytes).hexdigest()
    batch.status, batch.exported_at = "exported", now
    session.flush()
    audit.record(
        session,
        "debit_batch.exported",
        actor=by,
        entity="debit_batch",
        entity_id=batch.id,
        after={
            "schema": batch.schema,
            "xml_sha256": batch.xml_sha256,
            "count": batch.count,
            "sum": batch.control_sum_cents,
        },
        ip=ip,
    )
    return batch


def settle_batch(
    session: Session, batch: DebitBatch, *, by: User | None, now: datetime, post_to_ledgers: bool, ip: str = ""
) -> list[Membership]:
    """« Prélèvement effectué »: every pending debit is paid, its membership too; returns them (to mail)."""
    if batch.status != "exported":
        raise DomainError("Seul un prélèvement exporté (envoyé à la banque) peut être marqué effectué.")
    paid = []
    for debit in batch.debits:
        if debit.status != "pending":
            continue
        debit.status = "paid"
        memberships.record_debit_paid(session, debit.membership, by=by, ip=ip, now=now)
        if post_to_ledgers:
            post_to_ledger(session, debit, batch.collection_date, by=by)
        paid.append(debit.membership)
    batch.status, batch.settled_at = "settled", now
    session.flush()
    audit.record(
        session,
        "debit_batch.settled",
        actor=by,
        entity="debit_batch",
        entity_id=batch.id,
        after={"paid": len(paid), "posted_to_ledgers": post_to_ledgers},
        ip=ip,
    )
    return paid


def post_to_ledger(session: Session, debit: Debit, on: date, *, by: User | None) -> None:
    """Book the debit in the coop's cash-book (6281 cotisation / 61681 assurance), uncleared, once."""
    membership = debit.membership
    ledger = books.open_ledger(session, debit.coop, books.current_start_year(on))
    if not ledger.is_open:
        return
    piece = f"OCCE{membership.school_year.start_year % 100:02d}"
    if session.scalar(
        sa.select(sa.literal(1)).where(
            sa.exists().where(books.Entry.ledger_id == ledger.id, books.Entry.piece == piece)
        )
    ):
        return
    cotisation = membership.cotisation_cents or 0
    insurance = debit.amount_cents - cotisation
    splits = [books.Split(code, cents) for code, cents in (("6281", cotisation), ("61681", insurance)) if cents > 0]
    books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece=piece,
            date=on,
            label=f"Adhésion OCCE {membership.school_year.label} (prélèvement)",
            payment_mode="prelevement",
            kind="expense",
            treasury=books.Treasury(bank_out=debit.amount_cents),
            splits=splits,
        ),
        by=by,
    )


def reject_debit(
    session: Session, debit: Debit, *, reason: str, by: User | None, now: datetime, ip: str = ""
) -> Membership:
    """The bank returned one debit: it is rejected and so is the membership (it can go in a later run)."""
    if debit.status == "rejected":
        raise DomainError("Ce prélèvement est déjà marqué rejeté.")
    if debit.batch.status == "draft":
        raise DomainError("Ce prélèvement n'a pas encore été envoyé à la banque.")
    if not reason.strip():
        raise DomainError("Indiquez le motif du rejet.", field="reason")
    membership = debit.membership
    if membership.status == "paid":
        raise DomainError("Cette adhésion est déjà marquée réglée.")
    debit.status, debit.rejected_at, debit.reject_reason = "rejected", now, reason.strip()[:300]
    memberships.transition(membership, "rejected")
    session.flush()
    audit.record(
        session,
        "debit.rejected",
        actor=by,
        coop_id=debit.coop_id,
        entity="debit",
        entity_id=debit.id,
        after={"reason": debit.reject_reason},
        ip=ip,
    )
    return membership
