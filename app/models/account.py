"""Chart of accounts."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

NATURES = {
    "bank": "Banque",
    "cash": "Caisse",
    "advance": "Régie d'avance",
    "opening": "Report à nouveau",
    "expense": "Charge",
    "income": "Produit",
    "subsidy": "Subvention",
}


def occe_code(code: str) -> str:
    """OCCE 8-digit display code: the code padded with zeros to 7 digits, then 8 (6281 -> 62810008)."""
    return code.ljust(7, "0") + "8"


class Account(db.Model):
    """An account of the OCCE chart (code such as 6281), shown with its 8-digit code (62810008)."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint(
            "nature IN ('bank', 'cash', 'advance', 'opening', 'expense', 'income', 'subsidy')", name="nature"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(7), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    nature: Mapped[str] = mapped_column(String(10))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str] = mapped_column(String(500), default="")

    @property
    def display_code(self) -> str:
        return occe_code(self.code)

    def __str__(self) -> str:
        return f"{self.display_code} {self.label}"
