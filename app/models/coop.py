"""Coop and its mandates."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

DEPARTMENT_CODE = "085"


def coop_login(number: int) -> str:
    """Login of a coop: department code, dash, number on at least three digits (99 -> 085-099, 1234 -> 085-1234)."""
    return f"{DEPARTMENT_CODE}-{number:03d}"


class Coop(db.Model):
    """A school cooperative: identity and bank details. Its login is derived from its number."""

    __tablename__ = "coop"
    __table_args__ = (CheckConstraint("number BETWEEN 1 AND 9999", name="number_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    school_name: Mapped[str] = mapped_column(String(200), default="")
    uai: Mapped[str] = mapped_column(String(8), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(5), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    director_name: Mapped[str] = mapped_column(String(200), default="")
    bank_name: Mapped[str] = mapped_column(String(100), default="")
    iban: Mapped[str] = mapped_column(String(34), default="")
    bic: Mapped[str] = mapped_column(String(11), default="")
    debit_mandate_ref: Mapped[str] = mapped_column(String(35), default="")  # RUM
    debit_mandate_signed_on: Mapped[date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic lock: a form shown before someone else's save cannot overwrite it.
    version: Mapped[int] = mapped_column(Integer, default=1)

    mandates: Mapped[list[Mandate]] = relationship(
        back_populates="coop", order_by="Mandate.started_on.desc()", cascade="all, delete-orphan"
    )
    users: Mapped[list[User]] = relationship(back_populates="coop")  # noqa: F821

    __mapper_args__ = {"version_id_col": version}

    @property
    def login(self) -> str:
        return coop_login(self.number)

    def __str__(self) -> str:
        return f"{self.login} {self.name}"


class Mandate(db.Model):
    """A person holding the coop's bank mandate (mandataire or co-signataire) over a period."""

    __tablename__ = "mandate"
    __table_args__ = (
        CheckConstraint("role IN ('mandataire', 'co-signataire')", name="role"),
        CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name="period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="mandataire")
    civility: Mapped[str] = mapped_column(String(10), default="")
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)

    coop: Mapped[Coop] = relationship(back_populates="mandates")

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.civility, self.first_name, self.last_name) if part)

    def is_current(self, on: date) -> bool:
        return self.started_on <= on and (self.ended_on is None or self.ended_on >= on)

    def __str__(self) -> str:
        return self.full_name
