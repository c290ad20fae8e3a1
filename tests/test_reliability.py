"""Faults and hostile input at the web layer: every answer is French, nothing is half-written.

Database busy (a lock held by another connection), database unreachable, ids beyond the database's
integer range, absurd amounts, image bombs, a full disk; plus what the operator relies on:
/healthz, the request id shared by the error page and the log, JSON logs.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import re
import threading

import pytest
import sqlalchemy as sa
from PIL import Image

from app import documents
from app.errors import DomainError
from app.extensions import db
from app.models import Coop, Document
from app.money import parse_amount
from app.web.logs import JsonFormatter, RequestIdFilter
from tests.test_identity import VALID


def _identity_form(client) -> dict:
    page = client.get("/coop/identite").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    return {**VALID, "version": version}


def _hold_write_lock(app, coop_id: int, ready: threading.Event, release: threading.Event) -> None:
    """Another writer: holds the database's write lock (SQLite) or the coop's row lock (PostgreSQL)."""
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("COMMIT") if connection.in_transaction() else None
            transaction = connection.begin()
            connection.execute(sa.text("UPDATE coop SET phone = phone WHERE id = :id"), {"id": coop_id})
            ready.set()
            release.wait(10)
            transaction.rollback()
        engine.dispose()


def test_a_busy_database_answers_503_in_french_and_writes_nothing(make_app, migrated, make_coop, login_as, db_check):
    app = make_app(SQLITE_BUSY_TIMEOUT_MS=300, DATABASE_LOCK_TIMEOUT=1)
    info = make_coop(1)
    client = login_as(info, on=app.test_client())
    form = {**_identity_form(client), "city": "Challans"}
    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(app, info.id, ready, release))
    holder.start()
    try:
        assert ready.wait(5)
        response = client.post("/coop/identite", data=form)
    finally:
        release.set()
        holder.join()
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body[:300]
    assert response.headers["Retry-After"] == "10"
    assert "Le portail est très occupé : rien n'a été enregistré" in body.replace("&#39;", "'")
    assert re.search(r"référence [0-9a-f]{8}", body)
    assert db_check(lambda s: s.get(Coop, info.id).city) == "La Roche-sur-Yon"
    # The lock released, the same form goes through.
    assert client.post("/coop/identite", data=form).status_code == 302
    assert db_check(lambda s: s.get(Coop, info.id).city) == "Challans"


def test_an_unreachable_database_gives_the_french_page_without_touching_it(make_app, migrated, make_coop, login_as):
    info = make_coop(1)
    working = login_as(info, on=make_app().test_client())
    cookie = working.get_cookie("coop85_session")
    broken = make_app(
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/nowhere", DATABASE_CONNECT_TIMEOUT=1
    )
    client = broken.test_client()
    client.set_cookie("coop85_session", cookie.value)
    response = client.get("/coop/identite")
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Portail très occupé" in body and "Traceback" not in body and "psycopg" not in body
    assert re.search(r"référence ([0-9a-f]{8})", body).group(1) == response.headers["X-Request-Id"]
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json["database"] == "unavailable"


def test_healthz_reports_the_migration_without_a_session(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["database"] == "ok"
    assert response.json["migration"] == response.json["expected_migration"] != ""
    assert "Set-Cookie" not in response.headers and response.headers["Cache-Control"] == "no-store"


def test_ids_beyond_the_database_range_are_404(client, make_coop, login_as):
    login_as(make_coop(1))
    for url in (
        f"/coop/cahier/operation/{2**63}",
        f"/coop/cahier/operation/{10**30}",
        f"/coop/modifications/{2**64}",
        f"/justificatifs/{2**63}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Page introuvable" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e400", "n'est pas un montant"),
        ("Infinity", "n'est pas un montant"),
        ("NaN", "n'est pas un montant"),
        ("sNaN", "n'est pas un montant"),
        ("9" * 13, "12 chiffres au plus"),
        ("9" * 5000, "n'est pas un montant"),
        ("12,345", "n'est pas un montant"),
    ],
)
def test_amounts_are_bounded_with_a_french_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


def test_the_largest_amount_still_parses():
    assert parse_amount("999 999 999 999,99") == 99_999_999_999_999


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_a_decompression_bomb_png_is_refused_before_decoding():
    bomb = _png(8000, 5000)  # 40 megapixels in a few kilobytes
    assert len(bomb) < 200_000
    with pytest.raises(DomainError, match="trop de pixels"):
        documents.check_upload(bomb, max_bytes=10 * 1024 * 1024)


def test_a_large_phone_photo_is_decoded_reduced():
    out = io.BytesIO()
    Image.new("RGB", (6000, 4000), (200, 180, 160)).save(out, format="JPEG", quality=50)
    checked = documents.check_upload(out.getvalue(), max_bytes=20 * 1024 * 1024)
    with Image.open(io.BytesIO(checked.content)) as image:
        assert max(image.size) <= documents.MAX_SIDE


def test_a_full_disk_leaves_no_file_and_says_so(tmp_path, monkeypatch):
    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(documents.os, "fsync", no_space)
    with pytest.raises(DomainError, match="le serveur manque de place"):
        documents.write_file(str(tmp_path), "abc", b"%PDF-1.4 content")
    assert list(tmp_path.iterdir()) == []


def test_a_file_written_for_a_refused_change_is_removed(app, make_coop, db_check):
    from app.web import uow

    info = make_coop(1)
    upload_dir = app.config["UPLOAD_DIR"]
    png = _png(40, 40)

    def store_then_refuse():
        documents.store_document(
            db.session,
            upload_dir=upload_dir,
            coop_id=info.id,
            kind="voucher",
            filename="facture.png",
            content=png,
            max_bytes=1024 * 1024,
            by=None,
        )
        raise DomainError("Refusé après l'écriture du fichier.")

    with app.test_request_context("/", method="POST"):
        before = set(documents.Path(upload_dir).glob("*")) if documents.Path(upload_dir).exists() else set()
        outcome = uow.run(store_then_refuse)
        assert not outcome.ok and outcome.errors == ["Refusé après l'écriture du fichier."]
        assert set(documents.Path(upload_dir).glob("*")) == before
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Document))) == 0


def test_the_coop_storage_quota(app, make_coop, session):
    info = make_coop(1)
    png = _png(40, 40)
    kwargs = dict(
        upload_dir=app.config["UPLOAD_DIR"], coop_id=info.id, kind="voucher", filename="a.png", max_bytes=10**6, by=None
    )
    first = documents.store_document(session, content=png, quota_bytes=10_000, **kwargs)
    with pytest.raises(DomainError, match="L'espace de la coopérative est plein"):
        documents.store_document(session, content=png, quota_bytes=first.size + 10, **kwargs)


def test_each_request_logs_one_line_with_its_id(client, caplog):
    logger = logging.getLogger("app")  # it does not propagate to the root logger caplog listens on
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="app.request"):
            response = client.get("/connexion")
    finally:
        logger.removeHandler(caplog.handler)
    lines = [r for r in caplog.records if r.name == "app.request"]
    assert len(lines) == 1
    assert lines[0].getMessage().startswith("GET /connexion 200 ")
    assert lines[0].request_id == response.headers["X-Request-Id"]


def test_json_log_lines():
    record = logging.LogRecord("app.request", logging.INFO, __file__, 1, "GET / 200 3ms user=-", None, None)
    RequestIdFilter().filter(record)
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "GET / 200 3ms user=-" and data["request_id"] == "-" and data["level"] == "INFO"


def test_uploads_are_limited_per_coop(make_app, migrated, make_coop, login_as):
    from app.extensions import limiter

    app = make_app(RATELIMIT_ENABLED=True, UPLOAD_RATE_LIMIT="2 per hour")
    try:
        first = login_as(make_coop(1), on=app.test_client())
        other = login_as(make_coop(2), on=app.test_client())

        def send(client):
            data = {"file": (io.BytesIO(_png(10, 10)), "photo.png")}
            return client.post("/coop/cahier/operation/999/justificatifs", data=data)

        assert [send(first).status_code for _ in range(2)] == [404, 404]
        refused = send(first)
        assert refused.status_code == 429
        assert "Trop de demandes en peu de temps" in refused.get_data(as_text=True)
        assert send(other).status_code == 404  # another coop is not held back
    finally:
        limiter.reset()


def test_healthz_warns_when_mail_is_stuck(client, clock, db_check):
    from datetime import timedelta

    from app.mail import queue_email
    from tests.conftest import DEFAULT_MOMENT

    def queue(session):
        mail = queue_email(session, to="coop1@example.org", subject="Test", text="Bonjour")
        mail.created_at = DEFAULT_MOMENT - timedelta(minutes=40)
        session.commit()

    db_check(queue)
    health = client.get("/healthz").json
    assert health["status"] == "ok"
    assert health["mail"] == {"pending": 1, "failed": 0, "oldest_pending_minutes": 40}
    assert health["warnings"] == [
        "1 courriel(s) en attente, le plus ancien depuis 40 min : vérifiez `flask mail send`."
    ]


def test_back_office_lists_bound_their_page_numbers(client, make_staff, login_as):
    make_staff("agent")
    staff = login_as("agent")
    assert staff.get("/admin/admin_coops/?page=2").status_code == 200
    for query in (f"page={10**30}", f"page={2**63}", "page=-1", f"page_size={10**20}", f"sort={10**25}"):
        response = staff.get(f"/admin/admin_coops/?{query}")
        assert response.status_code == 404, query
        assert "Page introuvable" in response.get_data(as_text=True)


def test_the_password_is_checked_before_the_write_lock(app, make_coop, session):
    """Issue 12 §1: argon2 runs in the read half of a login (`check_login`), which writes nothing; the
    unit of work then only records the attempt."""
    from app import auth, clock
    from app.web.common import auth_policy
    from tests.conftest import PASSWORD

    make_coop(1)
    with app.test_request_context("/connexion", method="POST"):
        check = auth.check_login(session, "085-001", PASSWORD, ip="127.0.0.1", now=clock.now(), policy=auth_policy())
        assert check.error is None and not (session.new or session.dirty or session.deleted)
        wrong = auth.check_login(
            session, "085-001", "pas le bon", ip="127.0.0.1", now=clock.now(), policy=auth_policy()
        )
        assert wrong.error == "invalid" and not (session.new or session.dirty)
        outcome = auth.record_login(session, check, ip="127.0.0.1", now=clock.now())
        assert outcome.user is not None and outcome.user.login == "085-001"


def test_on_postgresql_a_page_runs_in_repeatable_read_and_a_form_in_read_committed(app, database_url):
    """GET requests run in REPEATABLE READ (one consistent snapshot over the page's queries), set on the
    driver before its BEGIN; POST requests and commands keep READ COMMITTED."""
    if not database_url.startswith("postgresql"):
        pytest.skip("isolation levels: PostgreSQL pass of `make test` only (SQLite transactions are serialisable)")
    show = sa.text("SHOW transaction_isolation")
    for method, expected in (("GET", "repeatable read"), ("POST", "read committed"), ("GET", "repeatable read")):
        with app.test_request_context("/", method=method):
            assert db.session.execute(show).scalar_one() == expected, method
            db.session.rollback()
            db.session.remove()
    with app.app_context():
        assert db.session.execute(show).scalar_one() == "read committed"  # a command (no request)
        db.session.remove()
