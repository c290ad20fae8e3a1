"""Membership (adhésion): headcounts, fee, engagement of the mandataire, payment, status moves.

Plain functions: the session, the acting user, the client address and the clock are passed in;
they flush, never commit. Amounts are integer cents; the property coefficient is in millionths
of a euro per euro (ppm), as `SchoolYear.property_rate_ppm` stores it.

Statuses and their moves live in `TRANSITIONS` and only `transition` changes a status:

    draft -> committed            engagement of the mandataire (`commit_membership`)
    committed -> in_batch         put in a direct-debit batch (debit path)
    in_batch -> paid              the debit was settled (`record_debit_paid`)
    in_batch -> rejected          the debit came back before settlement
    rejected -> in_batch          presented again in a later batch
    paid -> returned              the settled debit was returned or refunded (`record_debit_returned`)
    returned -> in_batch          presented again in a later batch
    committed | rejected | returned -> paid    a cheque was received (`record_cheque`)
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError, ValidationErrors
from app.models import Coop, Federation, Mandate, Membership, MembershipClass, SchoolYear, User, school_year_start

STATUS_LABELS = {
    "draft": "Brouillon",
    "committed": "Engagée",
    "in_batch": "Prélèvement en cours",
    "paid": "Réglée",
    "rejected": "Prélèvement rejeté",
    "returned": "Prélèvement retourné (à régler de nouveau)",
}
PAYMENT_LABELS = {"debit": "Prélèvement", "cheque": "Chèque"}

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"committed"}),
    "committed": frozenset({"in_batch", "paid"}),
    "in_batch": frozenset({"paid", "rejected"}),
    "rejected": frozenset({"in_batch", "paid"}),
    "paid": frozenset({"returned"}),
    "returned": frozenset({"in_batch", "paid"}),
}
# A membership whose debit came back (or that never had one) is paid directly only by cheque.
_CHEQUE_ONLY_FROM = frozenset({"committed", "rejected", "returned"})

# Upper bounds that catch typing slips (a class of 2 500 pupils) without refusing real schools.
MAX_CLASSES = 60
MAX_PUPILS_PER_CLASS = 999
MAX_TEACHERS_PER_CLASS = 20
MAX_ADULTS = 999
MAX_PROPERTY_CENTS = 100_000_000  # 1 000 000 €

DEFAULT_NO_DEBIT_BANKS = "La Banque Postale"
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone


@dataclass(frozen=True)
class Rates:
    """The fee rates of a school year, in cents (the coefficient in ppm)."""

    pupil_fee_cents: int
    adult_fee_cents: int
    insurance_fee_cents: int
    property_threshold_cents: int
    property_rate_ppm: int

    @classmethod
    def of_year(cls, year: SchoolYear) -> Rates:
        return cls(
            year.pupil_fee_cents,
            year.adult_fee_cents,
            year.insurance_fee_cents,
            year.property_threshold_cents,
            year.property_rate_ppm,
        )

    @classmethod
    def frozen(cls, membership: Membership) -> Rates:
        """The rates recorded at the engagement of `membership`."""
        return cls(
            membership.rate_pupil_cents or 0,
            membership.rate_adult_cents or 0,
            membership.rate_insurance_cents or 0,
            membership.rate_property_threshold_cents or 0,
            membership.rate_property_ppm or 0,
        )


@dataclass(frozen=True)
class ClassHeadcount:
    name: str
    level: str
    pupils: int
    teachers: int


@dataclass(frozen=True)
class Headcounts:
    """What a coop declares: its classes, the other insured adults and its durable property."""

    classes: tuple[ClassHeadcount, ...] = ()
    atsem: int = 0
    aesh: int = 0
    other_adults: int = 0
    property_value_cents: int = 0

    @property
    def pupils(self) -> int:
        return sum(c.pupils for c in self.classes)

    @property
    def teachers(self) -> int:
        return sum(c.teachers for c in self.classes)

    @property
    def other_adults_total(self) -> int:
        return self.atsem + self.aesh + self.other_adults

    @property
    def adults(self) -> int:
        """Teachers plus the other insured adults: each pays the adult cotisation."""
        return self.teachers + self.other_adults_total

    @property
    def insured(self) -> int:
        """Coopérateurs = insured members: every pupil and every adult declared."""
        return self.pupils + self.adults

    @classmethod
    def of(cls, membership: Membership) -> Headcounts:
        return cls(
            classes=tuple(ClassHeadcount(c.name, c.level, c.pupils, c.teachers) for c in membership.classes),
            atsem=membership.atsem_count,
            aesh=membership.aesh_count,
            other_adults=membership.other_adults_count,
            property_value_cents=membership.property_value_cents,
        )


@dataclass(frozen=True)
class FeeBreakdown:
    """The fee and its parts, in cents: cotisation (account 6281) and assurance (account 61681)."""

    pupils: int
    adults: int
    insured: int
    pupil_cotisation_cents: int
    adult_cotisation_cents: int
    insurance_cents: int  # per insured member
    property_excess_cents: int  # declared value above the threshold
    property_surcharge_cents: int
    rates: Rates = field(compare=False)

    @property
    def cotisation_cents(self) -> int:
        return self.pupil_cotisation_cents + self.adult_cotisation_cents

    @property
    def assurance_cents(self) -> int:
        return self.insurance_cents + self.property_surcharge_cents

    @property
    def total_cents(self) -> int:
        return self.cotisation_cents + self.assurance_cents


def property_surcharge(excess_cents: int, rate_ppm: int) -> int:
    """excess × coefficient, rounded half up to the cent (0,5 cent and above goes up).

    Integer arithmetic only: excess_cents × ppm is in millionths of a cent.
    """
    if excess_cents <= 0 or rate_ppm <= 0:
        return 0
    return (excess_cents * rate_ppm + 500_000) // 1_000_000


def compute_fee(rates: Rates, headcounts: Headcounts) -> FeeBreakdown:
    """The fee of `headcounts` at `rates`.

    cotisation = pupils × pupil rate + adults × adult rate (adults: teachers, ATSEM, AESH, others);
    assurance = insured × insurance rate + (declared property − threshold) × coefficient above the
    threshold, rounded half up to the cent. Raises DomainError when no pupil is declared (a
    membership with zero headcounts is refused) or a count is negative.
    """
    counts = [headcounts.atsem, headcounts.aesh, headcounts.other_adults, headcounts.property_value_cents]
    counts += [n for c in headcounts.classes for n in (c.pupils, c.teachers)]
    if any(n < 0 for n in counts):
        raise DomainError("Les effectifs et la valeur des biens ne peuvent pas être négatifs.")
    if headcounts.pupils == 0:
        raise DomainError(
            "Déclarez au moins une classe avec ses élèves : une adhésion sans élève n'est pas possible.",
            field="classes",
        )
    excess = max(headcounts.property_value_cents - rates.property_threshold_cents, 0)
    return FeeBreakdown(
        pupils=headcounts.pupils,
        adults=headcounts.adults,
        insured=headcounts.insured,
        pupil_cotisation_cents=headcounts.pupils * rates.pupil_fee_cents,
        adult_cotisation_cents=headcounts.adults * rates.adult_fee_cents,
        insurance_cents=headcounts.insured * rates.insurance_fee_cents,
        property_excess_cents=excess,
        property_surcharge_cents=property_surcharge(excess, rates.property_rate_ppm),
        rates=rates,
    )


def frozen_fee(membership: Membership) -> FeeBreakdown:
    """The fee recorded at the engagement (never recomputed from today's rates)."""
    if membership.total_cents is None:
        raise DomainError("Cette adhésion n'est pas encore engagée : son montant n'est pas arrêté.")
    rates = Rates.frozen(membership)
    pupils = membership.pupils_count or 0
    pupil_cotisation = pupils * rates.pupil_fee_cents
    return FeeBreakdown(
        pupils=pupils,
        adults=(membership.teachers_count or 0) + membership.other_adults_total,
        insured=membership.insured_count or 0,
        pupil_cotisation_cents=pupil_cotisation,
        adult_cotisation_cents=(membership.cotisation_cents or 0) - pupil_cotisation,
        insurance_cents=membership.insurance_cents or 0,
        property_excess_cents=max(membership.property_value_cents - rates.property_threshold_cents, 0),
        property_surcharge_cents=membership.property_surcharge_cents or 0,
        rates=rates,
    )


def check_headcounts(headcounts: Headcounts) -> None:
    """Refuse what cannot be declared, naming the faulty class: raises ValidationErrors.

    Every class has a name, at least one pupil and at least one teacher (OCCE insures a class as a
    whole, with its teacher); at least one class; bounds against typing slips.
    """
    errors: dict[str, list[str]] = {}
    if not headcounts.classes:
        errors["classes"] = ["Déclarez au moins une classe."]
    if len(headcounts.classes) > MAX_CLASSES:
        errors["classes"] = [f"Au plus {MAX_CLASSES} classes."]
    for index, row in enumerate(headcounts.classes):
        problems = []
        if not row.name.strip():
            problems.append("indiquez le nom de la classe")
        if not 1 <= row.pupils <= MAX_PUPILS_PER_CLASS:
            problems.append("le nombre d'élèves doit être compris entre 1 et 999 (supprimez une classe vide)")
        if not 1 <= row.teachers <= MAX_TEACHERS_PER_CLASS:
            problems.append(f"au moins un enseignant et au plus {MAX_TEACHERS_PER_CLASS}")
        if problems:
            label = row.name.strip() or f"n° {index + 1}"
            errors[f"classes-{index}"] = [f"Classe {label} : " + " ; ".join(problems) + "."]
    for name, value, label in (
        ("atsem", headcounts.atsem, "ATSEM"),
        ("aesh", headcounts.aesh, "AESH"),
        ("other_adults", headcounts.other_adults, "autres adultes"),
    ):
        if not 0 <= value <= MAX_ADULTS:
            errors[name] = [f"Le nombre d'{label} doit être compris entre 0 et {MAX_ADULTS}."]
    if not 0 <= headcounts.property_value_cents <= MAX_PROPERTY_CENTS:
        errors["property_value"] = ["La valeur des biens doit être comprise entre 0 et 1 000 000 €."]
    if errors:
        raise ValidationErrors(errors)


# --- Reading -----------------------------------------------------------------------------------


def year_of(session: Session, on: date) -> SchoolYear | None:
    """The school year containing `on`, if OCCE 85 has created it (with its rates)."""
    return session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == school_year_start(on)))


def membership_of(session: Session, coop: Coop, year: SchoolYear) -> Membership | None:
    return session.scalar(
        sa.select(Membership).where(Membership.coop_id == coop.id, Membership.school_year_id == year.id)
    )


def previous_membership(session: Session, coop: Coop, year: SchoolYear) -> Membership | None:
    """The coop's latest engaged membership before `year` (the one the portal prefills from)."""
    return session.scalar(
        sa.select(Membership)
        .join(SchoolYear, Membership.school_year_id == SchoolYear.id)
        .where(Membership.coop_id == coop.id, SchoolYear.start_year < year.start_year, Membership.status != "draft")
        .order_by(SchoolYear.start_year.desc())
        .limit(1)
    )


def prefill(session: Session, coop: Coop, year: SchoolYear) -> Headcounts:
    """What the step shows first: this year's draft if there is one, else last year's headcounts as
    the portal kept them (classes, other adults, property), else nothing. Writes nothing."""
    current = membership_of(session, coop, year)
    if current is not None:
        return Headcounts.of(current)
    previous = previous_membership(session, coop, year)
    return Headcounts.of(previous) if previous is not None else Headcounts()


# --- Changes -----------------------------------------------------------------------------------


def save_draft(
    session: Session, coop: Coop, year: SchoolYear, headcounts: Headcounts, *, by: User | None, ip: str = ""
) -> Membership:
    """Create or update the coop's draft for `year` with `headcounts` (classes replaced in order).

    Raises ValidationErrors for invalid headcounts and DomainError once the membership is engaged
    (its headcounts are frozen).
    """
    check_headcounts(headcounts)
    membership = membership_of(session, coop, year)
    if membership is None:
        membership = Membership(coop=coop, school_year=year, status="draft")
        session.add(membership)
    elif not membership.is_draft:
        raise DomainError(
            f"L'adhésion {year.label} est déjà engagée : ses effectifs ne peuvent plus être "
            "modifiés. Contactez l'OCCE 85 en cas d'erreur."
        )
    membership.classes.clear()
    session.flush()
    for position, row in enumerate(headcounts.classes):
        membership.classes.append(
            MembershipClass(
                position=position,
                name=row.name.strip(),
                level=row.level.strip(),
                pupils=row.pupils,
                teachers=row.teachers,
            )
        )
    membership.atsem_count = headcounts.atsem
    membership.aesh_count = headcounts.aesh
    membership.other_adults_count = headcounts.other_adults
    membership.property_value_cents = headcounts.property_value_cents
    session.flush()
    audit.record(
        session,
        "membership.draft_saved",
        actor=by,
        coop_id=coop.id,
        entity="membership",
        entity_id=membership.id,
        after={
            "classes": len(headcounts.classes),
            "pupils": headcounts.pupils,
            "teachers": headcounts.teachers,
            "other_adults": headcounts.other_adults_total,
            "property_value_cents": headcounts.property_value_cents,
        },
        ip=ip,
    )
    return membership


def transition(membership: Membership, to: str) -> None:
    """Move `membership` to status `to` if `TRANSITIONS` allows it; raises DomainError otherwise.

    A committed membership goes to `paid` directly only by cheque, and only the debit path enters a
    batch.
    """
    current = membership.status
    if to not in TRANSITIONS:
        raise DomainError(f"Statut d'adhésion inconnu : {to}.")
    if to not in TRANSITIONS.get(current, frozenset()):
        raise DomainError(
            f"Une adhésion « {STATUS_LABELS.get(current, current)} » ne peut pas passer à « {STATUS_LABELS[to]} »."
        )
    if current in _CHEQUE_ONLY_FROM and to == "paid" and membership.payment_method != "cheque":
        raise DomainError("Sans prélèvement, une adhésion engagée ne peut être réglée que par chèque.")
    if to == "in_batch" and membership.payment_method != "debit":
        raise DomainError("Cette adhésion se règle par chèque : elle ne peut pas entrer dans un prélèvement.")
    membership.status = to


def _normalise_bank(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def bank_takes_no_debit(bank_name: str, no_debit_banks: str) -> bool:
    """Is `bank_name` one of the banks listed in the setting (one per line or comma-separated)?

    Case, accents and punctuation are ignored and either name may contain the other, so that
    "BANQUE POSTALE" and "La Banque Postale - CCP" both match "La Banque Postale".
    """
    bank = _normalise_bank(bank_name or "")
    if not bank:
        return False
    for listed in re.split(r"[\n,;]+", no_debit_banks or ""):
        name = _normalise_bank(listed)
        if name and (f" {name} " in f" {bank} " or f" {bank} " in f" {name} "):
            return True
    return False


def no_debit_banks(session: Session) -> str:
    """The setting listing the banks without direct debit (the default when no settings row exists)."""
    federation = session.scalar(sa.select(Federation).limit(1))
    return federation.no_debit_banks if federation is not None else DEFAULT_NO_DEBIT_BANKS


def payment_method_for(session: Session, coop: Coop) -> str:
    """'cheque' when the coop's bank takes no direct debit, else 'debit'."""
    return "cheque" if bank_takes_no_debit(coop.bank_name, no_debit_banks(session)) else "debit"


def _new_reference(session: Session, coop: Coop, year: SchoolYear) -> str:
    for _ in range(10):
        suffix = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(6))
        reference = f"ADH-{year.start_year}-{coop.number:03d}-{suffix}"
        if session.scalar(sa.select(Membership.id).where(Membership.reference == reference)) is None:
            return reference
    raise RuntimeError("no free membership reference")  # pragma: no cover - 32^6 choices per coop-year


def commit_membership(
    session: Session, membership: Membership, mandate: Mandate | None, *, by: User | None, ip: str, now: datetime
) -> Membership:
    """Engagement du mandataire: freeze headcounts, rates and amounts; draft -> committed.

    Records the current mandataire's name, the time and the client address; chooses the payment
    method (cheque for banks without direct debit); gives the reference printed on the documents.
    Raises DomainError when there is no current mandataire, the membership is not a draft, or the
    headcounts are invalid (ValidationErrors).
    """
    if not membership.is_draft:
        raise DomainError(f"L'adhésion {membership.school_year.label} est déjà engagée.")
    if mandate is None:
        raise DomainError(
            "Aucun mandataire n'est enregistré pour la coopérative : l'engagement est impossible. Contactez l'OCCE 85."
        )
    headcounts = Headcounts.of(membership)
    check_headcounts(headcounts)
    year = membership.school_year
    rates = Rates.of_year(year)
    fee = compute_fee(rates, headcounts)
    # Everything read from the database is read first: a query while the row is half-frozen would
    # autoflush it and break the "committed is frozen" check constraint.
    mandataire_name = mandate.full_name[:200]
    payment_method = payment_method_for(session, membership.coop)
    reference = _new_reference(session, membership.coop, year)
    with session.no_autoflush:
        transition(membership, "committed")
        membership.pupils_count = headcounts.pupils
        membership.teachers_count = headcounts.teachers
        membership.insured_count = headcounts.insured
        membership.rate_pupil_cents = rates.pupil_fee_cents
        membership.rate_adult_cents = rates.adult_fee_cents
        membership.rate_insurance_cents = rates.insurance_fee_cents
        membership.rate_property_threshold_cents = rates.property_threshold_cents
        membership.rate_property_ppm = rates.property_rate_ppm
        membership.cotisation_cents = fee.cotisation_cents
        membership.insurance_cents = fee.insurance_cents
        membership.property_surcharge_cents = fee.property_surcharge_cents
        membership.total_cents = fee.total_cents
        membership.mandataire_name = mandataire_name
        membership.committed_at = now
        membership.committed_ip = (ip or "")[:64]
        membership.committed_by_id = by.id if by is not None else None
        membership.payment_method = payment_method
        membership.reference = reference
    session.flush()
    audit.record(
        session,
        "membership.committed",
        actor=by,
        coop_id=membership.coop_id,
        entity="membership",
        entity_id=membership.id,
        after={
            "reference": membership.reference,
            "mandataire": membership.mandataire_name,
            "insured": fee.insured,
            "cotisation_cents": fee.cotisation_cents,
            "assurance_cents": fee.assurance_cents,
            "total_cents": fee.total_cents,
            "payment_method": membership.payment_method,
        },
        ip=ip,
    )
    return membership


def _record_paid(session: Session, membership: Membership, *, by: User | None, ip: str, now: datetime) -> None:
    before = membership.status
    transition(membership, "paid")
    membership.paid_at = now
    session.flush()
    audit.record(
        session,
        "membership.paid",
        actor=by,
        coop_id=membership.coop_id,
        entity="membership",
        entity_id=membership.id,
        before={"status": before},
        after={"status": "paid", "payment_method": membership.payment_method, "total_cents": membership.total_cents},
        ip=ip,
    )


def record_cheque(
    session: Session, membership: Membership, *, by: User | None, ip: str = "", now: datetime
) -> Membership:
    """The OCCE 85 received the coop's cheque: committed (or rejected / returned debit) -> paid, by cheque.

    A coop meant to be debited may pay by cheque while it is not in a batch. Raises DomainError
    from any other status.
    """
    if membership.status not in _CHEQUE_ONLY_FROM:
        raise DomainError(
            f"Adhésion {membership}: un chèque ne peut être enregistré que pour une adhésion "
            f"engagée (statut actuel : {STATUS_LABELS.get(membership.status, membership.status)})."
        )
    membership.payment_method = "cheque"
    _record_paid(session, membership, by=by, ip=ip, now=now)
    return membership


def record_debit_paid(
    session: Session, membership: Membership, *, by: User | None, ip: str = "", now: datetime
) -> Membership:
    """The direct debit of `membership` was settled: in_batch -> paid. Raises DomainError otherwise."""
    if membership.payment_method != "debit":
        raise DomainError(f"Adhésion {membership}: elle ne se règle pas par prélèvement.")
    _record_paid(session, membership, by=by, ip=ip, now=now)
    return membership


def record_debit_returned(session: Session, membership: Membership, *, by: User | None, ip: str = "") -> Membership:
    """The settled debit of `membership` came back after settlement: paid -> returned (to be paid again,
    by a later debit or by cheque). Raises DomainError from any other status."""
    transition(membership, "returned")
    membership.paid_at = None
    session.flush()
    audit.record(
        session,
        "membership.returned",
        actor=by,
        coop_id=membership.coop_id,
        entity="membership",
        entity_id=membership.id,
        before={"status": "paid"},
        after={"status": "returned"},
        ip=ip,
    )
    return membership


def headcounts_from_rows(
    rows: Iterable[tuple[str, str, int, int]], *, atsem: int, aesh: int, other_adults: int, property_value_cents: int
) -> Headcounts:
    """Headcounts from plain values (form rows, demo data)."""
    return Headcounts(
        classes=tuple(ClassHeadcount(name, level, pupils, teachers) for name, level, pupils, teachers in rows),
        atsem=atsem,
        aesh=aesh,
        other_adults=other_adults,
        property_value_cents=property_value_cents,
    )


def past_memberships(session: Session, coop: Coop, year: SchoolYear) -> Sequence[Membership]:
    """The coop's engaged memberships of earlier years, newest first (for their documents)."""
    return session.scalars(
        sa.select(Membership)
        .join(SchoolYear, Membership.school_year_id == SchoolYear.id)
        .where(Membership.coop_id == coop.id, SchoolYear.start_year < year.start_year, Membership.status != "draft")
        .order_by(SchoolYear.start_year.desc())
    ).all()
