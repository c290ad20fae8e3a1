"""Unbound extensions, initialised by create_app()."""

from __future__ import annotations

from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

from app.web.netutil import client_ip

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Objects keep their loaded values after commit: a view builds its message from what the unit of
# work returned without reading the database again (app/web/uow.py).
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION), session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=client_ip, default_limits=[])
bootstrap = Bootstrap5()
SQLITE_BUSY_TIMEOUT_MS = 5_000  # how long a write waits for the lock; then a French 503, nothing written
babel = Babel()


def configure_sqlite(engine: Engine, wants_write: callable, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    """Make pysqlite transactional the way SQLAlchemy documents it.

    Foreign keys on, WAL, a busy timeout; the driver's own (lazy) BEGIN is disabled and we emit
    BEGIN ourselves: ``BEGIN IMMEDIATE`` for write units, plain ``BEGIN`` for reads so that pages
    do not queue behind writers. A deferred BEGIN in a read-then-write unit loses writes under
    concurrency (SECURITY.md F3, F4). A request is a write unit only from the moment the unit of
    work starts its action (`app.web.uow.run`): loading the user, checking a password, re-encoding
    an image or parsing an import happen before, without holding the lock. Every CLI command is a
    write unit.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if wants_write() else "BEGIN")
