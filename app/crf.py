"""The compte rendu financier (CRF) of one coop-year: computed from the ledger, frozen at closing.

The CRF is a plain data object (`Crf`): result account by account, balance sheet, bank
reconciliation at 31 August (outstanding cheques and deposits in transit apart), cash count by
denomination, subsidy table, totals per action, inventory register (account 68). Templates, PDFs
and the JSON export only show what it holds. Amounts are integer cents.

Closing freezes it: `freeze` stores the figures (`LedgerClosing.figures`, every field of the CRF)
with a SHA-256 checksum and a short verification code; `build_crf` of a closed year rebuilds the
CRF from that record, never from the ledger, so nothing done after closing (pointage of a carried
line, a statement import, a command) changes a closed year's CRF. A staff reopening marks the
record superseded (`supersede`); closing again stores a new one. `verify` finds a record by the
code printed on a paper CRF and checks its checksum.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import ledger as books
from app.cash_count import CashCount
from app.models import Account, Action, Coop, Entry, EntryLine, Ledger, SchoolYear, coop_login, occe_code
from app.models.reports import LedgerClosing
from app.reconciliation import Reconciliation, UnclearedLine, reconcile

DURABLE_GOODS = "68"  # achats de biens durables: each purchase goes to the inventory register


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
class InventoryLine:
    """A purchase of durable goods (account 68) of the year: a line of the inventory register."""

    date: date
    piece: str
    label: str
    amount: int


@dataclass(frozen=True)
class Verification:
    """How a paper CRF is checked against the record: the checksum of the stored figures and the
    short code printed on the PDF (`verify` finds the record from it)."""

    code: str
    checksum: str


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
    reconciliation: Reconciliation
    cash_count: CashCount | None
    subsidies: tuple[SubsidyLine, ...]
    actions: tuple[ActionAmount, ...]
    inventory: tuple[InventoryLine, ...] = ()
    # Set when the CRF comes from the figures stored at closing (None: computed from the ledger).
    verification: Verification | None = None

    @property
    def is_frozen(self) -> bool:
        """Read from the figures stored at closing (not computed from the ledger)."""
        return self.verification is not None

    @property
    def outstanding_cheques(self) -> tuple[UnclearedLine, ...]:
        """Cheques and other payments issued, not yet debited by the bank at 31 August."""
        return tuple(line for line in self.reconciliation.uncleared if line.amount < 0)

    @property
    def deposits_in_transit(self) -> tuple[UnclearedLine, ...]:
        """Deposits and other money in booked, not yet credited by the bank at 31 August."""
        return tuple(line for line in self.reconciliation.uncleared if line.amount > 0)

    @property
    def outstanding_cheques_total(self) -> int:
        """What the bank has still to debit (a positive amount)."""
        return -sum(line.amount for line in self.outstanding_cheques)

    @property
    def deposits_in_transit_total(self) -> int:
        """What the bank has still to credit (a positive amount)."""
        return sum(line.amount for line in self.deposits_in_transit)

    @property
    def inventory_total(self) -> int:
        return sum(line.amount for line in self.inventory)

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
            "outstanding_cheques": self.outstanding_cheques_total,
            "deposits_in_transit": self.deposits_in_transit_total,
            "cash_count": self.cash_count.to_public_json() if self.cash_count is not None else None,
            "inventory": [
                {"piece": line.piece, "date": line.date.isoformat(), "label": line.label, "amount": line.amount}
                for line in self.inventory
            ],
        }

    def to_record(self) -> dict[str, Any]:
        """Every field, as JSON-ready data: what closing stores (`from_record` reads it back)."""
        r = self.reconciliation
        return {
            "coop": _plain(self.coop),
            "year_label": self.year_label,
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "charges": [_plain(line) for line in self.charges],
            "produits": [_plain(line) for line in self.produits],
            "opening": [self.opening_bank, self.opening_cash],
            "closing": [self.closing_bank, self.closing_cash, self.closing_advance],
            "reconciliation": {
                "on": r.on.isoformat(),
                "book_balance": r.book_balance,
                "statement_balance": r.statement_balance,
                "uncleared": [
                    {**_plain(line, skip=("cleared_on",)), "date": line.date.isoformat()} for line in r.uncleared
                ],
            },
            "cash_count": self.cash_count.to_json() if self.cash_count is not None else None,
            "subsidies": [{**_plain(line), "date": line.date.isoformat()} for line in self.subsidies],
            "actions": [_plain(line) for line in self.actions],
            "inventory": [{**_plain(line), "date": line.date.isoformat()} for line in self.inventory],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any], verification: Verification | None = None) -> Crf:
        """The CRF stored by `to_record`, read back exactly."""
        day = date.fromisoformat
        r = data["reconciliation"]
        reconciliation = Reconciliation(
            day(r["on"]),
            r["book_balance"],
            tuple(UnclearedLine(**{**line, "date": day(line["date"])}) for line in r["uncleared"]),
            r["statement_balance"],
        )
        return cls(
            coop=CoopIdentity(**data["coop"]),
            year_label=data["year_label"],
            starts_on=day(data["starts_on"]),
            ends_on=day(data["ends_on"]),
            is_closed=True,
            closed_at=datetime.fromisoformat(data["closed_at"]) if data["closed_at"] else None,
            charges=tuple(AccountAmount(**line) for line in data["charges"]),
            produits=tuple(AccountAmount(**line) for line in data["produits"]),
            opening_bank=data["opening"][0],
            opening_cash=data["opening"][1],
            closing_bank=data["closing"][0],
            closing_cash=data["closing"][1],
            closing_advance=data["closing"][2],
            reconciliation=reconciliation,
            cash_count=CashCount.from_json(data["cash_count"]),
            subsidies=tuple(SubsidyLine(**{**line, "date": day(line["date"])}) for line in data["subsidies"]),
            actions=tuple(ActionAmount(**line) for line in data["actions"]),
            inventory=tuple(InventoryLine(**{**line, "date": day(line["date"])}) for line in data["inventory"]),
            verification=verification,
        )


def _plain(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A flat dataclass as a dict (not `asdict`, which would deep-copy and keep dates as dates)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in skip}


_ORIGIN = re.compile(r"Origine\s*:\s*([^;]+)", re.IGNORECASE)


def subsidy_origin(account: Account) -> str:
    """The origin of a subsidy, from the chart of accounts (« Origine : Commune » in its notes)."""
    match = _ORIGIN.search(account.notes or "")
    return match.group(1).strip() if match else account.label


def opening_balances(session: Session, ledger: Ledger) -> tuple[int, int]:
    """(bank, cash) of the ledger's opening entry and carried items (zeros without them), summed by the
    database in one query.

    Items outstanding in the previous tool are part of the opening bank balance (app.ledger.CarriedItem)."""
    sums = dict(
        session.execute(
            sa.select(Account.code, sa.func.sum(EntryLine.amount_cents))
            .select_from(Entry)
            .join(EntryLine, EntryLine.entry_id == Entry.id)
            .join(Account, books.by_account(session, EntryLine))
            .where(
                Entry.ledger_id == ledger.id,
                Entry.kind.in_(books.OPENING_KINDS),
                Account.code.in_((books.BANK, books.CASH)),
            )
            .group_by(Account.code)
        ).all()
    )
    return int(sums.get(books.BANK) or 0), int(sums.get(books.CASH) or 0)


def build_crf(session: Session, ledger: Ledger) -> Crf:
    """The CRF of `ledger`: a closed year's as stored at closing, an open one's computed (provisional).

    A year closed before figures were stored at closing (no record) is computed from its ledger."""
    if not ledger.is_open:
        stored = stored_closing(session, ledger)
        if stored is not None:
            return crf_of(stored)
    return compute_crf(session, ledger)


def compute_crf(session: Session, ledger: Ledger) -> Crf:
    """Compute the CRF of `ledger` from its entries, its pointage and the figures typed for closing."""
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
        reconciliation=reconcile(session, ledger, ledger.school_year.ends_on, ledger.closing_statement_balance_cents),
        cash_count=CashCount.from_json(ledger.cash_count),
        subsidies=subsidies,
        actions=actions,
        inventory=inventory_register(session, ledger),
    )


def inventory_register(session: Session, ledger: Ledger) -> tuple[InventoryLine, ...]:
    """The year's purchases of durable goods (account 68), by date: what goes to the inventory register."""
    rows = session.execute(
        sa.select(Entry.date, Entry.piece, Entry.label, EntryLine.amount_cents)
        .join(EntryLine.entry)
        .join(EntryLine.account)
        .where(Entry.ledger_id == ledger.id, Account.code == DURABLE_GOODS)
        .order_by(Entry.date, Entry.piece, EntryLine.id)
    ).all()
    return tuple(InventoryLine(day, piece, label, int(amount)) for day, piece, label, amount in rows)


# -- the figures stored at closing ---------------------------------------------------------------

_CODE_LENGTH = 10  # characters of base32 (50 bits): typed by staff from a paper CRF


def checksum_of(figures: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the stored figures."""
    canonical = json.dumps(figures, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def code_of(checksum: str) -> str:
    """The short verification code of a checksum: 10 base32 characters shown as XXXXX-XXXXX."""
    text = base64.b32encode(bytes.fromhex(checksum)).decode("ascii")[:_CODE_LENGTH]
    return f"{text[:5]}-{text[5:]}"


def normalize_code(text: str) -> str:
    """What staff typed, as a code: case, spaces and dashes ignored; 0/1/8 read as O/I/B (base32)."""
    letters = re.sub(r"[^A-Z0-9]", "", (text or "").upper()).translate(str.maketrans("018", "OIB"))
    return f"{letters[:5]}-{letters[5:]}" if len(letters) == _CODE_LENGTH else letters


def stored_closing(session: Session, ledger: Ledger) -> LedgerClosing | None:
    """The figures stored by the ledger's current closing (None when open or closed before they were stored)."""
    return session.scalar(
        sa.select(LedgerClosing)
        .where(LedgerClosing.ledger_id == ledger.id, LedgerClosing.superseded_at.is_(None))
        .order_by(LedgerClosing.id.desc())
        .limit(1)
    )


def last_superseded_closing(session: Session, ledger: Ledger) -> LedgerClosing | None:
    """The figures of the ledger's latest closing undone by a staff reopening (None if never reopened)."""
    return session.scalar(
        sa.select(LedgerClosing)
        .where(LedgerClosing.ledger_id == ledger.id, LedgerClosing.superseded_at.is_not(None))
        .order_by(LedgerClosing.id.desc())
        .limit(1)
    )


def crf_of(stored: LedgerClosing) -> Crf:
    """The CRF a closing stored."""
    return Crf.from_record(stored.figures, Verification(stored.code, stored.checksum))


def freeze(session: Session, ledger: Ledger, *, now: datetime) -> LedgerClosing:
    """Store the CRF of `ledger`, just closed, with its checksum and verification code (flushes)."""
    figures = compute_crf(session, ledger).to_record()
    checksum = checksum_of(figures)
    stored = LedgerClosing(
        ledger_id=ledger.id,
        closed_at=ledger.closed_at or now,
        figures=figures,
        checksum=checksum,
        code=code_of(checksum),
    )
    session.add(stored)
    session.flush()
    return stored


def supersede(session: Session, ledger: Ledger, *, now: datetime) -> None:
    """A staff reopening: the stored figures stop being the year's (kept for the paper CRFs printed)."""
    for stored in session.scalars(
        sa.select(LedgerClosing).where(LedgerClosing.ledger_id == ledger.id, LedgerClosing.superseded_at.is_(None))
    ):
        stored.superseded_at = now
    session.flush()


@dataclass(frozen=True)
class Verified:
    """What staff see for a code: the coop, the year, the closing date and the result of the record,
    whether its figures still match their checksum and whether it is still the year's closing."""

    crf: Crf
    closed_at: datetime
    is_intact: bool
    superseded_at: datetime | None


def verify(session: Session, code: str) -> Verified | None:
    """The stored closing whose verification code is `code` (as typed), or None."""
    stored = session.scalar(
        sa.select(LedgerClosing).where(LedgerClosing.code == normalize_code(code)).order_by(LedgerClosing.id.desc())
    )
    if stored is None:
        return None
    intact = checksum_of(stored.figures) == stored.checksum
    return Verified(crf_of(stored), stored.closed_at, intact, stored.superseded_at)


def closed_crfs(session: Session, start_year: int) -> list[Crf]:
    """The stored CRF of every coop's ledger of the year that is closed, by coop login (consolidation)."""
    rows = session.scalars(
        sa.select(LedgerClosing)
        .join(Ledger, Ledger.id == LedgerClosing.ledger_id)
        .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
        .where(SchoolYear.start_year == start_year, Ledger.status == "closed", LedgerClosing.superseded_at.is_(None))
    ).all()
    return sorted((crf_of(stored) for stored in rows), key=lambda crf: crf.coop.login)
