"""Direct-debit runs of membership fees (prélèvements SEPA), their files and the bank's reports."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

# pending: in a run not yet settled (in its file once the run is exported); paid: settled;
# rejected: came back before settlement; returned / refunded: came back after settlement.
DEBIT_STATUSES = ("pending", "paid", "rejected", "returned", "refunded")


class DebitBatch(db.Model):
    """One run: a collection date, the memberships debited, and once exported its files (`DebitFile`).

    `xml_content`/`csv_content` hold the single file of runs exported before files could be split
    (migration 0013 copied them to a `DebitFile`); they are kept so that a downgrade loses nothing.
    """

    __tablename__ = "debit_batch"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'exported', 'settled')", name="status"),
        CheckConstraint("schema IN ('pain.008.001.08', 'pain.008.001.02')", name="schema"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_date: Mapped[date] = mapped_column(Date)
    schema: Mapped[str] = mapped_column(String(20), default="pain.008.001.08")
    status: Mapped[str] = mapped_column(String(10), default="draft")
    message_id: Mapped[str] = mapped_column(String(35), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    exported_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    count: Mapped[int] = mapped_column(Integer, default=0)
    control_sum_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    xml_content: Mapped[bytes | None] = mapped_column(LargeBinary)
    xml_sha256: Mapped[str] = mapped_column(String(64), default="")
    csv_content: Mapped[bytes | None] = mapped_column(LargeBinary)
    csv_sha256: Mapped[str] = mapped_column(String(64), default="")
    # Staff ticked that the coops agreed to a pre-notification shorter than the setting.
    shorter_notice_agreed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    debits: Mapped[list[Debit]] = relationship(back_populates="batch", order_by="Debit.id")
    files: Mapped[list[DebitFile]] = relationship(
        back_populates="batch", order_by="DebitFile.sequence", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return f"Prélèvement n° {self.id} du {self.collection_date:%d/%m/%Y}"


class DebitFile(db.Model):
    """One file sent to the bank for a run (a run is split when the bank caps the debits per file)."""

    __tablename__ = "debit_file"
    __table_args__ = (
        UniqueConstraint("batch_id", "sequence", name="uq_debit_file_batch_sequence"),
        CheckConstraint("count >= 0 AND control_sum_cents >= 0", name="totals_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("debit_batch.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=1)
    message_id: Mapped[str] = mapped_column(String(35), unique=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    control_sum_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    xml_content: Mapped[bytes] = mapped_column(LargeBinary)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    csv_content: Mapped[bytes] = mapped_column(LargeBinary)
    csv_sha256: Mapped[str] = mapped_column(String(64))

    batch: Mapped[DebitBatch] = relationship(back_populates="files")
    debits: Mapped[list[Debit]] = relationship(back_populates="file", order_by="Debit.id")


class Debit(db.Model):
    """One coop's membership fee in a run, and what became of it (with the bank's ISO reason code)."""

    __tablename__ = "debit"
    __table_args__ = (
        UniqueConstraint("batch_id", "membership_id", name="uq_debit_batch_membership"),
        UniqueConstraint("end_to_end_id", name="uq_debit_end_to_end_id"),
        CheckConstraint("status IN ('pending', 'paid', 'rejected', 'returned', 'refunded')", name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("debit_batch.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("debit_file.id", ondelete="SET NULL"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"), index=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    end_to_end_id: Mapped[str] = mapped_column(String(35))
    mandate_ref: Mapped[str] = mapped_column(String(35))
    iban: Mapped[str] = mapped_column(String(34))
    # Mandate amendment carried by this debit (first debit after a change): the values before it.
    original_mandate_ref: Mapped[str] = mapped_column(String(35), default="", server_default="")
    original_iban: Mapped[str] = mapped_column(String(34), default="", server_default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    # When it came back (rejected, returned or refunded), the ISO 20022 reason code and its label.
    rejected_at: Mapped[datetime | None]
    reason_code: Mapped[str] = mapped_column(String(4), default="", server_default="")
    reject_reason: Mapped[str] = mapped_column(String(300), default="")
    # The entry booked in the coop's cash-book at settlement, and the one reversing it after a return.
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entry.id", ondelete="SET NULL"))
    reversal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entry.id", ondelete="SET NULL"))

    batch: Mapped[DebitBatch] = relationship(back_populates="debits")
    file: Mapped[DebitFile | None] = relationship(back_populates="debits")
    membership: Mapped[Membership] = relationship()  # noqa: F821
    coop: Mapped[Coop] = relationship()  # noqa: F821


class DebitReport(db.Model):
    """A status file received from the bank (pain.002 or camt.054): stored once, applied once."""

    __tablename__ = "debit_report"
    __table_args__ = (CheckConstraint("kind IN ('pain.002', 'camt.054')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    file_name: Mapped[str] = mapped_column(String(200), default="")
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    applied_at: Mapped[datetime | None]
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    applied_count: Mapped[int] = mapped_column(Integer, default=0)
