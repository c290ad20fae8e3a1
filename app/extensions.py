"""Unbound extensions, initialised by create_app()."""

from __future__ import annotations

import time

from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy import exc as sa_exc
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


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle longer than `idle_seconds`.

    SQLAlchemy's `pool_pre_ping` checks every checkout: one more round trip on every request (the
    cheapest page makes four: BEGIN, its two queries, ROLLBACK; bench/all.py's floor). A
    connection returned to the pool moments ago is alive unless the server restarted in between;
    one idle for a while may have been closed by a restart, a firewall or `idle_session_timeout`.
    Checked then, a dead one is replaced before the request sees it (the pool's documented
    « pessimistic » handling: raising InvalidatePoolError makes it connect again, and drops every
    connection older than it). A restart in the last `idle_seconds` costs each worker process one French
    503 « rien n'a été enregistré » (the statement fails before anything is written; requests holding
    a connection at that moment fail alike): SQLAlchemy then invalidates the pool, dropping every
    connection older than the failure."""

    # Wall-clock time, as the pool's own recycling uses: a monotonic clock stops while a VM is suspended.
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record) -> None:
        record.info["returned_at"] = time.time()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        returned = record.info.get("returned_at")
        if returned is None or (idle_seconds > 0 and time.time() - returned <= idle_seconds):
            return  # a new connection, or one in use moments ago (0: check every time)
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise sa_exc.InvalidatePoolError("connection closed while idle") from error
            raise
