"""`/healthz`: is this app server able to serve? For the proxy, systemd and monitoring.

No session, no login, no cookie: it checks that the database answers within a short timeout and
reports the migration the database is at beside the one the code expects. 200 with
`{"status": "ok", ...}` when both agree; 503 with `"status": "error"` otherwise (database down or
busy, or migrations not applied: run `flask db upgrade`).

It also reports the mail queue (`mail`: pending, failed, age of the oldest pending mail in
minutes) and lists `warnings` in French when mail is stuck (a pending mail older than 15 minutes:
the `flask mail send` timer or the SMTP server is down; a failed mail: staff must « Renvoyer » it).
Warnings do not change the status: the portal still serves.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify

from app import clock
from app.extensions import db
from app.models import OutboxEmail
from app.web.security import access

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
_HEADS: dict[str, str] = {}


def code_head() -> str:
    """The newest migration of the code (read once per process)."""
    directory = current_app.extensions["migrate"].directory
    if directory not in _HEADS:
        script = ScriptDirectory.from_config(_alembic_config(directory))
        _HEADS[directory] = script.get_current_head() or ""
    return _HEADS[directory]


def _alembic_config(directory: str) -> Config:
    config = Config(str(Path(directory) / "alembic.ini"))
    config.set_main_option("script_location", directory)
    return config


MAIL_STUCK_MINUTES = 15


def mail_queue(now: datetime) -> tuple[dict, list[str]]:
    """The outbox at a glance, and the French warnings an operator should act on."""
    pending, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(OutboxEmail.created_at)).where(OutboxEmail.status == "pending")
    ).one()
    failed = db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.status == "failed"))
    age = int((now - oldest).total_seconds() // 60) if oldest else 0
    warnings = []
    if pending and age >= MAIL_STUCK_MINUTES:
        warnings.append(
            f"{pending} courriel(s) en attente, le plus ancien depuis {age} min : vérifiez `flask mail send`."
        )
    if failed:
        warnings.append(f"{failed} courriel(s) en échec : à renvoyer depuis le back office (Suivi › Courriels).")
    return {"pending": pending, "failed": failed, "oldest_pending_minutes": age}, warnings


def database_head() -> str:
    """The migration the database is at, read with a short timeout on a connection of its own."""
    engine = db.engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET statement_timeout = 2000")
        return connection.scalar(sa.text("SELECT version_num FROM alembic_version")) or ""


@bp.route("/healthz")
@access("anonymous")
def healthz():
    expected = code_head()
    try:
        current = database_head()
    except Exception as exc:  # any failure is an unhealthy answer, never an error page
        log.warning("health check: database unavailable: %s", str(exc).splitlines()[0][:300])
        body = {"status": "error", "database": "unavailable", "migration": None, "expected_migration": expected}
        return jsonify(body), 503, {"Cache-Control": "no-store"}
    healthy = current == expected
    body = {
        "status": "ok" if healthy else "error",
        "database": "ok",
        "migration": current,
        "expected_migration": expected,
    }
    if healthy:
        body["mail"], body["warnings"] = mail_queue(clock.now())
    return jsonify(body), 200 if healthy else 503, {"Cache-Control": "no-store"}
