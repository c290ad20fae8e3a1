"""Security settings and rules of issue 14: secret key, second factor, least privilege, audit."""

from __future__ import annotations

import re
import secrets

import pytest
import sqlalchemy as sa

from app import auth
from app import clock as app_clock
from app.config import DEV_SECRET_KEY, ConfigError, build_config
from app.errors import DomainError
from app.models import AuditEvent, User
from tests.helpers import PASSWORD, STAFF_TOTP_SECRET, page_html


@pytest.mark.parametrize(
    "key",
    [
        DEV_SECRET_KEY,
        "a",
        "0123456789abcdef0123456789abcde",  # 31 bytes
        "a" * 64,
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "passwordpasswordpasswordpassword",
    ],
)
def test_production_refuses_a_weak_secret_key(tmp_path, key):
    with pytest.raises(ConfigError) as refused:
        build_config(str(tmp_path), {}, environ={"SECRET_KEY": key})
    assert "secrets.token_hex(32)" in str(refused.value)


def test_production_accepts_a_generated_secret_key(tmp_path):
    for _ in range(50):
        build_config(str(tmp_path), {}, environ={"SECRET_KEY": secrets.token_hex(32)})
        build_config(str(tmp_path), {}, environ={"SECRET_KEY": secrets.token_urlsafe(32)})


def test_development_keeps_its_fixed_key(tmp_path):
    config = build_config(str(tmp_path), {}, environ={"COOP85_ENV": "development"})
    assert config["SECRET_KEY"] == DEV_SECRET_KEY


# -- staff second factor ----------------------------------------------------------------------------


def _password_step(client, login_name, password=PASSWORD):
    return client.post("/connexion", data={"login": login_name, "password": password})


def test_a_staff_password_alone_opens_nothing(app, make_staff, db_check):
    make_staff("agent")
    client = app.test_client()
    response = _password_step(client, "agent")
    assert response.location == "/connexion/code"
    for url in ("/admin/", "/admin/admin_coops/", "/admin/admin_federation/", "/"):
        assert client.get(url).location.startswith("/connexion"), url
    wrong = client.post("/connexion/code", data={"code": "000000"})
    assert "Code incorrect" in wrong.get_data(as_text=True)
    assert client.get("/admin/").location.startswith("/connexion")
    actions = db_check(lambda s: s.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all())
    assert actions == ["login.password_ok", "second_factor.failed"]


def test_a_totp_code_opens_the_back_office_once(app, make_staff, clock):
    make_staff("agent")
    client = app.test_client()
    _password_step(client, "agent")
    code = auth.totp_code(STAFF_TOTP_SECRET, app_clock.now())
    assert client.post("/connexion/code", data={"code": code}).location == "/admin/"
    assert client.get("/admin/").status_code == 200
    other = app.test_client()  # the same code seen over a shoulder: refused
    _password_step(other, "agent")
    assert "Code incorrect ou déjà utilisé" in other.post("/connexion/code", data={"code": code}).get_data(as_text=True)


def test_second_factor_failures_are_throttled(app, make_staff, clock):
    make_staff("agent")
    client = app.test_client()
    _password_step(client, "agent")
    for _ in range(5):
        client.post("/connexion/code", data={"code": "123456"})
    good = auth.totp_code(STAFF_TOTP_SECRET, app_clock.now())
    refused = client.post("/connexion/code", data={"code": good})
    assert "la connexion est suspendue" in page_html(refused)


def test_first_staff_login_enrols_an_authenticator(app, make_staff, db_check, clock):
    make_staff("nouveau")
    db_check(lambda s: (s.execute(sa.update(User).values(totp_secret=None, totp_enrolled_at=None)), s.commit()))
    client = app.test_client()
    assert _password_step(client, "nouveau").location == "/connexion/code/activation"
    assert client.get("/admin/").location.startswith("/connexion")
    page = page_html(client.get("/connexion/code/activation"))
    assert 'src="data:image/svg+xml' in page  # QR code drawn locally, no outside service
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    wrong = client.post("/connexion/code/activation", data={"code": "000000"})
    assert "Ce code ne correspond pas" in page_html(wrong)
    shown = client.post("/connexion/code/activation", data={"code": auth.totp_code(secret, app_clock.now())})
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", page_html(shown))
    assert len(set(codes)) == 10
    assert client.get("/admin/").status_code == 200
    stored = db_check(lambda s: s.scalar(sa.select(User).where(User.login == "nouveau")))
    assert stored.totp_secret == secret and len(stored.recovery_code_hashes) == 10
    assert not any(code in str(stored.recovery_code_hashes) for code in codes)

    # a recovery code replaces the phone once
    for attempt in (1, 2):
        other = app.test_client()
        _password_step(other, "nouveau")
        response = other.post("/connexion/code", data={"code": codes[0].upper()})
        assert (response.status_code == 302) is (attempt == 1)
    assert len(db_check(lambda s: s.scalar(sa.select(User).where(User.login == "nouveau"))).recovery_code_hashes) == 9


def test_an_administrator_resets_another_staff_second_factor(app, make_staff, login_as, db_check):
    make_staff("chef", role="admin")
    agent = make_staff("agent")
    client = login_as("chef")
    response = client.post(
        "/admin/admin_staff/action/", data={"action": "reset_second_factor", "rowid": [str(agent.id)]}
    )
    assert response.status_code == 302
    user = db_check(lambda s: s.get(User, agent.id))
    assert user.totp_secret is None and not user.has_second_factor
    events = db_check(
        lambda s: s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.second_factor_reset")).all()
    )
    assert [(e.actor_login, e.entity_id) for e in events] == [("chef", agent.id)]
    assert _password_step(app.test_client(), "agent").location == "/connexion/code/activation"


def test_an_administrator_cannot_reset_their_own_second_factor(session):
    chef = User(login="chef", role="admin", email="c@x.org", password_hash="x", totp_secret="A" * 32)
    session.add(chef)
    session.flush()
    with pytest.raises(DomainError):
        auth.reset_second_factor(session, chef, by=chef)


def test_coops_log_in_with_their_password_only(app, make_coop):
    make_coop(1)
    client = app.test_client()
    assert _password_step(client, "085-001").location == "/"
    assert client.get("/").status_code == 200
