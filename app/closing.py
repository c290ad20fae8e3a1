"""Year end: the closing checks, closing, carry-forward into the next year, reopening by staff.

A ledger covers 1 September - 31 August. It can be closed from 1 September after its year, once:
the advance account (541) is at zero; the cash count (arrêté de caisse) equals the cash balance;
the statement balance at 31 August is reconciled; every entry balances and lies in the year; the
previous year, when the portal has one, is closed. Closing is irreversible for the coop; only
staff reopen, with a reason (audited).

Reconciliation at date D (`app.reconciliation.reconcile`): statement balance at D = book bank
balance at D − Σ bank lines dated ≤ D and not cleared by D. "Cleared by D" is `cleared_on <= D`: a
line of year N cleared on a statement of N+1 still counts as uncleared in N's reconciliation at 31
August, so clearing it later never changes N's figures. Such lines are never re-entered in N+1:
they stay on N's ledger and stay pointable (`app.reconciliation.carried_lines`).

Carry-forward: closing N writes N+1's opening entry (+512 +530 / −110) with N's closing bank and
cash balances, through `app.ledger.record_opening(..., carried=True)`; closing again after a
reopening rewrites it, so the opening of N+1 always equals the closing of N. While N is closed the
coop cannot type N+1's opening by hand; an opening the coop typed before closing N is never
replaced silently (`opening_conflict`: the coop confirms). Reopening N is refused while N+1 is
closed (N+1's opening could not follow N's corrections): staff reopen N+1 first.

Closing freezes the year: the CRF figures, the reconciliation at 31 August (statement balance and
every uncleared line) and the cash count are stored (`app.crf.freeze`), and the closed year's
reports read them, never a recomputation. A staff reopening supersedes them; closing again stores
new ones.

Functions take the session, the acting user and the clock; they flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app import crf as year_figures
from app import ledger as books
from app.cash_count import (  # noqa: F401 - the closing's vocabulary, used by the wizard and its form
    COINS,
    DENOMINATIONS,
    MAX_PIECES,
    NOTES,
    CashCount,
    CountRow,
    count_rows,
    denomination_label,
)
from app.crf import opening_balances
from app.errors import DomainError
from app.formats import euros, fr_date
from app.models import AnnualReport, Entry, Ledger, User
from app.models.base import utcnow
from app.reconciliation import Reconciliation, reconcile

# -- reconciliation ------------------------------------------------------------------------------


def bank_reconciliation(
    session: Session, ledger: Ledger, *, on: date | None = None, statement_balance: int | None = None
) -> Reconciliation:
    """The reconciliation of `ledger` at `on` (default 31 August) with the statement balance given, or
    the one recorded for the closing (`app.reconciliation.reconcile`, the one computation)."""
    if statement_balance is None:
        statement_balance = ledger.closing_statement_balance_cents
    return reconcile(session, ledger, on or ledger.school_year.ends_on, statement_balance)


# -- checks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One closing condition: `key` names it, `label` is its title, `message` says where it stands."""

    key: str
    label: str
    ok: bool
    message: str


class ClosingRefused(DomainError):
    """Closing refused: `checks` lists every condition with its status; the message joins the failures."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        self.failed = [check for check in checks if not check.ok]
        message = "La clôture est refusée : " + " ".join(check.message for check in self.failed)
        super().__init__(message, field=self.failed[0].key)


def closing_opens_on(ledger: Ledger) -> date:
    """1 September after the ledger's year."""
    return ledger.school_year.ends_on + timedelta(days=1)


def can_close_on(ledger: Ledger, today: date) -> bool:
    return today >= closing_opens_on(ledger)


def previous_ledger(session: Session, ledger: Ledger) -> Ledger | None:
    return books.find_ledger(session, ledger.coop_id, ledger.school_year.start_year - 1)


def next_ledger(session: Session, ledger: Ledger) -> Ledger | None:
    return books.find_ledger(session, ledger.coop_id, ledger.school_year.start_year + 1)


def has_entries(session: Session, ledger: Ledger) -> bool:
    return session.scalar(sa.select(Entry.id).where(Entry.ledger_id == ledger.id).limit(1)) is not None


def closing_checks(session: Session, ledger: Ledger, *, today: date) -> list[Check]:
    """Every closing condition with its status, in the order of the wizard (French messages).

    Uses the statement balance and the cash count recorded on the ledger.
    """
    year = ledger.school_year
    end = year.ends_on
    checks: list[Check] = []
    if not ledger.is_open:
        checks.append(Check("open", "Cahier ouvert", False, f"Le cahier {year.label} est déjà clôturé."))
    opens = closing_opens_on(ledger)
    if can_close_on(ledger, today):
        checks.append(
            Check("period", "Année scolaire terminée", True, f"L'année {year.label} s'est terminée le {fr_date(end)}.")
        )
    else:
        checks.append(
            Check(
                "period",
                "Année scolaire terminée",
                False,
                f"La clôture du cahier {year.label} sera possible à partir du {fr_date(opens)} : "
                f"l'année scolaire se termine le {fr_date(end)}.",
            )
        )
    previous = previous_ledger(session, ledger)
    if previous is not None and has_entries(session, previous):  # an empty earlier ledger carries nothing
        label = previous.school_year.label
        checks.append(
            Check(
                "previous",
                f"Cahier {label} clôturé",
                not previous.is_open,
                f"Le cahier {label} est clôturé."
                if not previous.is_open
                else f"Le cahier {label} n'est pas clôturé : clôturez-le d'abord (son solde est le report "
                f"à nouveau de {year.label}).",
            )
        )
    balances = books.balances(session, ledger, until=end)
    if balances.advance == 0:
        checks.append(
            Check("advance", "Régies d'avance soldées", True, "Le compte de régie d'avance (541) est à zéro.")
        )
    else:
        checks.append(
            Check(
                "advance",
                "Régies d'avance soldées",
                False,
                f"Il reste {euros(balances.advance)} de régies d'avance au {fr_date(end)} : enregistrez "
                "la justification des dépenses et la restitution du reliquat (compte 541 à zéro).",
            )
        )
    count = CashCount.from_json(ledger.cash_count)
    if count is None:
        checks.append(
            Check(
                "cash_count",
                "Arrêté de caisse",
                False,
                "Saisissez l'arrêté de caisse : le nombre de billets et de pièces présents dans la "
                f"caisse au {fr_date(end)}.",
            )
        )
    elif count.total != balances.cash:
        checks.append(
            Check(
                "cash_count",
                "Arrêté de caisse",
                False,
                f"L'arrêté de caisse ({euros(count.total)}) ne correspond pas au solde de caisse du "
                f"cahier au {fr_date(end)} ({euros(balances.cash)}) : écart de "
                f"{euros(count.total - balances.cash)}. Recomptez la caisse ou corrigez le cahier.",
            )
        )
    else:
        checks.append(
            Check(
                "cash_count",
                "Arrêté de caisse",
                True,
                f"Arrêté de caisse {euros(count.total)} = solde de caisse du cahier.",
            )
        )
    reconciliation = bank_reconciliation(session, ledger)
    pending = len(reconciliation.uncleared)
    pending_text = (
        f"{pending} opération(s) non pointée(s) ({euros(reconciliation.uncleared_total)})"
        if pending
        else "aucune opération non pointée"
    )
    if reconciliation.statement_balance is None:
        checks.append(
            Check(
                "reconciliation",
                "Rapprochement bancaire au 31 août",
                False,
                f"Saisissez le solde du relevé bancaire au {fr_date(end)} (dernier relevé de l'année).",
            )
        )
    elif not reconciliation.is_reconciled:
        checks.append(
            Check(
                "reconciliation",
                "Rapprochement bancaire au 31 août",
                False,
                f"Le rapprochement ne tombe pas juste : solde banque du cahier "
                f"{euros(reconciliation.book_balance)}, moins {pending_text}, donne "
                f"{euros(reconciliation.expected_statement)} ; le relevé indique "
                f"{euros(reconciliation.statement_balance)} (écart de "
                f"{euros(reconciliation.difference)}). Vérifiez le pointage, les opérations d'août et "
                "le solde saisi.",
            )
        )
    else:
        checks.append(
            Check(
                "reconciliation",
                "Rapprochement bancaire au 31 août",
                True,
                f"Relevé au {fr_date(end)} : {euros(reconciliation.statement_balance)} = solde banque "
                f"du cahier {euros(reconciliation.book_balance)} moins {pending_text}.",
            )
        )
    problems = books.check_ledger(session, ledger)
    checks.append(
        Check(
            "balanced",
            "Opérations équilibrées",
            not problems,
            " ".join(problems) if problems else "Toutes les opérations sont équilibrées et datées dans l'année.",
        )
    )
    return checks


# -- recording the year-end figures --------------------------------------------------------------


def _check_open(ledger: Ledger) -> None:
    if not ledger.is_open:
        raise DomainError(f"Le cahier {ledger.school_year.label} est clôturé : il ne peut plus être modifié.")


def save_cash_count(session: Session, ledger: Ledger, count: CashCount, *, by: User | None, ip: str = "") -> None:
    """Record the arrêté de caisse of an open ledger (checked against the cash balance at closing)."""
    _check_open(ledger)
    before = ledger.cash_count
    ledger.cash_count = count.to_json()
    session.flush()
    audit.record(
        session,
        "ledger.cash_count_set",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        before={"total": before["total"]} if before else None,
        after={"total": count.total},
        ip=ip,
    )


def save_statement_balance(session: Session, ledger: Ledger, balance: int, *, by: User | None, ip: str = "") -> None:
    """Record the statement balance at 31 August of an open ledger."""
    _check_open(ledger)
    before = ledger.closing_statement_balance_cents
    ledger.closing_statement_balance_cents = balance
    session.flush()
    audit.record(
        session,
        "ledger.statement_balance_set",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        before={"balance": before},
        after={"balance": balance},
        ip=ip,
    )


# -- closing, carry-forward, reopening -----------------------------------------------------------


@dataclass(frozen=True)
class Closing:
    """What a closing did: the closed ledger, the next one and the opening balances carried into it."""

    ledger: Ledger
    next_ledger: Ledger
    bank: int
    cash: int


def carry_forward(session: Session, ledger: Ledger, *, by: User | None, ip: str = "") -> Closing:
    """Write the opening entry of the next year (created when missing) from `ledger`'s closing balances.

    Raises DomainError when the next year is closed.
    """
    coop = ledger.coop
    following = books.open_ledger(session, coop, ledger.school_year.start_year + 1)
    if not following.is_open:
        raise DomainError(
            f"Le cahier {following.school_year.label} est clôturé : son report à nouveau ne peut plus changer."
        )
    closing = books.balances(session, ledger)
    books.record_opening(session, following, bank=closing.bank, cash=closing.cash, by=by, ip=ip, carried=True)
    return Closing(ledger, following, closing.bank, closing.cash)


@dataclass(frozen=True)
class OpeningConflict:
    """The next year already has an opening balance, typed by the coop, that differs from this year's
    closing balances: closing would replace it, so the coop sees both and confirms."""

    next_label: str
    typed_bank: int
    typed_cash: int
    closing_bank: int
    closing_cash: int

    @property
    def typed_total(self) -> int:
        return self.typed_bank + self.typed_cash

    @property
    def closing_total(self) -> int:
        return self.closing_bank + self.closing_cash

    @property
    def difference(self) -> int:
        """What the closing changes in the next year's opening (closing − typed)."""
        return self.closing_total - self.typed_total

    @property
    def message(self) -> str:
        return (
            f"Le report à nouveau {self.next_label} déjà saisi (banque {euros(self.typed_bank)}, caisse "
            f"{euros(self.typed_cash)}) diffère des soldes de clôture (banque {euros(self.closing_bank)}, caisse "
            f"{euros(self.closing_cash)}) : écart de {euros(self.difference)}. La clôture le remplacera : "
            "cochez la case pour confirmer."
        )


def opening_conflict(session: Session, ledger: Ledger) -> OpeningConflict | None:
    """The next year's typed opening, when it differs from `ledger`'s closing balances (None otherwise).

    An opening written by an earlier closing of this year (reopened since by staff) is not a typed one."""
    following = next_ledger(session, ledger)
    if following is None or books.opening_entry(session, following) is None:
        return None
    typed = opening_balances(session, following)
    closing = books.balances(session, ledger)
    if typed == (closing.bank, closing.cash):
        return None
    carried = year_figures.last_superseded_closing(session, ledger)
    if carried is not None and tuple(carried.figures["closing"][:2]) == typed:
        return None
    return OpeningConflict(following.school_year.label, typed[0], typed[1], closing.bank, closing.cash)


def close_ledger(
    session: Session,
    ledger: Ledger,
    *,
    statement_balance: int | None,
    cash_count: CashCount | int | None,
    by: User | None,
    now: datetime,
    ip: str = "",
    replace_opening: bool = False,
) -> Closing:
    """Close `ledger` for good (for the coop), store its CRF figures and open the next year with its
    closing balances.

    Records the statement balance at 31 August and the cash count (by denomination, or one total),
    runs `closing_checks` on `now`'s date and raises ClosingRefused (a DomainError listing the failed
    checks, in French) unless every one passes. When the next year has a typed opening that differs
    (`opening_conflict`), raises DomainError (field ``replace_opening``) unless `replace_opening`.
    Stores the figures of the CRF (`app.crf.freeze`): the closed year's reports read them from now on.
    """
    session.refresh(ledger, with_for_update=True)  # two closings at once: the second waits, then sees it closed
    if not ledger.is_open:
        raise DomainError(f"Le cahier {ledger.school_year.label} est déjà clôturé.")
    if isinstance(cash_count, int):
        cash_count = CashCount.from_total(cash_count)
    ledger.closing_statement_balance_cents = statement_balance
    ledger.cash_count = cash_count.to_json() if cash_count is not None else None
    session.flush()
    checks = closing_checks(session, ledger, today=now.date())
    if not all(check.ok for check in checks):
        raise ClosingRefused(checks)
    conflict = opening_conflict(session, ledger)
    if conflict is not None and not replace_opening:
        raise DomainError(conflict.message, field="replace_opening")
    reconciliation = bank_reconciliation(session, ledger)
    ledger.status = "closed"
    ledger.closed_at = now
    session.flush()
    closing = carry_forward(session, ledger, by=by, ip=ip)
    stored = year_figures.freeze(session, ledger, now=now)
    audit.record(
        session,
        "ledger.closed",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        after={
            "year": ledger.school_year.label,
            "bank": closing.bank,
            "cash": closing.cash,
            "statement_balance": statement_balance,
            "uncleared": len(reconciliation.uncleared),
            "next_year": closing.next_ledger.school_year.label,
            "checksum": stored.checksum,
            "replaced_opening": {"bank": conflict.typed_bank, "cash": conflict.typed_cash} if conflict else None,
        },
        ip=ip,
    )
    return closing


@dataclass(frozen=True)
class Reopening:
    """What a reopening did: the ledger, open again, the reason (spaces folded) and when it had closed."""

    ledger: Ledger
    reason: str
    closed_at: datetime | None


def reopen_ledger(
    session: Session, ledger: Ledger, *, reason: str, by: User | None, ip: str = "", now: datetime | None = None
) -> Reopening:
    """Staff reopen a closed year, with a mandatory reason (audited). The ledger's side only: the
    yearly report sent back with it is `app.submission.reopen_year`, which staff actions call. The
    figures stored at closing are marked superseded (kept: a paper CRF still finds its record).

    Raises DomainError without a reason, when the ledger is open, when the next year is closed
    (reopen it first) or when the year's report is approved.
    """
    reason = " ".join((reason or "").split())
    label = ledger.school_year.label
    session.refresh(ledger, with_for_update=True)
    if not reason:
        raise DomainError("Indiquez le motif de la réouverture.", field="reason")
    if ledger.is_open:
        raise DomainError(f"Le cahier {label} n'est pas clôturé.")
    following = next_ledger(session, ledger)
    if following is not None and not following.is_open:
        raise DomainError(
            f"Le cahier {following.school_year.label} est clôturé : rouvrez-le d'abord, sinon son "
            f"report à nouveau ne pourrait pas suivre les corrections de {label}."
        )
    report_status = session.scalar(sa.select(AnnualReport.status).where(AnnualReport.ledger_id == ledger.id))
    if report_status == "approved":
        raise DomainError(f"Le compte rendu {label} est approuvé par l'OCCE 85 : le cahier ne peut plus être rouvert.")
    ledger.status = "open"
    closed_at, ledger.closed_at = ledger.closed_at, None
    session.flush()
    year_figures.supersede(session, ledger, now=now or utcnow())
    audit.record(
        session,
        "ledger.reopened",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        before={"status": "closed", "closed_at": closed_at},
        after={"status": "open", "reason": reason},
        ip=ip,
    )
    return Reopening(ledger, reason, closed_at)
