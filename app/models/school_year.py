"""School years (1 September - 31 August) with their membership rates and deadlines."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


def school_year_start(on: date) -> int:
    """Calendar year in which the school year containing `on` began (1 Sept 2025 -> 2025)."""
    return on.year if on.month >= 9 else on.year - 1


def school_year_label(start_year: int) -> str:
    """2025 -> '2025-2026': how a school year is named everywhere (pages, mails, exports)."""
    return f"{start_year}-{start_year + 1}"


class SchoolYear(db.Model):
    """`start_year` 2025 is 2025-2026, from 1 Sept 2025 to 31 Aug 2026. Rates are integer cents.

    The property surcharge is (declared value - threshold) x coefficient; the coefficient is
    stored in millionths of a euro per euro (0,00688 €/€ -> 6880) so no float touches money.
    """

    __tablename__ = "school_year"
    __table_args__ = (
        CheckConstraint("start_year BETWEEN 2000 AND 2100", name="start_year_range"),
        CheckConstraint(
            "pupil_fee_cents >= 0 AND adult_fee_cents >= 0 AND insurance_fee_cents >= 0 "
            "AND property_threshold_cents >= 0 AND property_rate_ppm >= 0",
            name="rates_not_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    start_year: Mapped[int] = mapped_column(Integer, unique=True)
    pupil_fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    adult_fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    insurance_fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    property_threshold_cents: Mapped[int] = mapped_column(Integer, default=200000)
    property_rate_ppm: Mapped[int] = mapped_column(Integer, default=6880)
    membership_deadline: Mapped[date | None] = mapped_column(Date)
    reports_deadline: Mapped[date | None] = mapped_column(Date)

    @property
    def label(self) -> str:
        return school_year_label(self.start_year)

    @property
    def starts_on(self) -> date:
        return date(self.start_year, 9, 1)

    @property
    def ends_on(self) -> date:
        return date(self.start_year + 1, 8, 31)

    def contains(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on

    def __str__(self) -> str:
        return self.label
