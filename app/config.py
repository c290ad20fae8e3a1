"""Configuration: code defaults, then environment overrides, then the mapping a caller passes.

Environment variables (all optional in development):

- ``COOP85_ENV``: ``production`` (default), ``development`` or ``testing``.
- ``SECRET_KEY``: required outside development and testing.
- ``DATABASE_URL``: SQLAlchemy URL; default SQLite file ``instance/coop85.sqlite``.
  ``postgresql://`` URLs are rewritten to use psycopg 3.
- ``UPLOAD_DIR``: where uploaded files are stored (outside the web root).
- ``MAIL_SERVER``, ``MAIL_PORT``, ``MAIL_USE_TLS``, ``MAIL_USE_SSL``, ``MAIL_USERNAME``,
  ``MAIL_PASSWORD``, ``MAIL_DEFAULT_SENDER`` (used when the federation's settings have no sender
  e-mail), ``MAIL_TIMEOUT`` (seconds, default 10): SMTP delivery. Without ``MAIL_SERVER`` mail is
  written as ``.eml`` files under ``instance/mail/``.
- ``SESSION_COOKIE_SECURE``: ``1`` when served over HTTPS (default on in production).
- ``PUBLIC_URL``: the address users see, used in mailed links (e.g. ``https://coop85.example``).
- ``RATELIMIT_STORAGE_URI``: Flask-Limiter storage (``redis://…`` with several app servers).
- ``RATELIMIT_LOGIN``: login attempts allowed per address (default ``30 per 5 minutes``).
- ``PROXY_COUNT``: number of reverse proxies in front of the app (for the client address).
- ``LOG_FORMAT``: ``text`` (default) or ``json`` (one JSON object per line); ``LOG_LEVEL``:
  ``INFO`` by default (one line per request), ``WARNING`` for errors only.
- ``DATABASE_CONNECT_TIMEOUT`` (seconds, default 5) and ``DATABASE_STATEMENT_TIMEOUT`` (seconds,
  default 20, below gunicorn's worker timeout): PostgreSQL gives up on an unreachable server or a
  statement that runs too long, and the user gets the French « portail très occupé » page.
- ``DATABASE_PING_AFTER_IDLE`` (seconds, default 10): PostgreSQL connections idle in the pool longer
  than this are checked (one round trip) before a request uses them, so that one a restarted server
  or a firewall closed is replaced unseen; ``0`` checks every time (`app.extensions.ping_after_idle`).
- ``CAHIER_CACHE_MB`` (default 200): memory each worker process gives the classic view's cache
  (`app.views.cahier_table.CahierCache`; some 4 MB per year of 1,000 operations it keeps). Larger
  keeps more coops' years between their saves; smaller costs a full read of the year more often.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """The configuration is unusable (for instance no SECRET_KEY in production)."""


_TRUE = {"1", "true", "yes", "on"}

DEFAULTS: dict[str, Any] = {
    "COOP85_ENV": "production",
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "DATABASE_PING_AFTER_IDLE": 10,  # seconds: app.extensions.ping_after_idle
    "MAX_CONTENT_LENGTH": 25 * 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 500 * 1024,
    "MAX_FORM_PARTS": 1000,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_NAME": "coop85_session",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_SECURE": True,
    "PERMANENT_SESSION_LIFETIME": timedelta(minutes=30),
    "IDLE_TIMEOUT": timedelta(minutes=30),
    "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=12),  # however active; env SESSION_ABSOLUTE_LIFETIME_HOURS
    "WTF_CSRF_TIME_LIMIT": 4 * 3600,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_LOGIN": "30 per 5 minutes",
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_FAILURE_WINDOW": timedelta(minutes=15),
    "LOGIN_LOCK_DURATION": timedelta(minutes=15),
    "PASSWORD_RESET_VALIDITY": timedelta(hours=1),
    "PASSWORD_MIN_LENGTH": 12,
    "ARGON2_PARAMS": {},  # argon2-cffi defaults: argon2id t=3, m=64 MiB, p=4
    "MAIL_SERVER": None,
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "Coop 85 <ne-pas-repondre@occe85.invalid>",
    "MAIL_MAX_ATTEMPTS": 8,
    # Seconds an SMTP connection or reply may take before the mail is left for a later try.
    "MAIL_TIMEOUT": 10,
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "PROXY_COUNT": 0,
    "BOOTSTRAP_SERVE_LOCAL": True,
    "BABEL_DEFAULT_LOCALE": "fr",
    "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
    "FLASK_ADMIN_SWATCH": "default",
    "SQLALCHEMY_RECORD_QUERIES": False,
    "LOG_FORMAT": "text",
    "LOG_LEVEL": None,  # INFO, or WARNING when testing
    "DATABASE_CONNECT_TIMEOUT": 5,
    "DATABASE_STATEMENT_TIMEOUT": 20,
    "DATABASE_LOCK_TIMEOUT": 5,
    "SQLITE_BUSY_TIMEOUT_MS": 5000,
    "UPLOAD_RATE_LIMIT": "60 per hour",  # files uploaded by one coop (app/web/uploads.py)
    "CAHIER_CACHE_MB": 200,  # per worker process: what the classic view keeps between requests
}

# Variables read from the environment, with the type to coerce them to.
_ENV_VARS: dict[str, type] = {
    "COOP85_ENV": str,
    "SECRET_KEY": str,
    "DATABASE_URL": str,
    "UPLOAD_DIR": str,
    "MAIL_SERVER": str,
    "MAIL_PORT": int,
    "MAIL_USE_TLS": bool,
    "MAIL_USE_SSL": bool,
    "MAIL_USERNAME": str,
    "MAIL_PASSWORD": str,
    "MAIL_DEFAULT_SENDER": str,
    "MAIL_TIMEOUT": float,
    "SESSION_COOKIE_SECURE": bool,
    "PUBLIC_URL": str,
    "RATELIMIT_STORAGE_URI": str,
    "RATELIMIT_LOGIN": str,
    "PROXY_COUNT": int,
    "LOG_FORMAT": str,
    "LOG_LEVEL": str,
    "DATABASE_CONNECT_TIMEOUT": int,
    "DATABASE_STATEMENT_TIMEOUT": int,
    "CAHIER_CACHE_MB": int,
    "DATABASE_PING_AFTER_IDLE": int,
}

DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - refused in production (secret_key_problem)


MIN_SECRET_KEY_BYTES = 32


def secret_key_problem(key: str | bytes) -> str | None:
    """Why `key` is unfit to sign production sessions (French), or None.

    Refused: the public development key, fewer than 32 bytes, or obviously low entropy (few distinct
    characters, one character repeated, a run such as ``abcdef…``/``0123…``). A key from
    ``secrets.token_hex(32)`` (64 hexadecimal characters) always passes.
    """
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if raw == DEV_SECRET_KEY.encode():
        return "c'est la clé publique de développement"
    if len(raw) < MIN_SECRET_KEY_BYTES:
        return f"elle fait {len(raw)} octets, il en faut au moins {MIN_SECRET_KEY_BYTES}"
    if len(set(raw)) < 10:
        return "elle contient trop peu de caractères différents"
    steps = sum(1 for a, b in pairwise(raw) if abs(a - b) <= 1)
    if steps > len(raw) // 2:
        return "elle est faite de suites ou de répétitions de caractères"
    if any(raw.count(raw[i : i + 4]) * 4 > len(raw) // 2 for i in range(len(raw) - 3)):
        return "elle répète le même motif"
    return None


def _coerce(kind: type, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in _TRUE
    return kind(raw)


def database_url(raw: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URL: psycopg 3 for PostgreSQL, SQLite in the instance folder by default."""
    if not raw:
        return "sqlite:///" + str(Path(instance_path) / "coop85.sqlite")
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def postgres_engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """Connect, statement and lock timeouts for PostgreSQL: a black-holed or overloaded server makes
    a request fail fast (French 503 page) instead of hanging a worker until gunicorn kills it.

    `random_page_cost=1.1`: the planner's default (4) assumes spinning disks and makes it read every
    coop's lines (a sequential scan) rather than the few of one ledger by index: a coop's home page
    then spent 15 to 20 ms on each of two such sums instead of 1 or 2 (bench/independence.py). 1.1 is the
    usual setting for SSD storage; a DBA setting it in postgresql.conf makes this one redundant."""
    options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
    connect_args = dict(options.get("connect_args", {}))
    connect_args.setdefault("connect_timeout", config["DATABASE_CONNECT_TIMEOUT"])
    connect_args.setdefault(
        "options",
        f"-c statement_timeout={config['DATABASE_STATEMENT_TIMEOUT'] * 1000} "
        f"-c lock_timeout={config['DATABASE_LOCK_TIMEOUT'] * 1000} "
        "-c idle_in_transaction_session_timeout=60000 "
        "-c random_page_cost=1.1",
    )
    options["connect_args"] = connect_args
    options.setdefault("pool_timeout", config["DATABASE_CONNECT_TIMEOUT"])
    return options


def build_config(
    instance_path: str, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge defaults, environment and overrides; raise ConfigError when unsafe for the environment."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for name, kind in _ENV_VARS.items():
        if environ.get(name):
            config[name] = _coerce(kind, environ[name])
    if environ.get("SESSION_ABSOLUTE_LIFETIME_HOURS"):
        config["SESSION_ABSOLUTE_LIFETIME"] = timedelta(hours=int(environ["SESSION_ABSOLUTE_LIFETIME_HOURS"]))
    config.update(overrides or {})

    env = config["COOP85_ENV"]
    if env not in {"production", "development", "testing"}:
        raise ConfigError(f"COOP85_ENV inconnu : {env!r}")
    if (
        env != "production"
        and "SESSION_COOKIE_SECURE" not in environ
        and "SESSION_COOKIE_SECURE" not in (overrides or {})
    ):
        # Development serves plain HTTP on 127.0.0.1: a Secure cookie would never come back.
        config["SESSION_COOKIE_SECURE"] = False
        config["REMEMBER_COOKIE_SECURE"] = False
    if not config.get("SECRET_KEY"):
        if env == "production":
            raise ConfigError(
                "SECRET_KEY manquant : définissez la variable d'environnement SECRET_KEY "
                "(par exemple `python -c 'import secrets; print(secrets.token_hex(32))'`)."
            )
        config["SECRET_KEY"] = DEV_SECRET_KEY
    if env == "production":
        problem = secret_key_problem(config["SECRET_KEY"])
        if problem:
            raise ConfigError(
                f"SECRET_KEY refusée : {problem}. Générez une clé aléatoire d'au moins 32 octets, par exemple "
                "avec `python -c 'import secrets; print(secrets.token_hex(32))'`, et placez-la dans la "
                "variable d'environnement SECRET_KEY."
            )
    config["SQLALCHEMY_DATABASE_URI"] = config.get("SQLALCHEMY_DATABASE_URI") or database_url(
        config.get("DATABASE_URL"), instance_path
    )
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = postgres_engine_options(config)
    config.setdefault("UPLOAD_DIR", str(Path(instance_path) / "uploads"))
    config.setdefault("MAIL_FILE_DIR", str(Path(instance_path) / "mail"))
    config["TESTING"] = config.get("TESTING", env == "testing")
    return config
