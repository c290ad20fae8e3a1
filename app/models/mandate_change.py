"""Change of mandataire (changement de mandataire): the dossier a coop sends to OCCE 85 for its bank."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

MANDATE_CHANGE_STATUSES = ("draft", "submitted", "returned", "validated", "sent_to_bank", "completed")
# Document.kind values attached to a change (the coop uploads the first three; staff the last two).
MANDATE_DOCUMENT_KINDS = ("mandate_form", "identity", "address_proof", "bank_document", "bank_dossier")


class MandateChange(db.Model):
    """The dossier: incoming and outgoing mandataire, effective date, documents, status, staff decisions.

    Status moves only through `app.mandates.transition`. `open_for_coop_id` holds the coop's id until
    the change is completed (then NULL): its unique constraint allows one open dossier per coop, even
    when two requests race.
    """

    __tablename__ = "mandate_change"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'submitted', 'returned', 'validated', 'sent_to_bank', 'completed')", name="status"
        ),
        CheckConstraint("(status = 'completed') = (open_for_coop_id IS NULL)", name="open_until_completed"),
        Index("ix_mandate_change_status_submitted", "status", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    open_for_coop_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(15), default="draft")

    # The incoming mandataire (always a teacher of the school: DOMAIN.md §7.1).
    incoming_civility: Mapped[str] = mapped_column(String(10), default="")
    incoming_last_name: Mapped[str] = mapped_column(String(100))
    incoming_first_name: Mapped[str] = mapped_column(String(100))
    incoming_email: Mapped[str] = mapped_column(String(254))
    incoming_phone: Mapped[str] = mapped_column(String(20), default="")
    incoming_is_teacher: Mapped[bool] = mapped_column(Boolean, default=False)

    # The outgoing one: the mandate that ends (frozen at submission) and the name printed on the form.
    outgoing_mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandate.id", ondelete="SET NULL"), index=True)
    outgoing_civility: Mapped[str] = mapped_column(String(10), default="")
    outgoing_last_name: Mapped[str] = mapped_column(String(100), default="")
    outgoing_first_name: Mapped[str] = mapped_column(String(100), default="")

    effective_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(20))
    reason_details: Mapped[str] = mapped_column(String(500), default="")
    proof_of_address_date: Mapped[date | None] = mapped_column(Date)
    return_reason: Mapped[str] = mapped_column(String(1000), default="")
    # The bank the dossier was prepared for (the coop's bank when staff validated it).
    bank_name: Mapped[str] = mapped_column(String(100), default="")

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    validated_at: Mapped[datetime | None]
    validated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    sent_to_bank_at: Mapped[datetime | None]
    sent_to_bank_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    new_mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandate.id", ondelete="SET NULL"))
    # Optimistic lock: the coop replacing a document while staff validate cannot go unnoticed.
    version: Mapped[int] = mapped_column(Integer, default=1)

    coop: Mapped[Coop] = relationship()  # noqa: F821
    outgoing_mandate: Mapped[Mandate | None] = relationship(foreign_keys=[outgoing_mandate_id])  # noqa: F821
    new_mandate: Mapped[Mandate | None] = relationship(foreign_keys=[new_mandate_id])  # noqa: F821
    documents: Mapped[list[Document]] = relationship(  # noqa: F821
        order_by="Document.id", viewonly=True
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def incoming_full_name(self) -> str:
        return " ".join(p for p in (self.incoming_civility, self.incoming_first_name, self.incoming_last_name) if p)

    @property
    def outgoing_full_name(self) -> str:
        return " ".join(p for p in (self.outgoing_civility, self.outgoing_first_name, self.outgoing_last_name) if p)

    def document(self, kind: str) -> Document | None:  # noqa: F821
        """The latest document of `kind` attached to this change (one per kind is kept)."""
        found = [d for d in self.documents if d.kind == kind]
        return found[-1] if found else None

    def __str__(self) -> str:
        return self.reference
