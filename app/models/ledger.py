"""The cash-book (cahier de comptabilité): ledgers, entries, their lines, actions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    event,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from app.extensions import db
from app.models.account import Account
from app.models.base import utcnow

ENTRY_KINDS = (
    "receipt",
    "expense",
    "transfer",
    "advance_paid",
    "advance_returned",
    "advance_justified",
    "opening",
    "refund_received",
    "refund_paid",
    "carried",
)
PAYMENT_MODES = ("cheque", "virement", "especes", "carte", "prelevement", "remise", "interne", "regie", "report")


class Ledger(db.Model):
    """The cash-book of one coop for one school year. Balances are never stored: they are sums of lines."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("coop_id", "school_year_id", name="uq_ledger_coop_year"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    school_year_id: Mapped[int] = mapped_column(ForeignKey("school_year.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="open")
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped by every flush that touches the ledger's entries, lines or the coop's actions (see
    # `_bump_ledger_revisions`): the key of the rendered classic view cache.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last statement date and balance the coop typed in the pointage summary (« rectangle jaune »).
    reconciliation_date: Mapped[date | None] = mapped_column(Date)
    reconciliation_balance_cents: Mapped[int | None] = mapped_column(BigInteger)
    # Year end (app.closing): the statement balance at 31 August and the cash count (arrêté de caisse),
    # {"total": cents, "counts": {"<denomination in cents>": number} or None when given as one total}.
    closing_statement_balance_cents: Mapped[int | None] = mapped_column(BigInteger)
    cash_count: Mapped[dict | None] = mapped_column(JSON)

    school_year: Mapped[SchoolYear] = relationship()  # noqa: F821
    coop: Mapped[Coop] = relationship()  # noqa: F821
    entries: Mapped[list[Entry]] = relationship(back_populates="ledger", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status == "open"


class Action(db.Model):
    """A *regroupement d'actions*: a named project of a coop (e.g. « Classe de mer »)."""

    __tablename__ = "action"
    __table_args__ = (UniqueConstraint("coop_id", "name", name="uq_action_coop_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    is_archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return self.name


class Entry(db.Model):
    """One operation of the cash-book (boxes 1-6 of the guided form); its lines carry the amounts."""

    __tablename__ = "entry"
    __table_args__ = (
        UniqueConstraint("ledger_id", "piece", name="uq_entry_ledger_piece"),
        CheckConstraint(f"kind IN {ENTRY_KINDS!r}", name="kind"),
        CheckConstraint(f"payment_mode IN {PAYMENT_MODES!r}", name="payment_mode"),
        # a year's operations in date order (the classic view's first read of a year, app.cahier.current_figures)
        Index("ix_entry_ledger_keys", "ledger_id", "date", "id", "version", "created_at"),
        # ... and only the operations changed since the revision it last showed (app.cahier_days)
        Index("ix_entry_ledger_revision", "ledger_id", "ledger_revision"),
        # the new-operation form's next cheque number, from the index alone whatever the coop's history
        Index("ix_entry_coop_cheque", "coop_id", "cheque_number"),
        # each ledger's lowest and highest operation id in two probes (the consolidated CRF's id range)
        Index("ix_entry_ledger_id", "ledger_id", "id"),
        # the back office's list of every coop's operations: newest first, or one coop's
        Index("ix_entry_date", "date"),
        Index("ix_entry_coop_date", "coop_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger.id", ondelete="CASCADE"))
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    piece: Mapped[str] = mapped_column(String(20))
    date: Mapped[date] = mapped_column(Date)
    label: Mapped[str] = mapped_column(String(200))
    payment_mode: Mapped[str] = mapped_column(String(12))
    cheque_number: Mapped[str] = mapped_column(String(20), default="")
    kind: Mapped[str] = mapped_column(String(20))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("action.id", ondelete="SET NULL"), index=True)
    # One-time token of the form that created it: a replayed submission finds it instead of adding a twin.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The ledger's revision made by the entry's last change (its lines and vouchers included): set in the
    # same transaction by `_bump_ledger_revisions`. 0 for rows written in bulk (app.cahier_days copes).
    ledger_revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    ledger: Mapped[Ledger] = relationship(back_populates="entries")
    action: Mapped[Action | None] = relationship()
    lines: Mapped[list[EntryLine]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="EntryLine.id"
    )

    __mapper_args__ = {"version_id_col": version}


class EntryLine(db.Model):
    """An amount on one account, signed integer cents (debit > 0, credit < 0); an entry's lines sum to zero.

    Bank lines (account 512) also carry `cleared_on`, the date of the statement they appeared on.
    """

    __tablename__ = "entry_line"
    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="amount_not_zero"),
        # Sums per entry and account (balances, reconciliation) without visiting every line of the account.
        Index("ix_entry_line_entry_account", "entry_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entry.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    cleared_on: Mapped[date | None] = mapped_column(Date)
    statement_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("statement_line.id", ondelete="SET NULL"), index=True
    )

    entry: Mapped[Entry] = relationship(back_populates="lines")
    account: Mapped[Account] = relationship()


class Document(db.Model):
    """An uploaded file (stored outside the web root under `storage_key`); optionally a voucher of an entry."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entry.id", ondelete="CASCADE"), index=True)
    # A document of a change of mandataire (form, identity, proof of address, bank documents).
    mandate_change_id: Mapped[int | None] = mapped_column(
        ForeignKey("mandate_change.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # A supporting document of a yearly report (signed quitus, statement at 31 August, subsidy proofs...).
    annual_report_id: Mapped[int | None] = mapped_column(ForeignKey("annual_report.id", ondelete="CASCADE"), index=True)


def _bump_entry_version(session: Session, entry: Entry) -> None:
    """A change to a line (its amount, its pointage) or to a voucher is a change of its entry: its version
    moves too, so that whatever is kept by (entry id, version), such as the classic view's rows, is never
    stale, and it is stamped with its ledger's new revision (called once that revision is made).

    One UPDATE of those two columns only (not an ORM change of the entry: the pointage of a closed
    year's line stays allowed by the closed-year guard), and the loaded entry is told its new version."""
    version = entry.version or 0  # read (or loaded) before the UPDATE below
    session.execute(
        update(Entry)
        .where(Entry.id == entry.id)
        .values(version=Entry.version + 1, ledger_revision=_revision_of(Entry.ledger_id))
        .execution_options(synchronize_session=False)
    )
    set_committed_value(entry, "version", version + 1)


def _revision_of(ledger_id):
    """The current revision of a ledger, as SQL (read in the flush, after the bump)."""
    return select(Ledger.revision).where(Ledger.id == ledger_id).scalar_subquery()


@event.listens_for(Session, "before_flush")
def _bump_ledger_revisions(session: Session, _context, _instances) -> None:
    """Any change to entries, lines, vouchers or actions bumps the revision of the ledgers it shows in,
    and stamps each changed entry with that new revision (`Entry.ledger_revision`)."""
    ledger_ids: set[int] = set()
    coop_ids: set[int] = set()
    chart_changed = False  # an account's code, nature or label: every ledger shows it
    stamped: dict[int, Entry] = {}  # entries written by the ORM in this flush (new or with changed columns)
    bumped: dict[int, Entry] = {}  # entries changed through a line or a voucher only
    for obj in (*session.new, *session.dirty, *session.deleted):
        through_child = False
        if isinstance(obj, EntryLine):
            obj = obj.entry if obj.entry is not None else session.get(Entry, obj.entry_id)
            through_child = True
        elif isinstance(obj, Document) and obj.entry_id is not None:
            # a voucher added or removed changes what the operation shows (the paperclip's count)
            obj = session.get(Entry, obj.entry_id)
            through_child = True
        if isinstance(obj, Entry):
            ledger_id = _ledger_id_of(obj)
            if ledger_id is not None:
                ledger_ids.add(ledger_id)
            if obj in session.deleted:
                continue
            if obj in session.new or session.is_modified(obj, include_collections=False):
                stamped[id(obj)] = obj
            elif through_child and obj.id is not None:
                bumped[id(obj)] = obj
        elif isinstance(obj, Action) and obj.coop_id is not None:
            coop_ids.add(obj.coop_id)
        elif isinstance(obj, Account):
            chart_changed = True
    if chart_changed:  # rare (staff editing the chart): every kept classic view and pointage page goes
        session.execute(
            update(Ledger).values(revision=Ledger.revision + 1).execution_options(synchronize_session=False)
        )
    elif ledger_ids or coop_ids:
        session.execute(
            update(Ledger)
            .where(or_(Ledger.id.in_(ledger_ids), Ledger.coop_id.in_(coop_ids)))
            .values(revision=Ledger.revision + 1)
            .execution_options(synchronize_session=False)
        )
    for key, entry in bumped.items():
        if key not in stamped:
            _bump_entry_version(session, entry)
    for entry in stamped.values():
        ledger_id = _ledger_id_of(entry)  # the ledger bumped above
        if ledger_id is not None:
            entry.ledger_revision = _revision_of(ledger_id)


def _ledger_id_of(entry: Entry) -> int | None:
    """The id of the ledger an entry is in, as the flush will write it (its relationship first)."""
    if entry.ledger is not None:
        return entry.ledger.id
    return entry.ledger_id
