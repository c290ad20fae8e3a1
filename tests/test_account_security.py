"""Account security (issue 14, item 5): throttling per login and address with a global ceiling that
only delays, reset links that die with the password, a constant-time reset request, current-password
guesses counted as login failures, the 12-hour absolute session lifetime, staff logins that never
look like a coop's, and the password strength estimator.

Time never passes by waiting: the `clock` fixture pins the app's clock and the tests move it.
"""

from __future__ import annotations

import re
import types
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, OutboxEmail, User
from app.passwords import verify_password
from tests.conftest import DEFAULT_MOMENT, login
from tests.helpers import PASSWORD, page_html

SCHOOL = "10.85.1.1"  # the school's network, where the coop usually logs in
ATTACKER = "203.0.113.9"
NEW_PASSWORD = "la classe de mer à Noirmoutier"
WRONG = "pas le bon mot de passe"
LOCKED = "Trop de tentatives échouées"
INVALID = "Identifiant ou mot de passe incorrect."


def _from(app, address: str):
    """A browser at `address` (the REMOTE_ADDR every request of this client carries)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _try(client, login_name: str, password: str):
    return client.post("/connexion", data={"login": login_name, "password": password})


def _at(minutes: float = 0, **delta):
    return DEFAULT_MOMENT + timedelta(minutes=minutes, **delta)


def _events(db_check, action: str) -> list[AuditEvent]:
    return db_check(
        lambda s: s.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
    )


# -- 1. five failures lock a login from one address only ----------------------------------------------


def test_five_failures_lock_the_login_from_that_address_only(app, make_coop, clock, db_check):
    make_coop(1)
    attacker, school = _from(app, ATTACKER), _from(app, SCHOOL)
    for minute in range(5):
        clock(_at(minute))
        assert INVALID in page_html(_try(attacker, "085-001", WRONG))

    clock(_at(5))
    refused = _try(attacker, "085-001", PASSWORD)  # even the right password
    text = page_html(refused)
    assert refused.status_code == 200 and LOCKED in text
    # 15 minutes after the last failure (08:34 UTC), shown in Paris time
    assert "la connexion est suspendue jusqu'à 10:49" in text
    assert [e.ip for e in _events(db_check, "login.throttled")] == [ATTACKER]

    # the school, meanwhile, logs in as usual
    assert _try(school, "085-001", PASSWORD).location == "/"
    assert school.get("/").status_code == 200

    clock(_at(18))  # still within 15 minutes of the last failure; refused tries do not extend it
    assert LOCKED in page_html(_try(attacker, "085-001", PASSWORD))
    clock(_at(19, seconds=1))
    assert _try(attacker, "085-001", PASSWORD).location == "/"


# -- 2. a global ceiling per login slows down, never blocks -------------------------------------------


def _spray(app, clock, count: int, *, start: float = 0):
    """`count` wrong passwords on 085-001, one per address, 10 seconds apart; returns the last moment."""
    for i in range(count):
        clock(_at(start, seconds=10 * i))
        assert INVALID in page_html(_try(_from(app, f"198.51.100.{i + 1}"), "085-001", WRONG))
    return _at(start, seconds=10 * (count - 1))


def test_twenty_failures_from_many_addresses_slow_the_login_down_without_blocking_it(app, make_coop, clock):
    make_coop(1)
    last = _spray(app, clock, 20)
    newcomer = _from(app, "192.0.2.50")  # no failure from this address: only the global ceiling applies

    clock(last + timedelta(seconds=30))
    assert LOCKED in page_html(_try(newcomer, "085-001", PASSWORD))  # one attempt a minute

    clock(last + timedelta(minutes=1))  # a minute later the right password opens the session
    assert _try(newcomer, "085-001", PASSWORD).location == "/"
    assert newcomer.get("/").status_code == 200


def test_the_ceiling_keeps_spacing_attempts_out_while_the_spray_goes_on(app, make_coop, clock):
    make_coop(1)
    last = _spray(app, clock, 20)
    clock(last + timedelta(minutes=1))
    assert INVALID in page_html(_try(_from(app, "198.51.100.200"), "085-001", WRONG))  # one try allowed…
    clock(last + timedelta(minutes=1, seconds=5))
    assert LOCKED in page_html(_try(_from(app, "198.51.100.201"), "085-001", WRONG))  # …then a minute's wait
    clock(last + timedelta(minutes=2))
    assert _try(_from(app, "198.51.100.202"), "085-001", PASSWORD).location == "/"


def test_the_usual_network_is_not_slowed_by_the_global_ceiling(app, make_coop, clock, db_check):
    make_coop(1)
    assert _try(_from(app, SCHOOL), "085-001", PASSWORD).location == "/"  # the school logged in yesterday
    last = _spray(app, clock, 20, start=24 * 60)
    clock(last + timedelta(seconds=5))
    assert LOCKED in page_html(_try(_from(app, "192.0.2.50"), "085-001", PASSWORD))
    assert _try(_from(app, SCHOOL), "085-001", PASSWORD).location == "/"
    assert [e.ip for e in _events(db_check, "login.throttled")] == ["192.0.2.50"]


# -- 3. reset links die with the password ----------------------------------------------------------


def _forgot(client, identifier: str, monkeypatch=None):
    from app.views import auth as auth_views

    if monkeypatch is not None:
        monkeypatch.setattr(auth_views, "sleep", lambda seconds: None)
    return client.post("/mot-de-passe/oubli", data={"identifier": identifier})


def _mailed_link(db_check) -> str:
    body = db_check(lambda s: s.scalars(sa.select(OutboxEmail.body_text).order_by(OutboxEmail.id.desc())).first())
    return re.search(r"/mot-de-passe/reinitialiser/[\w-]+", body).group(0)


def _link_is_dead(app, link: str) -> bool:
    browser = app.test_client()
    shown = "Ce lien n'est plus valable" in page_html(browser.get(link))
    posted = browser.post(
        link, data={"new_password": "une autre phrase pour voir", "confirm": "une autre phrase pour voir"}
    )
    return shown and posted.status_code == 200 and "Ce lien n'est plus valable" in page_html(posted)


def test_a_reset_link_dies_when_the_password_is_changed_normally(
    app, make_coop, login_as, clock, db_check, monkeypatch
):
    coop = make_coop(1)
    assert _forgot(app.test_client(), "085-001", monkeypatch).location == "/connexion"
    link = _mailed_link(db_check)
    assert "Choisir un nouveau mot de passe" in page_html(app.test_client().get(link))

    client = login_as(coop, on=app.test_client())
    changed = client.post(
        "/mot-de-passe", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert changed.status_code == 302
    assert _link_is_dead(app, link)
    assert login(app.test_client(), "085-001", NEW_PASSWORD).location == "/"  # the link changed nothing


def test_a_reset_link_dies_when_staff_give_a_new_temporary_password(
    app, make_coop, make_staff, login_as, clock, db_check, monkeypatch
):
    coop = make_coop(1)
    _forgot(app.test_client(), "085-001", monkeypatch)
    link = _mailed_link(db_check)

    staff = login_as(make_staff("agent"), on=app.test_client())
    done = staff.post("/admin/admin_coops/action/", data={"action": "new_password", "rowid": [str(coop.id)]})
    assert done.status_code == 302
    flashed = page_html(staff.get(done.location))
    temporary = re.search(r"085-001 : nouveau mot de passe provisoire (\S+) ", flashed).group(1)

    assert _link_is_dead(app, link)
    assert login(app.test_client(), "085-001", temporary).location == "/mot-de-passe"


# -- 4. the reset request answers alike and pads to the same floor -----------------------------------


def test_the_reset_request_answers_alike_and_pads_alike_for_known_and_unknown_logins(
    app, make_coop, clock, db_check, monkeypatch
):
    from app.views import auth as auth_views

    make_coop(1)
    slept: list[float] = []
    monkeypatch.setattr(auth_views, "sleep", slept.append)
    # A clock that does not move: the padding asked for is then the whole floor, whatever the work took.
    monkeypatch.setattr(auth_views, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))

    answers = []
    for identifier in ("085-001", "085-777"):
        browser = app.test_client()
        response = browser.post("/mot-de-passe/oubli", data={"identifier": identifier})
        page = re.sub(r'nonce="[^"]*"', "", page_html(browser.get(response.location)))  # random per answer
        answers.append((response.status_code, response.location, page))

    assert slept == [auth_views.DEFAULT_RESET_REQUEST_SECONDS] * 2
    assert answers[0] == answers[1]
    assert "Si cet identifiant existe, un e-mail contenant un lien vient d'être envoyé" in answers[0][2]
    # the known login got its mail, the unknown one only an audit row
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 1
    assert len(_events(db_check, "password.reset_requested")) == 1
    assert [e.actor_login for e in _events(db_check, "password.reset_unknown")] == ["085-777"]


def test_the_reset_floor_is_what_remains_after_the_work(app, make_coop, monkeypatch):
    from app.views import auth as auth_views

    make_coop(1)
    slept: list[float] = []
    ticks = iter([1000.0, 1000.25])  # started, then done 0.25 s later
    monkeypatch.setattr(auth_views, "sleep", slept.append)
    monkeypatch.setattr(auth_views, "time", types.SimpleNamespace(monotonic=lambda: next(ticks)))
    app.test_client().post("/mot-de-passe/oubli", data={"identifier": "085-001"})
    assert slept == [pytest.approx(auth_views.DEFAULT_RESET_REQUEST_SECONDS - 0.25)]


# -- 5. guesses of the current password are login failures -------------------------------------------


def _change(client, current: str, new: str = NEW_PASSWORD):
    return client.post("/mot-de-passe", data={"current_password": current, "new_password": new, "confirm": new})


def test_wrong_current_passwords_are_audited_and_lock_like_login_failures(app, make_coop, login_as, clock, db_check):
    coop = make_coop(1)
    thief = login_as(coop, on=_from(app, ATTACKER))  # a session left open on a shared computer
    for minute in range(5):
        clock(_at(minute))
        assert "Le mot de passe actuel est incorrect." in page_html(_change(thief, f"essai numéro {minute}"))
    failures = _events(db_check, "password.current_failed")
    assert len(failures) == 5 and {(e.actor_login, e.ip) for e in failures} == {("085-001", ATTACKER)}

    clock(_at(5))
    refused = page_html(_change(thief, PASSWORD))  # even the right current password
    assert LOCKED in refused and "suspendue jusqu'à 10:49" in refused
    assert verify_password(db_check(lambda s: s.get(User, coop.user_id)).password_hash, PASSWORD)
    # the same lock as a login failure: from that address the login form refuses too…
    assert LOCKED in page_html(_try(_from(app, ATTACKER), "085-001", PASSWORD))
    # …but not from the school
    assert _try(_from(app, SCHOOL), "085-001", PASSWORD).location == "/"

    clock(_at(20))
    assert _change(thief, PASSWORD).status_code == 302
    assert login(_from(app, SCHOOL), "085-001", NEW_PASSWORD).location == "/"


def test_current_password_failures_add_up_with_login_failures(app, make_coop, login_as, clock):
    coop = make_coop(1)
    thief = login_as(coop, on=_from(app, ATTACKER))
    for _ in range(3):
        _change(thief, "un essai au hasard")
    for _ in range(2):
        _try(_from(app, ATTACKER), "085-001", WRONG)
    assert LOCKED in page_html(_change(thief, PASSWORD))


# -- 6. the absolute session lifetime ---------------------------------------------------------------


def test_a_session_ends_twelve_hours_after_login_however_active(app, make_coop, login_as, clock):
    client = login_as(make_coop(1), on=app.test_client())
    for step in range(1, 37):  # a request every 20 minutes: never idle
        clock(_at(20 * step))
        assert client.get("/").status_code == 200, step
    clock(_at(12 * 60 + 1))
    ended = client.get("/")
    assert ended.location.startswith("/connexion")
    assert "une session dure au plus 12 heures : reconnectez-vous" in page_html(client.get(ended.location))
    assert client.get("/coop/identite").location.startswith("/connexion")
    assert login(client, "085-001").location == "/"  # a new login starts a new 12 hours
    assert client.get("/").status_code == 200


def test_a_staff_session_ends_after_twelve_hours_too(app, make_staff, login_as, clock):
    client = login_as(make_staff("agent"), on=app.test_client())
    for step in range(1, 37):
        clock(_at(20 * step))
        assert client.get("/admin/").status_code == 200, step
    clock(_at(12 * 60 + 1))
    assert client.get("/admin/").location.startswith("/connexion")


def test_the_lifetime_is_a_setting(make_app, make_coop, login_as, migrated, clock):
    app = make_app(SESSION_ABSOLUTE_LIFETIME=timedelta(hours=2))
    client = login_as(make_coop(1), on=app.test_client())
    for step in range(1, 7):
        clock(_at(20 * step))
        assert client.get("/").status_code == 200
    clock(_at(2 * 60 + 1))
    ended = client.get("/")
    assert "une session dure au plus 2 heures" in page_html(client.get(ended.location))


# -- 7. staff logins never look like a coop's ----------------------------------------------------------

COOP_LIKE = ["085-099", "085099", " 085-099 ", "085 099", "085_099", "085 - 099", "085-1234", "085-7", "085\u00a0099"]
COOP_LIKE += ["O85-099", "o85-o99"]  # the letter O read as a zero
RESERVED = "Un identifiant de la forme 085-NNN est réservé aux coopératives."


@pytest.mark.parametrize("login_name", COOP_LIKE)
def test_the_back_office_refuses_a_coop_style_staff_login(app, make_staff, login_as, db_check, login_name):
    admin = login_as(make_staff("chef", role="admin"), on=app.test_client())
    response = admin.post(
        "/admin/admin_staff/new/",
        data={"login": login_name, "full_name": "Faux", "email": "faux@occe85.example", "role": "staff"},
    )
    assert response.status_code == 200
    assert RESERVED in page_html(response)
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(User).where(User.role != "coop"))) == 1


def test_the_back_office_refuses_renaming_a_staff_login_to_a_coop_one(app, make_staff, login_as, db_check):
    agent = make_staff("agent")
    admin = login_as(make_staff("chef", role="admin"), on=app.test_client())
    response = admin.post(
        f"/admin/admin_staff/edit/?id={agent.id}",
        data={
            "login": "085-099",
            "full_name": "Agent",
            "email": "agent@occe85.example",
            "role": "staff",
            "is_enabled": "y",
        },
    )
    assert RESERVED in page_html(response)
    assert db_check(lambda s: s.get(User, agent.id).login) == "agent"


@pytest.mark.parametrize("login_name", COOP_LIKE)
def test_the_cli_refuses_a_coop_style_staff_login(app, db_check, login_name):
    result = app.test_cli_runner().invoke(args=["users", "create-staff", login_name, "--email", "x@occe85.example"])
    assert result.exit_code == 1 and RESERVED in result.output
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(User))) == 0


def test_an_ordinary_staff_login_is_accepted(app, make_staff, login_as, db_check):
    admin = login_as(make_staff("chef", role="admin"), on=app.test_client())
    response = admin.post(
        "/admin/admin_staff/new/",
        data={"login": "Marie.Durand", "full_name": "Marie Durand", "email": "marie@occe85.example", "role": "staff"},
    )
    assert response.status_code == 302
    assert (
        db_check(lambda s: s.scalar(sa.select(User.login).where(User.email == "marie@occe85.example")))
        == "marie.durand"
    )


# -- 8. password strength -------------------------------------------------------------------------------

SCHOOL_NAME = "École Jules Verne"
COMMUNE = "Saint-Gilles-Croix-de-Vie"


@pytest.mark.parametrize(
    "weak",
    [
        "coopcoopcoop",
        "coop85coop85coop85",
        "12345678901234",
        "1qaz2wsx3edc",
        SCHOOL_NAME,
        "ecole jules verne",
        COMMUNE,
        "saint gilles croix de vie",
        "OCCE Vendée 2025",
    ],
)
def test_weak_passwords_are_refused_with_a_french_reason(app, make_coop, login_as, db_check, weak):
    coop = make_coop(1, school_name=SCHOOL_NAME, city=COMMUNE)
    client = login_as(coop, on=app.test_client())
    response = _change(client, PASSWORD, weak)
    assert response.status_code == 200
    text = page_html(response)
    assert re.search(r"Ce mot de passe (est trop|fait partie)|ne doit pas contenir votre identifiant", text), text[
        -2000:
    ]
    assert verify_password(db_check(lambda s: s.get(User, coop.user_id)).password_hash, PASSWORD)


@pytest.mark.parametrize("passphrase", [NEW_PASSWORD, "girafe cartable tempête violon", "Mon chat aime les crêpes!"])
def test_a_passphrase_is_accepted(app, make_coop, login_as, passphrase):
    client = login_as(make_coop(1, school_name=SCHOOL_NAME, city=COMMUNE), on=app.test_client())
    assert _change(client, PASSWORD, passphrase).status_code == 302
    assert login(app.test_client(), "085-001", passphrase).location == "/"
