"""Pointage: importing statements, matching their lines with the cash-book, clearing, reconciling.

Pointage is reconciliation metadata, not accounting: clearing sets `EntryLine.cleared_on` (the date
of the statement line) and links the statement line; it is allowed on lines of a closed year that
were still uncleared at 31 August, which stay pointable in the next year and are never re-entered.

The matching (BANKING.md §4) is deterministic and explainable. Every rule consumes what it matches:
R1 cheque number and amount; R2 a strong reference (RUM, EndToEndId) found in the entry's label;
R3 a deposit slip whose number is in the bank label and whose entries sum to the bank amount;
R4 the exact amount within -7/+10 days, only when the pair is unique in both directions (repeated
until nothing changes). What stays ambiguous becomes a suggestion (R5), never a match. Nothing is
cleared until the user confirms.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.ledger import BANK
from app.models import Account, Entry, EntryLine, Ledger, SchoolYear, Statement, StatementLine, User
from app.statements import ParsedStatement, fold, normalise_number

WINDOW_BEFORE, WINDOW_AFTER = 7, 10  # bank date minus entry date, in days (R4)
CHEQUE_MARGIN = 3  # a cheque can appear on the statement a little before the day it was booked


# -- import --------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    statement: Statement
    added: int
    skipped: int


def import_statement(
    session: Session,
    coop_id: int,
    parsed: ParsedStatement,
    *,
    filename: str,
    content: bytes,
    by: User | None,
    ip: str = "",
) -> ImportResult:
    """Store the statement's new lines; lines already imported (same fingerprint) are skipped."""
    known = set(
        session.scalars(
            sa.select(StatementLine.fingerprint).where(
                StatementLine.coop_id == coop_id,
                StatementLine.fingerprint.in_([line.fingerprint for line in parsed.lines]),
            )
        )
    )
    statement = Statement(
        coop_id=coop_id,
        source_format=parsed.source_format,
        filename=filename[:255],
        sha256=hashlib.sha256(content).hexdigest(),
        account=parsed.account[:34],
        start_date=parsed.start_date,
        end_date=parsed.end_date,
        closing_balance_cents=parsed.closing_balance_cents,
        closing_balance_date=parsed.closing_balance_date,
        imported_by_id=by.id if by else None,
    )
    session.add(statement)
    added = 0
    for line in parsed.lines:
        if line.fingerprint in known:
            continue
        known.add(line.fingerprint)
        session.add(
            StatementLine(
                statement=statement,
                coop_id=coop_id,
                date=line.date,
                value_date=line.value_date,
                amount_cents=line.amount_cents,
                label=line.label[:500],
                cheque_number=line.cheque_number[:20],
                reference=line.reference[:200],
                fingerprint=line.fingerprint,
                raw=line.raw,
            )
        )
        added += 1
    session.flush()
    audit.record(
        session,
        "statement.imported",
        actor=by,
        coop_id=coop_id,
        entity="statement",
        entity_id=statement.id,
        after={
            "format": parsed.source_format,
            "file": filename[:100],
            "added": added,
            "skipped": len(parsed.lines) - added,
        },
        ip=ip,
    )
    return ImportResult(statement, added, len(parsed.lines) - added)


# -- the two sides -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookLine:
    """An uncleared bank line of the cash-book (amount signed: money in > 0)."""

    line_id: int
    entry_id: int
    date: date
    amount: int
    mode: str
    number: str  # cheque or deposit slip number, normalised
    label: str
    piece: str


@dataclass(frozen=True)
class BankItem:
    """A statement line not linked to the cash-book yet."""

    id: int
    date: date
    amount: int
    label: str
    cheque: str
    reference: str


def uncleared_book_lines(session: Session, coop_id: int) -> list[BookLine]:
    """Every uncleared bank line of the coop, all years (the opening balance is not a movement)."""
    rows = session.execute(
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
    ).all()
    return [
        BookLine(line_id, entry_id, day, amount, mode, normalise_number(number), label, piece)
        for line_id, entry_id, day, amount, mode, number, label, piece in rows
    ]


def open_bank_items(session: Session, coop_id: int) -> list[BankItem]:
    """Statement lines of the coop that no cash-book line points to yet."""
    linked = sa.select(EntryLine.statement_line_id).where(EntryLine.statement_line_id.is_not(None))
    rows = session.execute(
        sa.select(
            StatementLine.id,
            StatementLine.date,
            StatementLine.amount_cents,
            StatementLine.label,
            StatementLine.cheque_number,
            StatementLine.reference,
        )
        .where(StatementLine.coop_id == coop_id, StatementLine.id.not_in(linked))
        .order_by(StatementLine.date, StatementLine.id)
    ).all()
    return [BankItem(*row) for row in rows]


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


def match(bank: list[BankItem], book: list[BookLine]) -> MatchResult:
    """Run the rules R1-R5 on the open items of both sides (pure function, deterministic)."""
    result = MatchResult()
    bank = sorted(bank, key=lambda b: (b.date, b.amount, b.id))
    book = sorted(book, key=lambda b: (b.date, b.amount, b.line_id))
    free_bank = {b.id: b for b in bank}
    free_book = {b.line_id: b for b in book}

    def take(item: BankItem, lines: list[BookLine], rule: str, why: str) -> None:
        result.proposals.append(Proposal(item.id, tuple(line.line_id for line in lines), rule, why))
        del free_bank[item.id]
        for line in lines:
            del free_book[line.line_id]

    # R1: cheque number and exact amount (no date window: cheques are cashed late)
    for item in bank:
        if not item.cheque or item.id not in free_bank:
            continue
        same_number = [
            b
            for b in free_book.values()
            if b.mode == "cheque" and b.number == item.cheque and b.date <= item.date + timedelta(days=CHEQUE_MARGIN)
        ]
        exact = [b for b in same_number if b.amount == item.amount]
        if len(exact) == 1:
            take(item, exact, "R1", f"chèque n° {item.cheque}, même montant")
        elif same_number and not exact:
            result.anomalies.append(
                f"Le chèque n° {item.cheque} du relevé ({item.date:%d/%m/%Y}) n'a pas le même "
                "montant que dans le cahier : vérifiez la pièce."
            )

    # R2: a strong reference of the bank line (RUM, EndToEndId) written in the entry's label
    for item in bank:
        if item.id not in free_bank or not item.reference:
            continue
        references = [ref for ref in fold(item.reference).split() if len(ref) >= 6]
        found = [
            b for b in free_book.values() if b.amount == item.amount and any(ref in fold(b.label) for ref in references)
        ]
        if len(found) == 1:
            take(item, found, "R2", "même référence de prélèvement ou de virement")

    # R3: a deposit slip: its number in the bank label, its entries summing to the bank amount
    for item in bank:
        if item.id not in free_bank or item.amount <= 0:
            continue
        numbers = {normalise_number(token) for token in fold(item.label).split() if token.isdigit() and len(token) >= 4}
        for number in sorted(numbers):
            group = [b for b in free_book.values() if b.mode == "remise" and b.number == number and b.amount > 0]
            if group and sum(b.amount for b in group) == item.amount:
                take(item, group, "R3", f"bordereau de remise n° {number} ({len(group)} ligne(s) du cahier)")
                break

    # R4: exact amount in the date window, unique in both directions; repeat until stable.
    # Both sides are indexed by amount, so each look-up only sees lines of the same amount.
    book_by_amount: dict[int, list[BookLine]] = {}
    for line in book:
        if line.mode != "cheque":
            book_by_amount.setdefault(line.amount, []).append(line)
    bank_by_amount: dict[int, list[BankItem]] = {}
    for item in bank:
        bank_by_amount.setdefault(item.amount, []).append(item)

    def in_window(item: BankItem, line: BookLine) -> bool:
        return -WINDOW_BEFORE <= (item.date - line.date).days <= WINDOW_AFTER

    def candidates(item: BankItem) -> list[BookLine]:
        return [b for b in book_by_amount.get(item.amount, ()) if b.line_id in free_book and in_window(item, b)]

    changed = True
    while changed:
        changed = False
        for item in [b for b in bank if b.id in free_bank]:
            found = candidates(item)
            if len(found) != 1:
                continue
            rivals = [
                other
                for other in bank_by_amount[item.amount]
                if other.id != item.id and other.id in free_bank and in_window(other, found[0])
            ]
            if rivals:
                continue
            days = abs((item.date - found[0].date).days)
            take(item, found, "R4", "même montant, " + ("même jour" if days == 0 else f"{days} jour(s) d'écart"))
            changed = True

    # R5: what stays ambiguous: suggestions, closest dates and labels first, never confirmed alone
    all_by_amount: dict[int, list[BookLine]] = {}
    for line in book:
        all_by_amount.setdefault(line.amount, []).append(line)
    pairs = []
    for item in free_bank.values():
        for line in all_by_amount.get(item.amount, ()):
            if line.line_id in free_book and in_window(item, line):
                pairs.append(
                    (
                        abs((item.date - line.date).days),
                        -_similarity(item.label, line.label),
                        line.line_id,
                        item.id,
                        item,
                        line,
                    )
                )
    used_bank: set[int] = set()
    used_book: set[int] = set()
    for days, _, _, _, item, line in sorted(pairs, key=lambda p: p[:4]):
        if item.id in used_bank or line.line_id in used_book:
            continue
        used_bank.add(item.id)
        used_book.add(line.line_id)
        result.suggestions.append(
            Proposal(
                item.id,
                (line.line_id,),
                "R5",
                f"même montant, {days} jour(s) d'écart, plusieurs possibilités : à vérifier",
                sure=False,
            )
        )
    result.unmatched_bank = [b for b in free_bank if b not in used_bank]
    result.unmatched_book = [b for b in free_book if b not in used_book]
    return result


# -- confirming and clearing ---------------------------------------------------------------------


def _bank_lines(session: Session, coop_id: int, line_ids: list[int]) -> list[EntryLine]:
    lines = session.scalars(
        sa.select(EntryLine)
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(EntryLine.id.in_(line_ids), Entry.coop_id == coop_id, Account.code == BANK)
    ).all()
    if len(lines) != len(set(line_ids)):
        raise DomainError("Ligne du cahier introuvable.")
    return list(lines)


def confirm_match(
    session: Session, coop_id: int, bank_id: int, line_ids: list[int], *, by: User | None, ip: str = ""
) -> None:
    """Clear `line_ids` with the statement line: same total, all uncleared, the statement line still open."""
    item = session.scalar(sa.select(StatementLine).where(StatementLine.id == bank_id, StatementLine.coop_id == coop_id))
    if item is None:
        raise DomainError("Ligne de relevé introuvable.")
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


def clear_line(session: Session, coop_id: int, line_id: int, on: date, *, by: User | None, ip: str = "") -> EntryLine:
    """Point one bank line by hand, as seen on the statement of `on`.

    When exactly one open statement line has the same amount within the matching window, it is linked
    too, so that it is not offered again as a line missing from the cash-book.
    """
    [line] = _bank_lines(session, coop_id, [line_id])
    if line.entry.kind == "opening":
        raise DomainError("Le report à nouveau ne se pointe pas.")
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
    """Undo the pointage of one bank line (and its link to a statement line)."""
    [line] = _bank_lines(session, coop_id, [line_id])
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
class Reconciliation:
    on: date
    book_balance: int
    uncleared_total: int
    uncleared_count: int
    expected_statement: int
    statement_balance: int | None

    @property
    def difference(self) -> int | None:
        return None if self.statement_balance is None else self.statement_balance - self.expected_statement

    @property
    def is_reconciled(self) -> bool:
        return self.difference == 0


def reconcile(session: Session, ledger: Ledger, on: date, statement_balance: int | None) -> Reconciliation:
    """Statement balance at `on` should equal the book bank balance at `on` minus the bank lines
    dated up to `on` that were not cleared by `on` (a line cleared later counts as uncleared)."""
    book = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(EntryLine.amount_cents), 0))
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(Entry.ledger_id == ledger.id, Account.code == BANK, Entry.date <= on)
    )
    uncleared = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(EntryLine.amount_cents), 0), sa.func.count())
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .join(Ledger, Ledger.id == Entry.ledger_id)
        .join(SchoolYear, SchoolYear.id == Ledger.school_year_id)
        .where(
            Entry.coop_id == ledger.coop_id,
            Account.code == BANK,
            Entry.kind != "opening",
            Entry.date <= on,
            SchoolYear.start_year <= ledger.school_year.start_year,
            sa.or_(EntryLine.cleared_on.is_(None), EntryLine.cleared_on > on),
        )
    ).one()
    total, count = int(uncleared[0]), int(uncleared[1])
    return Reconciliation(on, int(book), total, count, int(book) - total, statement_balance)


def save_statement_balance(session: Session, ledger: Ledger, on: date, balance: int, *, by: User | None) -> None:
    """Remember the statement date and balance the coop typed in the summary box."""
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


@dataclass(frozen=True)
class PointageLine:
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


def pointage_lines(session: Session, ledger: Ledger) -> list[PointageLine]:
    """The bank lines of the ledger's year, plus those of earlier years still uncleared at its start
    (or cleared during it): they are pointed here, never entered again."""
    start = ledger.school_year.starts_on
    rows = session.execute(
        sa.select(
            EntryLine.id,
            Entry.id,
            Entry.date,
            Entry.piece,
            Entry.label,
            Entry.payment_mode,
            Entry.cheque_number,
            EntryLine.amount_cents,
            EntryLine.cleared_on,
            Entry.ledger_id,
        )
        .join(Entry, Entry.id == EntryLine.entry_id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(
            Entry.coop_id == ledger.coop_id,
            Account.code == BANK,
            Entry.kind != "opening",
            sa.or_(
                Entry.ledger_id == ledger.id,
                sa.and_(Entry.date < start, sa.or_(EntryLine.cleared_on.is_(None), EntryLine.cleared_on >= start)),
            ),
        )
        .order_by(Entry.date, EntryLine.id)
    ).all()
    return [
        PointageLine(line_id, entry_id, day, piece, label, mode, number, amount, cleared, ledger_id != ledger.id)
        for line_id, entry_id, day, piece, label, mode, number, amount, cleared, ledger_id in rows
    ]
