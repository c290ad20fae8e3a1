"""OCCE 85 settings (one row)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.extensions import db


class Federation(db.Model):
    """The departmental association: identity, SEPA creditor data, sender address. Single row."""

    __tablename__ = "federation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    department_code: Mapped[str] = mapped_column(String(3), default="085")
    creditor_id: Mapped[str] = mapped_column(String(35), default="")  # ICS
    iban: Mapped[str] = mapped_column(String(34), default="")
    bic: Mapped[str] = mapped_column(String(11), default="")
    sender_email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    # Banks whose accounts take no direct debit of the membership fee: those coops pay by cheque.
    # One name per line (or separated by commas), matched without regard to case or accents.
    no_debit_banks: Mapped[str] = mapped_column(
        String(500), default="La Banque Postale", server_default="La Banque Postale"
    )

    # Direct debits: the pain.008 version the bank takes, the lead time between the run and the
    # collection date, and whether settling a run also books the debit in each coop's cash-book.
    sepa_schema: Mapped[str] = mapped_column(String(20), default="pain.008.001.08", server_default="pain.008.001.08")
    debit_lead_days: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    post_debits_to_ledgers: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa.false())
    # Pre-notification: calendar days between the mail to each coop and the collection (SEPA rulebook:
    # 14 unless agreed otherwise); the most debits the bank takes in one file (None: no limit).
    debit_notice_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")
    debit_max_per_file: Mapped[int | None] = mapped_column(Integer)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def settings(cls, session: Session) -> Federation | None:
        """The single settings row (None before `flask demo` or the first back-office save)."""
        return session.scalar(sa.select(cls).limit(1))
