"""The cash-book: recording, changing and deleting operations as balanced double entries.

Amounts are integer cents. Every entry's lines sum to zero (debit > 0, credit < 0). The guided
form (boxes 1-7 of RETKOOP) gives a kind, treasury amounts (box 6) and a split over accounts
(box 7); `build_lines` turns them into lines or raises a DomainError naming the faulty box.
Balances are never stored: they are sums of lines. Functions flush, never commit.

Refunds are reductions of the account they correct, never extra income or charges: a refund
received (a supplier's credit note, an overpayment returned) is `+512 / -6xx`, a refund paid back
to families is `+7xx / -512`. A receipt or an expense may also carry a contra line (a negative
split amount, e.g. a sale net of a refund) as long as the signed split equals the amount.

The cash box can never be negative at the end of any day: a write that would make it so is
refused naming the date (`check_cash_never_negative`). A negative bank balance is allowed (an
overdraft happens) and only warned about (`bank_warning`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import flag_modified

from app import audit
from app.errors import DomainError
from app.formats import euros, fr_date
from app.models import Account, Action, Coop, Entry, EntryLine, Ledger, SchoolYear, User, school_year_start

BANK, CASH, ADVANCE, OPENING = "512", "530", "541", "110"
# The report à nouveau: shown apart in the classic view, never edited through the operation form.
OPENING_KINDS = ("opening", "carried")
MAX_CARRIED_ITEMS = 100

KIND_LABELS = {
    "receipt": "Recette",
    "expense": "Dépense",
    "deposit": "Dépôt d'espèces à la banque (caisse → banque)",
    "withdrawal": "Retrait d'espèces (banque → caisse)",
    "advance_paid": "Régie d'avance : versement à un enseignant",
    "advance_returned": "Régie d'avance : restitution du reliquat",
    "advance_justified": "Régie d'avance : justification des dépenses",
    "refund_received": "Remboursement reçu (avoir d'un fournisseur, trop-payé)",
    "refund_paid": "Remboursement versé (à une famille, trop-perçu)",
}
MODE_LABELS = {
    "cheque": "Chèque",
    "virement": "Virement",
    "especes": "Espèces",
    "carte": "Carte bancaire",
    "prelevement": "Prélèvement",
    "remise": "Remise de chèques",
    "interne": "Mouvement interne",
    "regie": "Régie d'avance",
    "report": "Report à nouveau",
}
# Payment modes the form offers for each kind (the first is the default).
MODES_FOR_KIND = {
    "receipt": ("remise", "especes", "virement", "cheque", "carte"),
    "expense": ("cheque", "virement", "prelevement", "carte", "especes"),
    "deposit": ("interne",),
    "withdrawal": ("interne",),
    "advance_paid": ("cheque", "especes", "virement"),
    "advance_returned": ("remise", "especes", "virement", "cheque"),
    "advance_justified": ("regie",),
    "refund_received": ("virement", "remise", "cheque", "especes", "carte"),
    "refund_paid": ("virement", "cheque", "especes"),
}
SPLIT_NATURES = {
    "receipt": ("income", "subsidy"),
    "expense": ("expense",),
    "advance_justified": ("expense",),
    "refund_received": ("expense",),
    "refund_paid": ("income", "subsidy"),
}
# How a split amount of box 7 becomes a line: credited (-1) or debited (+1) on its account.
SPLIT_SIGN = {"receipt": -1, "refund_received": -1, "expense": 1, "refund_paid": 1, "advance_justified": 1}
# What « choisissez un compte … » says for each kind that is split.
SPLIT_EXPECTED = {
    "receipt": "de produit (7…)",
    "expense": "de charge (6…)",
    "advance_justified": "de charge (6…)",
    "refund_received": "de charge (6…) : celui de la dépense remboursée",
    "refund_paid": "de produit (7…) : celui de la recette remboursée",
}
# Kinds whose payment mode is not the user's choice (no money leaves the coop, or it moves inside it).
FIXED_MODES = {"deposit": "interne", "withdrawal": "interne", "advance_justified": "regie"}
# Kinds for which the coop writes a cheque itself (the cheque number column holds its number).
CHEQUE_WRITTEN = ("expense", "advance_paid", "refund_paid")
# Kinds that bring money in, and those that take money out (box 6).
MONEY_IN = ("receipt", "advance_returned", "refund_received")
MONEY_OUT = ("expense", "advance_paid", "refund_paid")


@dataclass(frozen=True)
class Treasury:
    """Box 6: what goes through the bank and the cash box, in cents (all ≥ 0)."""

    bank_in: int = 0
    bank_out: int = 0
    cash_in: int = 0
    cash_out: int = 0

    @property
    def total_in(self) -> int:
        return self.bank_in + self.cash_in

    @property
    def total_out(self) -> int:
        return self.bank_out + self.cash_out


@dataclass(frozen=True)
class Split:
    """One line of box 7: an account code and an amount in cents in the operation's direction.

    Positive for the usual line (credited on a receipt, debited on an expense); negative for a contra
    line (a receipt net of a refund: +120 on a sale, -20 refunded on it).
    """

    account_code: str
    amount: int


@dataclass
class EntryData:
    """Everything the guided form gives (boxes 1-7)."""

    piece: str
    date: date
    label: str
    payment_mode: str
    kind: str
    treasury: Treasury
    splits: list[Split] = field(default_factory=list)
    cheque_number: str = ""
    action_id: int | None = None


# -- from the form's plain values to an EntryData -------------------------------------------------


def treasury_for(kind: str, bank: int, cash: int) -> Treasury:
    """Box 6 as movements: the kind says whether the bank and cash amounts come in or go out.

    A deposit or a withdrawal moves one amount between the cash box and the bank: typed in either
    box (or the same in both); two different amounts raise DomainError on box 6.
    """
    if kind in MONEY_IN:
        return Treasury(bank_in=bank, cash_in=cash)
    if kind in MONEY_OUT:
        return Treasury(bank_out=bank, cash_out=cash)
    if kind in ("deposit", "withdrawal"):
        if bank and cash and bank != cash:
            raise DomainError("Pour un mouvement entre caisse et banque, indiquez un seul montant.", field="box6")
        amount = bank or cash
        if kind == "deposit":
            return Treasury(bank_in=amount, cash_out=amount)
        return Treasury(bank_out=amount, cash_in=amount)
    return Treasury()


def payment_mode_for(kind: str, chosen: str) -> str:
    """The payment mode of an operation: fixed by some kinds (internal move, advance), else the chosen one."""
    return FIXED_MODES.get(kind, chosen)


def mode_refusal(kind: str, mode: str) -> str | None:
    """Why box 4's payment mode cannot go with box 6's kind (French, for box 4), or None when they agree.

    A kind with a fixed mode (internal move, advance justified) takes any chosen mode: it is replaced.
    """
    if kind in FIXED_MODES or kind not in MODES_FOR_KIND or mode in MODES_FOR_KIND[kind]:
        return None
    mode_label = MODE_LABELS.get(mode, mode)
    why = {
        "remise": " : une remise de chèques apporte de l'argent à la banque",
        "prelevement": " : un prélèvement fait sortir de l'argent de la banque",
    }.get(mode, "")
    allowed = ", ".join(f"« {MODE_LABELS[m]} »" for m in MODES_FOR_KIND[kind])
    return (
        f"« {mode_label} » ne va pas avec le type « {KIND_LABELS[kind]} » (case 6){why}. "
        f"Changez le type d'opération en case 6, ou choisissez en case 4 : {allowed}."
    )


def cheque_number_for(kind: str, mode: str, cheque_number: str, slip_number: str) -> str:
    """What the cheque-number column keeps: a cheque the coop wrote, or the slip of a cheque deposit.

    The form pre-fills the next cheque number and always posts it: kept for any other operation,
    every cash receipt would carry (and use up) that number.
    """
    if mode == "remise":  # the same column holds the deposit slip number of a cheque deposit
        return slip_number or ""
    if mode == "cheque" and kind in CHEQUE_WRITTEN:
        return cheque_number or ""
    return ""


def splits_from(rows: Iterable[tuple[str | None, int | None]]) -> list[Split]:
    """Box 7 from (account code, cents) rows; blank rows are skipped, half-filled ones raise DomainError."""
    splits = []
    for code, amount in rows:
        if not code and not amount:
            continue
        if not code:
            raise DomainError("Choisissez le compte de chaque ligne de ventilation.", field="box7")
        if not amount:
            raise DomainError("Indiquez le montant de chaque ligne de ventilation.", field="box7")
        splits.append(Split(code, amount))
    return splits


def entry_data(
    *,
    piece: str,
    date: date,
    label: str,
    kind: str,
    payment_mode: str,
    bank: int,
    cash: int,
    splits: Iterable[tuple[str | None, int | None]],
    cheque_number: str = "",
    slip_number: str = "",
    action_id: int | None = None,
) -> EntryData:
    """The guided form's plain values (boxes 1-7) as an EntryData; raises DomainError naming the box."""
    refusal = mode_refusal(kind, payment_mode)
    if refusal:
        raise DomainError(refusal, field="payment_mode")
    treasury = treasury_for(kind, bank, cash)
    split_list = splits_from(splits)
    mode = payment_mode_for(kind, payment_mode)
    return EntryData(
        piece=piece,
        date=date,
        label=label,
        payment_mode=mode,
        kind=kind,
        treasury=treasury,
        splits=split_list,
        cheque_number=cheque_number_for(kind, mode, cheque_number, slip_number),
        action_id=action_id,
    )


def box6_amounts(entry: Entry) -> tuple[int, int]:
    """The (bank, cash) amounts the form shows for a stored entry, the inverse of `treasury_for`.

    A deposit or a withdrawal shows its one amount in the bank box.
    """
    bank = sum(line.amount_cents for line in entry.lines if line.account.code == BANK)
    cash = sum(line.amount_cents for line in entry.lines if line.account.code == CASH)
    if entry.kind == "transfer":
        return abs(bank), 0
    return abs(bank), abs(cash)


# -- years and ledgers ---------------------------------------------------------------------------


def school_year(session: Session, start_year: int) -> SchoolYear:
    """The school year starting in `start_year`, created with the latest known rates when missing."""
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == start_year))
    if year is None:
        latest = session.scalar(sa.select(SchoolYear).order_by(SchoolYear.start_year.desc()).limit(1))
        year = SchoolYear(start_year=start_year)
        if latest is not None:
            for name in (
                "pupil_fee_cents",
                "adult_fee_cents",
                "insurance_fee_cents",
                "property_threshold_cents",
                "property_rate_ppm",
            ):
                setattr(year, name, getattr(latest, name))
        session.add(year)
        session.flush()
    return year


def open_ledger(session: Session, coop: Coop, start_year: int) -> Ledger:
    """The coop's ledger for the school year starting in `start_year`, opened on first use."""
    year = school_year(session, start_year)
    ledger = session.scalar(sa.select(Ledger).where(Ledger.coop_id == coop.id, Ledger.school_year_id == year.id))
    if ledger is None:
        ledger = Ledger(coop_id=coop.id, school_year=year)
        session.add(ledger)
        session.flush()
    return ledger


def current_start_year(today: date) -> int:
    return school_year_start(today)


def ledger_years(session: Session, coop: Coop) -> list[int]:
    """Start years of the coop's existing ledgers, newest first."""
    return list(
        session.scalars(
            sa.select(SchoolYear.start_year)
            .join(Ledger, Ledger.school_year_id == SchoolYear.id)
            .where(Ledger.coop_id == coop.id)
            .order_by(SchoolYear.start_year.desc())
        )
    )


def accounts_by_code(session: Session) -> dict[str, Account]:
    return {account.code: account for account in session.scalars(sa.select(Account))}


# -- building lines ------------------------------------------------------------------------------


def build_lines(
    kind: str, treasury: Treasury, splits: list[Split], accounts: dict[str, Account]
) -> list[tuple[Account, int]]:
    """Turn boxes 6 and 7 into balanced lines; raise DomainError naming the faulty box."""
    if kind not in KIND_LABELS:
        raise DomainError("Choisissez le type d'opération.", field="kind")
    if min(treasury.bank_in, treasury.bank_out, treasury.cash_in, treasury.cash_out) < 0:
        raise DomainError("Les montants de la case 6 sont positifs.", field="box6")
    if any(split.amount == 0 for split in splits):
        raise DomainError("Indiquez le montant de chaque ligne de ventilation.", field="box7")

    natures = SPLIT_NATURES.get(kind, ())
    for split in splits:
        account = accounts.get(split.account_code)
        if account is None:
            raise DomainError(f"Le compte {split.account_code} n'existe pas.", field="box7")
        if not account.is_active:
            raise DomainError(
                f"Le compte {account.display_code} n'est plus utilisé : choisissez-en un autre.", field="box7"
            )
        if account.nature not in natures:
            expected = SPLIT_EXPECTED.get(kind)
            if expected is None:
                raise DomainError("Ce type d'opération ne se ventile pas : laissez la case 7 vide.", field="box7")
            raise DomainError(
                f"Le compte {account.display_code} ne convient pas : choisissez un compte {expected}.", field="box7"
            )
    split_total = sum(split.amount for split in splits)
    lines: list[tuple[Account, int]] = []

    def treasury_lines() -> None:
        if treasury.bank_in - treasury.bank_out:
            lines.append((accounts[BANK], treasury.bank_in - treasury.bank_out))
        if treasury.cash_in - treasury.cash_out:
            lines.append((accounts[CASH], treasury.cash_in - treasury.cash_out))

    if kind in ("receipt", "refund_received"):
        if treasury.total_out or not treasury.total_in:
            what = "Une recette" if kind == "receipt" else "Un remboursement reçu"
            raise DomainError(f"{what} entre en banque ou en caisse : indiquez le montant reçu.", field="box6")
        _check_split(split_total, treasury.total_in)
        treasury_lines()
        lines += _split_lines(kind, splits, accounts)
    elif kind in ("expense", "refund_paid"):
        if treasury.total_in or not treasury.total_out:
            what = "Une dépense" if kind == "expense" else "Un remboursement versé"
            raise DomainError(f"{what} sort de la banque ou de la caisse : indiquez le montant payé.", field="box6")
        _check_split(split_total, treasury.total_out)
        treasury_lines()
        lines += _split_lines(kind, splits, accounts)
    elif kind in ("deposit", "withdrawal"):
        if splits:
            raise DomainError(
                "Un mouvement entre caisse et banque n'est ni une recette ni une dépense : laissez la case 7 vide.",
                field="box7",
            )
        amount = treasury.bank_in if kind == "deposit" else treasury.cash_in
        expected = (
            Treasury(bank_in=amount, cash_out=amount)
            if kind == "deposit"
            else Treasury(bank_out=amount, cash_in=amount)
        )
        if amount <= 0 or treasury != expected:
            raise DomainError("Indiquez le montant déplacé entre la caisse et la banque.", field="box6")
        treasury_lines()
    elif kind == "advance_paid":
        if splits:
            raise DomainError("Le versement d'une régie ne se ventile pas : laissez la case 7 vide.", field="box7")
        if treasury.total_in or not treasury.total_out or (treasury.bank_out and treasury.cash_out):
            raise DomainError("Indiquez le montant remis à l'enseignant, par la banque ou en espèces.", field="box6")
        treasury_lines()
        lines.append((accounts[ADVANCE], treasury.total_out))
    elif kind == "advance_returned":
        if splits:
            raise DomainError("La restitution d'une régie ne se ventile pas : laissez la case 7 vide.", field="box7")
        if treasury.total_out or not treasury.total_in or (treasury.bank_in and treasury.cash_in):
            raise DomainError("Indiquez le reliquat rendu par l'enseignant, en banque ou en espèces.", field="box6")
        treasury_lines()
        lines.append((accounts[ADVANCE], -treasury.total_in))
    elif kind == "advance_justified":
        if treasury.total_in or treasury.total_out:
            raise DomainError(
                "La justification d'une régie ne fait entrer ni sortir d'argent : laissez la case 6 à zéro.",
                field="box6",
            )
        if not splits:
            raise DomainError("Ventilez les dépenses justifiées par l'enseignant.", field="box7")
        if split_total <= 0:
            raise DomainError("Le total des dépenses justifiées doit être positif.", field="box7")
        lines += _split_lines(kind, splits, accounts)
        lines.append((accounts[ADVANCE], -split_total))
    if sum(amount for _, amount in lines) != 0:  # pragma: no cover - guaranteed by the rules above
        raise DomainError("L'opération n'est pas équilibrée.", field="box7")
    return lines


def _split_lines(kind: str, splits: list[Split], accounts: dict[str, Account]) -> list[tuple[Account, int]]:
    """Box 7 as lines: credited or debited as the kind says; a contra line goes the other way."""
    sign = SPLIT_SIGN[kind]
    return [(accounts[split.account_code], sign * split.amount) for split in splits]


def split_amounts(entry: Entry, kind: str) -> list[tuple[str, int]]:
    """Box 7 of a stored entry as the form shows it: (account code, amount in the operation's direction)."""
    sign = SPLIT_SIGN.get(kind, 1)
    return [
        (line.account.code, sign * line.amount_cents)
        for line in entry.lines
        if line.account.nature in ("expense", "income", "subsidy")
    ]


def _check_split(split_total: int, treasury_total: int) -> None:
    if split_total != treasury_total:
        rest = treasury_total - split_total
        raise DomainError(
            f"La ventilation ({euros(split_total)}) ne correspond pas au montant de l'opération "
            f"({euros(treasury_total)}) : reste à ventiler {euros(rest)}.",
            field="box7",
        )


# -- checks shared by create and update ----------------------------------------------------------


def _check_writable(ledger: Ledger) -> None:
    if not ledger.is_open:
        raise DomainError(f"Le cahier {ledger.school_year.label} est clôturé : il ne peut plus être modifié.")


def _check_not_carried(session: Session, ledger: Ledger) -> None:
    """Refuse an opening typed by hand when it comes from the closing of the previous year."""
    previous = find_ledger(session, ledger.coop_id, ledger.school_year.start_year - 1)
    if previous is not None and not previous.is_open:
        raise DomainError(
            f"Le report à nouveau {ledger.school_year.label} vient de la clôture du cahier "
            f"{previous.school_year.label} : il ne se modifie pas à la main.",
            field="bank",
        )


def _check_header(session: Session, ledger: Ledger, data: EntryData, *, entry_id: int | None = None) -> None:
    year = ledger.school_year
    if not data.piece.strip():
        raise DomainError("Indiquez le numéro de la pièce justificative.", field="piece")
    if not year.contains(data.date):
        raise DomainError(
            f"La date doit être comprise entre le {fr_date(year.starts_on)} et le "
            f"{fr_date(year.ends_on)} (année {year.label}).",
            field="date",
        )
    if not data.label.strip():
        raise DomainError("Indiquez un libellé.", field="label")
    clash = session.scalar(
        sa.select(Entry.id).where(
            Entry.ledger_id == ledger.id, Entry.piece == data.piece.strip(), Entry.id != (entry_id or 0)
        )
    )
    if clash is not None:
        raise DomainError(
            f"La pièce {data.piece} existe déjà dans ce cahier : choisissez un autre numéro.", field="piece"
        )
    if data.payment_mode == "cheque" and data.treasury.bank_out and not data.cheque_number.strip():
        raise DomainError("Indiquez le numéro du chèque émis.", field="cheque_number")
    if data.action_id is not None:
        action = session.get(Action, data.action_id)
        if action is None or action.coop_id != ledger.coop_id:
            raise DomainError("Cette action n'existe pas.", field="action")


def _snapshot(entry: Entry) -> dict:
    return {
        "piece": entry.piece,
        "date": entry.date.isoformat(),
        "label": entry.label,
        "kind": entry.kind,
        "mode": entry.payment_mode,
        "cheque": entry.cheque_number,
        "lines": {line.account.code: line.amount_cents for line in entry.lines},
    }


def _set_lines(
    entry: Entry, lines: list[tuple[Account, int]], *, keep_clearing: dict[str, tuple[int, date | None]]
) -> bool:
    """Replace the lines; keep a bank line's pointage only if its amount is unchanged. True if one was uncleared."""
    uncleared = False
    entry.lines.clear()
    for account, amount in lines:
        line = EntryLine(account=account, amount_cents=amount)
        previous = keep_clearing.get(account.code)
        if previous is not None and previous[1] is not None:
            if previous[0] == amount:
                line.cleared_on = previous[1]
            else:
                uncleared = True
        entry.lines.append(line)
    for code, (_, cleared_on) in keep_clearing.items():
        if cleared_on is not None and code not in {account.code for account, _ in lines}:
            uncleared = True
    return uncleared


# -- writes --------------------------------------------------------------------------------------


def find_by_token(session: Session, coop_id: int, token: str | None) -> Entry | None:
    """The entry a form token already created (a double click, a refresh or Back then submit)."""
    if not token:
        return None
    return session.scalar(sa.select(Entry).where(Entry.idempotency_key == token, Entry.coop_id == coop_id))


def record_entry(
    session: Session,
    ledger: Ledger,
    data: EntryData,
    *,
    by: User | None,
    idempotency_key: str | None = None,
    ip: str = "",
) -> Entry:
    """Add a balanced entry to an open ledger; with a key already used, return that entry instead."""
    existing = find_by_token(session, ledger.coop_id, idempotency_key)
    if existing is not None:
        return existing
    _check_writable(ledger)
    _check_header(session, ledger, data)
    lines = build_lines(data.kind, data.treasury, data.splits, accounts_by_code(session))
    _check_cash_change(session, ledger, removed=None, added=(data.date, _cash_of(lines)))
    entry = Entry(
        ledger=ledger,
        coop_id=ledger.coop_id,
        piece=data.piece.strip(),
        date=data.date,
        label=data.label.strip(),
        payment_mode=data.payment_mode,
        cheque_number=data.cheque_number.strip(),
        kind=_stored_kind(data.kind),
        action_id=data.action_id,
        idempotency_key=idempotency_key,
        created_by_id=by.id if by else None,
    )
    _set_lines(entry, lines, keep_clearing={})
    session.add(entry)
    session.flush()
    audit.record(
        session,
        "entry.created",
        actor=by,
        coop_id=ledger.coop_id,
        entity="entry",
        entity_id=entry.id,
        after=_snapshot(entry),
        ip=ip,
    )
    return entry


def _touch(entry: Entry, now: datetime | None) -> None:
    """Mark the entry changed, so that its version is bumped even when only its lines changed."""
    if now is not None:
        entry.updated_at = now
    else:  # no moment given: an unconditional change lets the model's `onupdate` clock stamp the row
        flag_modified(entry, "label")


def _stored_kind(kind: str) -> str:
    return "transfer" if kind in ("deposit", "withdrawal") else kind


def form_kind(entry: Entry) -> str:
    """The form's kind of a stored entry (a transfer is a deposit or a withdrawal)."""
    if entry.kind != "transfer":
        return entry.kind
    bank = sum(line.amount_cents for line in entry.lines if line.account.code == BANK)
    return "deposit" if bank > 0 else "withdrawal"


def update_entry(
    session: Session,
    entry: Entry,
    data: EntryData,
    *,
    expected_version: int | None,
    by: User | None,
    ip: str = "",
    now: datetime | None = None,
) -> bool:
    """Change an entry of an open ledger; refuse a stale form. Returns True when a pointage was undone.

    `now` stamps `updated_at`; without it the model's clock does (see `_touch`).
    """
    ledger = entry.ledger
    _check_writable(ledger)
    if entry.kind in OPENING_KINDS:
        raise DomainError("Le report à nouveau se modifie depuis l'étape « Report à nouveau ».")
    if expected_version is not None and expected_version != entry.version:
        raise DomainError(
            "Cette opération a été modifiée entre-temps (sur un autre poste ?). "
            "Elle a été rechargée : refaites votre modification.",
            field="stale",
        )
    _check_header(session, ledger, data, entry_id=entry.id)
    lines = build_lines(data.kind, data.treasury, data.splits, accounts_by_code(session))
    old_cash = sum(line.amount_cents for line in entry.lines if line.account.code == CASH)
    _check_cash_change(session, ledger, removed=(entry.date, old_cash), added=(data.date, _cash_of(lines)))
    before = _snapshot(entry)
    keep = {line.account.code: (line.amount_cents, line.cleared_on) for line in entry.lines}
    entry.piece, entry.date, entry.label = data.piece.strip(), data.date, data.label.strip()
    entry.payment_mode, entry.cheque_number = data.payment_mode, data.cheque_number.strip()
    entry.kind, entry.action_id = _stored_kind(data.kind), data.action_id
    uncleared = _set_lines(entry, lines, keep_clearing=keep)
    _touch(entry, now)
    session.flush()
    old, new = audit.changed_fields(before, _snapshot(entry))
    audit.record(
        session,
        "entry.updated",
        actor=by,
        coop_id=ledger.coop_id,
        entity="entry",
        entity_id=entry.id,
        before=old,
        after=new,
        ip=ip,
    )
    return uncleared


def delete_entry(session: Session, entry: Entry, *, by: User | None, ip: str = "") -> None:
    """Delete an entry of an open ledger (its vouchers go with it); refused if the cash box would go negative
    and for the report à nouveau (changed at its own step)."""
    _check_writable(entry.ledger)
    if entry.kind in OPENING_KINDS:
        raise DomainError("Le report à nouveau se modifie depuis l'étape « Report à nouveau ».")
    cash = sum(line.amount_cents for line in entry.lines if line.account.code == CASH)
    _check_cash_change(session, entry.ledger, removed=(entry.date, cash), added=None, field=None)
    audit.record(
        session,
        "entry.deleted",
        actor=by,
        coop_id=entry.coop_id,
        entity="entry",
        entity_id=entry.id,
        before=_snapshot(entry),
        ip=ip,
    )
    session.delete(entry)
    session.flush()


def opening_entry(session: Session, ledger: Ledger) -> Entry | None:
    return session.scalar(sa.select(Entry).where(Entry.ledger_id == ledger.id, Entry.kind == "opening"))


@dataclass(frozen=True)
class CarriedItem:
    """An item outstanding at 31 August in the tool used before the portal: a cheque issued and not yet
    debited (amount < 0) or a deposit not yet credited (amount > 0). Already in the opening bank balance,
    it becomes a bank line to point in the first year, never an operation to enter again."""

    date: date
    label: str
    amount: int
    cheque_number: str = ""


def carried_items(session: Session, ledger: Ledger) -> list[Entry]:
    """The ledger's items outstanding from the previous tool (see `CarriedItem`), by date."""
    return list(
        session.scalars(
            sa.select(Entry).where(Entry.ledger_id == ledger.id, Entry.kind == "carried").order_by(Entry.date, Entry.id)
        )
    )


def _check_items(ledger: Ledger, items: list[CarriedItem]) -> None:
    year = ledger.school_year
    if len(items) > MAX_CARRIED_ITEMS:
        raise DomainError(f"Au plus {MAX_CARRIED_ITEMS} chèques ou remises en attente.", field="items")
    for number, item in enumerate(items, start=1):
        if not item.amount:
            raise DomainError(f"Ligne {number} : indiquez un montant.", field="items")
        if not item.label.strip():
            raise DomainError(f"Ligne {number} : indiquez un libellé.", field="items")
        if item.date >= year.starts_on:
            raise DomainError(
                f"Ligne {number} : un chèque ou une remise en attente est daté d'avant le "
                f"{year.starts_on:%d/%m/%Y} (il a été enregistré dans l'ancien outil).",
                field="items",
            )


def _replace_items(session: Session, ledger: Ledger, items: list[CarriedItem], by: User | None) -> None:
    """Swap the ledger's carried items for `items`; refused once one of them is pointed."""
    existing = carried_items(session, ledger)
    if any(line.cleared_on for entry in existing for line in entry.lines):
        raise DomainError(
            "Un chèque ou une remise en attente du report à nouveau est déjà pointé : dépointez-le d'abord "
            "(page Pointage) pour changer le report à nouveau.",
            field="items",
        )
    for entry in existing:
        session.delete(entry)
    session.flush()
    accounts = accounts_by_code(session)
    for number, item in enumerate(sorted(items, key=lambda i: i.date), start=1):
        cheque = item.cheque_number.strip()
        entry = Entry(
            ledger=ledger,
            coop_id=ledger.coop_id,
            piece=f"RAN-{number}",
            date=ledger.school_year.starts_on,
            label=f"{item.label.strip()} (du {item.date:%d/%m/%Y}, en attente au 31/08)"[:200],
            payment_mode="cheque" if item.amount < 0 and cheque else ("remise" if item.amount > 0 else "virement"),
            cheque_number=cheque,
            kind="carried",
            created_by_id=by.id if by else None,
        )
        entry.lines = [
            EntryLine(account=accounts[BANK], amount_cents=item.amount),
            EntryLine(account=accounts[OPENING], amount_cents=-item.amount),
        ]
        session.add(entry)


def record_opening(
    session: Session,
    ledger: Ledger,
    *,
    bank: int,
    cash: int,
    by: User | None,
    ip: str = "",
    carried: bool = False,
    now: datetime | None = None,
    items: list[CarriedItem] | None = None,
) -> Entry | None:
    """Set the opening balances at 1 September (+512 +530 / -110); replaces a previous opening entry.

    `now` stamps `updated_at` of an opening that is replaced; without it the model's clock does.

    Once the previous year is closed, the opening is its closing balances: only the closing
    (`app.closing.carry_forward`, with `carried=True`) writes it; by hand it raises DomainError.

    `items` (a first year only): cheques and deposits outstanding at 31 August in the previous tool.
    `bank` stays the book balance; each item becomes an operation « RAN-n » of kind `carried` dated
    1 September (+512 / -110 for its amount, uncleared), the opening's own bank line holding the rest,
    so that the bank balance is unchanged and each item is pointed like any other bank line. A closing
    of the previous year replaces them by that year's real uncleared lines. None keeps them as they are.
    """
    _check_writable(ledger)
    if not carried:
        _check_not_carried(session, ledger)
    if cash < 0:
        raise DomainError("Une caisse ne peut pas être négative.", field="cash")
    if carried:
        items = []  # the closed year's own uncleared lines are carried instead
    if items is not None:
        _check_items(ledger, items)
        items_total = sum(item.amount for item in items)
    else:
        items_total = sum(
            line.amount_cents for e in carried_items(session, ledger) for line in e.lines if line.account.code == BANK
        )
    accounts = accounts_by_code(session)
    entry = opening_entry(session, ledger)
    keep = {}
    if entry is None:
        if session.scalar(sa.select(Entry.id).where(Entry.ledger_id == ledger.id, Entry.piece == "RAN")):
            raise DomainError("La pièce RAN est déjà utilisée dans ce cahier.", field="bank")
        entry = Entry(
            ledger=ledger,
            coop_id=ledger.coop_id,
            piece="RAN",
            date=ledger.school_year.starts_on,
            label="Report à nouveau",
            payment_mode="report",
            kind="opening",
            created_by_id=by.id if by else None,
        )
        session.add(entry)
    else:
        keep = {line.account.code: (line.amount_cents, line.cleared_on) for line in entry.lines}
    if entry.id is not None:
        old_cash = sum(line.amount_cents for line in entry.lines if line.account.code == CASH)
        _check_cash_change(session, ledger, removed=(entry.date, old_cash), added=(entry.date, cash), field="cash")
    own_bank = bank - items_total
    lines = [(accounts[code], amount) for code, amount in ((BANK, own_bank), (CASH, cash)) if amount]
    if own_bank + cash:
        lines.append((accounts[OPENING], -(own_bank + cash)))
    _set_lines(entry, lines, keep_clearing=keep)
    _touch(entry, now)
    session.flush()
    if items is not None:  # after the opening entry, so that it comes first in the year
        _replace_items(session, ledger, items, by)
        session.flush()
    audit.record(
        session,
        "ledger.opening_set",
        actor=by,
        coop_id=ledger.coop_id,
        entity="ledger",
        entity_id=ledger.id,
        after={
            "bank": bank,
            "cash": cash,
            **({"items": [[i.date.isoformat(), i.label, i.cheque_number, i.amount] for i in items]} if items else {}),
        },
        ip=ip,
    )
    return entry


# -- numbering and balances ----------------------------------------------------------------------


def next_piece(session: Session, ledger: Ledger, prefix: str = "") -> str:
    """Suggest the next piece number of the ledger's series: after R07 comes R08, after 41 comes 42.

    Reads the ledger's pieces from the index of (ledger, piece) alone and tells « letters then
    digits » apart with string methods (a regular expression per piece cost twice as much on the
    new-operation form of a large year). The report à nouveau's pieces (« RAN », « RAN-1 ») are
    never letters then digits."""
    pieces = session.connection().execute(sa.select(Entry.piece).where(Entry.ledger_id == ledger.id)).scalars()
    size, wanted = len(prefix), prefix.upper()
    best: tuple[int, str, int] | None = None
    for piece in pieces:
        digits = piece[size:]
        if digits.isdigit() and digits.isascii() and piece[:size].upper() == wanted:
            number = int(digits)
            if best is None or number > best[0]:
                best = (number, piece[:size], len(digits))
    if best is None:
        return f"{prefix}01" if prefix else "1"
    number, letters, width = best
    return f"{letters}{number + 1:0{width}d}"


def _only_digits(session: Session, text: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """SQL: `text` is one or more ASCII digits (Python's `isdigit() and isascii()`)."""
    if session.get_bind().dialect.name == "sqlite":
        return sa.and_(text != "", sa.not_(text.op("GLOB", is_comparison=True)("*[^0-9]*")))
    return text.regexp_match("^[0-9]+$")


def _by_number(digits: sa.ColumnElement[str]) -> tuple:
    """ORDER BY for digit strings, highest number first, exact at any length (no cast to a 64-bit
    integer): without its leading zeros, a longer string is a larger number, and strings of digits of
    the same length compare as their numbers. Equal numbers: the widest first, then the latest.

    (`next_piece` stays in Python: on SQLite, sorting a 10,000-piece year by these keys cost 30% more
    than reading its pieces; for cheques, the database is faster on both engines.)"""
    significant = sa.func.ltrim(digits, "0")
    return sa.func.length(significant).desc(), significant.desc(), sa.func.length(digits).desc(), Entry.id.desc()


def suggested_piece(session: Session, ledger: Ledger | None) -> str:
    """The next number in the series of the last operation entered (D07 -> D08, 41 -> 42)."""
    if ledger is None:
        return "1"
    last = session.scalar(
        sa.select(Entry.piece)
        .where(Entry.ledger_id == ledger.id, Entry.kind.not_in(OPENING_KINDS))
        .order_by(Entry.id.desc())
        .limit(1)
    )
    prefix = re.match(r"[A-Za-z]*", last or "").group(0)
    return next_piece(session, ledger, prefix)


def next_cheque_number(session: Session, coop_id: int) -> str:
    """The number after the highest cheque the coop has written, zeros kept (« 0001002 » after
    « 0001001 »; empty when there is none). Only ASCII digits count: another script's digits are not a
    cheque number. Found by the database in the index of (coop, cheque number)."""
    number = Entry.cheque_number
    highest = session.scalar(
        sa.select(number)
        .where(Entry.coop_id == coop_id, _only_digits(session, number))
        .order_by(*_by_number(number))
        .limit(1)
    )
    if highest is None:
        return ""
    return f"{int(highest) + 1:0{len(highest)}d}"


@dataclass(frozen=True)
class Balances:
    bank: int
    cash: int
    advance: int


def by_account(session: Session, lines) -> sa.ColumnElement[bool]:
    """The join of entry lines to their account for queries about one ledger's lines.

    On SQLite (no statistics), written `account.id = entry_line.account_id + 0` so that it reads the
    ledger's entries first (by ledger) and never walks the index of every coop's lines on an account
    such as the bank: without it, a home page cost what all the coops' bank lines weigh
    (bench/independence.py). PostgreSQL's planner, which has statistics, needs no hint (and the hint
    would keep it from its best plan)."""
    if session.get_bind().dialect.name == "sqlite":
        return Account.id == lines.account_id + 0
    return Account.id == lines.account_id


def balances(session: Session, ledger: Ledger, until: date | None = None) -> Balances:
    """Bank, cash and advance balances: sums of the ledger's lines (up to `until` when given)."""
    query = (
        sa.select(Account.code, sa.func.coalesce(sa.func.sum(EntryLine.amount_cents), 0))
        .select_from(Entry)
        .join(EntryLine, EntryLine.entry_id == Entry.id)
        .join(Account, by_account(session, EntryLine))
        .where(Entry.ledger_id == ledger.id, Account.code.in_((BANK, CASH, ADVANCE)))
        .group_by(Account.code)
    )
    if until is not None:
        query = query.where(Entry.date <= until)
    sums = dict(session.execute(query).all())
    return Balances(bank=int(sums.get(BANK, 0)), cash=int(sums.get(CASH, 0)), advance=int(sums.get(ADVANCE, 0)))


def bank_warning(bank: int) -> str | None:
    """The warning shown wherever a negative bank balance appears (allowed: an overdraft happens)."""
    if bank >= 0:
        return None
    return (
        f"Attention : le solde de la banque est négatif ({euros(bank)}). Vérifiez les montants saisis "
        "et leur sens (entrée ou sortie) ; si le compte est vraiment à découvert, prévenez la banque et l'OCCE 85."
    )


def cash_by_day(session: Session, ledger: Ledger) -> dict[date, int]:
    """The net movement of the cash box (530) on each day of the ledger that has one."""
    rows = session.execute(
        sa.select(Entry.date, sa.func.sum(EntryLine.amount_cents))
        .join(EntryLine, EntryLine.entry_id == Entry.id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(Entry.ledger_id == ledger.id, Account.code == CASH)
        .group_by(Entry.date)
    ).all()
    return {day: int(total) for day, total in rows}


def check_cash_never_negative(
    before: dict[date, int], after: dict[date, int], *, field: str | None = "cash_amount"
) -> None:
    """Refuse (DomainError naming the first date) a change after which the cash box is negative at the end of a day.

    `before` and `after` are daily cash movements (`cash_by_day`). A day that was already negative
    before the change (data from an older tool) only refuses a change that makes it worse.
    """
    running_before = running_after = 0
    for day in sorted(before.keys() | after.keys()):
        running_before += before.get(day, 0)
        running_after += after.get(day, 0)
        if running_after < 0 and running_after < running_before:
            raise DomainError(
                f"La caisse serait négative le {fr_date(day)} ({euros(running_after)}) : il n'y a pas assez "
                "d'espèces en caisse ce jour-là. Vérifiez le montant et la date, ou enregistrez d'abord "
                "l'entrée d'espèces (recette en espèces, retrait à la banque).",
                field=field,
            )


def _cash_of(lines: list[tuple[Account, int]]) -> int:
    return sum(amount for account, amount in lines if account.code == CASH)


def _check_cash_change(
    session: Session,
    ledger: Ledger,
    *,
    removed: tuple[date, int] | None,
    added: tuple[date, int] | None,
    field: str | None = "cash_amount",
) -> None:
    """Check the cash box after one entry's cash line moves from `removed` to `added` (date, cents)."""
    change: dict[date, int] = {}
    for item, sign in ((removed, -1), (added, 1)):
        if item is not None and item[1]:
            change[item[0]] = change.get(item[0], 0) + sign * item[1]
    if not any(value < 0 for value in change.values()):
        return  # only money coming in, or the same amount on the same day: nothing can go negative
    before = cash_by_day(session, ledger)
    after = dict(before)
    for day, value in change.items():
        after[day] = after.get(day, 0) + value
    check_cash_never_negative(before, after, field=field)


def balances_and_uncleared(session: Session, ledger: Ledger) -> tuple[Balances, int]:
    """`balances(session, ledger)` and the number of the ledger's bank lines not yet pointed on a statement
    (the opening balance is not one), in one pass over the ledger's lines (the coop's home page)."""
    waiting = sa.func.count().filter(EntryLine.cleared_on.is_(None), Entry.kind != "opening")
    rows = session.execute(
        sa.select(Account.code, sa.func.coalesce(sa.func.sum(EntryLine.amount_cents), 0), waiting)
        .select_from(Entry)
        .join(EntryLine, EntryLine.entry_id == Entry.id)
        .join(Account, by_account(session, EntryLine))
        .where(Entry.ledger_id == ledger.id, Account.code.in_((BANK, CASH, ADVANCE)))
        .group_by(Account.code)
    ).all()
    sums = {code: int(total) for code, total, _waiting in rows}
    uncleared = next((count for code, _total, count in rows if code == BANK), 0)
    return Balances(bank=sums.get(BANK, 0), cash=sums.get(CASH, 0), advance=sums.get(ADVANCE, 0)), uncleared


def find_ledger(session: Session, coop_id: int, start_year: int) -> Ledger | None:
    """The coop's ledger for the school year starting in `start_year`, without creating it."""
    return session.scalar(
        sa.select(Ledger).join(Ledger.school_year).where(Ledger.coop_id == coop_id, SchoolYear.start_year == start_year)
    )


def find_ledgers(session: Session, coop_id: int, start_years: Iterable[int]) -> dict[int, Ledger]:
    """The coop's ledgers of these school years, by start year, in one query, none created (their
    school years come with them: `ledger.school_year` then costs no query)."""
    ledgers = session.scalars(
        sa.select(Ledger)
        .join(Ledger.school_year)
        .options(contains_eager(Ledger.school_year))
        .where(Ledger.coop_id == coop_id, SchoolYear.start_year.in_(list(start_years)))
    ).all()
    return {ledger.school_year.start_year: ledger for ledger in ledgers}


def check_ledger(session: Session, ledger: Ledger) -> list[str]:
    """Invariant check: every entry balances and lies in the year. Returns French problems (empty = fine)."""
    problems = []
    rows = session.execute(
        sa.select(Entry.piece, Entry.date, sa.func.coalesce(sa.func.sum(EntryLine.amount_cents), 0))
        .outerjoin(EntryLine, EntryLine.entry_id == Entry.id)
        .where(Entry.ledger_id == ledger.id)
        .group_by(Entry.id, Entry.piece, Entry.date)
    ).all()
    for piece, day, total in rows:
        if total != 0:
            problems.append(f"La pièce {piece} n'est pas équilibrée ({euros(int(total))}).")
        if not ledger.school_year.contains(day):
            problems.append(f"La pièce {piece} est datée hors de l'année.")
    return problems


# -- actions -------------------------------------------------------------------------------------


def create_action(session: Session, coop_id: int, name: str, *, by: User | None, reuse: bool = True) -> Action:
    """Create an action (regroupement) for the coop; names are unique per coop, case-insensitively.

    With `reuse` (box 5 of the entry form) an existing action of that name is returned (restored if
    archived); without it (the actions page) an existing name is refused.
    """
    name = " ".join(name.split())
    if not name:
        raise DomainError("Donnez un nom à l'action.", field="name")
    if len(name) > 100:
        raise DomainError("Le nom de l'action est limité à 100 caractères.", field="name")
    existing = session.scalar(
        sa.select(Action).where(Action.coop_id == coop_id, sa.func.lower(Action.name) == name.lower())
    )
    if existing is not None:
        if not reuse:
            raise DomainError(
                f"L'action « {existing.name} » existe déjà"
                + (" (archivée : réactivez-la dans la liste)." if existing.is_archived else "."),
                field="name",
            )
        if existing.is_archived:
            set_action_archived(session, existing, False, by=by)
        return existing
    action = Action(coop_id=coop_id, name=name)
    session.add(action)
    session.flush()
    audit.record(
        session, "action.created", actor=by, coop_id=coop_id, entity="action", entity_id=action.id, after={"name": name}
    )
    return action


def rename_action(session: Session, action: Action, name: str, *, by: User | None) -> None:
    name = " ".join(name.split())
    if not name:
        raise DomainError("Donnez un nom à l'action.", field="name")
    clash = session.scalar(
        sa.select(Action.id).where(
            Action.coop_id == action.coop_id, Action.id != action.id, sa.func.lower(Action.name) == name.lower()
        )
    )
    if clash is not None:
        raise DomainError("Une autre action porte déjà ce nom.", field="name")
    audit.record(
        session,
        "action.renamed",
        actor=by,
        coop_id=action.coop_id,
        entity="action",
        entity_id=action.id,
        before={"name": action.name},
        after={"name": name},
    )
    action.name = name


def set_action_archived(session: Session, action: Action, archived: bool, *, by: User | None) -> None:
    action.is_archived = archived
    audit.record(
        session,
        "action.archived" if archived else "action.restored",
        actor=by,
        coop_id=action.coop_id,
        entity="action",
        entity_id=action.id,
    )


@dataclass(frozen=True)
class ActionTotals:
    action: Action
    charges: int
    produits: int

    @property
    def balance(self) -> int:
        return self.produits - self.charges


def action_totals(session: Session, coop_id: int, ledger: Ledger | None) -> list[ActionTotals]:
    """Per action: expenses (6…) and income (7…) of the ledger's year, in the natural direction."""
    actions = session.scalars(sa.select(Action).where(Action.coop_id == coop_id).order_by(Action.name)).all()
    sums: dict[tuple[int, str], int] = {}
    if ledger is not None:
        rows = session.execute(
            sa.select(Entry.action_id, Account.nature, sa.func.sum(EntryLine.amount_cents))
            .join(EntryLine.entry)
            .join(EntryLine.account)
            .where(
                Entry.ledger_id == ledger.id,
                Entry.action_id.is_not(None),
                Account.nature.in_(("expense", "income", "subsidy")),
            )
            .group_by(Entry.action_id, Account.nature)
        ).all()
        for action_id, nature, total in rows:
            key = (action_id, "charges" if nature == "expense" else "produits")
            sums[key] = sums.get(key, 0) + (int(total) if nature == "expense" else -int(total))
    return [ActionTotals(a, sums.get((a.id, "charges"), 0), sums.get((a.id, "produits"), 0)) for a in actions]
