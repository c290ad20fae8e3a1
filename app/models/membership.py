"""Membership (adhésion) of a coop for a school year, with its classes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

MEMBERSHIP_STATUSES = ("draft", "committed", "in_batch", "paid", "rejected", "returned")
PAYMENT_METHODS = ("debit", "cheque")


class Membership(db.Model):
    """The adhésion of one coop for one school year.

    While `draft`, the coop edits its classes, other adults and declared property. The
    engagement of the mandataire (`committed`) freezes the headcounts, the rates used and the
    amounts, in integer cents: later rate changes never alter them. Status moves only through
    `app.membership.transition`.
    """

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("coop_id", "school_year_id", name="uq_membership_coop_year"),
        CheckConstraint("status IN ('draft', 'committed', 'in_batch', 'paid', 'rejected', 'returned')", name="status"),
        CheckConstraint("payment_method IS NULL OR payment_method IN ('debit', 'cheque')", name="payment_method"),
        CheckConstraint(
            "atsem_count >= 0 AND aesh_count >= 0 AND other_adults_count >= 0 AND property_value_cents >= 0",
            name="declared_not_negative",
        ),
        CheckConstraint(
            "status = 'draft' OR (committed_at IS NOT NULL AND total_cents IS NOT NULL)", name="committed_is_frozen"
        ),
        Index("ix_membership_year_status", "school_year_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    school_year_id: Mapped[int] = mapped_column(ForeignKey("school_year.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="draft")

    # Declared by the coop (editable while draft); the classes carry pupils and teachers.
    atsem_count: Mapped[int] = mapped_column(Integer, default=0)
    aesh_count: Mapped[int] = mapped_column(Integer, default=0)
    other_adults_count: Mapped[int] = mapped_column(Integer, default=0)
    property_value_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    # Frozen at the engagement: totals, the year's rates as they were, and the amounts.
    pupils_count: Mapped[int | None] = mapped_column(Integer)
    teachers_count: Mapped[int | None] = mapped_column(Integer)
    insured_count: Mapped[int | None] = mapped_column(Integer)
    rate_pupil_cents: Mapped[int | None] = mapped_column(Integer)
    rate_adult_cents: Mapped[int | None] = mapped_column(Integer)
    rate_insurance_cents: Mapped[int | None] = mapped_column(Integer)
    rate_property_threshold_cents: Mapped[int | None] = mapped_column(BigInteger)
    rate_property_ppm: Mapped[int | None] = mapped_column(Integer)
    cotisation_cents: Mapped[int | None] = mapped_column(BigInteger)
    insurance_cents: Mapped[int | None] = mapped_column(BigInteger)
    property_surcharge_cents: Mapped[int | None] = mapped_column(BigInteger)
    total_cents: Mapped[int | None] = mapped_column(BigInteger)

    # Engagement du mandataire: who, when, from which address.
    mandataire_name: Mapped[str] = mapped_column(String(200), default="")
    committed_at: Mapped[datetime | None]
    committed_ip: Mapped[str] = mapped_column(String(64), default="")
    committed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    # Payment: by direct debit (the default) or by cheque (banks without direct debit).
    payment_method: Mapped[str | None] = mapped_column(String(10))
    paid_at: Mapped[datetime | None]
    # Printed on the attestation and the certificate; staff look it up in the back office.
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic lock: two tabs (or the coop and the staff) cannot overwrite each other silently.
    version: Mapped[int] = mapped_column(Integer, default=1)

    coop: Mapped[Coop] = relationship()  # noqa: F821
    school_year: Mapped[SchoolYear] = relationship()  # noqa: F821
    classes: Mapped[list[MembershipClass]] = relationship(
        back_populates="membership", cascade="all, delete-orphan", order_by="MembershipClass.position"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"

    @property
    def other_adults_total(self) -> int:
        """ATSEM, AESH and other adults (teachers are counted in the classes)."""
        return self.atsem_count + self.aesh_count + self.other_adults_count

    @property
    def assurance_cents(self) -> int | None:
        """Insurance part of the frozen fee: per insured member plus the property surcharge."""
        if self.insurance_cents is None or self.property_surcharge_cents is None:
            return None
        return self.insurance_cents + self.property_surcharge_cents

    def __str__(self) -> str:
        return self.reference or f"Adhésion n° {self.id}"


class MembershipClass(db.Model):
    """One class declared in a membership: its name, level, pupils and teachers."""

    __tablename__ = "membership_class"
    __table_args__ = (CheckConstraint("pupils >= 0 AND teachers >= 0", name="counts_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(30), default="")
    pupils: Mapped[int] = mapped_column(Integer, default=0)
    teachers: Mapped[int] = mapped_column(Integer, default=0)

    membership: Mapped[Membership] = relationship(back_populates="classes")
