"""Audit trail: one `AuditEvent` per state change, login and sensitive download.

Values that must never be stored in clear (passwords, tokens, full IBANs) are masked here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import AuditEvent, User

_MASKED_FIELDS = {"iban"}
_SECRET_FIELDS = {"password", "password_hash", "token", "token_hash"}


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
