"""The compte rendu financier (CRF) of one coop-year, computed from its ledger.

The CRF is a plain data object (`Crf`) built from the ledger by `build_crf`: result account by
account, balance sheet, bank reconciliation at 31 August, cash count, subsidy table, totals per
action. Templates, PDFs and the JSON export only show what it holds. Amounts are integer cents.
A closed year reads what closing stored (statement balance, cash count); nothing after closing
changes its figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import ledger as books
from app.closing import CashCount, bank_reconciliation, opening_balances
from app.models import Account, Action, Coop, Entry, EntryLine, Ledger, coop_login, occe_code
from app.reconciliation import Reconciliation


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
    reconciliation: Reconciliation
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
