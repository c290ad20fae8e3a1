"""Faults at the edges, run automatically: the database connection cut in the middle of a request,
a process killed in the middle of its writes, two saves of the same data at the same moment.

Each must end in a French answer, with nothing half-written, and the portal must go on working
without a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.models import Coop, Entry, EntryLine
from tests.test_identity import VALID
from tests.test_reliability import _identity_form

ROOT = Path(__file__).resolve().parent.parent


class CuttingProxy:
    """A TCP proxy on loopback in front of PostgreSQL that can cut a connection when the client
    sends given bytes (a statement), as a network failure in the middle of a request would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cut_on: bytes | None = None
        self.cuts = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, inspect: bool) -> None:
        try:
            while data := source.recv(65536):
                if inspect and self.cut_on and self.cut_on in data:
                    self.cut_on, self.cuts = None, self.cuts + 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def postgres_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("connection cut through a TCP proxy: PostgreSQL pass of `make test` only")
    return sa.engine.make_url(database_url)


def test_a_connection_cut_mid_request_gives_the_french_page_then_recovers(
    postgres_url, make_app, migrated, make_coop, login_as, db_check
):
    proxy = CuttingProxy((postgres_url.host or "127.0.0.1", postgres_url.port or 5432))
    try:
        url = postgres_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = make_app(SQLALCHEMY_DATABASE_URI=url)
        info = make_coop(1)
        client = login_as(info, on=app.test_client())
        form = {**_identity_form(client), "city": "Challans"}
        proxy.cut_on = b"UPDATE coop SET"
        response = client.post("/coop/identite", data=form)
        assert proxy.cuts == 1
        body = response.get_data(as_text=True)
        assert response.status_code == 503 and "rien n&#39;a été enregistré" in body
        assert db_check(lambda s: s.get(Coop, info.id).city) == "La Roche-sur-Yon"
        # No restart: the pool drops the dead connection and the same form goes through.
        assert client.post("/coop/identite", data=form).status_code == 302
        assert db_check(lambda s: s.get(Coop, info.id).city) == "Challans"
    finally:
        proxy.close()


def _pooled_backend(app) -> int:
    """The PostgreSQL process behind the app's one pooled connection."""
    from app.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        return connection.connection.dbapi_connection.info.backend_pid


def _terminate(url: sa.engine.URL, pid: int) -> None:
    """Close one server process from outside, as a PostgreSQL restart or a firewall would."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


def test_a_pooled_connection_closed_while_idle_is_replaced_unseen(postgres_url, make_app, make_coop, login_as):
    app = make_app(DATABASE_PING_AFTER_IDLE=0)  # every connection counts as idle: checked before use
    client = login_as(make_coop(1), on=app.test_client())
    assert client.get("/coop/identite").status_code == 200
    _terminate(postgres_url, _pooled_backend(app))
    response = client.get("/coop/identite")
    assert response.status_code == 200 and "La Roche-sur-Yon" in response.get_data(as_text=True)


def test_a_connection_closed_moments_after_use_costs_one_french_page_then_recovers(
    postgres_url, make_app, make_coop, login_as
):
    """Within the idle delay the connection is used unchecked (one round trip saved per request): the
    one request that meets a connection closed meanwhile gets the French page, the next one works."""
    app = make_app(DATABASE_PING_AFTER_IDLE=3600)
    client = login_as(make_coop(1), on=app.test_client())
    assert client.get("/coop/identite").status_code == 200
    _terminate(postgres_url, _pooled_backend(app))
    response = client.get("/coop/identite")
    assert response.status_code == 503 and "rien n&#39;a été enregistré" in response.get_data(as_text=True)
    assert client.get("/coop/identite").status_code == 200


WRITER = """
import sys
from datetime import date
import sqlalchemy as sa
from app import create_app
from app import ledger as books
from app.extensions import db
from app.models import Coop
app = create_app({"COOP85_ENV": "testing", "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": sys.argv[1]})
with app.app_context():
    coop = db.session.get(Coop, int(sys.argv[2]))
    ledger = books.open_ledger(db.session, coop, 2025)
    db.session.commit()
    for number in range(1, 100000):
        data = books.EntryData(
            piece=f"K{number}", date=date(2025, 10, 1), label="Fournitures", payment_mode="cheque",
            kind="expense", treasury=books.Treasury(bank_out=1000 + number),
            splits=[books.Split("6068", 600 + number), books.Split("6181", 400)], cheque_number=str(number),
        )
        books.record_entry(db.session, ledger, data, by=None)
        db.session.commit()
        if number == 20:
            print("ready", flush=True)
"""


def test_a_process_killed_mid_write_leaves_no_half_entry(database_url, app, make_coop, db_check):
    info = make_coop(1)
    command = [sys.executable, "-c", WRITER, database_url, str(info.id)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as writer:
        line = writer.stdout.readline()
        if line.strip() == "ready":
            writer.send_signal(signal.SIGKILL)  # in the middle of the next writes
        writer.wait(timeout=30)
        assert line.strip() == "ready", writer.stderr.read()

    def check(session):
        entries = session.scalar(sa.select(sa.func.count()).select_from(Entry))
        unbalanced = session.scalars(
            sa.select(EntryLine.entry_id).group_by(EntryLine.entry_id).having(sa.func.sum(EntryLine.amount_cents) != 0)
        ).all()
        lineless = session.scalar(
            sa.select(sa.func.count()).select_from(Entry).where(~sa.exists().where(EntryLine.entry_id == Entry.id))
        )
        integrity = None
        if session.get_bind().dialect.name == "sqlite":
            integrity = session.execute(sa.text("PRAGMA integrity_check")).scalar()
        return entries, unbalanced, lineless, integrity

    entries, unbalanced, lineless, integrity = db_check(check)
    assert entries >= 20 and unbalanced == [] and lineless == 0
    assert integrity in (None, "ok")


def test_two_saves_of_the_same_identity_at_once(make_app, migrated, make_coop, login_as, db_check):
    app = make_app()
    info = make_coop(1)
    clients = [login_as(info, on=app.test_client()) for _ in range(2)]
    forms = [
        {**_identity_form(client), "city": city} for client, city in zip(clients, ("Challans", "Luçon"), strict=True)
    ]
    start = threading.Barrier(2)
    answers: list = [None, None]

    def save(index: int) -> None:
        start.wait()
        answers[index] = clients[index].post("/coop/identite", data=forms[index])

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [302, 302]  # both answered, none raw 500
    pages = [client.get("/coop/identite").get_data(as_text=True) for client in clients]
    conflicts = ["modifiées entre-temps" in page for page in pages]
    assert conflicts.count(True) == 1, conflicts
    winner = conflicts.index(False)
    assert db_check(lambda s: s.get(Coop, info.id).city) == forms[winner]["city"]
    assert VALID["name"] == db_check(lambda s: s.get(Coop, info.id).name)
