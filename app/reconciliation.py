"""Pointage: importing statements, matching their lines with the cash-book, clearing, reconciling.

Pointage is reconciliation metadata, not accounting: clearing sets `EntryLine.cleared_on` (the date
of the statement line) and links the statement line; it is allowed on lines of a closed year that
were still uncleared at 31 August, which stay pointable in the next year and are never re-entered.

The matching (BANKING.md §4) is deterministic and explainable. Every rule consumes what it matches:
R1 cheque number and amount; R2 a strong reference (RUM, EndToEndId) found in the entry's label;
R3 a deposit slip whose number is in the bank label and whose entries sum to the bank amount;
R4 the exact amount within -7/+10 days, only when the pair is unique in both directions (repeated
until nothing changes). What stays ambiguous becomes a suggestion (R5), never a match. Nothing is
cleared until the user confirms. Each rule is one function; `match` runs them in that order.

The reconciliation « statement = book − uncleared » is computed here only (`reconcile`), for the
pointage summary box and for the closing at 31 August.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager

from app import audit
from app.errors import DomainError
from app.ledger import BANK, current_start_year
from app.models import Account, Coop, Entry, EntryLine, Ledger, SchoolYear, Statement, StatementLine, User
from app.models.reports import LedgerClosing
from app.statements import BankLine, ParsedStatement, fold, normalise_number

WINDOW_BEFORE, WINDOW_AFTER = 7, 10  # bank date minus entry date, in days (R4)
CHEQUE_MARGIN = 3  # a cheque can appear on the statement a little before the day it was booked


# -- import --------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What an import did. `statement` is None when the file added nothing (no empty record is kept);
    `notices` are French sentences for the user (no account number in the file, lines outside the year)."""

    statement: Statement | None
    added: int
    skipped: int
    notices: list[str] = field(default_factory=list)


def _compact(account: str) -> str:
    return "".join(ch for ch in (account or "").upper() if ch.isalnum())


def account_matches(parsed: ParsedStatement, coop_iban: str) -> bool | None:
    """Whether the account named in the file is the coop's: its IBAN (CAMT), or the account number of
    its RIB, possibly with the branch code before it or the RIB key after it (OFX ACCTID, bank CSV),
    the bank and branch codes being checked too when the file gives them (OFX BANKID, BRANCHID).
    None when it cannot be told: the file names no account, or the coop's IBAN is not known."""
    found, iban = _compact(parsed.account), _compact(coop_iban)
    if not found or not iban:
        return None
    if found[:2].isalpha() and found[2:4].isdigit() and len(found) >= 15:  # an IBAN
        return found == iban
    rib = iban[4:] if iban.startswith("FR") and len(iban) == 27 else ""
    if not rib or len(found.lstrip("0")) < 5:
        return False
    if not (rib.endswith(found) or rib[:-2].endswith(found) or found.endswith(rib[10:21])):
        return False
    bank, branch = (_compact(parsed.details.get(key, "")) for key in ("bank_code", "branch_code"))
    return (not bank or bank == rib[:5]) and (not branch or branch == rib[5:10])


def _check_account(parsed: ParsedStatement, coop_iban: str) -> list[str]:
    """Refuse a statement of another account (DomainError, both masked); a notice when it cannot be told."""
    matches = account_matches(parsed, coop_iban)
    if matches is False:
        raise DomainError(
            f"Ce relevé est celui du compte {audit.mask_iban(_compact(parsed.account))}, qui n'est pas le compte "
            f"de la coopérative ({audit.mask_iban(_compact(coop_iban))}) : rien n'a été importé. "
            "Téléchargez le relevé du compte de la coopérative, ou corrigez son IBAN dans l'identité.",
            field="file",
        )
    if matches is None and not _compact(parsed.account):
        return [
            "Ce fichier n'indique pas le numéro du compte : vérifiez qu'il s'agit bien du compte de la coopérative."
        ]
    if matches is None:
        return ["L'IBAN de la coopérative n'est pas renseigné : le compte du relevé n'a pas pu être vérifié."]
    return []


def lines_outside_year(parsed: ParsedStatement, start_year: int) -> list:
    """The statement's lines dated outside the school year starting in `start_year` (1 September to
    31 August), shown before importing them."""
    first, last = date(start_year, 9, 1), date(start_year + 1, 8, 31)
    return [line for line in parsed.lines if not first <= line.date <= last]


def _outside_year(parsed: ParsedStatement, ledger: Ledger | None) -> list[str]:
    """A notice for the lines dated outside `ledger`'s year (they are pointed in their own year)."""
    if ledger is None:
        return []
    outside = [line.date for line in parsed.lines if not ledger.school_year.contains(line.date)]
    if not outside:
        return []
    return [
        f"{len(outside)} ligne(s) du relevé sont datées hors de l'année {ledger.school_year.label} "
        f"(du {min(outside):%d/%m/%Y} au {max(outside):%d/%m/%Y}) : elles se pointent dans le pointage "
        "de leur année, pas dans celui-ci."
    ]


def _movement_key(day: date, amount: int, cheque: str, rank: int) -> str:
    return f"m:{day.isoformat()}:{amount}:{cheque}:{rank}"


def _new_movements(session: Session, coop_id: int, parsed: ParsedStatement) -> list[tuple[BankLine, str]]:
    """The file's lines that are not on the coop's statements yet, each with its fingerprint.

    A bank movement is identified whatever the format it came in (OFX, CAMT, QIF, CSV): same booking
    date, same amount, and the same cheque number when both files give one. Each known movement
    accounts for at most one line of the file, so two identical card payments of one day stay two.
    Lines with a cheque number are paired first, so that a card payment of the same amount on the
    same day is not taken for the cheque. One query over the file's date range, then a pass."""
    if not parsed.lines:
        return []
    first, last = min(line.date for line in parsed.lines), max(line.date for line in parsed.lines)
    known: dict[tuple[date, int], list[str]] = {}
    fingerprints: set[str] = set()
    for day, amount, cheque, fingerprint in session.execute(
        sa.select(
            StatementLine.date, StatementLine.amount_cents, StatementLine.cheque_number, StatementLine.fingerprint
        ).where(StatementLine.coop_id == coop_id, StatementLine.date >= first, StatementLine.date <= last)
    ):
        known.setdefault((day, amount), []).append(cheque or "")
        fingerprints.add(fingerprint)

    def seen(line: BankLine) -> bool:
        """Whether a known movement accounts for `line` (it is then used up)."""
        cheques = known.get((line.date, line.amount_cents))
        if not cheques:
            return False
        wanted = line.cheque_number
        if wanted:
            choice = wanted if wanted in cheques else "" if "" in cheques else None
        else:  # a format without cheque numbers: a known line with one may be the same movement
            choice = "" if "" in cheques else cheques[0]
        if choice is None:
            return False
        cheques.remove(choice)
        return True

    new = set()
    for pass_with_cheque in (True, False):
        for index, line in enumerate(parsed.lines):
            if bool(line.cheque_number) == pass_with_cheque and not seen(line):
                new.add(index)
    added = []
    for index, line in enumerate(parsed.lines):
        if index not in new:
            continue
        rank = 0
        while (fingerprint := _movement_key(line.date, line.amount_cents, line.cheque_number, rank)) in fingerprints:
            rank += 1
        fingerprints.add(fingerprint)
        added.append((line, fingerprint))
    return added


def import_statement(
    session: Session,
    coop_id: int,
    parsed: ParsedStatement,
    *,
    filename: str,
    content: bytes,
    by: User | None,
    ip: str = "",
    ledger: Ledger | None = None,
    coop_iban: str | None = None,
) -> ImportResult:
    """Store the statement's new movements (see `_new_movements`: a movement already imported, in any
    format, is skipped); an import that adds nothing leaves no statement record.

    The file must be a statement of the coop's account (`coop_iban`, read from the coop when not
    given): another account raises DomainError. When the file gives its closing balance, dated in
    `ledger`'s year (open) and not before the statement date already typed in its summary box, the
    box takes it (`ledger` must be the coop's)."""
    if coop_iban is None:
        coop_iban = session.scalar(sa.select(Coop.iban).where(Coop.id == coop_id)) or ""
    notices = _check_account(parsed, coop_iban) + _outside_year(parsed, ledger)
    new = _new_movements(session, coop_id, parsed)
    skipped = len(parsed.lines) - len(new)
    statement = None
    if new:
        statement = Statement(
            coop_id=coop_id,
            source_format=parsed.source_format,
            filename=filename[:255],
            sha256=hashlib.sha256(content).hexdigest(),
            account=_compact(parsed.account)[:34],
            start_date=parsed.start_date,
            end_date=parsed.end_date,
            closing_balance_cents=parsed.closing_balance_cents,
            closing_balance_date=parsed.closing_balance_date,
            imported_by_id=by.id if by else None,
        )
        session.add(statement)
        session.flush()
        session.execute(  # one bulk insert: a year of 20,000 lines in one statement
            sa.insert(StatementLine),
            [
                {
                    "statement_id": statement.id,
                    "coop_id": coop_id,
                    "date": line.date,
                    "value_date": line.value_date,
                    "amount_cents": line.amount_cents,
                    "label": line.label[:500],
                    "cheque_number": line.cheque_number[:20],
                    "reference": line.reference[:200],
                    "fingerprint": fingerprint,
                    "raw": line.raw,
                }
                for line, fingerprint in new
            ],
        )
        audit.record(
            session,
            "statement.imported",
            actor=by,
            coop_id=coop_id,
            entity="statement",
            entity_id=statement.id,
            after={"format": parsed.source_format, "file": filename[:100], "added": len(new), "skipped": skipped},
            ip=ip,
        )
    closing_on = parsed.closing_balance_date
    if (
        ledger is not None
        and ledger.is_open
        and parsed.closing_balance_cents is not None
        and closing_on is not None
        and ledger.school_year.contains(closing_on)
        and (ledger.reconciliation_date is None or closing_on >= ledger.reconciliation_date)
    ):
        save_statement_balance(session, ledger, closing_on, parsed.closing_balance_cents, by=by)
    return ImportResult(statement, len(new), skipped, notices)


# -- the two sides -------------------------------------------------------------------------------


class BookLine(NamedTuple):
    """An uncleared bank line of the cash-book (amount signed: money in > 0)."""

    line_id: int
    entry_id: int
    date: date
    amount: int
    mode: str
    number: str  # cheque or deposit slip number, normalised
    label: str
    piece: str


class BankItem(NamedTuple):
    """A statement line not linked to the cash-book yet."""

    id: int
    date: date
    amount: int
    label: str
    cheque: str
    reference: str


def uncleared_book_lines(session: Session, coop_id: int, ledger: Ledger | None = None) -> list[BookLine]:
    """The coop's uncleared bank lines (the opening balance is not a movement): with `ledger`, those of
    its year and the ones carried from earlier years (dated before it), never those of later years;
    without, every year."""
    query = (
        sa.select(
            EntryLine.id,
            Entry.id,
            Entry.date,
            EntryLine.amount_cents,
            Entry.payment_mode,
            Entry.cheque_number,
            Entry.label,
            Entry.piece,
        )
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(Entry.coop_id == coop_id, Account.code == BANK, Entry.kind != "opening", EntryLine.cleared_on.is_(None))
        .order_by(Entry.date, EntryLine.id)
    )
    if ledger is not None:
        return bank_book(session, ledger).book_lines()
    return [
        BookLine(line_id, entry_id, day, amount, mode, normalise_number(number), label, piece)
        for line_id, entry_id, day, amount, mode, number, label, piece in session.execute(query)
    ]


def open_bank_items(
    session: Session, coop_id: int, ledger: Ledger | None = None, *, ids: Collection[int] | None = None
) -> list[BankItem]:
    """Statement lines of the coop that no cash-book line points to yet: with `ledger`, only those
    dated in its year (a line of another year is pointed there; one of a closed year never is); with
    `ids`, only those of these ids."""
    query = (
        sa.select(
            StatementLine.id,
            StatementLine.date,
            StatementLine.amount_cents,
            StatementLine.label,
            StatementLine.cheque_number,
            StatementLine.reference,
        )
        .where(
            StatementLine.coop_id == coop_id,
            ~sa.exists().where(EntryLine.statement_line_id == StatementLine.id),
        )
        .order_by(StatementLine.date, StatementLine.id)
    )
    if ledger is not None:
        query = query.where(
            StatementLine.date >= ledger.school_year.starts_on, StatementLine.date <= ledger.school_year.ends_on
        )
    if ids is not None:
        query = query.where(StatementLine.id.in_(ids))
    session.flush()  # what `session.execute` would autoflush; the rows are then read without ORM loading
    return list(map(BankItem._make, session.connection().execute(query).all()))


# -- matching ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """Statement line `bank_id` ↔ cash-book lines `line_ids`; `sure` False means a mere suggestion."""

    bank_id: int
    line_ids: tuple[int, ...]
    rule: str
    explanation: str
    sure: bool = True


@dataclass
class MatchResult:
    proposals: list[Proposal] = field(default_factory=list)
    suggestions: list[Proposal] = field(default_factory=list)
    unmatched_bank: list[int] = field(default_factory=list)
    unmatched_book: list[int] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)


def _tokens(text: str) -> set[str]:
    return {
        token
        for token in fold(text).replace("/", " ").replace("-", " ").split()
        if len(token) >= 3 and not token.isdigit()
    }


def _similarity(a: str, b: str) -> float:
    left, right = _tokens(a), _tokens(b)
    return len(left & right) / len(left | right) if left and right else 0.0


@dataclass
class OpenItems:
    """The open items of both sides while the rules run: each rule takes what it matches, in order."""

    bank: list[BankItem]  # sorted by date, amount, id
    book: list[BookLine]  # sorted by date, amount, line id
    result: MatchResult
    free_bank: dict[int, BankItem] = field(init=False)
    free_book: dict[int, BookLine] = field(init=False)
    # Where each proposal, suggestion and anomaly stands in the whole run (`_merge`): rule, pass of R4
    # and the bank line's rank for the first; the rule's own order for the others.
    pass_number: int = 0
    order: dict[str, list] = field(init=False)

    def __post_init__(self) -> None:
        self.free_bank = {item.id: item for item in self.bank}
        self.free_book = {line.line_id: line for line in self.book}
        self.order = {"proposals": [], "suggestions": [], "anomalies": []}

    @classmethod
    def of(cls, bank: list[BankItem], book: list[BookLine]) -> OpenItems:
        """Both sides in the rules' order (date, amount, id), whatever the order they came in."""
        return cls(
            sorted(bank, key=lambda b: (b.date, b.amount, b.id)),
            sorted(book, key=lambda b: (b.date, b.amount, b.line_id)),
            MatchResult(),
        )

    def take(self, item: BankItem, lines: list[BookLine], rule: str, why: str) -> None:
        """Propose `item` ↔ `lines` and remove them from the open items."""
        self.result.proposals.append(Proposal(item.id, tuple(line.line_id for line in lines), rule, why))
        self.order["proposals"].append((rule, self.pass_number, item.date, item.amount, item.id))
        del self.free_bank[item.id]
        for line in lines:
            del self.free_book[line.line_id]


def _in_window(item: BankItem, line: BookLine) -> bool:
    """The bank date lies between 7 days before and 10 days after the entry's date (R4, R5)."""
    return -WINDOW_BEFORE <= (item.date - line.date).days <= WINDOW_AFTER


def _by(lines, key) -> dict:
    """Index lines by `key` (order kept inside each group): each rule looks up only its candidates,
    so that matching stays linear in the number of lines instead of bank × book."""
    index: dict = {}
    for line in lines:
        index.setdefault(key(line), []).append(line)
    return index


def match_cheques(pool: OpenItems) -> None:
    """R1: cheque number and exact amount (no date window: cheques are cashed late); the same number
    with another amount is an anomaly to check, never a match."""
    cheques = _by((b for b in pool.book if b.mode == "cheque" and b.number), lambda b: b.number)
    for item in pool.bank:
        if not item.cheque or item.id not in pool.free_bank:
            continue
        same_number = [
            b
            for b in cheques.get(item.cheque, ())
            if b.line_id in pool.free_book and b.date <= item.date + timedelta(days=CHEQUE_MARGIN)
        ]
        exact = [b for b in same_number if b.amount == item.amount]
        if len(exact) == 1:
            pool.take(item, exact, "R1", f"chèque n° {item.cheque}, même montant")
        elif same_number and not exact:
            pool.order["anomalies"].append((item.date, item.amount, item.id))
            pool.result.anomalies.append(
                f"Le chèque n° {item.cheque} du relevé ({item.date:%d/%m/%Y}) n'a pas le même "
                "montant que dans le cahier : vérifiez la pièce."
            )


def match_references(pool: OpenItems) -> None:
    """R2: a strong reference of the bank line (RUM, EndToEndId) written in the entry's label, same amount."""
    by_amount = _by(pool.book, lambda b: b.amount)
    folded: dict[int, str] = {}
    for item in pool.bank:
        if item.id not in pool.free_bank or not item.reference:
            continue
        references = [ref for ref in fold(item.reference).split() if len(ref) >= 6]
        if not references:
            continue
        found = []
        for b in by_amount.get(item.amount, ()):
            if b.line_id not in pool.free_book:
                continue
            label = folded.get(b.line_id)
            if label is None:
                label = folded[b.line_id] = fold(b.label)
            if any(ref in label for ref in references):
                found.append(b)
        if len(found) == 1:
            pool.take(item, found, "R2", "même référence de prélèvement ou de virement")


def _slip_numbers(item: BankItem) -> list[str]:
    """The deposit slip numbers a bank label may give (R3), in order."""
    return sorted(
        {normalise_number(token) for token in fold(item.label).split() if token.isdigit() and len(token) >= 4}
    )


def match_deposit_slips(pool: OpenItems) -> None:
    """R3: a deposit slip: its number in the bank label, its entries summing to the bank amount."""
    slips = _by((b for b in pool.book if b.mode == "remise" and b.amount > 0), lambda b: b.number)
    for item in pool.bank:
        if item.id not in pool.free_bank or item.amount <= 0:
            continue
        for number in _slip_numbers(item):
            group = [b for b in slips.get(number, ()) if b.line_id in pool.free_book]
            if group and sum(b.amount for b in group) == item.amount:
                pool.take(item, group, "R3", f"bordereau de remise n° {number} ({len(group)} ligne(s) du cahier)")
                break


class _ByAmount:
    """Lines grouped by amount, each group in date order, with the window of dates found by bisection:
    a look-up sees only the lines of that amount within a few days, never the whole year."""

    def __init__(self, lines) -> None:
        self.groups: dict[int, list] = {}
        for line in lines:  # already in (date, amount, id) order: each group is in (date, id) order
            self.groups.setdefault(line.amount, []).append(line)
        self.dates = {amount: [line.date for line in group] for amount, group in self.groups.items()}

    def between(self, amount: int, low: date, high: date) -> list:
        """The lines of `amount` dated from `low` to `high`, in date order."""
        dates = self.dates.get(amount)
        if not dates:
            return []
        return self.groups[amount][bisect_left(dates, low) : bisect_right(dates, high)]


def _book_in_window(book: _ByAmount, item: BankItem) -> list:
    """Cash-book lines of the item's amount whose date puts the bank date within -7/+10 days."""
    return book.between(
        item.amount, item.date - timedelta(days=WINDOW_AFTER), item.date + timedelta(days=WINDOW_BEFORE)
    )


def _bank_in_window(bank: _ByAmount, line: BookLine) -> list:
    """Statement lines of the line's amount dated within -7/+10 days of it."""
    return bank.between(
        line.amount, line.date - timedelta(days=WINDOW_BEFORE), line.date + timedelta(days=WINDOW_AFTER)
    )


def match_unique_amounts(pool: OpenItems) -> None:
    """R4: exact amount in the date window, unique in both directions (cheques excepted: R1 is their
    rule); repeated until nothing changes, since each match can make another pair unique.

    Both sides are indexed by amount and date, so each look-up only sees lines of the same amount
    within the window (n·log n)."""
    book = _ByAmount(line for line in pool.book if line.mode != "cheque")
    bank = _ByAmount(pool.bank)
    free_bank, free_book = pool.free_bank, pool.free_book

    changed = True
    while changed:
        changed = False
        pool.pass_number += 1
        for item in [b for b in pool.bank if b.id in free_bank]:
            found = [b for b in _book_in_window(book, item) if b.line_id in free_book]
            if len(found) != 1:
                continue
            rivals = [
                other for other in _bank_in_window(bank, found[0]) if other.id != item.id and other.id in free_bank
            ]
            if rivals:
                continue
            days = abs((item.date - found[0].date).days)
            pool.take(item, found, "R4", "même montant, " + ("même jour" if days == 0 else f"{days} jour(s) d'écart"))
            changed = True


def suggest_ambiguous(pool: OpenItems, words: tuple[dict, dict] | None = None) -> tuple[set[int], set[int]]:
    """R5: what stays ambiguous (same amount in the window) becomes a suggestion, closest dates and
    labels first, each line at most once; never confirmed alone. Returns the bank and book ids used.
    `words` keeps the labels' words between calls (statement lines' by id, cash-book lines' by line id)."""
    book = _ByAmount(pool.book)
    bank_words, book_words = words or ({}, {})
    free_book = pool.free_book
    pairs = []
    for item in pool.free_bank.values():
        left = bank_words.get(item.id)
        if left is None:
            left = bank_words[item.id] = _tokens(item.label)
        for line in _book_in_window(book, item):
            if line.line_id in free_book:
                right = book_words.get(line.line_id)
                if right is None:
                    right = book_words[line.line_id] = _tokens(line.label)
                common = len(left & right)  # over the union's size: len(left) + len(right) - common
                similarity = common / (len(left) + len(right) - common) if left and right else 0.0
                pairs.append((abs((item.date - line.date).days), -similarity, line.line_id, item.id))
    pairs.sort()  # each (line, statement line) pair once: the ids decide the ties
    used_bank: set[int] = set()
    used_book: set[int] = set()
    for days, similarity, line_id, item_id in pairs:
        if item_id in used_bank or line_id in used_book:
            continue
        used_bank.add(item_id)
        used_book.add(line_id)
        pool.order["suggestions"].append((days, similarity, line_id, item_id))
        pool.result.suggestions.append(
            Proposal(
                item_id,
                (line_id,),
                "R5",
                f"même montant, {days} jour(s) d'écart, plusieurs possibilités : à vérifier",
                sure=False,
            )
        )
    return used_bank, used_book


SURE_RULES = (match_cheques, match_references, match_deposit_slips, match_unique_amounts)  # R1-R4, in this order


def match(bank: list[BankItem], book: list[BookLine]) -> MatchResult:
    """Run the rules R1-R5 on the open items of both sides (pure function, deterministic: the result
    does not depend on the order of the inputs). R1-R4 each consume what they match; R5 suggests."""
    pool = OpenItems.of(bank, book)
    for rule in SURE_RULES:
        rule(pool)
    used_bank, used_book = suggest_ambiguous(pool)
    result = pool.result
    result.unmatched_bank = [b.id for b in pool.free_bank.values() if b.id not in used_bank]
    result.unmatched_book = [b.line_id for b in pool.free_book.values() if b.line_id not in used_book]
    return result


class Ordered:
    """Values in the order of their keys (each key once), changed a few at a time by bisection rather
    than sorted again whole: a year holds thousands of proposals and rows, a change moves a few."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: list = []
        self.values: list = []

    def change(self, dropped: list, added: list[tuple]) -> None:
        """Remove the values of the `dropped` keys (present), then put in the `added` (key, value) pairs."""
        if len(dropped) + len(added) > 64:  # many (a year read whole): one sort
            gone = set(dropped)
            pairs = [pair for pair in zip(self.keys, self.values, strict=True) if pair[0] not in gone] + added
            pairs.sort(key=_first)
            self.keys = [key for key, _ in pairs]
            self.values = [value for _, value in pairs]
            return
        keys, values = self.keys, self.values
        for key in dropped:
            index = bisect_left(keys, key)
            if index == len(keys) or keys[index] != key:  # never delete a neighbour: fail loudly instead
                raise KeyError(key)
            del keys[index], values[index]
        for key, value in added:
            index = bisect_left(keys, key)
            keys.insert(index, key)
            values.insert(index, value)


def _first(pair: tuple):
    return pair[0]


# The parts of a `MatchResult`, as kept by `Matching` (each value with its place in a whole run).
PROPOSALS, SUGGESTIONS, UNMATCHED_BANK, UNMATCHED_BOOK, ANOMALIES = range(5)


@dataclass(frozen=True)
class _Outcome:
    """What one group of items gives, each value with its place in a whole run: its (key, value) pairs
    by part, and the items R1-R3 consumed (bank ids, and book line ids negated: see `Matching`)."""

    parts: tuple[tuple[tuple, ...], ...]
    consumed: frozenset[int] = frozenset()


def _first_rules(bank: list[BankItem], book: list[BookLine]) -> _Outcome:
    """R1-R3 on a group of items linked by a cheque number, a reference or a deposit slip."""
    pool = OpenItems.of(bank, book)
    for rule in SURE_RULES[:3]:
        rule(pool)
    result, order = pool.result, pool.order
    consumed = {item.id for item in bank if item.id not in pool.free_bank}
    consumed |= {-line.line_id for line in book if line.line_id not in pool.free_book}
    return _Outcome(
        (
            tuple(zip(order["proposals"], result.proposals, strict=True)),
            (),
            (),
            (),
            tuple(zip(order["anomalies"], result.anomalies, strict=True)),
        ),
        frozenset(consumed),
    )


def _last_rules(bank: list[BankItem], book: list[BookLine], words: tuple[dict, dict]) -> _Outcome:
    """R4 and R5 on the items of one amount that R1-R3 left, and what stays unmatched."""
    pool = OpenItems.of(bank, book)
    match_unique_amounts(pool)
    used_bank, used_book = suggest_ambiguous(pool, words)
    result, order = pool.result, pool.order
    return _Outcome(
        (
            tuple(zip(order["proposals"], result.proposals, strict=True)),
            tuple(zip(order["suggestions"], result.suggestions, strict=True)),
            tuple(((b.date, b.amount, b.id), b.id) for b in pool.free_bank.values() if b.id not in used_bank),
            tuple(
                ((b.date, b.amount, b.line_id), b.line_id)
                for b in pool.free_book.values()
                if b.line_id not in used_book
            ),
            (),
        )
    )


class Matching:
    """`match`, kept between requests and brought up to date by the items that changed (`update`): a
    change matches again only the items its rules can reach, and the result is the one `match`
    gives, in the same order (tests/test_pointage_groups.py).

    The rules run in two stages. R1-R3 pair a statement line with the cash-book lines its cheque
    number, its reference or its deposit slip name: they run on the groups of items linked that way
    (most items are linked to nothing). R4 and R5 pair items of one amount: they run per amount, on
    what R1-R3 left. A change matches again the linked group of the items it touched, then each
    amount whose items came, went, or were taken or freed by R1-R3. Each group's outcome keeps its
    values' places in a whole run (`OpenItems.order`), so the whole result is kept in order
    (`Ordered`) and moved by the changed groups only.

    Items are nodes: a statement line by its id, a cash-book line by its line id negated. Not shared
    between threads: the caller owns it while it updates it."""

    def __init__(self) -> None:
        self.bank: dict[int, BankItem] = {}
        self.book: dict[int, BookLine] = {}
        self.parts = tuple(Ordered() for _ in range(5))
        self._bank_by: dict[tuple, set[int]] = {}  # link key -> bank ids
        self._book_by: dict[tuple, set[int]] = {}  # link key -> book line ids
        self._references: dict[int, list[str]] = {}  # bank id -> its strong references (R2)
        self._slips: dict[int, list[str]] = {}  # bank id -> the deposit slip numbers of its label (R3)
        self._folded: dict[int, str] = {}  # book line id -> its folded label (R2)
        self._words: tuple[dict, dict] = ({}, {})  # the labels' words, statement lines' and book lines' (R5)
        self._group_of: dict[int, int] = {}  # node -> its R1-R3 group (linked nodes only)
        self._groups: dict[int, tuple[frozenset[int], _Outcome]] = {}
        self._amounts: dict[int, _Outcome] = {}  # R4-R5, per amount
        self._consumed: set[int] = set()  # nodes taken by R1-R3
        self._next_group = 0

    def result(self) -> MatchResult:
        return MatchResult(*(list(part.values) for part in self.parts))

    # -- links -----------------------------------------------------------------------------------

    def _bank_keys(self, item: BankItem) -> list[tuple]:
        keys = [("a", item.amount)]
        if item.cheque:
            keys.append(("c", item.cheque))
        keys += [("s", number) for number in self._slips[item.id]]
        if self._references[item.id]:
            keys.append(("r", item.amount))
        return keys

    @staticmethod
    def _book_keys(line: BookLine) -> list[tuple]:
        keys = [("a", line.amount)]
        if line.mode == "cheque" and line.number:
            keys.append(("c", line.number))
        if line.mode == "remise" and line.amount > 0:
            keys.append(("s", line.number))
        return keys

    def _index(self, index: dict, keys: list[tuple], ident: int, add: bool) -> None:
        for key in keys:
            if add:
                index.setdefault(key, set()).add(ident)
            else:
                found = index[key]
                found.discard(ident)
                if not found:
                    del index[key]

    def _neighbours(self, node: int) -> list[int]:
        """The nodes R1-R3 can pair `node` with (a statement line's cash-book lines, and back)."""
        if node > 0:
            item = self.bank[node]
            book_by = self._book_by
            found = [-ident for ident in book_by.get(("c", item.cheque), ())] if item.cheque else []
            for number in self._slips[node]:
                found += [-ident for ident in book_by.get(("s", number), ())]
            references = self._references[node]
            if references:
                for ident in book_by.get(("a", item.amount), ()):
                    if any(ref in self._folded[ident] for ref in references):
                        found.append(-ident)
            return found
        line = self.book[-node]
        bank_by = self._bank_by
        found = []
        if line.mode == "cheque" and line.number:
            found += bank_by.get(("c", line.number), ())
        if line.mode == "remise" and line.amount > 0:
            found += bank_by.get(("s", line.number), ())
        label = self._folded[line.line_id]
        for ident in bank_by.get(("r", line.amount), ()):
            if any(ref in label for ref in self._references[ident]):
                found.append(ident)
        return found

    # -- update ----------------------------------------------------------------------------------

    def update(
        self, bank_gone: list[int], bank_new: list[BankItem], book_gone: list[int], book_new: list[BookLine]
    ) -> list[tuple[list, list]]:
        """Take the changes (a changed item is gone and new); per part, the keys whose values went
        and the (key, value) pairs that came, those of the changed items always among them (an
        item's values show what it says)."""
        amounts: set[int] = set()
        dissolved: list[_Outcome] = []
        region: set[int] = set()
        for ident in bank_gone:
            item = self.bank.pop(ident)
            self._index(self._bank_by, self._bank_keys(item), ident, add=False)
            del self._references[ident], self._slips[ident]
            self._words[0].pop(ident, None)
            amounts.add(item.amount)
            self._dissolve(self._group_of.get(ident), region, dissolved)
        for ident in book_gone:
            line = self.book.pop(ident)
            self._index(self._book_by, self._book_keys(line), ident, add=False)
            del self._folded[ident]
            self._words[1].pop(ident, None)
            amounts.add(line.amount)
            self._dissolve(self._group_of.get(-ident), region, dissolved)
        for item in bank_new:
            self.bank[item.id] = item
            self._references[item.id] = [ref for ref in fold(item.reference).split() if len(ref) >= 6]
            self._slips[item.id] = _slip_numbers(item) if item.amount > 0 else []
            self._index(self._bank_by, self._bank_keys(item), item.id, add=True)
            amounts.add(item.amount)
        for line in book_new:
            self.book[line.line_id] = line
            self._folded[line.line_id] = fold(line.label)
            self._index(self._book_by, self._book_keys(line), line.line_id, add=True)
            amounts.add(line.amount)
        new = {item.id for item in bank_new} | {-line.line_id for line in book_new}
        region |= new
        for node in new:
            for other in self._neighbours(node):
                region.add(other)
                self._dissolve(self._group_of.get(other), region, dissolved)
        region = {node for node in region if (node in self.bank if node > 0 else -node in self.book)}
        made = self._regroup(region, dissolved)
        was = set().union(*(outcome.consumed for outcome in dissolved))
        now = set().union(*(outcome.consumed for outcome in made))
        for node in was ^ now:  # taken or freed by R1-R3 (a gone one's amount is in already)
            found = self.bank.get(node) if node > 0 else self.book.get(-node)
            if found is not None:
                amounts.add(found.amount)
        for amount in amounts:
            dissolved.extend(self._rematch_amount(amount, made))
        return self._apply(dissolved, made, new)

    def _dissolve(self, group: int | None, region: set[int], dissolved: list[_Outcome]) -> None:
        """Forget a R1-R3 group: its nodes are grouped again."""
        if group is None or group not in self._groups:
            return
        nodes, outcome = self._groups.pop(group)
        for node in nodes:
            self._group_of.pop(node, None)
        self._consumed -= outcome.consumed
        region |= nodes
        dissolved.append(outcome)

    def _regroup(self, region: set[int], dissolved: list[_Outcome]) -> list[_Outcome]:
        """Group the nodes of `region` by their links and run R1-R3 on each group that has a link."""
        made = []
        seen: set[int] = set()
        for start in list(region):
            if start in seen:
                continue
            seen.add(start)
            nodes, stack = [start], [start]
            while stack:
                for other in self._neighbours(stack.pop()):
                    if other not in seen:
                        seen.add(other)
                        self._dissolve(self._group_of.get(other), region, dissolved)  # never, but safe
                        nodes.append(other)
                        stack.append(other)
            if len(nodes) == 1:  # linked to nothing: R1-R3 take nothing
                continue
            outcome = _first_rules([self.bank[n] for n in nodes if n > 0], [self.book[-n] for n in nodes if n < 0])
            self._next_group += 1
            self._groups[self._next_group] = (frozenset(nodes), outcome)
            for node in nodes:
                self._group_of[node] = self._next_group
            self._consumed |= outcome.consumed
            made.append(outcome)
        return made

    def _rematch_amount(self, amount: int, made: list[_Outcome]) -> list[_Outcome]:
        """Run R4-R5 again on the items of `amount` that R1-R3 left; returns the outcome it replaces."""
        consumed = self._consumed
        bank = [self.bank[i] for i in self._bank_by.get(("a", amount), ()) if i not in consumed]
        book = [self.book[i] for i in self._book_by.get(("a", amount), ()) if -i not in consumed]
        former = self._amounts.pop(amount, None)
        if bank or book:
            self._amounts[amount] = outcome = _last_rules(bank, book, self._words)
            made.append(outcome)
        return [former] if former is not None else []

    def _apply(self, dissolved: list[_Outcome], made: list[_Outcome], new: set[int]) -> list[tuple[list, list]]:
        changes = []
        for index, part in enumerate(self.parts):
            before = {key: value for outcome in dissolved for key, value in outcome.parts[index]}
            after = {key: value for outcome in made for key, value in outcome.parts[index]}
            for key in before.keys() & after.keys():
                if before[key] == after[key] and not _touches(index, key, after[key], new):
                    del before[key], after[key]
            dropped, added = list(before), list(after.items())
            part.change(dropped, added)
            changes.append((dropped, added))
        return changes


def _touches(part: int, key: tuple, value, nodes: set[int]) -> bool:
    """Whether a value of `part` shows one of these nodes (whose content may have changed)."""
    if part in (PROPOSALS, SUGGESTIONS):
        return value.bank_id in nodes or any(-line_id in nodes for line_id in value.line_ids)
    if part == UNMATCHED_BOOK:
        return -value in nodes
    return key[2] in nodes  # a statement line's (date, amount, id)


# -- confirming and clearing ---------------------------------------------------------------------


LINE_NOT_FOUND = "Ligne du cahier introuvable."
OPENING_NOT_CLEARED = "Le report à nouveau ne se pointe pas."


def _bank_lines(session: Session, coop_id: int, line_ids: list[int]) -> list[EntryLine]:
    lines = session.scalars(
        sa.select(EntryLine)
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(EntryLine.id.in_(line_ids), Entry.coop_id == coop_id, Account.code == BANK)
    ).all()
    if len(lines) != len(set(line_ids)):
        raise DomainError(LINE_NOT_FOUND)
    return list(lines)


# -- a closed year is frozen ---------------------------------------------------------------------


def closed_year_of(session: Session, coop_id: int, day: date) -> str | None:
    """The label of the coop's closed year that contains `day` (« 2024-2025 »), or None."""
    start = current_start_year(day)
    closed = session.scalar(
        sa.select(Ledger.id)
        .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
        .where(Ledger.coop_id == coop_id, Ledger.status == "closed", SchoolYear.start_year == start)
    )
    return f"{start}-{start + 1}" if closed is not None else None


def _refuse_closed_clearing(session: Session, coop_id: int, on: date) -> None:
    """A new clearing dated inside a closed year would change that year's reconciliation at 31 August."""
    year = closed_year_of(session, coop_id, on)
    if year:
        raise DomainError(
            f"Le {on:%d/%m/%Y} est dans l'année {year}, qui est clôturée : son rapprochement ne change plus. "
            "Pointez cette ligne à la date du relevé de l'année en cours sur lequel elle figure.",
            field="on",
        )


def _refuse_closed_unclearing(session: Session, coop_id: int, line: EntryLine) -> None:
    """A line cleared inside a closed year counts as cleared in that year's stored reconciliation."""
    year = closed_year_of(session, coop_id, line.cleared_on) if line.cleared_on else None
    if year:
        raise DomainError(
            f"Cette ligne a été pointée le {line.cleared_on:%d/%m/%Y}, dans l'année {year} qui est clôturée : "
            "son pointage ne peut plus changer. Si c'est une erreur, demandez à l'OCCE 85 de rouvrir l'année."
        )


def confirm_match(
    session: Session, coop_id: int, bank_id: int, line_ids: list[int], *, by: User | None, ip: str = ""
) -> None:
    """Clear `line_ids` with the statement line: same total, all uncleared, the statement line still open
    and not dated inside a closed year."""
    item = session.scalar(sa.select(StatementLine).where(StatementLine.id == bank_id, StatementLine.coop_id == coop_id))
    if item is None:
        raise DomainError("Ligne de relevé introuvable.")
    year = closed_year_of(session, coop_id, item.date)
    if year:
        raise DomainError(
            f"La ligne du relevé du {item.date:%d/%m/%Y} est dans l'année {year}, qui est clôturée : "
            "elle ne peut plus être pointée."
        )
    if session.scalar(sa.select(EntryLine.id).where(EntryLine.statement_line_id == item.id).limit(1)):
        raise DomainError("Cette ligne du relevé est déjà pointée.")
    lines = _bank_lines(session, coop_id, line_ids)
    if not lines or any(line.cleared_on is not None for line in lines):
        raise DomainError("Une des lignes du cahier est déjà pointée.")
    if sum(line.amount_cents for line in lines) != item.amount_cents:
        raise DomainError("Les montants ne correspondent pas : rien n'a été pointé.")
    for line in lines:
        line.cleared_on = item.date
        line.statement_line_id = item.id
    session.flush()
    audit.record(
        session,
        "pointage.matched",
        actor=by,
        coop_id=coop_id,
        entity="statement_line",
        entity_id=item.id,
        after={"lines": sorted(line_ids), "date": item.date.isoformat()},
        ip=ip,
    )


@dataclass
class Confirmation:
    """What `confirm_matches` did: how many matches were cleared, and each refused one with its reason."""

    done: int = 0
    refused: list[tuple[int, tuple[int, ...], str]] = field(default_factory=list)  # bank id, line ids, message


def confirm_matches(
    session: Session, coop_id: int, matches: list[tuple[int, tuple[int, ...]]], *, by: User | None, ip: str = ""
) -> Confirmation:
    """Confirm each (statement line, cash-book lines) match on its own savepoint: a refused one (see
    `confirm_match`) changes nothing and does not stop the others."""
    outcome = Confirmation()
    for bank_id, line_ids in matches:
        try:
            with session.begin_nested():
                confirm_match(session, coop_id, bank_id, list(line_ids), by=by, ip=ip)
        except DomainError as exc:
            outcome.refused.append((bank_id, line_ids, exc.message))
        else:
            outcome.done += 1
    return outcome


def foreign_lines(
    session: Session, coop_id: int, statement_line_ids: list[int], entry_line_ids: list[int]
) -> list[tuple[str, int]]:
    """Which of these statement and cash-book lines exist but belong to another coop, as (entity, id)
    (for the audit of a refused access; missing ids are not listed)."""
    foreign = [
        ("statement_line", ident)
        for ident in session.scalars(
            sa.select(StatementLine.id).where(
                StatementLine.id.in_(statement_line_ids), StatementLine.coop_id != coop_id
            )
        )
    ]
    foreign += [
        ("entry_line", ident)
        for ident in session.scalars(
            sa.select(EntryLine.id)
            .join(Entry, Entry.id == EntryLine.entry_id)
            .where(EntryLine.id.in_(entry_line_ids), Entry.coop_id != coop_id)
        )
    ]
    return foreign


def statement_line_of_coop(session: Session, coop_id: int, line_id: int) -> StatementLine | None:
    """The statement line `line_id` if it belongs to the coop, else None (another coop's looks missing)."""
    return session.scalar(sa.select(StatementLine).where(StatementLine.id == line_id, StatementLine.coop_id == coop_id))


def clear_line(session: Session, coop_id: int, line_id: int, on: date, *, by: User | None, ip: str = "") -> EntryLine:
    """Point one bank line by hand, as seen on the statement of `on`.

    When exactly one open statement line has the same amount within the matching window, it is linked
    too, so that it is not offered again as a line missing from the cash-book. A statement dated before
    the operation cannot show it: refused (DomainError on `on`), the date is never moved silently.
    """
    [line] = _bank_lines(session, coop_id, [line_id])
    if line.entry.kind == "opening":
        raise DomainError(OPENING_NOT_CLEARED)
    _refuse_closed_unclearing(session, coop_id, line)
    _refuse_closed_clearing(session, coop_id, on)
    if on < line.entry.date:
        raise DomainError(
            f"L'opération {line.entry.piece} est datée du {line.entry.date:%d/%m/%Y}, après le relevé du "
            f"{on:%d/%m/%Y} : elle ne peut pas y figurer. Indiquez la date du relevé sur lequel elle apparaît "
            "(case « Date du relevé »), ou corrigez la date de l'opération si elle est fausse.",
            field="on",
        )
    line.cleared_on = on
    linked = sa.select(EntryLine.statement_line_id).where(EntryLine.statement_line_id.is_not(None))
    entry_date = line.entry.date
    twins = session.scalars(
        sa.select(StatementLine).where(
            StatementLine.coop_id == coop_id,
            StatementLine.amount_cents == line.amount_cents,
            StatementLine.id.not_in(linked),
            StatementLine.date >= entry_date - timedelta(days=WINDOW_BEFORE),
            StatementLine.date <= entry_date + timedelta(days=max(WINDOW_AFTER, CHEQUE_MARGIN + 60)),
        )
    ).all()
    if len(twins) == 1:
        line.statement_line_id = twins[0].id
    session.flush()
    audit.record(
        session,
        "pointage.cleared",
        actor=by,
        coop_id=coop_id,
        entity="entry_line",
        entity_id=line.id,
        after={"cleared_on": on.isoformat(), "statement_line": line.statement_line_id},
        ip=ip,
    )
    return line


def unclear_line(session: Session, coop_id: int, line_id: int, *, by: User | None, ip: str = "") -> EntryLine:
    """Undo the pointage of one bank line (and its link to a statement line); refused for a line
    cleared inside a closed year."""
    [line] = _bank_lines(session, coop_id, [line_id])
    _refuse_closed_unclearing(session, coop_id, line)
    before = line.cleared_on
    line.cleared_on = None
    line.statement_line_id = None
    session.flush()
    audit.record(
        session,
        "pointage.uncleared",
        actor=by,
        coop_id=coop_id,
        entity="entry_line",
        entity_id=line.id,
        before={"cleared_on": before.isoformat() if before else None},
        ip=ip,
    )
    return line


# -- the summary box (« rectangle jaune ») -------------------------------------------------------


@dataclass(frozen=True)
class UnclearedLine:
    """A bank line not cleared by the reconciliation date (amount signed: money in > 0)."""

    line_id: int
    entry_id: int
    piece: str
    date: date
    cheque: str
    label: str
    amount: int
    year_label: str
    # Its pointage as it stands now (after the reconciliation date, or none): not part of the
    # reconciliation at that date, so two reconciliations at the same date compare equal.
    cleared_on: date | None = field(default=None, compare=False)


class _StatementCheck:
    """What the summary box says of a statement balance, from `book_balance`, `uncleared_total` and
    `statement_balance` (shared by `Reconciliation` and `Summary`)."""

    book_balance: int
    uncleared_total: int
    statement_balance: int | None

    @property
    def expected_statement(self) -> int:
        """What the statement should show: the book balance minus what the bank has not seen yet."""
        return self.book_balance - self.uncleared_total

    @property
    def difference(self) -> int | None:
        """Statement balance minus the expected one; None while no statement balance is known."""
        return None if self.statement_balance is None else self.statement_balance - self.expected_statement

    @property
    def is_reconciled(self) -> bool:
        return self.difference == 0


@dataclass(frozen=True)
class Reconciliation(_StatementCheck):
    """The bank reconciliation at `on`: the statement should show `expected_statement`."""

    on: date
    book_balance: int
    uncleared: tuple[UnclearedLine, ...]
    statement_balance: int | None

    @property
    def uncleared_total(self) -> int:
        return sum(line.amount for line in self.uncleared)

    @property
    def uncleared_count(self) -> int:
        return len(self.uncleared)

    @property
    def has_uncleared_receipts(self) -> bool:
        """Money in booked but not on the statement by the reconciliation date: rare, worth a warning."""
        return any(line.amount > 0 for line in self.uncleared)


@dataclass(frozen=True)
class Summary(_StatementCheck):
    """The summary box of the pointage page: a `Reconciliation`'s figures without its lines (from
    `PointageYear.figures`, kept by date and moved by each change)."""

    on: date
    book_balance: int
    uncleared_count: int
    uncleared_total: int
    statement_balance: int | None


def uncleared_lines(session: Session, coop_id: int, on: date, *, last_start_year: int) -> list[UnclearedLine]:
    """The coop's bank lines dated ≤ `on` not cleared by `on` (none cleared, or cleared after), in the
    ledgers up to the year starting in `last_start_year`; the opening balance is not a movement."""
    rows = session.execute(
        sa.select(
            EntryLine.id,
            Entry.id,
            Entry.piece,
            Entry.date,
            Entry.cheque_number,
            Entry.label,
            EntryLine.amount_cents,
            SchoolYear.start_year,
            EntryLine.cleared_on,
        )
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .join(Ledger, Ledger.id == Entry.ledger_id)
        .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
        .where(
            Entry.coop_id == coop_id,
            Account.code == BANK,
            Entry.kind != "opening",
            Entry.date <= on,
            SchoolYear.start_year <= last_start_year,
            sa.or_(EntryLine.cleared_on.is_(None), EntryLine.cleared_on > on),
        )
        .order_by(Entry.date, Entry.piece, EntryLine.id)
    ).all()
    return [
        UnclearedLine(line_id, entry_id, piece, day, cheque, label, int(amount), f"{start}-{start + 1}", cleared)
        for line_id, entry_id, piece, day, cheque, label, amount, start, cleared in rows
    ]


def reconcile(session: Session, ledger: Ledger, on: date, statement_balance: int | None) -> Reconciliation:
    """The one reconciliation « statement = book − uncleared » at `on`: the ledger's bank balance at
    `on` (its opening balance included) minus the coop's bank lines dated up to `on`, of this year or
    an earlier one, not cleared by `on` (a line cleared later still counts as uncleared at `on`).

    Used by the pointage summary box and by the closing (at 31 August); `statement_balance` is the
    balance printed on the statement at `on`, or None when it is not known yet. From the year's
    bank book (`bank_book`) when `on` lies in the year or after, which it always does but for a
    date typed before the year began."""
    if on >= ledger.school_year.starts_on:
        return bank_book(session, ledger).reconciliation(on, statement_balance)
    book = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(EntryLine.amount_cents), 0))
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(Entry.ledger_id == ledger.id, Account.code == BANK, Entry.date <= on)
    )
    lines = uncleared_lines(session, ledger.coop_id, on, last_start_year=ledger.school_year.start_year)
    return Reconciliation(on, int(book), tuple(lines), statement_balance)


def carried_lines(session: Session, ledger: Ledger) -> list[UnclearedLine]:
    """Bank lines of earlier years that were still uncleared when `ledger`'s year began: they are
    pointed in this year, never re-entered. `cleared_on` tells whether that is done yet."""
    return bank_book(session, ledger).carried()


def summary_date(ledger: Ledger, today: date) -> date:
    """The date of the summary box: the statement date typed there, else today (the year's last day
    for a past year). A line pointed by hand is cleared on this date, so it counts at once there."""
    return ledger.reconciliation_date or min(today, ledger.school_year.ends_on)


def summary(session: Session, ledger: Ledger, today: date, book: BankBook | None = None) -> Reconciliation:
    """The figures of the summary box, with the statement balance typed there (if any); from `book`
    when the caller already read it."""
    typed = ledger.reconciliation_balance_cents if ledger.reconciliation_date else None
    on = summary_date(ledger, today)
    if book is not None and on >= ledger.school_year.starts_on:
        return book.reconciliation(on, typed)
    return reconcile(session, ledger, on, typed)


def save_statement_balance(
    session: Session, ledger: Ledger, on: date, balance: int, *, by: User | None
) -> Reconciliation:
    """Remember the statement date and balance the coop typed in the summary box; returns the
    reconciliation at that date. Raises DomainError (field `on`) for a date outside the ledger's year
    or a closed year (its statement box is read-only)."""
    if not ledger.is_open:
        raise DomainError(
            f"L'année {ledger.school_year.label} est clôturée : le solde de son relevé ne change plus.", field="on"
        )
    if not ledger.school_year.contains(on):
        raise DomainError(f"La date du relevé doit être dans l'année {ledger.school_year.label}.", field="on")
    ledger.reconciliation_date = on
    ledger.reconciliation_balance_cents = balance
    session.flush()
    audit.record(
        session,
        "pointage.statement_balance",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        after={"date": on.isoformat(), "balance": balance},
    )
    return reconcile(session, ledger, on, balance)


# -- creating the missing entry from a statement line (« Créer l'opération ») --------------------


@dataclass(frozen=True)
class EntrySuggestion:
    """What the entry form is prefilled with for a statement line that has no entry."""

    kind: str
    payment_mode: str
    date: date
    label: str
    bank_amount: int
    splits: tuple[tuple[str, int], ...]


_FEE_WORDS = ("FRAIS", "COMMISSION", "AGIOS", "COTIS CARTE", "COTISATION CARTE", "TENUE DE COMPTE")


def suggest_entry(item: StatementLine, membership_split: tuple[int, int] | None = None) -> EntrySuggestion:
    """Prefill for a missing entry: bank fees on 627, the OCCE debit on 6281 (cotisation) + 61681
    (assurance, split as in the coop's membership when `membership_split` is given), interest on 768."""
    label = fold(item.label)
    amount = abs(item.amount_cents)
    if item.amount_cents < 0:
        kind = "expense"
        mode = (
            "carte"
            if " CB " in f" {label} " or "CARTE" in label
            else "virement"
            if label.startswith("VIR")
            else "prelevement"
        )
        if "OCCE" in label:
            cotisation, insurance = (
                membership_split if membership_split and sum(membership_split) == amount else (amount, 0)
            )
            splits = tuple((code, cents) for code, cents in (("6281", cotisation), ("61681", insurance)) if cents)
        elif any(word in label for word in _FEE_WORDS):
            splits = (("627", amount),)
        else:
            splits = ()
    else:
        kind = "receipt"
        mode = "remise" if "REMISE" in label else "especes" if "ESPECES" in label else "virement"
        splits = (("768", amount),) if "INTERET" in label else ()
    return EntrySuggestion(kind, mode, item.date, item.label[:200], amount, splits)


class PointageLine(NamedTuple):
    line_id: int
    entry_id: int
    date: date
    piece: str
    label: str
    mode: str
    number: str
    amount: int
    cleared_on: date | None
    earlier_year: bool

    @classmethod
    def of(cls, r: BankRow, ledger_id: int) -> PointageLine:
        """A bank line of the year's book as the page lists it (`ledger_id`: the year's ledger)."""
        return cls(r.line_id, r.entry_id, r.date, r.piece, r.label, r.mode, r.number, r.amount, r.cleared_on,
                   r.ledger_id != ledger_id)  # fmt: skip


def pointage_lines(session: Session, ledger: Ledger, *, line_id: int | None = None) -> list[PointageLine]:
    """The bank lines of the ledger's year, plus those of earlier years still uncleared at its start
    (or cleared during it): they are pointed here, never entered again. With `line_id`, only that
    line, if it is one of them."""
    return bank_book(session, ledger, line_id=line_id).pointage_lines()


# -- the year's bank book: every bank line that matters to a year, read once ---------------------


class BankRow(NamedTuple):
    """A bank line (account 512) of the cash-book, as read once for a year (amount signed: money in > 0)."""

    line_id: int
    entry_id: int
    date: date
    piece: str
    label: str
    mode: str
    number: str
    amount: int
    cleared_on: date | None
    ledger_id: int
    kind: str
    link: int | None  # the statement line it is pointed with (`EntryLine.statement_line_id`)


def _bank_row_columns() -> tuple:
    """What a `BankRow` reads after its line and entry ids, in its order (`bank_book`, `_changed_lines`)."""
    return (
        Entry.date,
        Entry.piece,
        Entry.label,
        Entry.payment_mode,
        Entry.cheque_number,
        EntryLine.amount_cents,
        EntryLine.cleared_on,
        Entry.ledger_id,
        Entry.kind,
        EntryLine.statement_line_id,
    )


@dataclass(frozen=True)
class BankBook:
    """The bank lines of a ledger's year (its opening balance included) and those of earlier years
    still uncleared when it began (« carried »), in (date, line id) order: what the pointage page,
    its summary box and the reconciliation need, read in one statement."""

    ledger_id: int
    starts_on: date
    rows: tuple[BankRow, ...]
    start_years: dict[int, int]  # ledger id -> the start year of its school year
    bank_account: int  # the id of account 512 they were read with

    def movements(self) -> list[BankRow]:
        """Every line but the opening balance."""
        return [row for row in self.rows if row.kind != "opening"]

    def pointage_lines(self) -> list[PointageLine]:
        return [PointageLine.of(r, self.ledger_id) for r in self.movements()]

    def book_lines(self) -> list[BookLine]:
        """The uncleared lines, for matching."""
        numbers: dict[str, str] = {}  # cheque and slip numbers repeat (a slip's lines, no number at all)

        def number(raw: str) -> str:
            found = numbers.get(raw)
            if found is None:
                found = numbers[raw] = normalise_number(raw)
            return found

        return [
            BookLine(r.line_id, r.entry_id, r.date, r.amount, r.mode, number(r.number), r.label, r.piece)
            for r in self.movements()
            if r.cleared_on is None
        ]

    def _uncleared(self, rows, on: date) -> list[UnclearedLine]:
        found = [r for r in rows if r.date <= on and (r.cleared_on is None or r.cleared_on > on)]
        found.sort(key=lambda r: (r.date, r.piece, r.line_id))
        return [
            UnclearedLine(
                r.line_id,
                r.entry_id,
                r.piece,
                r.date,
                r.number,
                r.label,
                int(r.amount),
                f"{self.start_years[r.ledger_id]}-{self.start_years[r.ledger_id] + 1}",
                r.cleared_on,
            )
            for r in found
        ]

    def reconciliation(self, on: date, statement_balance: int | None) -> Reconciliation:
        """`reconcile` at `on` (on or after the year's first day)."""
        balance = sum(r.amount for r in self.rows if r.ledger_id == self.ledger_id and r.date <= on)
        return Reconciliation(on, int(balance), tuple(self._uncleared(self.movements(), on)), statement_balance)

    def carried(self) -> list[UnclearedLine]:
        earlier = [r for r in self.movements() if r.ledger_id != self.ledger_id]
        return self._uncleared(earlier, self.starts_on - timedelta(days=1))


class _Scope(NamedTuple):
    bank_account: int  # the id of account 512
    earlier: list[int]  # ledger ids
    carried: list[int]  # line ids
    start_years: dict[int, int]  # ledger id -> the start year of its school year


def _earlier_scope(session: Session, ledger: Ledger) -> _Scope:
    """Where the lines carried into `ledger`'s year lie, without reading the coop's history: the
    earlier ledgers not closed yet, back to the newest closed one, whose stored closing lists the
    lines still uncleared at its 31 August (line ids). Returns those ledger ids, those line ids,
    the start year of every ledger of the coop up to this one, and the bank account's id. A closed
    ledger without stored figures (closed before they were stored) is read as an open one."""
    year = ledger.school_year.start_year
    newest_closed = (
        sa.select(Ledger.id)
        .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
        .where(Ledger.coop_id == ledger.coop_id, Ledger.status == "closed", SchoolYear.start_year < year)
        .order_by(SchoolYear.start_year.desc())
        .limit(1)
        .scalar_subquery()
    )
    bank = sa.select(Account.id).where(Account.code == BANK).scalar_subquery()
    rows = session.execute(
        sa.select(Ledger.id, SchoolYear.start_year, LedgerClosing.figures, bank)
        .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
        .outerjoin(
            LedgerClosing,
            sa.and_(
                LedgerClosing.ledger_id == Ledger.id,
                LedgerClosing.superseded_at.is_(None),
                Ledger.id == newest_closed,
            ),
        )
        .where(Ledger.coop_id == ledger.coop_id, SchoolYear.start_year <= year)
        .order_by(SchoolYear.start_year.desc(), LedgerClosing.id.desc())
    ).all()
    start_years = {ident: start for ident, start, _, _ in rows}
    ledgers: list[int] = []
    for ident, _, figures, _ in rows:
        if ident in ledgers or ident == ledger.id:
            continue
        if figures is not None:
            carried = [line["line_id"] for line in figures["reconciliation"]["uncleared"]]
            return _Scope(rows[0][3], ledgers, carried, start_years)
        ledgers.append(ident)
    return _Scope(rows[0][3], ledgers, [], start_years)


def bank_book(session: Session, ledger: Ledger, *, line_id: int | None = None, carried: bool = False) -> BankBook:
    """The year's bank book (`BankBook`): its cost follows the open year and the lines carried into
    it, never the coop's closed years nor other coops. With `line_id`, only that line, if it is one;
    with `carried`, only the lines carried into the year (those of earlier ledgers)."""
    start = ledger.school_year.starts_on
    scope = _earlier_scope(session, ledger)
    # The lines are reached through their entries (by ledger, or by id), never through the index of
    # every coop's bank lines: PostgreSQL sees the account's id (half of all lines, not worth an index);
    # SQLite, without statistics, needs `+ 0` to leave that index alone.
    account = EntryLine.account_id + 0 if session.get_bind().dialect.name == "sqlite" else EntryLine.account_id

    def lines():
        query = (
            sa.select(EntryLine.id, Entry.id, *_bank_row_columns())
            .join(Entry, Entry.id == EntryLine.entry_id)
            .where(account == scope.bank_account)
        )
        return query if line_id is None else query.where(EntryLine.id == line_id)

    uncleared_at_start = sa.or_(EntryLine.cleared_on.is_(None), EntryLine.cleared_on >= start)
    this_year = lines().where(  # the ledgers are the coop's own (`_earlier_scope`)
        Entry.ledger_id.in_([*([] if carried else [ledger.id]), *scope.earlier]),
        sa.or_(Entry.ledger_id == ledger.id, sa.and_(Entry.kind != "opening", uncleared_at_start)),
    )
    # The closing of one of the coop's ledgers listed these lines: read by id, never by coop.
    carried_in = lines().where(EntryLine.id.in_(scope.carried), Entry.kind != "opening", uncleared_at_start)
    session.flush()  # what `session.execute` would autoflush; the rows are then read without ORM loading
    found = session.connection().execute(sa.union_all(this_year, carried_in)).all()
    rows = sorted(map(BankRow._make, found), key=lambda r: (r.date, r.line_id))
    return BankBook(ledger.id, start, tuple(rows), scope.start_years, scope.bank_account)


def _year_state_query() -> sa.Select:
    coop_id = sa.bindparam("coop", type_=sa.Integer)
    closing = (
        sa.select(sa.func.max(LedgerClosing.id))
        .where(LedgerClosing.ledger_id == Ledger.id, LedgerClosing.superseded_at.is_(None))
        .correlate(Ledger)
        .scalar_subquery()
    )
    imports = (
        sa.select(
            sa.func.count(Statement.id).label("count"),
            sa.func.max(Statement.id).label("newest"),
            sa.func.max(Statement.imported_at).label("at"),
        )
        .where(Statement.coop_id == coop_id)
        .subquery()
    )
    return (
        sa.select(
            Ledger,
            Ledger.id,
            Ledger.created_at,
            Ledger.revision,
            Ledger.status,
            closing,
            imports.c.count,
            imports.c.newest,
            imports.c.at,
        )
        .join(Ledger.school_year)
        .join(imports, sa.true())
        .where(Ledger.coop_id == coop_id)
        .order_by(Ledger.id)
        .options(contains_eager(Ledger.school_year))
    )


_YEAR_STATE: list[sa.Select] = []  # built once: building it costs more than running it


def year_state(session: Session, coop_id: int, year: int) -> tuple[Ledger | None, tuple]:
    """The coop's ledger of the year starting in `year` (its school year loaded), or None, and what
    the year's pointage page is built from, read in one statement: every ledger of the coop (its
    revision, bumped by any change to its entries and their lines, pointage and links to statement
    lines included; its status and current closing, which say where the carried lines lie) and the
    coop's statements (their number, newest id and import time: statement lines are only ever added
    with a statement of their own). Two reads with the same state see the same bank book, the same
    open statement lines and so the same proposals. Its cost follows the coop's ledgers and imports,
    never its lines nor other coops."""
    if not _YEAR_STATE:
        _YEAR_STATE.append(_year_state_query())
    rows = session.execute(_YEAR_STATE[0], {"coop": coop_id}).all()
    ledger = next((row[0] for row in rows if row[0].school_year.start_year == year), None)
    return ledger, tuple(tuple(row[1:]) for row in rows)


def _revision(state: tuple, ledger_id: int) -> int:
    return next(row[2] for row in state if row[0] == ledger_id)


def _only_revisions_moved(before: tuple, after: tuple) -> bool:
    """Whether the state moved by ledgers' revisions only (entries changed; no ledger came or went,
    none was closed or reopened, no statement was imported)."""
    return len(before) == len(after) and all(
        old[:2] == new[:2] and old[3:] == new[3:] and new[2] >= old[2] for old, new in zip(before, after, strict=True)
    )


class YearChange(NamedTuple):
    """What changed in a kept `PointageYear`: a changed line or statement line is both gone and new."""

    rows_gone: list[BankRow]
    rows_new: list[BankRow]
    items_gone: list[BankItem]
    items_new: list[BankItem]


@dataclass
class PointageYear:
    """What a year's pointage page shows, as of a `state` (`year_state`): its bank book by line and
    its open statement lines. Kept between requests and brought up to date by `pointage_year`, in
    place: the caller owns it while it is updated (`KeptYears.take`), and nothing else holds it (a
    page's `Body` keeps its own tuple of the lines)."""

    ledger_key: tuple  # (ledger id, created_at): SQLite may reuse a deleted ledger's id
    state: tuple
    ledger_id: int
    bank_account: int
    rows: dict[int, BankRow]  # line id -> the line (the year's, and those carried into it)
    entries: dict[int, tuple[int, ...]]  # each entry of the ledger -> its bank line ids
    items: dict[int, BankItem] | None  # open statement lines of the year; None for a closed year

    def figures(self, on: date, rows=None) -> tuple[int, int, int]:
        """`summary_figures` of the year's lines, or of `rows` when given."""
        return summary_figures(self.ledger_id, self.rows.values() if rows is None else rows, on)

    def moved(self, figures: tuple[int, int, int], on: date, change: YearChange) -> tuple[int, int, int]:
        """`figures` at `on` moved by `change` (the lines it touched only)."""
        gone, new = self.figures(on, change.rows_gone), self.figures(on, change.rows_new)
        return tuple(value - before + after for value, before, after in zip(figures, gone, new, strict=True))


def summary_figures(ledger_id: int, rows: Iterable[BankRow], on: date) -> tuple[int, int, int]:
    """The summary box's figures at `on` (`BankBook.reconciliation`'s): the bank balance of the ledger
    `ledger_id`, and the number and total of the lines not cleared by then, from the year's bank lines
    (its own and those carried into it)."""
    balance = count = total = 0
    for r in rows:
        if r.date > on:
            continue
        if r.ledger_id == ledger_id:
            balance += r.amount
        if r.kind != "opening" and (r.cleared_on is None or r.cleared_on > on):
            count += 1
            total += r.amount
    return balance, count, total


def pointage_year(
    session: Session, ledger: Ledger, kept: PointageYear | None, state: tuple
) -> tuple[PointageYear, YearChange]:
    """The year as of `state`, and what changed since `kept`. When only entries changed (ledgers'
    revisions alone moved), `kept` is brought up to date: the ledger's own lines from the entries
    stamped with a later revision (`Entry.ledger_revision`), in one statement that also counts the
    ledger's entries (a count that does not add up means deletions, then read by id, or rows
    written without a stamp, then the year is read whole; as for the classic view, rows written
    without a stamp in the same interval as a deletion go unseen: stamp what you write), and the
    statement lines those lines let
    go, in another; when an earlier ledger changed too (a carried line pointed), the carried lines
    and the open statement lines are read again. Anything else (a ledger opened, closed or reopened,
    an import) reads the year whole, compared with `kept`. Never stale: what is read is keyed by the
    revisions read before it."""
    if kept is not None and kept.ledger_key != (ledger.id, ledger.created_at):
        kept = None
    if kept is not None and _only_revisions_moved(kept.state, state):
        change = _changes_since(session, ledger, kept, state)
        if change is not None:
            return kept, change
    fresh = _read_year(session, ledger, state)
    if kept is None:
        return fresh, YearChange([], list(fresh.rows.values()), [], list((fresh.items or {}).values()))
    old_items, new_items = kept.items or {}, fresh.items or {}
    return fresh, YearChange(
        [r for line_id, r in kept.rows.items() if fresh.rows.get(line_id) != r],
        [r for line_id, r in fresh.rows.items() if kept.rows.get(line_id) != r],
        [item for ident, item in old_items.items() if new_items.get(ident) != item],
        [item for ident, item in new_items.items() if old_items.get(ident) != item],
    )


def _read_year(session: Session, ledger: Ledger, state: tuple) -> PointageYear:
    book = bank_book(session, ledger)
    ids = session.connection().execute(sa.select(Entry.id).where(Entry.ledger_id == ledger.id)).scalars()
    entries: dict[int, tuple[int, ...]] = dict.fromkeys(ids, ())
    for row in book.rows:
        if row.ledger_id == ledger.id:  # an entry deleted between the two reads (PostgreSQL) goes unlisted
            entries[row.entry_id] = (*entries.get(row.entry_id, ()), row.line_id)
    items = {item.id: item for item in open_bank_items(session, ledger.coop_id, ledger)} if ledger.is_open else None
    return PointageYear(
        (ledger.id, ledger.created_at),
        state,
        ledger.id,
        book.bank_account,
        {row.line_id: row for row in book.rows},
        entries,
        items,
    )


_CHANGED_LINES: dict[bool, sa.Select] = {}


def _changed_lines(sqlite: bool) -> sa.Select:
    """The ledger's number of entries and the bank account's id, with the bank lines (`BankRow`
    columns, entry id first) of its entries stamped with a revision above `since` (an entry without
    one still comes, its line columns empty): one round trip. Built once per dialect."""
    if sqlite not in _CHANGED_LINES:
        ledger_id, since = sa.bindparam("ledger", type_=sa.Integer), sa.bindparam("since", type_=sa.Integer)
        bank = sa.select(Account.id).where(Account.code == BANK).scalar_subquery()
        account = EntryLine.account_id + 0 if sqlite else EntryLine.account_id  # see `bank_book`
        changed = (
            sa.select(Entry.id.label("entry_id"), EntryLine.id.label("line_id"), *_bank_row_columns())
            .select_from(Entry)
            .outerjoin(EntryLine, sa.and_(EntryLine.entry_id == Entry.id, account == bank))
            .where(Entry.ledger_id == ledger_id, Entry.ledger_revision > since)
            .subquery()
        )
        count = sa.select(sa.func.count(Entry.id)).where(Entry.ledger_id == ledger_id).scalar_subquery()
        head = sa.select(count.label("entries"), bank.label("bank")).subquery()
        _CHANGED_LINES[sqlite] = sa.select(head, *changed.c).select_from(head.outerjoin(changed, sa.true()))
    return _CHANGED_LINES[sqlite]


def _changes_since(session: Session, ledger: Ledger, kept: PointageYear, state: tuple) -> YearChange | None:
    """`kept` brought up to date from the entries changed since its state (see `pointage_year`), and
    what changed; None (and `kept` untouched) when the year must be read whole."""
    session.flush()  # what `session.execute` would autoflush; the rows are then read without ORM loading
    since = _revision(kept.state, ledger.id)
    changed: dict[int, list[BankRow]] = {}
    gone: set[int] = set()
    if _revision(state, ledger.id) != since:
        own = _own_changes(session, ledger, kept, since)
        if own is None:
            return None
        changed, gone = own
    touched = changed.keys() | gone
    old_rows = [kept.rows[line_id] for entry_id in touched for line_id in kept.entries.get(entry_id, ())]
    new_rows = [row for rows in changed.values() for row in rows]
    earlier = any(old != new for old, new in zip(kept.state, state, strict=True) if old[0] != ledger.id)
    if earlier:  # the lines carried into the year, read again (a few: those still uncleared at its start)
        old_rows += [row for row in kept.rows.values() if row.ledger_id != ledger.id]
        new_rows += bank_book(session, ledger, carried=True).rows
    old_set, new_set = set(old_rows), set(new_rows)
    items_gone: list[BankItem] = []
    items_new: list[BankItem] = []
    if kept.items is not None and earlier:  # another ledger's lines may have taken or let go any of them
        fresh = {item.id: item for item in open_bank_items(session, ledger.coop_id, ledger)}
        items_gone = [item for ident, item in kept.items.items() if fresh.get(ident) != item]
        items_new = [item for ident, item in fresh.items() if kept.items.get(ident) != item]
    elif kept.items is not None:  # those taken by the changed lines, or let go by them
        before = {row.link for row in old_rows if row.link is not None}
        after = {row.link for row in new_rows if row.link is not None}
        items_gone = [kept.items[ident] for ident in after - before if ident in kept.items]
        if before - after:
            items_new = open_bank_items(session, ledger.coop_id, ledger, ids=before - after)
    for row in old_rows:
        del kept.rows[row.line_id]
    kept.rows.update((row.line_id, row) for row in new_rows)
    for entry_id in touched:
        kept.entries.pop(entry_id, None)
    kept.entries.update((entry_id, tuple(row.line_id for row in rows)) for entry_id, rows in changed.items())
    if kept.items is not None:
        for item in items_gone:
            del kept.items[item.id]
        kept.items.update((item.id, item) for item in items_new)
    kept.state = state
    return YearChange(
        [row for row in old_rows if row not in new_set],
        [row for row in new_rows if row not in old_set],
        items_gone,
        items_new,
    )


def _own_changes(
    session: Session, ledger: Ledger, kept: PointageYear, since: int
) -> tuple[dict[int, list[BankRow]], set[int]] | None:
    """The ledger's entries changed since revision `since` with their bank lines, and those deleted
    since; None when the year must be read whole (the chart changed, entries written without a stamp)."""
    connection = session.connection()
    found = connection.execute(
        _changed_lines(connection.dialect.name == "sqlite"), {"ledger": ledger.id, "since": since}
    ).all()
    count, bank = found[0][:2]
    if bank != kept.bank_account:  # staff changed the chart's codes
        return None
    changed: dict[int, list[BankRow]] = {}
    for row in found:
        if row[2] is not None:
            lines = changed.setdefault(row[2], [])
            if row[3] is not None:
                lines.append(BankRow(row[3], row[2], *row[4:]))
    entries = kept.entries
    gone: set[int] = set()
    if count != len(entries) + len(changed.keys() - entries.keys()):
        ids = set(connection.execute(sa.select(Entry.id).where(Entry.ledger_id == ledger.id)).scalars())
        if ids - entries.keys() - changed.keys():  # entries written without a stamp (in bulk)
            return None
        gone = entries.keys() - ids - changed.keys()
    return changed, gone
