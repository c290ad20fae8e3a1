"""Yearly reports (CRA / CRF) of a coop, and the closed-year guard of the cash-book.

The guard is a `before_flush` hook: whatever the code path (domain function, admin, script), a
flush that adds, changes or deletes an entry, an entry line or a voucher of a closed ledger raises
DomainError. Pointage stays allowed: on a line of a closed year only `cleared_on` and
`statement_line_id` may change (pointage is reconciliation metadata, not accounting); the
figures stored at closing (`LedgerClosing`) never change, whatever is pointed afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.errors import DomainError
from app.extensions import db
from app.models.base import utcnow
from app.models.ledger import Action, Document, Entry, EntryLine, Ledger

REPORT_STATUSES = ("draft", "submitted", "returned", "approved")
# Document.kind of the supporting documents of a report, one slot each.
REPORT_DOCUMENT_KINDS = ("report_quitus", "report_statement", "report_subsidies", "report_other")


class AnnualReport(db.Model):
    """The CRA and CRF of one coop for one closed school year, with the quitus and the documents.

    The CRF figures are computed from the closed ledger (`app.reports.build_crf`); `crf_snapshot`
    keeps what was sent at submission. Status moves only through `app.reports.transition`:
    draft -> submitted -> approved; submitted -> returned -> submitted.
    """

    __tablename__ = "annual_report"
    __table_args__ = (
        UniqueConstraint("ledger_id", name="uq_annual_report_ledger"),
        CheckConstraint("status IN ('draft', 'submitted', 'returned', 'approved')", name="status"),
        CheckConstraint("council_count IS NULL OR council_count >= 0", name="council_count_not_negative"),
        Index("ix_annual_report_year_status", "school_year_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger.id", ondelete="CASCADE"))
    school_year_id: Mapped[int] = mapped_column(ForeignKey("school_year.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="draft")

    # CRA (compte rendu d'activités): classes [{"name", "level", "pupils"}], actions [{"name",
    # "description"}]; the money of each action comes from the ledger, never from here.
    cra_classes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    council_count: Mapped[int | None] = mapped_column(Integer)
    cra_actions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    occe_participation: Mapped[str] = mapped_column(String(3), default="")  # "oui" / "non" / "" (not answered)
    occe_actions: Mapped[str] = mapped_column(Text, default="")
    cra_comment: Mapped[str] = mapped_column(Text, default="")
    cra_saved_at: Mapped[datetime | None]

    # Quitus: the vérificateurs [{"name", "quality": parent / teacher / other}] and the mandataire.
    auditors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    mandataire_name: Mapped[str] = mapped_column(String(200), default="")
    quitus_saved_at: Mapped[datetime | None]

    crf_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    submitted_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    returned_at: Mapped[datetime | None]
    return_reason: Mapped[str] = mapped_column(Text, default="")
    approved_at: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic lock: two tabs (or the coop and the staff) cannot overwrite each other silently.
    version: Mapped[int] = mapped_column(Integer, default=1)

    coop: Mapped[Coop] = relationship()  # noqa: F821
    ledger: Mapped[Ledger] = relationship()
    school_year: Mapped[SchoolYear] = relationship()  # noqa: F821
    documents: Mapped[list[Document]] = relationship(order_by="Document.id", viewonly=True)

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_editable(self) -> bool:
        """The coop may change its answers and documents (not once sent, unless staff return it)."""
        return self.status in ("draft", "returned")

    def __str__(self) -> str:
        return f"Compte rendu {self.school_year.label if self.school_year else ''}".strip()


class LedgerClosing(db.Model):
    """The figures a closing stored: the CRF of the closed year, frozen (`app.crf.freeze`).

    `figures` holds everything the CRF shows (result, balance sheet, reconciliation at 31 August
    with every uncleared line, cash count by denomination, subsidies, actions, inventory register);
    a closed year's CRF, page, PDF, JSON and consolidation read it, never a recomputation.
    `checksum` is the SHA-256 of its canonical JSON and `code` the short verification code printed
    on the PDF. A row never changes (guarded below); a staff reopening stamps `superseded_at`, and
    closing again adds a new row.
    """

    __tablename__ = "ledger_closing"
    __table_args__ = (Index("ix_ledger_closing_ledger_superseded", "ledger_id", "superseded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger.id", ondelete="CASCADE"))
    closed_at: Mapped[datetime]
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    checksum: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(16), index=True)
    superseded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ledger: Mapped[Ledger] = relationship()


# -- the closed-year guard -----------------------------------------------------------------------

_POINTAGE_COLUMNS = {"cleared_on", "statement_line_id"}
_CLOSING_COLUMNS = ("closing_statement_balance_cents", "cash_count", "coop_id", "school_year_id")


def _closed(ledger: Ledger | None) -> bool:
    return ledger is not None and ledger.status == "closed"


def _refuse(ledger: Ledger) -> None:
    raise DomainError(f"Le cahier {ledger.school_year.label} est clôturé : il ne peut plus être modifié.")


def _entry_of(session: Session, line: EntryLine) -> Entry | None:
    return line.entry if line.entry is not None else session.get(Entry, line.entry_id)


def _changed_columns(obj: Any) -> set[str]:
    """Attributes changed in this session: columns and many-to-one links (a line taken off its entry)."""
    state = sa.inspect(obj)
    keys = [attr.key for attr in state.mapper.column_attrs]
    keys += [rel.key for rel in state.mapper.relationships if not rel.uselist]
    return {key for key in keys if state.attrs[key].history.has_changes()}


@event.listens_for(Session, "before_flush")
def _guard_closed_years(session: Session, _context, _instances) -> None:
    """Refuse any accounting change to a closed ledger (see the module docstring)."""
    new, dirty, deleted = set(session.new), set(session.dirty), set(session.deleted)
    deleted_ledgers = {obj for obj in deleted if isinstance(obj, Ledger)}
    for obj in (*new, *dirty, *deleted):
        if isinstance(obj, Entry):
            ledger = obj.ledger if obj.ledger is not None else session.get(Ledger, obj.ledger_id)
            if ledger in deleted_ledgers or not _closed(ledger):
                continue
            if obj in dirty and not _changed_columns(obj):
                continue  # only its collection changed: the lines themselves are checked below
            _refuse(ledger)
        elif isinstance(obj, EntryLine):
            entry = _entry_of(session, obj)
            ledger = entry.ledger if entry is not None else None
            if ledger in deleted_ledgers or not _closed(ledger):
                continue
            if obj in dirty and not (_changed_columns(obj) - _POINTAGE_COLUMNS):
                continue  # pointage of a line of a closed year: allowed
            _refuse(ledger)
        elif isinstance(obj, Document) and obj in new and obj.entry_id is not None:
            entry = session.get(Entry, obj.entry_id)
            if entry is not None and _closed(entry.ledger):
                _refuse(entry.ledger)
        elif isinstance(obj, LedgerClosing) and obj in (dirty | deleted) and obj.ledger not in deleted_ledgers:
            if obj in deleted or _changed_columns(obj) - {"superseded_at"}:
                raise DomainError("Les chiffres enregistrés à la clôture ne peuvent pas être modifiés.")
        elif isinstance(obj, Ledger) and obj in dirty and obj.status == "closed":
            status = sa.inspect(obj).attrs["status"].history
            if not status.has_changes() and _changed_columns(obj) & set(_CLOSING_COLUMNS):
                _refuse(obj)
        elif isinstance(obj, Action) and obj in dirty and "name" in _changed_columns(obj):
            year = session.scalar(
                sa.select(Ledger)
                .join(Entry, Entry.ledger_id == Ledger.id)
                .where(Entry.action_id == obj.id, Ledger.status == "closed")
                .limit(1)
            )
            if year is not None:
                raise DomainError(
                    f"L'action figure dans le cahier clôturé {year.school_year.label} : son nom ne "
                    "peut plus changer. Créez une nouvelle action pour la suite.",
                    field="name",
                )
