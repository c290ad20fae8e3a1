"""A mandataire leaves a form open too long, in Chromium: warned five minutes before the end, kept in
with « Rester connecté », and when the session did end, led through the login back to the same form
with what was typed. No sleep: the server's clock is pinned (`clock`), the browser's is Playwright's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import Coop
from tests.conftest import DEFAULT_MOMENT, PASSWORD
from tests.e2e.conftest import axe_check, axe_on_every_page

pytestmark = pytest.mark.e2e
NAME = "Nom de la coopérative"


def _log_in(page) -> None:
    page.get_by_label("Identifiant").fill("085-001")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def _open_identity(page) -> None:
    page.clock.install()
    axe_on_every_page(page)
    page.goto("/connexion?next=/coop/identite")
    _log_in(page)
    page.wait_for_url(re.compile(r"/coop/identite$"))
    page.get_by_label(NAME).fill("Coop des Lilas")


def _save(page) -> None:
    page.get_by_role("button", name="Valider les modifications").click()
    page.get_by_text("Les modifications ont été enregistrées").wait_for()


def _name(db_check, coop_id: int) -> str:
    return db_check(lambda s: s.scalar(sa.select(Coop.name).where(Coop.id == coop_id)))


def test_warning_five_minutes_before_and_stay_connected(page, make_coop, clock, db_check):
    coop = make_coop(1)
    _open_identity(page)
    warning = page.get_by_role("alert").filter(has_text="Votre session va bientôt expirer")
    page.clock.fast_forward("24:00")
    assert warning.is_hidden()
    page.clock.fast_forward("01:05")
    warning.wait_for()
    assert "Ce que vous avez saisi et pas encore enregistré serait perdu" in warning.inner_text()
    axe_check(page)

    clock(DEFAULT_MOMENT + timedelta(minutes=26))
    with page.expect_response(re.compile(r"/session/prolonger$")) as kept:
        page.get_by_role("button", name="Rester connecté").click()
    assert kept.value.status == 200
    warning.wait_for(state="hidden")

    # 24 minutes later (50 since the page was opened): still connected, the form saves
    clock(DEFAULT_MOMENT + timedelta(minutes=50))
    page.clock.fast_forward("24:00")
    assert warning.is_hidden()
    _save(page)
    assert _name(db_check, coop.id) == "Coop des Lilas"


def test_form_sent_after_expiry_comes_back_filled_after_login(page, make_coop, clock, db_check, expect_console_error):
    coop = make_coop(1)
    _open_identity(page)
    page.context.clear_cookies()  # the browser dropped the session cookie when it expired
    page.get_by_role("button", name="Valider les modifications").click()

    assert page.get_by_role("heading", name="Session expirée").is_visible()
    expect_console_error("status of 400")
    assert page.get_by_text("Ce que vous aviez saisi est gardé dans ce navigateur").is_visible()
    axe_check(page)
    page.get_by_role("link", name="Se reconnecter et reprendre le formulaire").click()
    _log_in(page)
    page.wait_for_url(re.compile(r"/coop/identite$"))
    assert page.get_by_label(NAME).input_value() == "Coop des Lilas"
    assert page.get_by_role("status").filter(has_text="Nous avons remis ce que vous aviez saisi").is_visible()
    assert _name(db_check, coop.id) != "Coop des Lilas"  # nothing was stored on the server meanwhile

    _save(page)
    assert _name(db_check, coop.id) == "Coop des Lilas"
    page.goto("/coop/identite")  # restored once, then forgotten
    assert page.get_by_text("Nous avons remis").count() == 0


def test_idle_session_ended_by_the_server_offers_to_resume_from_home(page, make_coop, clock, db_check):
    coop = make_coop(1)
    _open_identity(page)
    clock(DEFAULT_MOMENT + timedelta(minutes=31))
    page.get_by_role("button", name="Valider les modifications").click()
    page.wait_for_url(re.compile(r"/connexion"))
    assert page.get_by_text("Votre session a expiré").is_visible()
    _log_in(page)
    page.wait_for_url(re.compile(r"/$"))
    banner = page.get_by_role("status").filter(has_text="Un formulaire n'a pas été enregistré")
    assert banner.is_visible()
    axe_check(page)
    banner.get_by_role("link", name=re.compile("Reprendre la saisie")).click()
    page.wait_for_url(re.compile(r"/coop/identite$"))
    assert page.get_by_label(NAME).input_value() == "Coop des Lilas"
    _save(page)
    assert _name(db_check, coop.id) == "Coop des Lilas"


def test_expired_warning_leads_to_the_login_and_back(page, make_coop, clock, db_check):
    make_coop(1)
    _open_identity(page)
    clock(DEFAULT_MOMENT + timedelta(minutes=31))
    page.clock.fast_forward("30:05")
    page.get_by_role("alert").filter(has_text="Votre session a expiré").wait_for()
    axe_check(page)
    page.get_by_role("button", name="Se reconnecter").click()
    page.wait_for_url(re.compile(r"/connexion\?next="))
    _log_in(page)
    page.wait_for_url(re.compile(r"/coop/identite$"))
    assert page.get_by_label(NAME).input_value() == "Coop des Lilas"


def test_another_login_on_the_same_browser_never_sees_the_draft(page, make_coop, clock, expect_console_error):
    make_coop(1)
    make_coop(2)
    _open_identity(page)
    page.context.clear_cookies()
    page.get_by_role("button", name="Valider les modifications").click()
    page.get_by_role("heading", name="Session expirée").wait_for()
    expect_console_error("status of 400")
    page.get_by_role("link", name="Se reconnecter et reprendre le formulaire").click()
    page.get_by_label("Identifiant").fill("085-002")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/coop/identite$"))
    assert page.get_by_label(NAME).input_value() == "Coopérative de test 002"
    assert page.evaluate("() => localStorage.getItem('coop85.drafts')") == "{}"
