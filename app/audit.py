"""Audit trail: one `AuditEvent` per state change, login and sensitive download.

Values that must never be stored in clear (passwords, tokens, full IBANs) are masked here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import DomainError
from app.models import AuditEvent, Federation, PendingChange, User

_MASKED_FIELDS = {"iban", "pending_iban"}
_SECRET_FIELDS = {
    "password",
    "password_hash",
    "token",
    "token_hash",
    "totp_secret",
    "recovery_code_hashes",
    "session_version",
}


def mask_iban(iban: str) -> str:
    """Keep the country, check digits and last four characters: FR76 **** 0189."""
    compact = (iban or "").replace(" ", "")
    if len(compact) < 8:
        return "****" if compact else ""
    return f"{compact[:4]} **** {compact[-4:]}"


def redact(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Copy `values` with IBANs masked and secrets removed; dates become ISO strings."""
    if values is None:
        return None
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECRET_FIELDS:
            continue
        if key in _MASKED_FIELDS and isinstance(value, str):
            value = mask_iban(value)
        elif isinstance(value, bytes | bytearray | memoryview):
            value = f"<{len(value)} octets>"
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = value.isoformat() if hasattr(value, "isoformat") else str(value)
        clean[key] = value
    return clean


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restrict two snapshots to the keys whose values differ."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def pending_changes(obj: Any, fields: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Before/after of the attributes of `obj` changed in this session but not yet flushed."""
    from sqlalchemy import inspect

    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in fields:
        history = state.attrs[name].history
        if history.has_changes() and history.deleted and history.added and history.deleted[0] != history.added[0]:
            before[name], after[name] = history.deleted[0], history.added[0]
    return before, after


def record(
    session: Session,
    action: str,
    *,
    actor: User | None = None,
    actor_login: str | None = None,
    actor_id: int | None = None,
    coop_id: int | None = None,
    entity: str = "",
    entity_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str = "",
) -> AuditEvent:
    """Add an audit event to the session (flushed with the change it describes, never committed here)."""
    event = AuditEvent(
        action=action,
        actor_id=actor.id if actor is not None else actor_id,
        # Without a user nor a named login, the domain was called by a command (flask ledger import…).
        actor_login=(actor.login if actor is not None else actor_login or "cli")[:64],
        coop_id=coop_id if coop_id is not None else (actor.coop_id if actor is not None else None),
        entity=entity,
        entity_id=entity_id,
        before=redact(before),
        after=redact(after),
        ip=ip[:64],
    )
    session.add(event)
    return event


# -- four eyes: settings that take effect only once a second administrator confirms them ----------

FOUR_EYES_FIELDS: dict[str, tuple[str, ...]] = {"federation": ("iban", "creditor_id")}
_FOUR_EYES_MODELS: dict[str, type] = {"federation": Federation}


def hold_for_confirmation(session: Session, obj: Any, fields: tuple[str, ...], *, by: User, ip: str = "") -> list[str]:
    """Put back the old value of each of `fields` changed on `obj` (not flushed yet) and record the new
    one as a change waiting for another administrator; returns the names of the fields held."""
    before, after = pending_changes(obj, fields)
    entity = obj.__tablename__
    held = []
    for name, value in after.items():
        setattr(obj, name, before[name])
        change = session.scalar(
            sa.select(PendingChange).where(
                PendingChange.entity == entity, PendingChange.entity_id == obj.id, PendingChange.field == name
            )
        )
        if change is None:
            change = PendingChange(entity=entity, entity_id=obj.id, field=name)
            session.add(change)
        change.new_value = str(value or "")
        change.requested_by_id, change.requested_by_login = by.id, by.login
        record(
            session,
            f"{entity}.change_requested",
            actor=by,
            entity=entity,
            entity_id=obj.id,
            before={name: before[name]},
            after={name: value},
            ip=ip,
        )
        held.append(name)
    return held


def pending_for(session: Session, entity: str) -> list[PendingChange]:
    """The changes of `entity` waiting for a second administrator, oldest first."""
    return list(
        session.scalars(
            sa.select(PendingChange).where(PendingChange.entity == entity).order_by(PendingChange.requested_at)
        ).all()
    )


def _pending(session: Session, change_id: int, by: User) -> PendingChange:
    if by.role != "admin":
        raise DomainError("Seul un administrateur peut confirmer ou annuler ce changement.")
    change = session.get(PendingChange, change_id)
    if change is None:
        raise DomainError("Ce changement n'est plus en attente (déjà confirmé ou annulé).")
    return change


def confirm_change(session: Session, change_id: int, *, by: User, ip: str = "") -> PendingChange:
    """A second administrator applies a pending change. Raises DomainError for the one who asked for it."""
    change = _pending(session, change_id, by)
    if change.requested_by_id == by.id:
        raise DomainError("Un autre administrateur doit confirmer ce changement : vous l'avez demandé.")
    target = session.get(_FOUR_EYES_MODELS[change.entity], change.entity_id)
    if target is None:
        raise DomainError("Ce changement porte sur un réglage qui n'existe plus.")
    before = getattr(target, change.field)
    setattr(target, change.field, change.new_value)
    session.delete(change)
    record(
        session,
        f"{change.entity}.change_confirmed",
        actor=by,
        entity=change.entity,
        entity_id=change.entity_id,
        before={change.field: before, "requested_by": change.requested_by_login},
        after={change.field: change.new_value},
        ip=ip,
    )
    return change


def cancel_change(session: Session, change_id: int, *, by: User, ip: str = "") -> PendingChange:
    """An administrator (the one who asked, or another) drops a pending change; audited."""
    change = _pending(session, change_id, by)
    session.delete(change)
    record(
        session,
        f"{change.entity}.change_cancelled",
        actor=by,
        entity=change.entity,
        entity_id=change.entity_id,
        before={change.field: change.new_value, "requested_by": change.requested_by_login},
        ip=ip,
    )
    return change
