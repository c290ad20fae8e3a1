"""The one helper through which coop-face views reach coop-owned rows.

`owned(Model)` is a SELECT restricted to the logged-in coop; `owned_or_404(Model, id)` loads one
row of the logged-in coop or answers 404, so another coop's id looks exactly like a missing one
(and the refusal is audited).
"""

from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa
from flask import abort, request
from flask_login import current_user

from app.extensions import db
from app.web import uow
from app.web.netutil import client_ip

M = TypeVar("M")


def current_coop_id() -> int:
    """The coop of the logged-in user (coop views are only reachable by coop users)."""
    coop_id = getattr(current_user, "coop_id", None)
    if coop_id is None:
        abort(403)
    return coop_id


def owned(model: type[M]) -> sa.Select:
    """SELECT of `model` rows belonging to the logged-in coop."""
    return sa.select(model).where(model.coop_id == current_coop_id())  # type: ignore[attr-defined]


def owned_or_none(model: type[M], ident: int) -> M | None:
    """The row `ident` of `model` if it belongs to the logged-in coop; otherwise None, and a row of
    another coop is audited as a refused access (written aside: this request may not commit)."""
    row = db.session.scalar(owned(model).where(model.id == ident))  # type: ignore[attr-defined]
    if row is None and db.session.get(model, ident) is not None:
        who = {"actor_id": current_user.id, "actor_login": current_user.login, "coop_id": current_user.coop_id}
        # A POST's transaction is dropped first so that the aside write does not wait for its lock.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            db.session.rollback()
        uow.record_aside("access.denied", entity=model.__tablename__, entity_id=ident, ip=client_ip(), **who)
    return row


def owned_or_404(model: type[M], ident: int) -> M:
    """The row `ident` of `model` if it belongs to the logged-in coop; otherwise audit and 404."""
    row = owned_or_none(model, ident)
    if row is None:
        abort(404)
    return row
