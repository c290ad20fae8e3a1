"""Bank statements imported (or typed) by a coop, and their lines."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class Statement(db.Model):
    """One imported file (OFX, CAMT.053, bank CSV, QIF): its period and closing balance when it gives them."""

    __tablename__ = "statement"

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    source_format: Mapped[str] = mapped_column(String(60))
    filename: Mapped[str] = mapped_column(String(255), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(34), default="")
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    closing_balance_cents: Mapped[int | None] = mapped_column(BigInteger)
    closing_balance_date: Mapped[date | None] = mapped_column(Date)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    lines: Mapped[list[StatementLine]] = relationship(back_populates="statement", order_by="StatementLine.id")


class StatementLine(db.Model):
    """A line of a bank statement, signed from the coop's point of view (money in > 0). Raw text kept.

    A bank movement is identified across files and formats by its booking date, amount and cheque
    number (`reconciliation.import_statement`), so re-importing an overlapping statement, in any
    format, adds nothing; `fingerprint` is that identity plus a rank among identical movements
    (older rows hold the bank's id or a hash), unique per coop.
    """

    __tablename__ = "statement_line"
    __table_args__ = (
        UniqueConstraint("coop_id", "fingerprint", name="uq_statement_line_coop_fingerprint"),
        Index("ix_statement_line_coop_date", "coop_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statement.id", ondelete="CASCADE"), index=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[str] = mapped_column(String(500), default="")
    cheque_number: Mapped[str] = mapped_column(String(20), default="")
    reference: Mapped[str] = mapped_column(String(200), default="")  # EndToEndId, mandate ref (RUM), slip number
    fingerprint: Mapped[str] = mapped_column(String(128))
    raw: Mapped[str] = mapped_column(Text, default="")

    statement: Mapped[Statement] = relationship(back_populates="lines")
