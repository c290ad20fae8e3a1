"""Nothing typed is lost when a session ends: keep-alive, the refused-form page and its way back."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import DEFAULT_MOMENT, PASSWORD
from tests.helpers import page_html


def _token(client, path: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


@pytest.fixture
def csrf_app(make_app, migrated):
    return make_app(WTF_CSRF_ENABLED=True)


def _logged_in(csrf_app):
    client = csrf_app.test_client()
    token = _token(client, "/connexion")
    response = client.post("/connexion", data={"login": "085-001", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def test_keepalive_renews_an_idle_session(client, make_coop, login_as, clock):
    login_as(make_coop(1))
    clock(DEFAULT_MOMENT + timedelta(minutes=26))
    response = client.post("/session/prolonger")
    assert response.status_code == 200
    assert response.get_json() == {"idle_seconds": 1800}
    assert response.headers["Cache-Control"] == "no-store"
    clock(DEFAULT_MOMENT + timedelta(minutes=50))  # 24 minutes after « Rester connecté »: still in
    assert client.get("/coop/identite").status_code == 200


def test_without_keepalive_the_idle_session_ends(client, make_coop, login_as, clock):
    login_as(make_coop(1))
    clock(DEFAULT_MOMENT + timedelta(minutes=31))
    response = client.post("/session/prolonger")
    assert response.status_code == 302
    assert response.location.startswith("/connexion")


def test_keepalive_needs_a_login_and_a_csrf_token(csrf_app, make_coop):
    make_coop(1)
    anonymous = csrf_app.test_client()
    assert anonymous.get("/").status_code == 302
    assert anonymous.post("/session/prolonger").status_code == 400  # no session, no token
    client = _logged_in(csrf_app)
    assert client.post("/session/prolonger").status_code == 400
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/session/prolonger", headers={"X-CSRFToken": token}).status_code == 200


def test_pages_carry_what_the_expiry_warning_needs(client, make_coop, login_as):
    login_as(make_coop(1))
    html = page_html(client.get("/"))
    assert 'data-session-idle="1800"' in html and 'data-session-keepalive="/session/prolonger"' in html
    assert "Rester connecté" in html and 'name="csrf-token"' in html
    assert re.search(r'<script src="/static/js/session.js[^"]*" nonce="[^"]+"></script>', html)


def test_form_sent_after_the_session_expired_explains_and_leads_back_through_the_login(csrf_app, make_coop):
    make_coop(1)
    client = _logged_in(csrf_app)
    client.get("/coop/identite")
    client.delete_cookie("coop85_session")  # the browser dropped the expired session cookie
    response = client.post(
        "/coop/identite", data={"name": "Coop des Lilas"}, headers={"Referer": "http://localhost/coop/identite"}
    )
    assert response.status_code == 400
    html = page_html(response)
    assert "Session expirée" in html
    assert "après 30 minutes sans activité" in html and "n'a donc pas été enregistré" in html
    assert 'href="/connexion?next=/coop/identite"' in html
    assert "Se reconnecter et reprendre le formulaire" in html
    assert 'data-draft-hold="1"' in html and "/static/js/session.js" in html


def test_stale_form_of_a_live_session_offers_the_same_form_again(csrf_app, make_coop):
    make_coop(1)
    client = _logged_in(csrf_app)
    response = client.post(
        "/coop/identite",
        data={"name": "Coop des Lilas", "csrf_token": "vieux-jeton"},
        headers={"Referer": "http://localhost/coop/identite"},
    )
    assert response.status_code == 400
    html = page_html(response)
    assert "Formulaire périmé" in html and "il n'a pas été enregistré" in html
    assert '<a class="btn btn-primary" href="/coop/identite">Revenir au formulaire</a>' in html


def test_way_back_never_leaves_the_site(csrf_app, make_coop):
    make_coop(1)
    client = _logged_in(csrf_app)
    response = client.post("/coop/identite", data={}, headers={"Referer": "https://ailleurs.example/piege"})
    html = page_html(response)
    assert "ailleurs.example" not in html
    assert 'href="/coop/identite"' in html  # the address the form was sent to
