"""Cross-cutting web security: access decisions per route, session checks, headers, safe redirects.

Every endpoint must have an explicit access level, set with ``@access(...)`` on the view:
``anonymous`` (anyone), ``authenticated`` (any logged-in user), ``coop`` or ``staff``. Flask-Admin
endpoints are ``staff``; static files are ``anonymous``. A route without a decision answers 403
(fail closed) and fails the test that walks ``app.url_map``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, logout_user

from app import clock

LEVELS = ("anonymous", "authenticated", "coop", "staff")
F = TypeVar("F", bound=Callable[..., Any])

# Endpoints served without looking at the session at all (no user loaded, no database read).
SESSIONLESS = {"static", "health.healthz"}


def is_sessionless(endpoint: str | None) -> bool:
    """Static files (ours and Bootstrap's) and the health check."""
    return endpoint in SESSIONLESS or (endpoint or "").endswith(".static")


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, whose cookie a sessionless answer never sends again.

    Flask re-signs a lasting session on every response. A page's stylesheets, scripts and favicon
    are fetched by the browser on its own, after the page and sometimes after the user's next
    step: their answers could set back a session cookie that had meanwhile been changed or dropped
    (seen in the browser tests: the favicon's answer restoring the cookie of a session the browser
    had just let expire). An answer that sets a cookie is also one a shared cache must not keep."""

    def should_set_cookie(self, app: Flask, session) -> bool:
        return not is_sessionless(request.endpoint) and super().should_set_cookie(app, session)


# Endpoints a user who must change the password may still reach.
PASSWORD_CHANGE_ALLOWED = {"auth.change_password", "auth.logout"}


def access(level: str) -> Callable[[F], F]:
    """Declare who may call a view; enforced by `check_access` before every request."""
    if level not in LEVELS:
        raise ValueError(level)

    def decorate(view: F) -> F:
        view.access = level  # type: ignore[attr-defined]
        return view

    return decorate


def endpoint_access(app: Flask, endpoint: str) -> str | None:
    """The access level of an endpoint, or None when nobody declared one."""
    if endpoint == "static" or endpoint.endswith(".static"):
        return "anonymous"
    level = getattr(app.view_functions.get(endpoint), "access", None)
    if level:
        return level
    if endpoint.split(".", 1)[0] in app.extensions.get("admin_blueprints", ()):
        return "staff"
    return None


def safe_next_url(target: str | None, default: str) -> str:
    """`target` when it is a path on this site (no scheme, no host, no backslash), else `default`."""
    if not target:
        return default
    target = target.strip()
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return default
    return target


def _idle_expired() -> bool:
    seen = session.get("seen")
    limit = current_app.config["IDLE_TIMEOUT"].total_seconds()
    return seen is None or clock.timestamp() - float(seen) > limit


def check_access():
    """before_request: idle timeout, forced password change, then the endpoint's access level."""
    g.csp_nonce = secrets.token_urlsafe(16)
    endpoint = request.endpoint
    if endpoint is None:  # 404 / 405: let Flask answer
        return None
    level = endpoint_access(current_app, endpoint)
    if is_sessionless(endpoint):
        return None

    if current_user.is_authenticated:
        if _idle_expired():
            logout_user()
            session.clear()
            flash("Votre session a expiré après 30 minutes d'inactivité. Reconnectez-vous.", "warning")
            return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        session["seen"] = clock.timestamp()
        if current_user.must_change_password and endpoint not in PASSWORD_CHANGE_ALLOWED:
            return redirect(url_for("auth.change_password"))

    if level is None:
        abort(403)
    if level == "anonymous":
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if level == "staff" and not current_user.is_staff:
        abort(403)
    if level == "coop" and not current_user.is_coop:
        abort(403)
    return None


def csp_nonce() -> str:
    return g.get("csp_nonce", "")


def set_security_headers(response):
    """after_request: CSP with a nonce, framing, sniffing, referrer, HSTS over HTTPS, no-store when logged in."""
    nonce = csp_nonce()
    admin_handlers = ""
    if request.blueprint and request.blueprint in current_app.extensions.get("admin_blueprints", ()):
        admin_handlers = " " + current_app.extensions.get("admin_csp_hashes", "")
    if "Content-Security-Policy" in response.headers:  # a view chose a stricter one (downloads: sandbox)
        policy = None
    else:
        policy = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'{admin_handlers}; "
            # Bootstrap and Flask-Admin templates carry style attributes; scripts stay nonce-only.
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    if policy:
        response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    sessionless = is_sessionless(request.endpoint)
    # Read from the session cookie, never from the database: this also runs on the error page of an
    # unreachable database.
    logged_in = not sessionless and bool(session.get("_user_id"))
    if logged_in or request.endpoint in ("auth.login", "auth.reset_password"):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    response.headers.pop("Server", None)
    return response
