"""Audit trail (append-only) and changes waiting for a second administrator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class AuditEvent(db.Model):
    """Who did what, when, from where, on which entity, with the values before and after."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_action_login_created", "action", "actor_login", "created_at"),
        Index("ix_audit_event_coop_created", "coop_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    actor_login: Mapped[str] = mapped_column(String(64), default="")
    coop_id: Mapped[int | None] = mapped_column(ForeignKey("coop.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64), default="")
    entity_id: Mapped[int | None]
    ip: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    coop: Mapped[Coop | None] = relationship(viewonly=True)  # noqa: F821


class PendingChange(db.Model):
    """A sensitive setting (the federation's creditor IBAN or ICS) proposed by one administrator and
    applied only when another administrator confirms it. One pending value per field."""

    __tablename__ = "pending_change"
    __table_args__ = (UniqueConstraint("entity", "entity_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int]
    field: Mapped[str] = mapped_column(String(64))
    new_value: Mapped[str] = mapped_column(String(300))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    requested_by_login: Mapped[str] = mapped_column(String(64), default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
