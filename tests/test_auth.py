"""Login, throttling, forced change, reset links, logout and session invalidation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import auth as auth_rules
from app import clock
from app.errors import DomainError
from app.models import AuditEvent, PasswordResetToken, User, utcnow
from app.passwords import verify_password
from tests.conftest import FAST_ARGON2, PASSWORD, login

NEW_PASSWORD = "la classe de mer à Noirmoutier"


def _events(db_check, action):
    return db_check(lambda s: s.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all())


def test_login_success_and_audit(client, make_coop, db_check):
    coop = make_coop(1)
    response = login(client, coop)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Coopérative de test 001" in client.get("/").get_data(as_text=True)
    events = _events(db_check, "login.success")
    assert len(events) == 1 and events[0].actor_login == "085-001"


def test_login_is_case_and_space_insensitive(client, make_staff):
    make_staff("martine")
    assert login(client, " Martine ", PASSWORD).status_code == 302


def test_wrong_password_and_unknown_login_look_the_same(client, make_coop, db_check):
    make_coop(1)
    wrong = client.post("/connexion", data={"login": "085-001", "password": "pas le bon mot de passe"})
    unknown = client.post("/connexion", data={"login": "085-777", "password": "pas le bon mot de passe"})
    assert wrong.status_code == unknown.status_code == 200
    for response in (wrong, unknown):
        assert "Identifiant ou mot de passe incorrect." in response.get_data(as_text=True)
    assert len(_events(db_check, "login.failed")) == 2


def test_five_failures_lock_the_login_for_fifteen_minutes(client, make_coop, db_check, app):
    make_coop(1)
    make_coop(2)
    for _ in range(5):
        client.post("/connexion", data={"login": "085-001", "password": "mauvais mot de passe"})
    refused = login(client, "085-001", PASSWORD)
    assert refused.status_code == 200
    assert "Trop de tentatives" in refused.get_data(as_text=True)
    assert len(_events(db_check, "login.throttled")) == 1
    # another login is not affected
    other = app.test_client()
    assert login(other, "085-002", PASSWORD).status_code == 302

    # 16 minutes later the lock has ended
    def age(session):
        session.execute(sa.update(AuditEvent).values(created_at=AuditEvent.created_at - timedelta(minutes=16)))
        session.commit()

    db_check(age)
    assert login(client, "085-001", PASSWORD).status_code == 302


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(session, make_coop):
    make_coop(1)
    policy = auth_rules.AuthPolicy()
    now = utcnow()
    for minutes in (40, 30, 20, 10, 0):
        session.add(
            AuditEvent(action="login.failed", actor_login="085-001", created_at=now - timedelta(minutes=minutes))
        )
    session.flush()
    assert auth_rules.locked_until(session, "085-001", now, policy) is None


def test_forced_password_change_at_first_login(client, make_coop, db_check):
    coop = make_coop(1, must_change_password=True)
    response = login(client, coop)
    assert response.headers["Location"] == "/mot-de-passe"
    for path in ("/", "/coop/identite", "/coop/modifications"):
        assert client.get(path).headers["Location"] == "/mot-de-passe"
    page = client.get("/mot-de-passe").get_data(as_text=True)
    assert "mot de passe provisoire" in page

    same = client.post(
        "/mot-de-passe", data={"current_password": PASSWORD, "new_password": PASSWORD, "confirm": PASSWORD}
    )
    assert "différent de l&#39;ancien" in same.get_data(as_text=True)
    common = client.post(
        "/mot-de-passe",
        data={"current_password": PASSWORD, "new_password": "azertyuiop123", "confirm": "azertyuiop123"},
    )
    assert "plus courants" in common.get_data(as_text=True)
    short = client.post(
        "/mot-de-passe", data={"current_password": PASSWORD, "new_password": "court", "confirm": "court"}
    )
    assert "au moins 12 caractères" in short.get_data(as_text=True)
    with_login = client.post(
        "/mot-de-passe",
        data={"current_password": PASSWORD, "new_password": "085-001 mon école", "confirm": "085-001 mon école"},
    )
    assert "identifiant" in with_login.get_data(as_text=True)

    done = client.post(
        "/mot-de-passe", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    user = db_check(lambda s: s.get(User, coop.user_id))
    assert user.must_change_password is False and user.password_changed_at is not None


def test_change_requires_current_password(client, make_coop, login_as):
    login_as(make_coop(1))
    response = client.post(
        "/mot-de-passe", data={"current_password": "faux", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert "Le mot de passe actuel est incorrect." in response.get_data(as_text=True)
    assert login(client.application.test_client(), "085-001", PASSWORD).status_code == 302


def test_password_change_ends_other_sessions(app, make_coop, login_as):
    coop = make_coop(1)
    first, second = app.test_client(), app.test_client()
    login_as(coop, on=first)
    login_as(coop, on=second)
    response = first.post(
        "/mot-de-passe", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert first.get("/").status_code == 200  # this session goes on
    assert second.get("/").headers["Location"].startswith("/connexion")


def test_copied_cookie_is_dead_after_logout(app, make_coop, login_as):
    coop = make_coop(1)
    client = login_as(coop, on=app.test_client())
    cookie = client.get_cookie("coop85_session").value
    assert client.post("/deconnexion").headers["Location"] == "/connexion"
    thief = app.test_client()
    thief.set_cookie("coop85_session", cookie)
    assert thief.get("/coop/identite").headers["Location"].startswith("/connexion")


def test_disabling_an_account_ends_its_sessions(app, make_staff, login_as, db_check):
    staff = make_staff("agent")
    client = login_as(staff, on=app.test_client())
    assert client.get("/admin/").status_code == 200

    def disable(session):
        user = session.get(User, staff.id)
        user.is_enabled = False
        auth_rules.end_sessions(user)
        session.commit()

    db_check(disable)
    assert client.get("/admin/").headers["Location"].startswith("/connexion")
    refused = login(app.test_client(), staff)
    assert "désactivé" in refused.get_data(as_text=True)


def test_idle_timeout_after_thirty_minutes(client, make_coop, login_as):
    login_as(make_coop(1))
    with client.session_transaction() as s:
        s["seen"] = clock.timestamp() - 29 * 60
    assert client.get("/").status_code == 200
    with client.session_transaction() as s:
        s["seen"] = clock.timestamp() - 31 * 60
    response = client.get("/coop/identite")
    assert response.headers["Location"].startswith("/connexion")
    assert client.get("/").headers["Location"].startswith("/connexion")


@pytest.mark.parametrize("target", ["//evil.tld/", "https://evil.tld/", "/\\evil.tld", "https:evil.tld"])
def test_login_never_redirects_off_site(client, make_coop, target):
    make_coop(1)
    response = client.post("/connexion", data={"login": "085-001", "password": PASSWORD, "next": target})
    assert response.headers["Location"] == "/"


def test_login_follows_a_local_next(client, make_coop):
    make_coop(1)
    response = client.post("/connexion", data={"login": "085-001", "password": PASSWORD, "next": "/coop/identite"})
    assert response.headers["Location"] == "/coop/identite"


def _reset_token(app, user_id, *, age=timedelta(0)):
    from app.extensions import db

    with app.app_context():
        user = db.session.get(User, user_id)
        raw = auth_rules.create_reset_token(db.session, user, now=utcnow() - age, policy=auth_rules.AuthPolicy())
        db.session.commit()
        db.session.remove()
    return raw


def test_reset_link_is_single_use(client, app, make_coop, db_check):
    coop = make_coop(1, must_change_password=True)
    raw = _reset_token(app, coop.user_id)
    url = f"/mot-de-passe/reinitialiser/{raw}"
    assert "Choisir un nouveau mot de passe" in client.get(url).get_data(as_text=True)
    response = client.post(url, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.headers["Location"] == "/connexion"
    assert login(app.test_client(), "085-001", NEW_PASSWORD).headers["Location"] == "/"  # no forced change now
    again = client.post(url, data={"new_password": "une autre phrase secrète", "confirm": "une autre phrase secrète"})
    assert "plus valable" in again.get_data(as_text=True)
    assert login(app.test_client(), "085-001", NEW_PASSWORD).status_code == 302
    assert db_check(lambda s: s.scalar(sa.select(PasswordResetToken.used_at))) is not None


def test_reset_link_expires_after_one_hour(client, app, make_coop):
    coop = make_coop(1)
    raw = _reset_token(app, coop.user_id, age=timedelta(minutes=61))
    response = client.post(
        f"/mot-de-passe/reinitialiser/{raw}", data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert "plus valable" in response.get_data(as_text=True)
    assert login(app.test_client(), "085-001", NEW_PASSWORD).status_code == 200  # password unchanged


def test_reset_token_is_stored_hashed(app, make_coop, db_check):
    coop = make_coop(1)
    raw = _reset_token(app, coop.user_id)
    stored = db_check(lambda s: s.scalar(sa.select(PasswordResetToken.token_hash)))
    assert raw not in stored and len(stored) == 64


def test_session_cookie_flags(make_app, make_coop, migrated):
    app = make_app(SESSION_COOKIE_SECURE=True)
    make_coop(1)
    response = login(app.test_client(), "085-001")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_static_files_never_send_the_session_cookie_again(client, make_coop, login_as):
    """The browser fetches a page's stylesheets, scripts and favicon on its own, sometimes after the
    user's next step: their answers must not set back a session cookie (nor be kept from caches)."""
    login_as(make_coop(1))
    for path in ("/static/favicon.svg", "/static/css/coop85.css", "/bootstrap/static/css/bootstrap.min.css"):
        response = client.get(path)
        assert response.status_code == 200 and "Set-Cookie" not in response.headers, path
        response.close()
    page = client.get("/")
    assert page.status_code == 200 and "coop85_session=" in page.headers["Set-Cookie"]  # pages still refresh it


@pytest.fixture
def limited_app(make_app):
    """An app with rate limits on. Flask-Limiter keeps `enabled` and its counters on the one shared
    `limiter`, so they are switched back off afterwards: the session's app must not inherit them."""
    from app.extensions import limiter

    yield make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    limiter.reset()
    limiter.enabled = False


def test_rate_limit_per_address(limited_app, migrated, make_coop):
    client = limited_app.test_client()
    for _ in range(3):
        client.post("/connexion", data={"login": "085-999", "password": "x"})
    response = client.post("/connexion", data={"login": "085-999", "password": "x"})
    assert response.status_code == 429
    assert "Trop de" in response.get_data(as_text=True)


# -- temporary passwords and staff accounts (app.auth, used by the back office, the CLI, the import)


def test_temporary_password_is_easy_to_read_out():
    passwords = {auth_rules.temporary_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", password)
        assert not set(password) & set("01ilo")  # nothing to confuse when read from a letter


def test_set_temporary_password_forces_a_change_and_ends_sessions(session, make_coop):
    coop = make_coop(1)
    user = session.get(User, coop.user_id)
    version = user.session_version
    password = auth_rules.set_temporary_password(user, hash_params=FAST_ARGON2)
    assert verify_password(user.password_hash, password) and not verify_password(user.password_hash, PASSWORD)
    assert user.must_change_password and user.session_version == version + 1


def test_create_staff_with_a_temporary_password(session, make_staff):
    make_staff("martine")
    user, password = auth_rules.create_staff(
        session, " Jean.Dupont ", email="Jean@OCCE85.example", by=None, hash_params=FAST_ARGON2
    )
    assert user.login == "jean.dupont" and user.role == "staff" and user.must_change_password
    assert verify_password(user.password_hash, password)
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "staff.created"))
    assert event.entity_id == user.id and event.actor_login == "cli"
    with pytest.raises(DomainError, match="existe déjà") as taken:
        auth_rules.create_staff(session, "MARTINE", email="m@occe85.example", by=None)
    assert taken.value.field == "login"
    with pytest.raises(DomainError, match="adresse e-mail") as bad:
        auth_rules.create_staff(session, "paul", email="pas une adresse", by=None)
    assert bad.value.field == "email"


def test_staff_account_saved_in_the_back_office(session, make_staff):
    creator = session.get(User, make_staff("admin1", role="admin").id)
    user = User(login=" Nouvel.Agent ", role="staff", email="agent@occe85.example")
    session.add(user)
    password = auth_rules.staff_account_saved(session, user, is_created=True, by=creator, hash_params=FAST_ARGON2)
    assert user.login == "nouvel.agent" and user.must_change_password and verify_password(user.password_hash, password)
    version = user.session_version
    user.is_enabled = False
    assert auth_rules.staff_account_saved(session, user, is_created=False, by=creator) is None
    assert user.session_version == version + 1  # disabling ends every session
    actions = session.scalars(sa.select(AuditEvent.action).where(AuditEvent.entity_id == user.id)).all()
    assert actions == ["staff.created", "staff.updated"]


def test_cli_create_staff_prints_the_temporary_password_once(app, db_check, make_staff):
    make_staff("martine")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create-staff", "Paul", "--email", "paul@occe85.example", "--admin"])
    assert result.exit_code == 0, result.output
    password = result.output.strip().rsplit(" ", 1)[-1]
    user = db_check(lambda s: s.scalar(sa.select(User).where(User.login == "paul")))
    assert user.role == "admin" and user.must_change_password and verify_password(user.password_hash, password)
    taken = runner.invoke(args=["users", "create-staff", "martine", "--email", "m@occe85.example"])
    assert taken.exit_code == 1 and "L'identifiant martine existe déjà." in taken.output
