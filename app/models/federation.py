"""OCCE 85 settings (one row)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

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
    no_debit_banks: Mapped[str] = mapped_column(String(500), default="La Banque Postale",
                                                server_default="La Banque Postale")

    def __str__(self) -> str:
        return self.name
