"""Direct debits of membership fees: runs, SEPA pain.008 and CSV files, the whole life of a debit.

- Calendar: a collection date is a TARGET business day (weekends and the ECB's closing days from the
  `holidays` library), at least the lead time in business days after the day of submission, and at
  least the pre-notification delay (calendar days) after the run is created, unless staff state that
  a shorter delay was agreed.
- Mandates: a RUM of the SEPA set (35 characters, no space, one coop per RUM); a signature date
  neither in the future nor after the collection; lapsed after 36 months without a collection
  presented (EPC rulebook); the first debit after a change of IBAN or RUM carries the amendment.
- Text: names and references are transliterated (anyascii) before the EPC Latin subset is enforced
  and lengths are cut.
- Files: sepaxml on a fresh `SepaDD` per file (its `export()` is not idempotent), `clean=False`, one
  collection date and sequence RCUR, validated against the XSD bundled with sepaxml; a run is split
  into files of at most the configured number of debits, each with its own MsgId, sums and CSV. The
  exported bytes are stored with their hash: a second download gives the same file.
- Life of a debit: pending (in the run, then in its file) -> paid at settlement; rejected before
  settlement; returned or refunded after it (membership back to « returned », reversing entry in the
  coop's cash-book when the debit had been booked there). Each with its ISO 20022 reason code. The
  bank's pain.002 and camt.054 files are matched by EndToEndId, shown, then applied once.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import NamedTuple

import sqlalchemy as sa
from anyascii import anyascii
from holidays import financial_holidays
from lxml import etree
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, contains_eager, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from stdnum.eu import at_02

from app import audit
from app import ledger as books
from app import membership as memberships
from app.errors import DomainError
from app.formats import euros
from app.models import (
    Coop,
    Debit,
    DebitBatch,
    DebitFile,
    DebitReport,
    Federation,
    Membership,
    SchoolYear,
    User,
    coop_login,
    school_year_label,
)
from app.models.base import utcnow

SCHEMAS = ("pain.008.001.08", "pain.008.001.02")
_SEPA_ID = re.compile(r"[A-Za-z0-9/\-?:().,'+]{1,35}")
_NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")
MANDATE_LAPSE_YEARS = 3  # 36 months without a collection presented (EPC SDD Core rulebook)
DEFAULT_NOTICE_DAYS = 14
DEFAULT_LEAD_DAYS = 5
_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

# ISO 20022 reason codes of R-transactions (EPC guidance on reason codes), with what they mean for a coop.
REASON_LABELS = {
    "AC01": "IBAN incorrect",
    "AC04": "compte clôturé",
    "AC06": "compte bloqué (ou bloqué aux prélèvements)",
    "AC13": "type de compte du débiteur non valable",
    "AG01": "opération interdite sur ce compte",
    "AG02": "code d'opération invalide",
    "AM04": "provision insuffisante",
    "AM05": "prélèvement en double",
    "BE05": "créancier non reconnu",
    "CNOR": "banque du créancier non joignable",
    "DNOR": "banque du débiteur non joignable",
    "FF01": "format de fichier invalide",
    "MD01": "pas de mandat valable (mandat absent ou révoqué)",
    "MD02": "données du mandat manquantes ou erronées",
    "MD06": "remboursement demandé par la coopérative (débiteur)",
    "MD07": "titulaire du compte décédé",
    "MS02": "refus du débiteur (motif non communiqué)",
    "MS03": "refus de la banque (motif non communiqué)",
    "RC01": "BIC incorrect",
    "RR01": "identification du compte du débiteur manquante (raison réglementaire)",
    "RR02": "nom ou adresse du débiteur manquant (raison réglementaire)",
    "RR03": "nom ou adresse du créancier manquant (raison réglementaire)",
    "RR04": "raison réglementaire",
    "SL01": "service particulier de la banque du débiteur (prélèvements bloqués ou filtrés)",
}
REFUND_CODES = frozenset({"MD06"})  # the debtor asked for its money back: a refund, not a return
DEBIT_STATUS_LABELS = {
    "pending": "en attente",
    "in_file": "dans le fichier envoyé à la banque",
    "paid": "réglé",
    "rejected": "rejeté avant règlement",
    "returned": "retourné après règlement",
    "refunded": "remboursé à la coopérative après règlement",
}


def reason_label(code: str) -> str:
    """« AM04 : provision insuffisante » (an unknown code is shown as it is)."""
    code = (code or "").strip().upper()
    return f"{code} : {REASON_LABELS[code]}" if code in REASON_LABELS else code


def status_label(debit: Debit) -> str:
    """The French label of a debit's state (pending debits of an exported run are « in the file »)."""
    status = debit.status
    if status == "pending" and debit.batch.status != "draft":
        status = "in_file"
    label = DEBIT_STATUS_LABELS[status]
    if debit.reason_code or debit.reject_reason:
        label += " (" + (reason_label(debit.reason_code) or debit.reject_reason) + ")"
    return label


# -- text ------------------------------------------------------------------------------------------


def sepa_text(text: str, max_length: int) -> str:
    """Free text in the EPC Latin subset: transliterated (Æ -> AE, ß -> ss, № -> No), & -> +, any other
    character outside the set -> space, spaces collapsed, then cut to `max_length`."""
    prepared = (text or "").replace("&", "+").replace("°", " ").replace("_", " ")
    ascii_text = anyascii(prepared)
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


# -- TARGET calendar -------------------------------------------------------------------------------

_CLOSING_LABELS = {
    "New Year's Day": "le 1er janvier",
    "Good Friday": "le Vendredi saint",
    "Easter Monday": "le lundi de Pâques",
    "Labour Day": "le 1er mai",
    "Christmas Day": "Noël (25 décembre)",
    "Christmas Holiday": "le 26 décembre",
}


@functools.lru_cache(maxsize=32)
def _target_closings(year: int) -> dict[date, str]:
    return dict(financial_holidays("ECB", years=year).items())


def target_closing(day: date) -> str | None:
    """Why the TARGET payment system is closed on `day` (French), or None on a business day."""
    if day.weekday() >= 5:
        return f"un {_WEEKDAYS[day.weekday()]}"
    name = _target_closings(day.year).get(day)
    if name is None:
        return None
    return "un jour de fermeture du système de paiement européen TARGET (" + _CLOSING_LABELS.get(name, name) + ")"


def is_target_day(day: date) -> bool:
    """A day on which banks settle SEPA debits: Monday-Friday, not a TARGET closing day."""
    return target_closing(day) is None


def next_target_day(day: date) -> date:
    """`day` itself when it is a TARGET business day, else the next one."""
    while not is_target_day(day):
        day += timedelta(days=1)
    return day


def add_target_days(day: date, count: int) -> date:
    """The `count`-th TARGET business day after `day`."""
    left = count
    while left > 0:
        day += timedelta(days=1)
        if is_target_day(day):
            left -= 1
    return day


def earliest_collection_date(today: date, lead_days: int, notice_days: int = 0) -> date:
    """The first collection date the bank and the rulebook accept for a run created `today`: a TARGET
    business day, `lead_days` business days after today, `notice_days` calendar days after today."""
    return max(add_target_days(today, lead_days), next_target_day(today + timedelta(days=notice_days)))


def _long_date(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day:%d/%m/%Y}"


def check_collection_date(
    collection_date: date, *, today: date, lead_days: int, notice_days: int, shorter_notice_agreed: bool = False
) -> None:
    """Raise DomainError (French, on `collection_date`) when the bank or the rulebook would refuse the date.

    The message names the rule and proposes the next date that passes every rule.
    """
    notice = 0 if shorter_notice_agreed else notice_days
    earliest = earliest_collection_date(today, lead_days, notice)
    closing = target_closing(collection_date)
    if closing:
        proposal = max(next_target_day(collection_date), earliest)
        raise DomainError(
            f"Le {collection_date:%d/%m/%Y} est {closing} : les banques ne prélèvent que les jours ouvrés "
            f"TARGET. Prochaine date possible : le {_long_date(proposal)}.",
            field="collection_date",
        )
    if collection_date < add_target_days(today, lead_days):
        raise DomainError(
            f"La date d'échéance doit être au plus tôt le {add_target_days(today, lead_days):%d/%m/%Y} "
            f"({lead_days} jours ouvrés de délai pour la banque). Prochaine date possible : le "
            f"{_long_date(earliest)}.",
            field="collection_date",
        )
    if collection_date < today + timedelta(days=notice):
        raise DomainError(
            f"Les coopératives doivent être prévenues {notice_days} jours avant le prélèvement : choisissez "
            f"le {_long_date(earliest)} au plus tôt, ou cochez que le délai plus court convenu avec elles "
            "s'applique.",
            field="collection_date",
        )


# -- mandates --------------------------------------------------------------------------------------


def check_mandate_ref(value: str) -> str:
    """Validate a RUM where it is typed (coop form, import): returned stripped; ValueError (French) when
    it is not 1-35 characters of the SEPA set without space. An empty value is returned as ""."""
    ref = (value or "").strip()
    if ref and not is_sepa_id(ref):
        raise ValueError(
            "RUM invalide : 35 caractères au plus, lettres sans accent, chiffres et / - ? : ( ) . , ' + "
            "seulement, sans espace."
        )
    return ref


def mandate_ref_taken(session: Session, ref: str, coop_id: int | None) -> Coop | None:
    """The other coop already holding RUM `ref` (a RUM is unique for the creditor), or None."""
    if not ref:
        return None
    query = sa.select(Coop).where(Coop.debit_mandate_ref == ref)
    if coop_id is not None:
        query = query.where(Coop.id != coop_id)
    return session.scalars(query.limit(1)).first()


def check_mandate_signed_on(signed_on: date | None, *, today: date) -> date | None:
    """Validate a mandate's signature date where it is typed: ValueError (French) when in the future."""
    if signed_on is not None and signed_on > today:
        raise ValueError(f"Le mandat ne peut pas être signé dans le futur (aujourd'hui : {today:%d/%m/%Y}).")
    return signed_on


def _plus_lapse(day: date) -> date:
    try:
        return day.replace(year=day.year + MANDATE_LAPSE_YEARS)
    except ValueError:  # 29 February
        return day.replace(year=day.year + MANDATE_LAPSE_YEARS, day=28)


def _among(session: Session, column, values: Iterable[int]):
    """`column IN values`; on PostgreSQL one array parameter (`= ANY`): psycopg rewrites a statement's
    placeholders in Python and caches short statements only, so a thousand-placeholder IN costs tens of
    milliseconds at every call."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.literal(values, ARRAY(sa.Integer)))
    return column.in_(values)


def last_presentations(session: Session, coop_ids: Iterable[int] | None = None) -> dict[int, date]:
    """coop id -> date of its last collection presented to the bank (in an exported run, whatever came of it)."""
    query = (
        sa.select(Debit.coop_id, sa.func.max(DebitBatch.collection_date))
        .join(DebitBatch, Debit.batch_id == DebitBatch.id)
        .where(DebitBatch.status != "draft")
        .group_by(Debit.coop_id)
    )
    if coop_ids is not None:
        query = query.where(_among(session, Debit.coop_id, coop_ids))
    return {coop_id: last for coop_id, last in session.execute(query)}


def mandate_lapse_date(coop: Coop | WaitingCoop, last_presented: date | None) -> date | None:
    """The day the coop's mandate lapses: 36 months after its last collection presented (or after its
    signature when it was never used since); None without a signature date."""
    if coop.debit_mandate_signed_on is None:
        return None
    start = coop.debit_mandate_signed_on
    if last_presented is not None and last_presented > start:
        start = last_presented
    return _plus_lapse(start)


def shared_mandate_refs(session: Session) -> set[str]:
    """RUMs held by more than one coop (a RUM must be unique for the creditor)."""
    return set(
        session.scalars(
            sa.select(Coop.debit_mandate_ref)
            .where(Coop.debit_mandate_ref != "")
            .group_by(Coop.debit_mandate_ref)
            .having(sa.func.count() > 1)
        )
    )


@dataclass
class MandateFacts:
    """What the mandate checks read from the database, loaded once for a whole list of coops."""

    last_presented: dict[int, date] = field(default_factory=dict)
    shared_refs: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session) -> MandateFacts:
        return cls(last_presentations(session), shared_mandate_refs(session))


def mandate_problems(
    coop: Coop | WaitingCoop, facts: MandateFacts, *, collection_date: date | None, today: date
) -> list[str]:
    """Why the coop's mandate cannot carry a debit collected on `collection_date` (French); empty if it can."""
    problems = []
    ref = coop.debit_mandate_ref
    if not ref:
        problems.append("référence unique de mandat (RUM) manquante")
    elif not is_sepa_id(ref):
        problems.append("RUM invalide (35 caractères au plus : lettres, chiffres et / - ? : ( ) . , ' + sans espace)")
    elif ref in facts.shared_refs:
        problems.append("RUM déjà utilisée par une autre coopérative (chaque mandat a sa propre référence)")
    signed = coop.debit_mandate_signed_on
    if signed is None:
        problems.append("date de signature du mandat manquante")
        return problems
    if signed > today:
        problems.append(f"mandat signé le {signed:%d/%m/%Y}, date dans le futur")
    elif collection_date is not None and signed > collection_date:
        problems.append(f"mandat signé le {signed:%d/%m/%Y}, après la date d'échéance")
    lapse = mandate_lapse_date(coop, facts.last_presented.get(coop.id))
    if lapse is not None and (collection_date or today) >= lapse:
        problems.append(
            f"mandat caduc depuis le {lapse:%d/%m/%Y} (aucun prélèvement pendant 36 mois) : un nouveau mandat "
            "signé par la coopérative est nécessaire"
        )
    return problems


def mandate_notice(session: Session, coop: Coop, *, today: date) -> str:
    """What the coop's page says about its direct-debit mandate when it needs attention (French), or ""."""
    if not coop.debit_mandate_ref and coop.debit_mandate_signed_on is None:
        return ""
    facts = MandateFacts(last_presentations(session, [coop.id]), set())
    if mandate_ref_taken(session, coop.debit_mandate_ref, coop.id) is not None:
        facts.shared_refs.add(coop.debit_mandate_ref)
    problems = mandate_problems(coop, facts, collection_date=None, today=today)
    return ("Mandat de prélèvement : " + " ; ".join(problems) + ".") if problems else ""


@functools.lru_cache(maxsize=16384)
def _iban_is_valid(iban: str) -> bool:
    """Whether `iban` passes the country's checks; remembered, as the run page checks a thousand coops per view."""
    try:
        IBAN(iban, validate_bban=True)
    except SchwiftyException:
        return False
    return True


@functools.lru_cache(maxsize=16384)
def _compact_iban(iban: str) -> str:
    """The IBAN as the bank files carry it (no space, upper case); remembered like `_iban_is_valid`."""
    return IBAN(iban).compact


def debit_problems(
    membership: Membership | WaitingMembership, facts: MandateFacts, *, collection_date: date | None, today: date
) -> list[str]:
    """Why a membership cannot be debited on `collection_date` (French, for the staff list); empty when it can."""
    coop = membership.coop
    problems = []
    if membership.status not in DEBITABLE_STATUSES:
        problems.append(f"adhésion au statut « {memberships.STATUS_LABELS.get(membership.status, membership.status)} »")
    if membership.payment_method != "debit":
        problems.append("se règle par chèque")
    if not membership.total_cents or membership.total_cents <= 0:
        problems.append("montant nul")
    if not _iban_is_valid(coop.iban or ""):
        problems.append("IBAN absent ou invalide")
    problems.extend(mandate_problems(coop, facts, collection_date=collection_date, today=today))
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


# Memberships waiting for a debit: committed, or rejected / returned and presented again.
DEBITABLE_STATUSES = ("committed", "rejected", "returned")


def eligible_memberships(session: Session) -> list[Membership]:
    """Memberships waiting for a debit (committed, or rejected / returned to present again), paying by debit."""
    return list(
        session.scalars(
            sa.select(Membership)
            .join(Membership.coop)
            .where(Membership.status.in_(DEBITABLE_STATUSES), Membership.payment_method == "debit")
            .options(contains_eager(Membership.coop), joinedload(Membership.school_year))
            .order_by(Coop.number)
        )
    )


class WaitingCoop(NamedTuple):
    """What the run page and the mandate checks read of a coop (a plain row, not an ORM object; a tuple,
    as the run page builds ten thousand of them per view)."""

    id: int
    number: int
    name: str
    iban: str
    debit_mandate_ref: str
    debit_mandate_signed_on: date | None

    @property
    def login(self) -> str:
        return coop_login(self.number)


class WaitingMembership(NamedTuple):
    """One line of the run page: a membership waiting for a debit, and why it cannot be debited (if so)."""

    id: int
    status: str
    payment_method: str
    total_cents: int | None
    coop: WaitingCoop
    year_label: str
    problems: tuple[str, ...] = ()

    @property
    def amount(self) -> str:
        return euros(self.total_cents)


def _waiting_rows(session: Session, membership_ids: Sequence[int] | None):
    """Plain rows of the memberships waiting for a debit (`membership_ids` None), or of the given ones
    whatever their status, with their coop and school year: one query, no ORM object."""
    query = (
        sa.select(
            Membership.id,
            Membership.status,
            Membership.payment_method,
            Membership.total_cents,
            Membership.version,
            SchoolYear.start_year,
            Coop.id.label("coop_id"),
            Coop.number,
            Coop.name,
            Coop.iban,
            Coop.debit_mandate_ref,
            Coop.debit_mandate_signed_on,
        )
        .join(Coop, Coop.id == Membership.coop_id)
        .join(SchoolYear, SchoolYear.id == Membership.school_year_id)
        .order_by(Coop.number, Membership.id)
    )
    if membership_ids is None:
        query = query.where(Membership.status.in_(DEBITABLE_STATUSES), Membership.payment_method == "debit")
    else:
        query = query.where(_among(session, Membership.id, membership_ids))
    return session.execute(query)


def _waiting(rows, facts: MandateFacts, *, collection_date: date | None, today: date):
    """(membership, version) for each row, the membership with its problems at `collection_date`."""
    labels: dict[int, str] = {}
    for id_, status, method, total, version, start_year, coop_id, number, name, iban, ref, signed in rows:
        label = labels.get(start_year) or labels.setdefault(start_year, school_year_label(start_year))
        coop = WaitingCoop(coop_id, number, name, iban or "", ref or "", signed)
        membership = WaitingMembership(id_, status, method, total, coop, label)
        problems = debit_problems(membership, facts, collection_date=collection_date, today=today)
        yield (membership._replace(problems=tuple(problems)) if problems else membership), version


def waiting_memberships(
    session: Session, facts: MandateFacts, *, today: date, collection_date: date | None = None
) -> list[WaitingMembership]:
    """The memberships of `eligible_memberships`, as plain rows with their problems (French) for a debit
    collected on `collection_date`, in one query: the run page lists thousands of coops, and reads neither
    ORM objects nor one row per coop."""
    rows = _waiting_rows(session, None)
    return [membership for membership, _ in _waiting(rows, facts, collection_date=collection_date, today=today)]


@dataclass(frozen=True)
class RunPreview:
    """What the run page shows before a run is created: the memberships that will be debited, those that
    cannot be (with their problems) and those staff set aside, with the run's count and total."""

    included: list[WaitingMembership]
    problems: list[WaitingMembership]
    set_aside: list[WaitingMembership]

    @property
    def count(self) -> int:
        return len(self.included)

    @property
    def total_cents(self) -> int:
        return sum(membership.total_cents or 0 for membership in self.included)


def run_preview(
    session: Session, *, today: date, collection_date: date | None, set_aside: Iterable[int] = ()
) -> RunPreview:
    """Split the memberships waiting for a debit into the run to come (every one that can be debited on
    `collection_date`, but those whose id is in `set_aside`), the ones that cannot be and the ones set aside."""
    aside = set(set_aside)
    included, problems, excluded = [], [], []
    for membership in waiting_memberships(
        session, MandateFacts.load(session), today=today, collection_date=collection_date
    ):
        if membership.problems:
            problems.append(membership)
        elif membership.id in aside:
            excluded.append(membership)
        else:
            included.append(membership)
    return RunPreview(included, problems, excluded)


def _last_settled_debits(session: Session, coop_ids: Iterable[int]) -> dict[int, Debit]:
    """coop id -> its last settled debit (paid, returned or refunded), for every coop of a run in one query."""
    ranked = (
        sa.select(
            Debit.id,
            sa.func.row_number()
            .over(partition_by=Debit.coop_id, order_by=(DebitBatch.collection_date.desc(), Debit.id.desc()))
            .label("rank"),
        )
        .join(DebitBatch, Debit.batch_id == DebitBatch.id)
        .where(_among(session, Debit.coop_id, coop_ids), Debit.status.in_(("paid", "returned", "refunded")))
        .subquery()
    )
    rows = session.scalars(sa.select(Debit).join(ranked, ranked.c.id == Debit.id).where(ranked.c.rank == 1))
    return {debit.coop_id: debit for debit in rows}


def _amendment(previous: Debit | None, coop: Coop, iban: str) -> tuple[str, str]:
    """(original RUM, original IBAN) when the coop's mandate changed since its last settled debit, else ("", "")."""
    if previous is None:
        return "", ""
    return (
        previous.mandate_ref if previous.mandate_ref != coop.debit_mandate_ref else "",
        previous.iban if previous.iban != iban else "",
    )


@dataclass(frozen=True)
class Exclusion:
    coop: Coop | WaitingCoop
    membership: Membership | WaitingMembership | None
    reasons: tuple[str, ...]


def federation_settings(session: Session) -> Federation | None:
    return session.scalar(sa.select(Federation).limit(1))


def earliest_for(federation: Federation | None, today: date) -> date:
    """The collection date the run form proposes: the first one every rule accepts."""
    lead = federation.debit_lead_days if federation else DEFAULT_LEAD_DAYS
    notice = federation.debit_notice_days if federation else DEFAULT_NOTICE_DAYS
    return earliest_collection_date(today, lead, notice)


def _move_to_batch(session: Session, kept: Sequence[tuple[WaitingMembership, int]]) -> None:
    """Put every kept membership « en prélèvement » in one UPDATE (not one per membership), keeping the
    optimistic check: a membership changed meanwhile (other version) fails the run like a normal flush.
    Each move is first checked by `app.membership.transition`, the one place its rules live."""
    versions = {}
    for membership, version in kept:
        memberships.transition(
            SimpleNamespace(status=membership.status, payment_method=membership.payment_method), "in_batch"
        )
        versions[membership.id] = version
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":  # two array parameters, not 2 per membership
        pairs = sa.select(
            sa.func.unnest(sa.literal(list(versions), ARRAY(sa.Integer))),
            sa.func.unnest(sa.literal(list(versions.values()), ARRAY(sa.Integer))),
        )
        checked = sa.tuple_(Membership.id, Membership.version).in_(pairs)
    else:
        checked = sa.tuple_(Membership.id, Membership.version).in_(list(versions.items()))
    result = session.execute(
        sa.update(Membership)
        .where(checked)
        .values(status="in_batch", version=Membership.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(versions):
        raise StaleDataError("Une adhésion a été modifiée entre-temps.")
    for obj in list(session.identity_map.values()):  # memberships the caller already holds: as now stored
        if isinstance(obj, Membership) and obj.id in versions:
            set_committed_value(obj, "status", "in_batch")
            set_committed_value(obj, "version", versions[obj.id] + 1)
            set_committed_value(obj, "updated_at", now)


def _who(memberships_: Iterable[WaitingMembership]) -> str:
    return ", ".join(f"{m.coop.login} ({', '.join(m.problems)})" for m in memberships_)


def create_batch(
    session: Session,
    membership_ids: Sequence[int] | None,
    collection_date: date,
    *,
    today: date,
    by: User | None,
    shorter_notice_agreed: bool = False,
    ip: str = "",
    set_aside: Iterable[int] = (),
    expected: tuple[int, int] | None = None,
) -> tuple[DebitBatch | None, list[Exclusion]]:
    """A draft run of the chosen memberships that pass the checks; the others are returned with reasons.

    `membership_ids` None chooses every membership waiting for a debit (`waiting_memberships`) but those
    in `set_aside`. `expected` is the (count, total in cents) staff confirmed on the run page: DomainError
    when the run would differ (a membership committed or changed meanwhile, a mandate that cannot carry
    a debit on the date chosen), so nobody is debited without having been shown.

    Raises DomainError (on `collection_date`) when the date breaks the TARGET calendar, the bank's
    lead time or the pre-notification delay (unless `shorter_notice_agreed`). The caller sends the
    pre-notification of every debit of the run (`app.web.notifications.debit_prenotifications`).
    The memberships are read as plain rows and the debits written in one INSERT: `batch.debits` is
    loaded on first use.
    """
    federation = federation_settings(session)
    problems = creditor_problems(federation)
    if problems:
        raise DomainError("Impossible de préparer un prélèvement : " + ", ".join(problems) + ".")
    check_collection_date(
        collection_date,
        today=today,
        lead_days=federation.debit_lead_days,
        notice_days=federation.debit_notice_days,
        shorter_notice_agreed=shorter_notice_agreed,
    )
    facts = MandateFacts.load(session)
    aside = set(set_aside)
    rows = _waiting_rows(session, membership_ids)
    excluded: list[Exclusion] = []
    kept: list[tuple[WaitingMembership, int]] = []
    set_aside_count = 0
    for membership, version in _waiting(rows, facts, collection_date=collection_date, today=today):
        if membership.problems:
            excluded.append(Exclusion(membership.coop, membership, membership.problems))
        elif membership.id in aside:
            set_aside_count += 1
        else:
            kept.append((membership, version))
    if expected is not None:
        count, total = len(kept), sum(membership.total_cents for membership, _ in kept)
        if (count, total) != tuple(expected):
            message = (
                f"La liste a changé depuis son affichage : le prélèvement compterait {count} adhésion(s) pour "
                f"{euros(total)}, et non {expected[0]} pour {euros(expected[1])}."
            )
            if excluded and membership_ids is None:
                message += " Ne peuvent pas être prélevées au " + f"{collection_date:%d/%m/%Y} : {_who(excluded[:20])}"
                message += " et d'autres." if len(excluded) > 20 else "."
            raise DomainError(message + " Vérifiez la liste mise à jour avant de créer le prélèvement.")
    if not kept:
        return None, excluded
    stamp = collection_date.strftime("%Y%m%d")
    sequence = (session.scalar(sa.select(sa.func.max(DebitBatch.id))) or 0) + 1
    batch = DebitBatch(
        collection_date=collection_date,
        schema=federation.sepa_schema,
        message_id=f"OCCE85-SDD-{stamp}-{sequence:04d}",
        created_by_id=by.id if by else None,
        shorter_notice_agreed=shorter_notice_agreed,
        count=len(kept),
        control_sum_cents=sum(membership.total_cents for membership, _ in kept),
    )
    session.add(batch)
    session.flush()
    previous = _last_settled_debits(session, [membership.coop.id for membership, _ in kept])
    _move_to_batch(session, kept)
    rows = []
    for membership, _ in kept:
        coop = membership.coop
        iban = _compact_iban(coop.iban)
        original_ref, original_iban = _amendment(previous.get(coop.id), coop, iban)
        rows.append(
            {
                "batch_id": batch.id,
                "membership_id": membership.id,
                "coop_id": coop.id,
                "amount_cents": membership.total_cents,
                "end_to_end_id": f"OCCE85-{membership.year_label[:4]}-{coop.number:03d}-{batch.id}",
                "mandate_ref": coop.debit_mandate_ref,
                "iban": iban,
                "original_mandate_ref": original_ref,
                "original_iban": original_iban,
            }
        )
    # One INSERT for the whole run, not a unit-of-work flush of thousands of objects; the debits are not
    # read back (`batch.debits` loads them when asked for).
    session.execute(sa.insert(Debit.__table__), rows)  # executemany: one pipeline on PostgreSQL
    session.expire(batch, ["debits"])
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
            "set_aside": set_aside_count,
            "shorter_notice_agreed": shorter_notice_agreed,
        },
        ip=ip,
    )
    return batch, excluded


# -- files -----------------------------------------------------------------------------------------


def _remittance(debit: Debit) -> str:
    year = debit.membership.school_year
    return sepa_text(f"Adhesion OCCE {year.label} cooperative {debit.coop.login}", 140)


def _same_bank(old_iban: str, new_iban: str) -> bool:
    try:
        return IBAN(old_iban).bank_code == IBAN(new_iban).bank_code and old_iban[:2] == new_iban[:2]
    except SchwiftyException:
        return False


def _add_amendments(root: etree._Element, debits: Sequence[Debit]) -> None:
    """Mark the debits that follow a mandate change: AmdmntInd true and the original values (EPC AT-24)."""
    ns = root.nsmap[None]

    def element(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, f"{{{ns}}}{tag}")
        child.text = text
        return child

    amended = {debit.end_to_end_id: debit for debit in debits if debit.original_iban or debit.original_mandate_ref}
    for transaction in root.iter(f"{{{ns}}}DrctDbtTxInf"):
        debit = amended.get(transaction.findtext(f"{{{ns}}}PmtId/{{{ns}}}EndToEndId"))
        if debit is None:
            continue
        mandate = transaction.find(f"{{{ns}}}DrctDbtTx/{{{ns}}}MndtRltdInf")
        signed = mandate.find(f"{{{ns}}}DtOfSgntr")
        indicator = etree.Element(f"{{{ns}}}AmdmntInd")
        indicator.text = "true"
        details = etree.Element(f"{{{ns}}}AmdmntInfDtls")
        if debit.original_mandate_ref:
            element(details, "OrgnlMndtId", debit.original_mandate_ref)
        if debit.original_iban and _same_bank(debit.original_iban, debit.iban):
            element(element(element(details, "OrgnlDbtrAcct"), "Id"), "IBAN", debit.original_iban)
        elif debit.original_iban:  # moved to another bank: "same mandate, new debtor agent"
            agent = element(element(details, "OrgnlDbtrAgt"), "FinInstnId")
            element(element(agent, "Othr"), "Id", "SMNDA")
        signed.addnext(indicator)
        indicator.addnext(details)


def build_xml(debits: Sequence[Debit], batch: DebitBatch, federation: Federation, message_id: str) -> bytes:
    """The pain.008 file of `debits` (one file of `batch`), validated against sepaxml's bundled XSD."""
    from sepaxml import SepaDD
    from sepaxml.validation import ValidationError, try_valid_xml

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
    sdd._xml.find("CstmrDrctDbtInitn/GrpHdr/MsgId").text = message_id
    for debit in debits:
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
    root = etree.fromstring(sdd.export(validate=False), parser=_safe_parser())
    _add_amendments(root, debits)
    content = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    try:
        try_valid_xml(content, batch.schema)
    except ValidationError as exc:
        raise DomainError(
            f"Le fichier SEPA n'est pas valide selon le schéma {batch.schema} : {exc.__cause__ or exc}"
        ) from None
    return content


def _csv_cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def build_csv(debits: Sequence[Debit], batch: DebitBatch) -> bytes:
    """The CSV companion of one file (BANKING.md §2.3): `;`, UTF-8 with BOM, CRLF, decimal comma, dd/mm/yyyy."""
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
    for debit in debits:
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


def split_debits(debits: Sequence[Debit], max_per_file: int | None) -> list[list[Debit]]:
    """The debits cut in files of at most `max_per_file` (None or 0: one file), order kept."""
    if not max_per_file or max_per_file <= 0:
        return [list(debits)]
    return [list(debits[i : i + max_per_file]) for i in range(0, len(debits), max_per_file)]


def export_batch(session: Session, batch: DebitBatch, *, by: User | None, now: datetime, ip: str = "") -> DebitBatch:
    """Build and store the files once (draft -> exported); later calls keep the stored bytes.

    With a maximum number of debits per file in the settings the run gets several files, each with
    its own MsgId (the run's, suffixed -01, -02, …), header count and control sum, and CSV.
    """
    if batch.status != "draft":
        return batch
    federation = federation_settings(session)
    problems = creditor_problems(federation)
    if problems:
        raise DomainError("Export impossible : " + ", ".join(problems) + ".")
    debits = [debit for debit in batch.debits if debit.status == "pending"]
    chunks = split_debits(debits, federation.debit_max_per_file)
    for sequence, chunk in enumerate(chunks, start=1):
        message_id = batch.message_id if len(chunks) == 1 else f"{batch.message_id}-{sequence:02d}"
        xml = build_xml(chunk, batch, federation, message_id)
        csv_bytes = build_csv(chunk, batch)
        file = DebitFile(
            sequence=sequence,
            message_id=message_id,
            count=len(chunk),
            control_sum_cents=sum(debit.amount_cents for debit in chunk),
            xml_content=xml,
            xml_sha256=hashlib.sha256(xml).hexdigest(),
            csv_content=csv_bytes,
            csv_sha256=hashlib.sha256(csv_bytes).hexdigest(),
        )
        batch.files.append(file)
        for debit in chunk:
            debit.file = file
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
            "files": [{"msg_id": f.message_id, "xml_sha256": f.xml_sha256, "count": f.count} for f in batch.files],
            "count": batch.count,
            "sum": batch.control_sum_cents,
        },
        ip=ip,
    )
    return batch


def batch_file(batch: DebitBatch, sequence: int) -> DebitFile | None:
    """File n° `sequence` of an exported run, or None."""
    return next((file for file in batch.files if file.sequence == sequence), None)


# -- settlement, rejections, returns ---------------------------------------------------------------


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
            entry = post_to_ledger(session, debit, batch.collection_date, by=by)
            debit.entry_id = entry.id if entry is not None else None
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


def _splits(debit: Debit) -> list[books.Split]:
    cotisation = min(debit.membership.cotisation_cents or 0, debit.amount_cents)
    insurance = debit.amount_cents - cotisation
    return [books.Split(code, cents) for code, cents in (("6281", cotisation), ("61681", insurance)) if cents > 0]


def post_to_ledger(session: Session, debit: Debit, on: date, *, by: User | None) -> books.Entry | None:
    """Book the debit in the coop's cash-book (6281 cotisation / 61681 assurance), uncleared, once.

    Returns the entry, or None when the year's cash-book is closed or already holds the fee's piece.
    """
    membership = debit.membership
    ledger = books.open_ledger(session, debit.coop, books.current_start_year(on))
    if not ledger.is_open:
        return None
    piece = f"OCCE{membership.school_year.start_year % 100:02d}"
    if session.scalar(
        sa.select(sa.literal(1)).where(
            sa.exists().where(books.Entry.ledger_id == ledger.id, books.Entry.piece == piece)
        )
    ):
        return None
    return books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece=piece,
            date=on,
            label=f"Adhésion OCCE {membership.school_year.label} (prélèvement)",
            payment_mode="prelevement",
            kind="expense",
            treasury=books.Treasury(bank_out=debit.amount_cents),
            splits=_splits(debit),
        ),
        by=by,
    )


def _reverse_in_ledger(session: Session, debit: Debit, on: date, *, by: User | None) -> books.Entry | None:
    """The entry that cancels the settled debit in the coop's cash-book (+512 / -6281 -61681), uncleared."""
    if debit.entry_id is None or debit.reversal_entry_id is not None:
        return None
    ledger = books.open_ledger(session, debit.coop, books.current_start_year(on))
    if not ledger.is_open:
        return None
    entry = books.record_entry(
        session,
        ledger,
        books.EntryData(
            piece=f"OCCE{debit.membership.school_year.start_year % 100:02d}R{debit.id}"[:20],
            date=on,
            label=f"Prélèvement OCCE {debit.membership.school_year.label} retourné ({debit.reason_code})",
            payment_mode="virement",
            kind="refund_received",
            treasury=books.Treasury(bank_in=debit.amount_cents),
            splits=_splits(debit),
        ),
        by=by,
    )
    debit.reversal_entry_id = entry.id
    return entry


def _check_reason(code: str) -> str:
    code = (code or "").strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{4}", code):
        raise DomainError("Choisissez le code motif donné par la banque (par exemple AM04).", field="reason_code")
    return code


def reject_debit(
    session: Session, debit: Debit, *, code: str, by: User | None, now: datetime, note: str = "", ip: str = ""
) -> Membership:
    """The bank rejected one debit before settlement: rejected, and so is the membership (it can go in a
    later run or be switched to cheque). Raises DomainError when the debit is not waiting in a sent file."""
    code = _check_reason(code)
    if debit.status != "pending":
        raise DomainError(f"Ce prélèvement est déjà « {status_label(debit)} ».")
    if debit.batch.status == "draft":
        raise DomainError("Ce prélèvement n'a pas encore été envoyé à la banque.")
    membership = debit.membership
    debit.status, debit.rejected_at, debit.reason_code = "rejected", now, code
    debit.reject_reason = (note.strip() or REASON_LABELS.get(code, ""))[:300]
    memberships.transition(membership, "rejected")
    session.flush()
    audit.record(
        session,
        "debit.rejected",
        actor=by,
        coop_id=debit.coop_id,
        entity="debit",
        entity_id=debit.id,
        after={"reason_code": code, "reason": debit.reject_reason},
        ip=ip,
    )
    return membership


@dataclass(frozen=True)
class Return:
    """What a return after settlement did: the membership (back to unpaid) and the reversing entry if any."""

    membership: Membership
    reversal: books.Entry | None
    refunded: bool


def return_debit(
    session: Session, debit: Debit, *, code: str, on: date, by: User | None, now: datetime, note: str = "", ip: str = ""
) -> Return:
    """A settled debit came back (returned by the coop's bank, or refunded to the coop on its request, MD06):
    the membership is unpaid again (« returned »), the settlement entry of the coop's cash-book is reversed
    on `on` (uncleared, for the coop to point against its statement). Raises DomainError unless settled."""
    code = _check_reason(code)
    if debit.status != "paid":
        raise DomainError(f"Seul un prélèvement réglé peut être retourné (celui-ci est « {status_label(debit)} »).")
    membership = debit.membership
    refunded = code in REFUND_CODES
    debit.status = "refunded" if refunded else "returned"
    debit.rejected_at, debit.reason_code = now, code
    debit.reject_reason = (note.strip() or REASON_LABELS.get(code, ""))[:300]
    memberships.record_debit_returned(session, membership, by=by, ip=ip)
    reversal = _reverse_in_ledger(session, debit, on, by=by)
    session.flush()
    audit.record(
        session,
        "debit.returned",
        actor=by,
        coop_id=debit.coop_id,
        entity="debit",
        entity_id=debit.id,
        after={"status": debit.status, "reason_code": code, "reversal_entry": reversal.id if reversal else None},
        ip=ip,
    )
    return Return(membership, reversal, refunded)


def switch_to_cheque(session: Session, membership: Membership, *, by: User | None, ip: str = "") -> Membership:
    """After a rejection or a return, the coop pays by cheque: its membership leaves the debit list and
    waits for the cheque (`app.membership.record_cheque`). Raises DomainError from any other status."""
    if membership.status not in ("rejected", "returned"):
        raise DomainError("Seule une adhésion dont le prélèvement est revenu peut passer au paiement par chèque.")
    membership.payment_method = "cheque"
    session.flush()
    audit.record(
        session,
        "membership.switched_to_cheque",
        actor=by,
        coop_id=membership.coop_id,
        entity="membership",
        entity_id=membership.id,
        after={"payment_method": "cheque", "status": membership.status},
        ip=ip,
    )
    return membership


# -- the bank's status files (pain.002, camt.054) --------------------------------------------------

MAX_REPORT_BYTES = 5_000_000


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class ReportedTransaction:
    """One transaction of a bank file: its EndToEndId, what the bank says (`rejected`, `returned` or
    `accepted`), the ISO reason code, the amount when given and the booking date when given."""

    end_to_end_id: str
    outcome: str
    reason_code: str = ""
    amount_cents: int | None = None
    booked_on: date | None = None


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _first(element: etree._Element, path: str) -> str:
    found = element.xpath(path)
    return found[0].strip() if found else ""


def _cents(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)(?:\.(\d{1,2}))?", text or "")
    if not match:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_bank_report(content: bytes) -> tuple[str, list[ReportedTransaction]]:
    """(kind, transactions) of a pain.002 status report or a camt.054 debit notification.

    Raises DomainError (French) when the file is neither, or unreadable.
    """
    if len(content) > MAX_REPORT_BYTES:
        raise DomainError("Fichier trop volumineux pour un relevé de rejets (5 Mo au plus).", field="file")
    try:
        root = etree.fromstring(content, parser=_safe_parser())
    except etree.XMLSyntaxError:
        raise DomainError("Ce fichier n'est pas un fichier XML lisible.", field="file") from None
    namespace = etree.QName(root).namespace or ""
    transactions: list[ReportedTransaction] = []
    if ":pain.002." in namespace:
        # A whole file refused by the bank: the group status says so, without one line per debit.
        for group in root.xpath("//*[local-name()='OrgnlGrpInfAndSts']"):
            message_id = _first(group, "./*[local-name()='OrgnlMsgId']/text()")
            if _first(group, "./*[local-name()='GrpSts']/text()") == "RJCT" and message_id:
                code = _first(group, ".//*[local-name()='StsRsnInf']/*[local-name()='Rsn']/*/text()")
                transactions.append(ReportedTransaction(WHOLE_FILE + message_id, "rejected", code.upper()[:4]))
        for tx in root.xpath("//*[local-name()='TxInfAndSts']"):
            e2e = _first(tx, "./*[local-name()='OrgnlEndToEndId']/text()")
            status = _first(tx, "./*[local-name()='TxSts']/text()")
            code = _first(tx, ".//*[local-name()='StsRsnInf']/*[local-name()='Rsn']/*/text()")
            amount = _first(tx, ".//*[local-name()='OrgnlTxRef']/*[local-name()='Amt']/*/text()")
            if e2e:
                outcome = "rejected" if status == "RJCT" else "accepted"
                transactions.append(ReportedTransaction(e2e, outcome, code.upper()[:4], _cents(amount)))
        return "pain.002", transactions
    if ":camt.054." in namespace:
        for entry in root.xpath("//*[local-name()='Ntry']"):
            booked = _iso_date(_first(entry, "./*[local-name()='BookgDt']/*/text()"))
            entry_sign = _first(entry, "./*[local-name()='CdtDbtInd']/text()")
            for tx in entry.xpath(".//*[local-name()='TxDtls']"):
                e2e = _first(tx, "./*[local-name()='Refs']/*[local-name()='EndToEndId']/text()")
                code = _first(tx, "./*[local-name()='RtrInf']/*[local-name()='Rsn']/*/text()")
                sign = _first(tx, "./*[local-name()='CdtDbtInd']/text()") or entry_sign
                amount = _first(tx, "./*[local-name()='Amt']/text()") or _first(
                    tx, ".//*[local-name()='TxAmt']/*[local-name()='Amt']/text()"
                )
                if e2e:
                    outcome = "returned" if code or sign == "DBIT" else "accepted"
                    transactions.append(ReportedTransaction(e2e, outcome, code.upper()[:4], _cents(amount), booked))
        return "camt.054", transactions
    raise DomainError(
        "Ce fichier n'est ni un compte rendu de la banque (pain.002) ni un avis d'opérations (camt.054).",
        field="file",
    )


@dataclass(frozen=True)
class PlannedChange:
    """One line of the confirmation screen: a transaction of the file, its debit and what applying does."""

    transaction: ReportedTransaction
    debit: Debit
    action: str  # "reject", "return", or "none"
    message: str


@dataclass
class ReportPlan:
    changes: list[PlannedChange] = field(default_factory=list)
    unknown: list[ReportedTransaction] = field(default_factory=list)

    @property
    def to_apply(self) -> list[PlannedChange]:
        return [change for change in self.changes if change.action != "none"]


WHOLE_FILE = "fichier "  # a rejection of a whole file (pain.002 group status), then its MsgId


def _expand_whole_files(session: Session, transactions: Sequence[ReportedTransaction]) -> list[ReportedTransaction]:
    """A whole file rejected becomes one rejection per debit of that file (unless the report lists the
    debit itself); an unknown file stays as it is and is listed as unknown."""
    listed = {tx.end_to_end_id for tx in transactions if not tx.end_to_end_id.startswith(WHOLE_FILE)}
    expanded: list[ReportedTransaction] = []
    for tx in transactions:
        if not tx.end_to_end_id.startswith(WHOLE_FILE):
            expanded.append(tx)
            continue
        message_id = tx.end_to_end_id.removeprefix(WHOLE_FILE)
        file = session.scalar(sa.select(DebitFile).where(DebitFile.message_id == message_id))
        batch = (
            None
            if file is not None
            else session.scalar(sa.select(DebitBatch).where(DebitBatch.message_id == message_id))
        )
        members = file.debits if file is not None else batch.debits if batch is not None else None
        if members is None:
            expanded.append(tx)
            continue
        expanded += [
            ReportedTransaction(debit.end_to_end_id, "rejected", tx.reason_code, debit.amount_cents)
            for debit in members
            if debit.end_to_end_id not in listed
        ]
    return expanded


def plan_report(session: Session, transactions: Sequence[ReportedTransaction]) -> ReportPlan:
    """Match every transaction by EndToEndId and say what applying the file would change (nothing yet)."""
    transactions = _expand_whole_files(session, transactions)
    ids = [tx.end_to_end_id for tx in transactions]
    debits = {d.end_to_end_id: d for d in session.scalars(sa.select(Debit).where(Debit.end_to_end_id.in_(ids)))}
    plan = ReportPlan()
    seen: set[str] = set()
    for tx in transactions:
        debit = debits.get(tx.end_to_end_id)
        if debit is None:
            plan.unknown.append(tx)
            continue
        reason = reason_label(tx.reason_code) or "motif non précisé"
        if tx.outcome == "accepted":
            plan.changes.append(PlannedChange(tx, debit, "none", "accepté par la banque : rien à changer"))
        elif tx.end_to_end_id in seen or debit.status in ("rejected", "returned", "refunded"):
            plan.changes.append(PlannedChange(tx, debit, "none", f"déjà enregistré ({status_label(debit)})"))
        elif debit.status == "pending" and debit.batch.status != "draft":
            plan.changes.append(PlannedChange(tx, debit, "reject", f"sera marqué rejeté : {reason}"))
        elif debit.status == "paid":
            kind = "remboursé" if tx.reason_code in REFUND_CODES else "retourné"
            plan.changes.append(
                PlannedChange(
                    tx, debit, "return", f"sera marqué {kind} après règlement : {reason} ; adhésion à régler de nouveau"
                )
            )
        else:
            plan.changes.append(PlannedChange(tx, debit, "none", f"prélèvement {status_label(debit)} : rien à changer"))
        seen.add(tx.end_to_end_id)
    return plan


def store_report(session: Session, content: bytes, file_name: str, *, by: User | None) -> DebitReport:
    """Keep an uploaded bank file (parsed first: DomainError when it is not one); the same file uploaded
    again gives back the stored one, whose `applied_at` says whether it was already applied."""
    kind, _ = parse_bank_report(content)
    digest = hashlib.sha256(content).hexdigest()
    existing = session.scalar(sa.select(DebitReport).where(DebitReport.sha256 == digest))
    if existing is not None:
        return existing
    report = DebitReport(
        kind=kind,
        file_name=(file_name or "")[:200],
        sha256=digest,
        content=content,
        uploaded_by_id=by.id if by else None,
    )
    session.add(report)
    session.flush()
    return report


def report_plan(session: Session, report: DebitReport) -> ReportPlan:
    return plan_report(session, parse_bank_report(report.content)[1])


@dataclass(frozen=True)
class AppliedChange:
    debit: Debit
    membership: Membership
    returned: Return | None  # None for a rejection before settlement


def apply_report(
    session: Session, report: DebitReport, *, today: date, by: User | None, now: datetime, ip: str = ""
) -> list[AppliedChange]:
    """Apply a confirmed bank file once: rejections and returns recorded (the caller mails each coop).

    Raises DomainError when the file was already applied. Transactions already recorded (by hand or
    by another file) are left as they are.
    """
    if report.applied_at is not None:
        raise DomainError(f"Ce fichier a déjà été appliqué le {report.applied_at:%d/%m/%Y}.")
    applied = []
    for change in report_plan(session, report).to_apply:
        tx, debit = change.transaction, change.debit
        code = tx.reason_code or "MS03"
        note = f"fichier {report.kind} n° {report.id}"
        if change.action == "reject":
            membership = reject_debit(session, debit, code=code, by=by, now=now, note="", ip=ip)
            applied.append(AppliedChange(debit, membership, None))
        else:
            result = return_debit(session, debit, code=code, on=tx.booked_on or today, by=by, now=now, ip=ip)
            applied.append(AppliedChange(debit, result.membership, result))
        audit.record(
            session,
            "debit.from_bank_file",
            actor=by,
            coop_id=debit.coop_id,
            entity="debit",
            entity_id=debit.id,
            after={"report": report.id, "note": note},
            ip=ip,
        )
    report.applied_at, report.applied_by_id, report.applied_count = now, by.id if by else None, len(applied)
    session.flush()
    return applied
