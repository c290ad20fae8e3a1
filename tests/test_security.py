"""Security settings and rules of issue 14: secret key, second factor, least privilege, audit."""

from __future__ import annotations

import re
import secrets
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from app import auth
from app import clock as app_clock
from app.config import DEV_SECRET_KEY, ConfigError, build_config
from app.errors import DomainError
from app.models import Account, AuditEvent, Coop, Federation, PendingChange, SchoolYear, User
from forms.validators import SINGLE_LINE_MESSAGE
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


# -- least privilege and the back-office audit hook --------------------------------------------------


class _FormValues(HTMLParser):
    """The values a browser would submit for the first form with fields on a page (no JS)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._selected: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") == "checkbox":
                if "checked" in attrs:
                    self.values.append((name, attrs.get("value", "y")))
            else:
                self.values.append((name, attrs.get("value", "")))
        elif tag == "select" and name:
            self._select, self._selected = name, None
        elif tag == "option" and self._select is not None:
            if "selected" in attrs or self._selected is None:
                self._selected = attrs.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values.append((name, ""))

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None:
            self.values.append((self._select, self._selected or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self.values[-1] = (self._textarea, self.values[-1][1] + data)


def _edit(client, endpoint: str, row_id: int, changes: dict[str, str]):
    url = f"/admin/{endpoint}/edit/?id={row_id}"
    parser = _FormValues()
    parser.feed(client.get(url).get_data(as_text=True))
    data = [(k, v) for k, v in parser.values if k not in changes and not k.startswith("mandates-_template")]
    data += list(changes.items())
    return client.post(url, data=MultiDict(data))


def _events(db_check, action):
    return db_check(lambda s: s.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all())


def _editable_views(app):
    from flask_admin.contrib.sqla import ModelView

    admin = app.extensions["admin"]
    admin = admin[0] if isinstance(admin, list) else admin
    return {
        view.endpoint
        for view in admin._views
        if isinstance(view, ModelView)
        and getattr(view, "admin_can_edit", type(view).__dict__.get("can_edit", True))
        and getattr(type(view), "can_edit", True) is not False
    }


def test_every_back_office_edit_is_audited_with_before_and_after(app, make_coop, make_staff, login_as, db_check):
    make_coop(1)
    make_staff("chef", role="admin")
    agent = make_staff("agent")
    db_check(
        lambda s: (
            s.add_all(
                [
                    Federation(name="OCCE 85"),
                    SchoolYear(
                        start_year=2025,
                        pupil_fee_cents=205,
                        adult_fee_cents=205,
                        insurance_fee_cents=50,
                        property_threshold_cents=100000,
                        property_rate_ppm=6880,
                    ),
                ]
            ),
            s.commit(),
        )
    )
    ids = db_check(
        lambda s: {
            "admin_coops": s.scalar(sa.select(Coop.id)),
            "admin_staff": agent.id,
            "admin_accounts": s.scalar(sa.select(Account.id).order_by(Account.id)),
            "admin_years": s.scalar(sa.select(SchoolYear.id)),
            "admin_federation": s.scalar(sa.select(Federation.id)),
        }
    )
    edits = {
        "admin_coops": ("coop", {"name": "Coopérative renommée"}),
        "admin_staff": ("user_account", {"full_name": "Agent renommé"}),
        "admin_accounts": ("account", {"notes": "Note ajoutée"}),
        "admin_years": ("school_year", {"pupil_fee_cents": "2,10"}),
        "admin_federation": ("federation", {"phone": "02 51 00 00 85"}),
    }
    assert _editable_views(app) == set(edits), "a new editable back-office view needs its edit here"
    client = login_as("chef")
    for endpoint, (table, change) in edits.items():
        response = _edit(client, endpoint, ids[endpoint], change)
        assert response.status_code == 302, (endpoint, page_html(response)[:3000])
        events = _events(db_check, f"{table}.updated_by_staff")
        assert len(events) == 1, endpoint
        field = next(iter(change))
        assert events[0].actor_login == "chef" and events[0].entity_id == ids[endpoint]
        assert field in events[0].after and events[0].before[field] != events[0].after[field], endpoint

    # inline mandataire on the coop page: created, with its values; IBANs masked in the trail
    response = _edit(
        client,
        "admin_coops",
        ids["admin_coops"],
        {
            "mandates-1-role": "mandataire",
            "mandates-1-first_name": "Paul",
            "mandates-1-last_name": "Intrus",
            "mandates-1-started_on": "2025-09-01",
            "iban": "FR76 3000 6000 0112 3456 7890 189",
        },
    )
    assert response.status_code == 302, page_html(response)[:3000]
    created = _events(db_check, "mandate.created_by_staff")
    assert created and created[0].after["last_name"] == "Intrus" and created[0].coop_id == ids["admin_coops"]
    iban_change = _events(db_check, "coop.updated_by_staff")[-1]
    assert iban_change.after["iban"] == "FR76 **** 0189"
    assert "3000600001" not in str(iban_change.before) + str(iban_change.after)


def test_settings_rates_and_staff_accounts_are_read_only_for_staff(app, make_staff, login_as, db_check):
    make_staff("agent")
    db_check(lambda s: (s.add(Federation(name="OCCE 85", iban="FR7630006000011234567890189")), s.commit()))
    fed_id = db_check(lambda s: s.scalar(sa.select(Federation.id)))
    client = login_as("agent")
    assert client.get("/admin/admin_federation/").status_code == 200  # read
    assert "Lecture seule" in page_html(client.get("/admin/admin_federation/"))
    client.post(
        f"/admin/admin_federation/edit/?id={fed_id}", data={"name": "Pirate", "iban": "FR7611111111111111111111111"}
    )
    assert db_check(lambda s: s.get(Federation, fed_id).name) == "OCCE 85"
    assert client.get("/admin/admin_years/new/").status_code == 302
    client.post("/admin/admin_years/new/", data={"start_year": "2030", "pupil_fee_cents": "9,99"})
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(SchoolYear))) == 0
    assert client.get("/admin/admin_staff/").status_code == 403


def test_a_new_creditor_iban_waits_for_a_second_administrator(app, make_staff, login_as, db_check):
    make_staff("chef", role="admin")
    make_staff("adjointe", role="admin")
    old_iban = "FR7630006000011234567890189"
    db_check(lambda s: (s.add(Federation(name="OCCE 85", iban=old_iban, creditor_id="FR15ZZZ850042")), s.commit()))
    fed_id = db_check(lambda s: s.scalar(sa.select(Federation.id)))
    chef = login_as("chef")
    response = _edit(chef, "admin_federation", fed_id, {"iban": "FR76 1027 8360 0100 0204 8500 175"})
    assert response.status_code == 302, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page_html(response)))[-3000:]
    assert db_check(lambda s: s.get(Federation, fed_id).iban) == old_iban  # not in force yet
    listing = page_html(chef.get("/admin/admin_federation/"))
    assert "Changements en attente" in listing and "FR7610278360010002048500175" in listing
    assert "Confirmer ce changement" not in listing  # not by the one who asked
    change_id = db_check(lambda s: s.scalar(sa.select(PendingChange.id)))
    chef.post(f"/admin/admin_federation/en-attente/{change_id}", data={"decision": "confirmer"})
    assert db_check(lambda s: s.get(Federation, fed_id).iban) == old_iban

    other = login_as("adjointe", on=app.test_client())
    assert "Confirmer ce changement" in page_html(other.get("/admin/admin_federation/"))
    other.post(f"/admin/admin_federation/en-attente/{change_id}", data={"decision": "confirmer"})
    assert db_check(lambda s: s.get(Federation, fed_id).iban) == "FR7610278360010002048500175"
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(PendingChange))) == 0
    requested = _events(db_check, "federation.change_requested")[0]
    confirmed = _events(db_check, "federation.change_confirmed")[0]
    assert requested.actor_login == "chef" and requested.after == {"iban": "FR76 **** 0175"}
    assert confirmed.actor_login == "adjointe" and confirmed.before["iban"] == "FR76 **** 0189"


def test_staff_never_silently_overwrite_a_coop_change(app, make_coop, make_staff, login_as, db_check):
    coop = make_coop(1)
    make_staff("agent")
    client = login_as("agent")
    parser = _FormValues()
    parser.feed(client.get(f"/admin/admin_coops/edit/?id={coop.id}").get_data(as_text=True))
    # meanwhile the coop changes its phone number on its own face
    db_check(lambda s: (setattr(s.get(Coop, coop.id), "phone", "02 51 99 99 99"), s.commit()))
    data = [(k, v) for k, v in parser.values if k != "name" and not k.startswith("mandates-_template")]
    response = client.post(
        f"/admin/admin_coops/edit/?id={coop.id}", data=MultiDict([*data, ("name", "Écrasée")]), follow_redirects=True
    )
    assert "modifiée entre-temps" in page_html(response)
    stored = db_check(lambda s: s.get(Coop, coop.id))
    assert stored.phone == "02 51 99 99 99" and stored.name != "Écrasée"


# -- the coop's history --------------------------------------------------------------------------


def test_a_coop_history_shows_its_data_changes_and_document_views_only(app, make_coop, make_staff, login_as, db_check):
    coop = make_coop(1)
    staff = make_staff("agent")

    def events(s):
        s.add_all(
            [
                AuditEvent(action="login.success", actor_login="085-001", coop_id=coop.id),
                AuditEvent(action="login.failed", actor_login="085-001", coop_id=coop.id),
                AuditEvent(
                    action="coop.identity_updated", actor_login="085-001", coop_id=coop.id, after={"phone": "x"}
                ),
                AuditEvent(
                    action="document.viewed",
                    actor_id=staff.id,
                    actor_login="agent",
                    coop_id=coop.id,
                    entity="document",
                    after={"kind": "identity"},
                ),
                AuditEvent(action="access.refused", actor_login="agent", coop_id=coop.id),
            ]
        )
        s.commit()
        return {e.action: e.id for e in s.scalars(sa.select(AuditEvent))}

    ids = db_check(events)
    client = login_as(coop)
    page = page_html(client.get("/coop/modifications")).split("<tbody>")[1].split("</tbody>")[0]
    assert page.count("<tr>") == 2
    assert "Identité modifiée" in page
    assert "L'OCCE 85 a consulté la pièce « pièce d'identité du mandataire »" in page
    assert "agent" not in page and "connexion" not in page.lower()
    for hidden in ("login.success", "login.failed", "access.refused"):
        assert client.get(f"/coop/modifications/{ids[hidden]}").status_code == 404, hidden
    assert client.get(f"/coop/modifications/{ids['coop.identity_updated']}").status_code == 200


# -- text that goes out ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["École\r\nBcc: x@evil.example", "École\tdu bourg", "École\x00", "École\u2028"])
def test_one_line_fields_refuse_line_breaks_and_control_characters(app, make_coop, login_as, db_check, value):
    coop = make_coop(1)
    client = login_as(coop)
    form = _FormValues()
    form.feed(client.get("/coop/identite").get_data(as_text=True))
    data = MultiDict([(k, v) for k, v in form.values if k != "school_name"] + [("school_name", value)])
    response = client.post("/coop/identite", data=data)
    assert SINGLE_LINE_MESSAGE in page_html(response)
    assert db_check(lambda s: s.get(Coop, coop.id).school_name) == "École de test 1"


def test_back_office_one_line_fields_refuse_line_breaks(app, make_coop, make_staff, login_as, db_check):
    coop = make_coop(1)
    make_staff("agent")
    response = _edit(login_as("agent"), "admin_coops", coop.id, {"name": "Coop\r\nBcc: x@evil.example"})
    assert response.status_code == 200 and SINGLE_LINE_MESSAGE in page_html(response)
    assert db_check(lambda s: s.get(Coop, coop.id).name) == "Coopérative de test 001"


@pytest.mark.parametrize(
    "module",
    ["forms.membership", "forms.mandates", "forms.yearend", "forms.admin", "forms.admin_reports", "forms.auth"],
)
def test_every_one_line_field_of_these_forms_refuses_line_breaks(app, module):
    import importlib
    import inspect

    from flask_wtf import FlaskForm

    from forms.validators import SingleLine, SingleLineForm, is_single_line

    forms = [
        cls
        for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass)
        if issubclass(cls, FlaskForm) and cls.__module__ == module
    ]
    assert forms
    with app.test_request_context(method="POST"):
        for cls in forms:
            assert issubclass(cls, SingleLineForm), cls
            try:
                form = cls()
            except TypeError:
                continue  # a form built with a lookup: its class is checked above
            for field in form:
                if is_single_line(field):
                    assert any(isinstance(v, SingleLine) for v in field.validators), (cls, field.name)


def test_cash_book_and_pointage_forms_are_single_line():
    """Every form of the cash-book and of pointage (subforms of box 7 and of the opening included)."""
    import inspect

    from flask_wtf import FlaskForm
    from wtforms import Form

    import forms.ledger
    import forms.pointage
    from forms.validators import SingleLineForm, SingleLineMeta

    for module in (forms.ledger, forms.pointage):
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            if issubclass(cls, FlaskForm):
                assert issubclass(cls, SingleLineForm), name
            elif issubclass(cls, Form):
                assert issubclass(cls.Meta, SingleLineMeta), name


def test_a_line_break_in_an_action_name_is_refused(client, make_coop, login_as, db_check):
    from app.models import Action

    login_as(make_coop(1))
    response = client.post("/coop/actions", data={"name": "Classe de mer\r\nBcc: x@example.org"}, follow_redirects=True)
    assert "Ce champ tient sur une seule ligne" in page_html(response)
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Action))) == 0


def test_the_cash_book_exports_guard_every_text_column(app, make_coop, session):
    """Issue 14 §7: the cheque number and label of an operation cannot become a formula in the CSV or
    the XLSX export (typed through any path: here written directly)."""
    import io as _io
    from datetime import date

    from openpyxl import load_workbook

    from app import cahier
    from app import ledger as books
    from app.models import Coop

    info = make_coop(1)
    ledger = books.open_ledger(session, session.get(Coop, info.id), 2025)
    data = books.EntryData(
        piece="=HYPERLINK(1)",
        date=date(2025, 10, 1),
        label="+33 Fournitures",
        payment_mode="cheque",
        kind="expense",
        treasury=books.Treasury(bank_out=1000),
        splits=[books.Split("6068", 1000)],
        cheque_number="=1+1",
    )
    books.record_entry(session, ledger, data, by=None)
    session.flush()
    csv_text = cahier.export_csv(session, ledger).decode("utf-8-sig")
    assert "'=1+1" in csv_text and "'=HYPERLINK(1)" in csv_text and "'+33 Fournitures" in csv_text
    sheet = load_workbook(_io.BytesIO(cahier.export_xlsx(session, ledger, "Cahier"))).active
    cells = [c for row in sheet.iter_rows(min_row=3) for c in row[:6] if c.value in ("=1+1", "=HYPERLINK(1)")]
    assert len(cells) == 2 and all(c.data_type == "s" for c in cells)  # text, no visible quote
