"""Fixtures: one migrated database per run (SQLite file, or PostgreSQL via TEST_DATABASE_URL),
emptied back to its post-migration state before every test; apps, clients, factories.

Tests never keep an application context open around requests (each request gets its own
session, as in production); database checks go through `db_check` / `session` fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db, limiter
from app.models import Coop, Mandate, User
from app.passwords import hash_password
from tests.helpers import PASSWORD, STAFF_TOTP_SECRET

FAST_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite")


@pytest.fixture(scope="session")
def base_config(database_url, tmp_path_factory) -> dict[str, Any]:
    files = tmp_path_factory.mktemp("files")
    return {
        "COOP85_ENV": "testing",
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "ARGON2_PARAMS": FAST_ARGON2,
        "MAIL_FILE_DIR": str(files / "mail"),
        "UPLOAD_DIR": str(files / "uploads"),
        "SERVER_NAME": None,
        "LOG_LEVEL": "WARNING",  # also for apps built with COOP85_ENV=production: loggers are global
    }


_APPS: list[Flask] = []


@pytest.fixture(scope="session")
def make_app(base_config) -> Callable[..., Flask]:
    """Build another app on the same database with some settings changed (CSRF on, limits on...)."""

    def make(**overrides: Any) -> Flask:
        app = create_app({**base_config, **overrides})
        _APPS.append(app)
        return app

    return make


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Close the pooled connections of every app a test built (no connection outlives its test)."""
    yield
    while _APPS:
        _dispose(_APPS.pop())


@pytest.fixture(scope="session")
def migrated(make_app) -> dict[str, list[dict]]:
    """Run the real migrations once; return the rows they created (the baseline each test starts from)."""
    from flask_migrate import upgrade

    app = make_app()
    with app.app_context():
        upgrade()
        baseline = {}
        with db.engine.connect() as connection:
            for table in db.metadata.sorted_tables:
                baseline[table.name] = [dict(row._mapping) for row in connection.execute(table.select())]
        db.engine.dispose()
    return baseline


def _reset(app: Flask, baseline: dict[str, list[dict]]) -> None:
    with app.app_context():
        engine = db.engine
        tables = db.metadata.sorted_tables
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                names = ", ".join(f'"{table.name}"' for table in tables)
                connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    connection.execute(table.delete())
            for table in tables:
                if baseline.get(table.name):
                    connection.execute(table.insert(), baseline[table.name])
            if engine.dialect.name == "postgresql":
                for table in tables:
                    if baseline.get(table.name) and "id" in table.c:
                        connection.execute(
                            sa.text(
                                f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "  # noqa: S608
                                f'(SELECT MAX(id) FROM "{table.name}"))'
                            )
                        )


@pytest.fixture(scope="session")
def shared_app(base_config, migrated) -> Flask:
    """The one app of the session with the test settings (building an app, Flask-Admin included, is
    the costly part of a test's set-up). Tests that need other settings call `make_app(...)`."""
    return create_app(base_config)


def _dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def app(shared_app, migrated) -> Iterator[Flask]:
    """The session's app on a database reset to its post-migration state, with an empty cahier cache."""
    from app.views.cahier_table import cahier_cache

    _reset(shared_app, migrated)
    cahier_cache.clear()
    yield shared_app
    # Flask-Limiter keeps its switch and counters in the extension object, shared by every app: a
    # test that built an app with limits on must not leave them on for the next one.
    limiter.enabled = shared_app.config["RATELIMIT_ENABLED"]
    _dispose(shared_app)


DEFAULT_MOMENT = datetime(2025, 9, 15, 8, 30)  # a Monday of the 2025-2026 school year, 10:30 in Paris


@pytest.fixture
def clock() -> Iterator[Callable[[datetime], None]]:
    """Pin the app's clock (`app.clock`) to 15 September 2025 08:30 UTC; call the fixture to move it."""
    from app import clock as app_clock

    app_clock.freeze(DEFAULT_MOMENT)
    yield app_clock.freeze
    app_clock.freeze(None)


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app) -> Iterator[sa.orm.Session]:
    """A database session inside an application context, for domain tests (no requests meanwhile)."""
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def db_check(app) -> Callable[[Callable[[sa.orm.Session], Any]], Any]:
    """Run `fn(session)` in a fresh application context and return its result (for assertions)."""

    def run(fn: Callable[[sa.orm.Session], Any]) -> Any:
        with app.app_context():
            try:
                return fn(db.session)
            finally:
                db.session.remove()

    return run


@dataclass
class CoopInfo:
    id: int
    number: int
    login: str
    user_id: int
    password: str = PASSWORD


@dataclass
class StaffInfo:
    id: int
    login: str
    password: str = PASSWORD


@pytest.fixture
def make_coop(app) -> Callable[..., CoopInfo]:
    """Create a coop with a complete identity, a current mandataire and a login (password PASSWORD)."""

    def make(number: int = 1, *, must_change_password: bool = False, **fields: Any) -> CoopInfo:
        values = {
            "name": f"Coopérative de test {number:03d}",
            "school_name": f"École de test {number}",
            "uai": "0850001P",
            "address": "1 rue de l'École",
            "postal_code": "85000",
            "city": "La Roche-sur-Yon",
            "email": f"coop{number}@example.org",
            "phone": "02 51 00 00 00",
            "director_name": "Mme Test",
            "bank_name": "Crédit Mutuel",
            "iban": "FR7615519000010002000000103",
            "bic": "CMCIFR2A",
        }
        values.update(fields)
        with app.app_context():
            coop = Coop(number=number, **values)
            coop.mandates.append(
                Mandate(role="mandataire", first_name="Claire", last_name="Moreau", started_on=date(2021, 9, 1))
            )
            user = User(
                login=f"085-{number:03d}",
                role="coop",
                coop=coop,
                password_hash=hash_password(PASSWORD, FAST_ARGON2),
                must_change_password=must_change_password,
            )
            db.session.add_all([coop, user])
            db.session.commit()
            info = CoopInfo(id=coop.id, number=number, login=user.login, user_id=user.id)
            db.session.remove()
        return info

    return make


@pytest.fixture
def make_staff(app) -> Callable[..., StaffInfo]:
    def make(login: str = "agent", *, role: str = "staff", must_change_password: bool = False) -> StaffInfo:
        with app.app_context():
            user = User(
                login=login,
                role=role,
                email=f"{login}@occe85.example",
                full_name="Agent OCCE",
                password_hash=hash_password(PASSWORD, FAST_ARGON2),
                must_change_password=must_change_password,
                totp_secret=STAFF_TOTP_SECRET,
                totp_enrolled_at=datetime(2025, 1, 1),
            )
            db.session.add(user)
            db.session.commit()
            info = StaffInfo(id=user.id, login=login)
            db.session.remove()
        return info

    return make


def login(client: FlaskClient, who, password: str | None = None):
    """Log `who` (a CoopInfo, StaffInfo or login string) in through the real login form; staff made by
    `make_staff` also pass the second factor (the code of STAFF_TOTP_SECRET at the app's clock)."""
    name = who if isinstance(who, str) else who.login
    response = client.post(
        "/connexion", data={"login": name, "password": password or getattr(who, "password", PASSWORD)}
    )
    if response.status_code == 302 and response.location.endswith("/connexion/code"):
        from app import auth, clock

        with client.application.app_context():  # a test may log the same person in twice in one step
            db.session.execute(sa.update(User).where(User.login == name).values(totp_last_step=None))
            db.session.commit()
            db.session.remove()
        response = client.post("/connexion/code", data={"code": auth.totp_code(STAFF_TOTP_SECRET, clock.now())})
    return response


@pytest.fixture
def login_as(client) -> Callable[..., FlaskClient]:
    def do(who, password: str | None = None, on: FlaskClient | None = None) -> FlaskClient:
        target = on or client
        response = login(target, who, password)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return target

    return do
