"""Direct-debit runs of membership fees (prélèvements SEPA)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class DebitBatch(db.Model):
    """One run: a collection date, the memberships debited, and once exported the exact bytes sent to the bank.

    The exported files are stored with their SHA-256 so that downloading them again gives the same bytes
    (a SepaDD object is never exported twice).
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

    debits: Mapped[list[Debit]] = relationship(back_populates="batch", order_by="Debit.id")

    def __str__(self) -> str:
        return f"Prélèvement n° {self.id} du {self.collection_date:%d/%m/%Y}"


class Debit(db.Model):
    """One coop's membership fee in a run; rejected when the bank returns it."""

    __tablename__ = "debit"
    __table_args__ = (
        UniqueConstraint("batch_id", "membership_id", name="uq_debit_batch_membership"),
        CheckConstraint("status IN ('pending', 'paid', 'rejected')", name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("debit_batch.id", ondelete="CASCADE"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id"), index=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    end_to_end_id: Mapped[str] = mapped_column(String(35))
    mandate_ref: Mapped[str] = mapped_column(String(35))
    iban: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    rejected_at: Mapped[datetime | None]
    reject_reason: Mapped[str] = mapped_column(String(300), default="")

    batch: Mapped[DebitBatch] = relationship(back_populates="debits")
    membership: Mapped[Membership] = relationship()  # noqa: F821
    coop: Mapped[Coop] = relationship()  # noqa: F821
