"""Every route has an access decision; roles, tenancy, CSRF and security headers are enforced."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app import auth, clock
from app.clock import today as paris_today
from app.extensions import db
from app.models import AuditEvent, Coop, school_year_start, utcnow
from app.web.security import endpoint_access
from tests.conftest import PASSWORD
from tests.helpers import STAFF_TOTP_SECRET

# Values used to fill URL converters when walking app.url_map.
ARG_VALUES = {
    "id": "1",
    "event_id": "1",
    "token": "x" * 43,
    "filename": "css/coop85.css",
    "export_type": "csv",
    "year": str(school_year_start(paris_today())),
    "entry_id": "1",
    "document_id": "1",
    "action_id": "1",
    "membership_id": "1",
    "batch_id": "1",
    "sequence": "1",
    "debit_id": "1",
    "fmt": "csv",
    "line_id": "1",
    "change_id": "1",
    "report_id": "1",
    "kind": "identity",
}


def _url(app, rule) -> str | None:
    values = {}
    for arg in rule.arguments:
        if arg not in ARG_VALUES:
            return None
        values[arg] = ARG_VALUES[arg]
    with app.test_request_context():
        return app.url_for(rule.endpoint, **values)


def _get(client, url):
    response = client.get(url)
    response.close()  # static files are streamed from open files
    return response


def _rules(app, method):
    return [rule for rule in app.url_map.iter_rules() if method in rule.methods]


def test_every_route_has_an_access_decision(app):
    undecided = [rule.rule for rule in app.url_map.iter_rules() if endpoint_access(app, rule.endpoint) is None]
    assert undecided == [], f"routes without @access(...): {undecided}"


def test_every_get_route_as_each_role(app, make_coop, make_staff, login_as):
    make_coop(1)
    make_staff("agent", role="admin")
    anonymous = app.test_client()
    coop = login_as("085-001", on=app.test_client())
    staff = login_as("agent", on=app.test_client())
    checked = 0
    for rule in _rules(app, "GET"):
        url = _url(app, rule)
        assert url is not None, f"add a value for {rule.arguments} in ARG_VALUES"
        level = endpoint_access(app, rule.endpoint)
        static = rule.endpoint == "static" or rule.endpoint.endswith(".static")
        anon = _get(anonymous, url)
        if level == "anonymous":
            assert anon.status_code in (200, 302, 404), (url, anon.status_code)
        else:
            assert anon.status_code == 302 and anon.headers["Location"].startswith("/connexion"), url
        as_coop = _get(coop, url)
        as_staff = _get(staff, url)
        if level == "staff":
            assert as_coop.status_code == 403, url
            assert as_staff.status_code in (200, 302, 404), (url, as_staff.status_code)
        if level == "coop" and not static:
            assert as_staff.status_code == 403, url
            assert as_coop.status_code in (200, 302, 404), (url, as_coop.status_code)
            if as_coop.status_code == 302:
                assert not as_coop.headers["Location"].startswith("/connexion"), url
        checked += 1
    assert checked > 30


def test_get_requests_change_nothing(app, make_coop, make_staff, login_as, db_check):
    """Crawl every GET route as each role: the database is the same afterwards (SECURITY.md T15)."""
    make_coop(1)
    make_staff("agent")
    clients = [app.test_client(), login_as("085-001", on=app.test_client()), login_as("agent", on=app.test_client())]

    def snapshot(session):
        return {
            table.name: session.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in db.metadata.sorted_tables
        }

    before = db_check(snapshot)
    for rule in _rules(app, "GET"):
        url = _url(app, rule)
        for client in clients:
            _get(client, url)
    assert db_check(snapshot) == before


def _csrf_token(client, path):
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, path
    return match.group(1)


def test_every_post_route_refuses_a_missing_csrf_token(make_app, migrated, make_coop, make_staff, db_check):
    app = make_app(WTF_CSRF_ENABLED=True)
    make_coop(1)
    make_staff("agent")
    staff = app.test_client()
    token = _csrf_token(staff, "/connexion")
    response = staff.post("/connexion", data={"login": "agent", "password": PASSWORD, "csrf_token": token})
    assert response.location == "/connexion/code"
    token = _csrf_token(staff, "/connexion/code")
    code = auth.totp_code(STAFF_TOTP_SECRET, clock.now())
    assert staff.post("/connexion/code", data={"code": code, "csrf_token": token}).status_code == 302
    coop = app.test_client()
    token = _csrf_token(coop, "/connexion")
    assert (
        coop.post("/connexion", data={"login": "085-001", "password": PASSWORD, "csrf_token": token}).status_code == 302
    )

    counts = db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Coop)))
    posted = 0
    for rule in _rules(app, "POST"):
        url = _url(app, rule)
        assert url is not None, f"add a value for {rule.arguments} in ARG_VALUES"
        for client in (staff, coop, app.test_client()):
            response = client.post(url, data={"name": "Pirate", "number": "99", "url": "/admin/"})
            assert response.status_code in (400, 403, 302), (url, response.status_code)
            if response.status_code == 302:  # access gate answered before CSRF (anonymous)
                assert response.headers["Location"].startswith("/connexion"), url
        response = staff.post(url, data={"name": "Pirate", "number": "99"})
        if endpoint_access(app, rule.endpoint) in ("staff", "authenticated", "anonymous"):
            assert response.status_code == 400, (url, response.status_code)
        posted += 1
    assert posted >= 15
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Coop))) == counts
    # with a token, the staff can work (CSRF is not blocking everything)
    token = _csrf_token(staff, "/admin/admin_coops/new/")
    ok = staff.post(
        "/admin/admin_coops/new/",
        data={"csrf_token": token, "number": "50", "name": "Coop cinquante", "is_active": "y"},
    )
    assert ok.status_code == 302


def test_coop_users_get_403_on_the_back_office(client, make_coop, login_as):
    login_as(make_coop(1))
    for path in ("/admin/", "/admin/admin_coops/", "/admin/admin_audit/", "/admin/import-coops/"):
        response = client.get(path)
        assert response.status_code == 403
        assert "Accès refusé" in response.get_data(as_text=True)


def test_only_administrators_manage_staff_accounts(app, make_staff, login_as):
    staff = login_as(make_staff("agent"), on=app.test_client())
    assert staff.get("/admin/admin_coops/").status_code == 200
    assert staff.get("/admin/admin_staff/").status_code == 403
    assert staff.get("/admin/admin_staff/new/").status_code == 403
    administrator = login_as(make_staff("chef", role="admin"), on=app.test_client())
    assert administrator.get("/admin/admin_staff/").status_code == 200


def test_staff_home_is_the_back_office(client, make_staff, login_as):
    login_as(make_staff())
    assert client.get("/").headers["Location"] == "/admin/"


def test_another_coops_data_is_404_and_audited(app, make_coop, login_as, db_check):
    a, b = make_coop(1), make_coop(2)

    def add_event(session):
        event = AuditEvent(
            action="coop.identity_updated",
            coop_id=b.id,
            actor_login=b.login,
            created_at=utcnow(),
            before={"city": "Luçon"},
            after={"city": "Secret-de-B"},
        )
        session.add(event)
        session.commit()
        return event.id

    event_id = db_check(add_event)
    coop_b = login_as(b, on=app.test_client())
    assert "Secret-de-B" in coop_b.get(f"/coop/modifications/{event_id}").get_data(as_text=True)
    coop_a = login_as(a, on=app.test_client())
    response = coop_a.get(f"/coop/modifications/{event_id}")
    assert response.status_code == 404
    assert "Secret-de-B" not in response.get_data(as_text=True)
    assert "Secret-de-B" not in coop_a.get("/coop/modifications").get_data(as_text=True)
    denied = db_check(lambda s: s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "access.denied")).all())
    assert len(denied) == 1 and denied[0].actor_login == "085-001"


def test_posting_another_coops_ids_changes_nothing(client, make_coop, login_as, db_check):
    a, b = make_coop(1), make_coop(2, city="Luçon")
    login_as(a)
    form = {
        "name": "Nom A",
        "school_name": "École A",
        "uai": "0850001P",
        "address": "1 rue",
        "postal_code": "85000",
        "city": "Challans",
        "email": "a@example.org",
        "bank_name": "CM",
        "iban": "FR7615519000010002000000103",
        "bic": "CMCIFR2A",
        "id": str(b.id),
        "coop_id": str(b.id),
        "number": "2",
        "is_active": "",
        "version": "",
    }
    assert client.post("/coop/identite", data=form).status_code == 302
    coops = db_check(lambda s: {c.number: (c.city, c.is_active, c.id) for c in s.scalars(sa.select(Coop))})
    assert coops[2] == ("Luçon", True, b.id)
    assert coops[1] == ("Challans", True, a.id)


@pytest.mark.parametrize("path", ["/connexion", "/n-existe-pas", "/static/css/coop85.css"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path, base_url="https://localhost")
    response.close()
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'nonce-[\w-]{16,}'", csp)
    assert (
        "frame-ancestors 'none'" in csp
        and "object-src 'none'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_no_hsts_over_plain_http(client):
    assert "Strict-Transport-Security" not in client.get("/connexion").headers


def test_authenticated_pages_are_not_cached(client, make_coop, make_staff, login_as, app):
    login_as(make_coop(1))
    assert client.get("/coop/identite").headers["Cache-Control"] == "no-store"
    staff = login_as(make_staff(), on=app.test_client())
    assert staff.get("/admin/admin_coops/").headers["Cache-Control"] == "no-store"


def test_scripts_carry_the_csp_nonce(client, make_staff, login_as):
    login_as(make_staff())
    for path in ("/admin/", "/admin/admin_coops/"):
        response = client.get(path)
        nonce = re.search(r"'nonce-([\w-]+)'", response.headers["Content-Security-Policy"]).group(1)
        scripts = re.findall(r"<script\b[^>]*>", response.get_data(as_text=True))
        assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), scripts


def test_error_500_is_french_without_traceback(make_app, migrated):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.route("/boom")
    def boom():  # pragma: no cover - only for this test
        raise RuntimeError("secret detail")

    boom.access = "anonymous"
    response = app.test_client().get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Erreur du serveur" in body and "secret detail" not in body and "Traceback" not in body
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_route_without_decision_is_refused(make_app, migrated):
    app = make_app()

    @app.route("/oubli")
    def forgotten():  # pragma: no cover - never reached
        return "should not be served"

    assert app.test_client().get("/oubli").status_code == 403


def test_upload_size_limit(client):
    response = client.post("/connexion", data={"login": "x" * (26 * 1024 * 1024)})
    assert response.status_code == 413
