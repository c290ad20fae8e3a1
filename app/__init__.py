"""Coop 85 portal: application factory.

`create_app` only configures (no query, migration or network call); the database schema is
brought up to date by ``flask db upgrade``, a deploy step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, request
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import build_config

ROOT = Path(__file__).resolve().parent.parent
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config (defaults < environment < `config`), extensions, blueprints, admin, CLI."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )
    app.config.update(build_config(app.instance_path, config))
    # As in flaskr: the default SQLite database and dev mail live in the instance folder.
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]

    from app.web.netutil import DatabaseIdConverter

    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    _init_extensions(app)
    _register_blueprints(app)

    from app.views.cahier_table import cahier_cache

    cahier_cache.set_budget(app.config["CAHIER_CACHE_MB"])  # one cache per process, whatever the app

    from admin import init_admin

    init_admin(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _wants_write() -> bool:
    """Whether a new transaction must take the write lock at once (SQLite): see configure_sqlite."""
    from flask import g, has_request_context

    return not has_request_context() or g.get("write_unit", False)


def _repeatable_reads(connection) -> None:
    """PostgreSQL: a page (GET) reads one consistent snapshot, even over several queries; other requests
    and commands keep the default (read committed).

    Set on the driver's connection before its transaction starts, psycopg opens it with « BEGIN
    ISOLATION LEVEL REPEATABLE READ »: one round trip, where a SET TRANSACTION after the BEGIN made two
    on every page (setting the attribute outside a transaction costs no round trip)."""
    from flask import has_request_context
    from psycopg import IsolationLevel

    level = IsolationLevel.REPEATABLE_READ if has_request_context() and request.method in SAFE_METHODS else None
    driver = connection.connection.dbapi_connection
    if driver.isolation_level != level:
        driver.isolation_level = level


def _init_extensions(app: Flask) -> None:
    from app.extensions import (
        babel,
        bootstrap,
        configure_sqlite,
        csrf,
        db,
        limiter,
        login_manager,
        migrate,
        ping_after_idle,
    )

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                configure_sqlite(engine, _wants_write, app.config["SQLITE_BUSY_TIMEOUT_MS"])
            elif engine.dialect.name == "postgresql":
                event.listen(engine, "begin", _repeatable_reads)
                ping_after_idle(engine, app.config["DATABASE_PING_AFTER_IDLE"])
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    bootstrap.init_app(app)
    babel.init_app(app, locale_selector=lambda: "fr", timezone_selector=lambda: "Europe/Paris")

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Connectez-vous pour accéder à cette page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str):
        from sqlalchemy.orm import joinedload

        from app.models import User

        ident, _, version = user_id.partition(":")
        if not ident.isdigit() or not version.isdigit():
            return None
        # the coop comes in the same query: every page of a coop reads it (and is_active does)
        user = db.session.get(User, int(ident), options=[joinedload(User.coop)])
        if user is None or user.session_version != int(version) or not user.is_active:
            return None
        return user


def _register_blueprints(app: Flask) -> None:
    from app.views import auth, coop, ledger, mandates, membership, pointage, yearend
    from app.views import session as session_views
    from app.web import errors, filters, health, logs, security, uploads

    logs.register(app)
    app.session_interface = security.CookieSessions()
    app.before_request(security.check_access)
    uploads.register(app)  # after the access check: only logged-in coops are counted
    app.after_request(security.set_security_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(coop.bp)
    app.register_blueprint(membership.bp)
    app.register_blueprint(ledger.bp)
    app.register_blueprint(pointage.bp)
    app.register_blueprint(mandates.bp)
    app.register_blueprint(yearend.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(session_views.bp)
    errors.register(app)
    filters.register(app)
