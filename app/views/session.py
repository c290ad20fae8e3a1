"""The session's keep-alive: « Rester connecté » in the expiry warning (app/static/js/session.js).

The idle timeout itself is enforced by `app.web.security.check_access`, which runs before this view:
a request that reaches it has just renewed the session (`seen`), so the view only says how long the
renewed session lasts. An expired session never gets here: the check answers with the login page.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.web.security import access

bp = Blueprint("session", __name__)


@bp.route("/session/prolonger", methods=["POST"])
@access("authenticated")
def keepalive():
    """Renew the idle timeout (CSRF-protected POST; nothing is written to the database)."""
    response = jsonify(idle_seconds=int(current_app.config["IDLE_TIMEOUT"].total_seconds()))
    response.headers["Cache-Control"] = "no-store"
    return response
