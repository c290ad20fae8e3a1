"""A demo coop logs in for the first time, chooses its password, corrects its identity."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app import auth, clock
from app.demo import load_demo
from app.extensions import db
from app.models import AuditEvent, Coop
from tests.conftest import FAST_ARGON2
from tests.e2e.conftest import axe_check, axe_on_every_page

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "les goélands de la plage des Dunes"


@pytest.fixture
def demo(app):
    with app.app_context():
        load_demo(db.session, today=clock.today(), hash_params=FAST_ARGON2)
        db.session.commit()
        db.session.remove()


def test_first_login_password_change_and_identity(page, demo, db_check):
    axe_on_every_page(page)
    page.goto("/")
    assert page.url.endswith("/connexion?next=%2F") or "/connexion" in page.url
    page.get_by_label("Identifiant").fill("085-012")
    page.get_by_label("Mot de passe").fill("demo-085-012")
    page.get_by_role("button", name="Se connecter").click()

    page.wait_for_url(re.compile(r"/mot-de-passe$"))
    assert page.get_by_role("heading", name="Choisissez votre mot de passe").is_visible()
    page.get_by_label("Mot de passe actuel (ou provisoire)").fill("demo-085-012")
    page.get_by_label("Nouveau mot de passe", exact=True).fill("azertyuiop123")
    page.get_by_label("Confirmez le nouveau mot de passe").fill("azertyuiop123")
    page.get_by_role("button", name="Enregistrer le nouveau mot de passe").click()
    assert page.get_by_text("fait partie des plus courants").first.is_visible()
    axe_check(page)  # the form shown again with its error

    page.get_by_label("Mot de passe actuel (ou provisoire)").fill("demo-085-012")
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmez le nouveau mot de passe").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Enregistrer le nouveau mot de passe").click()

    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_text("Votre mot de passe a été modifié").is_visible()
    identity_card = page.get_by_role("region", name="1. Identité de la coop")
    assert identity_card.get_by_text("1 information à compléter : numéro UAI.").is_visible()
    identity_card.get_by_role("link", name=re.compile("Compléter")).click()

    page.wait_for_url(re.compile(r"/coop/identite$"))
    page.get_by_label("Numéro UAI (ex-RNE) de l'école").fill("0850012A")
    page.get_by_role("button", name="Valider les modifications").click()
    error = page.locator("#uai-erreur")
    assert "lettre de contrôle" in error.inner_text()
    assert page.get_by_label("Numéro UAI (ex-RNE) de l'école").get_attribute("aria-invalid") == "true"
    axe_check(page)

    page.get_by_label("Numéro UAI (ex-RNE) de l'école").fill("0850012b")
    page.get_by_label("Téléphone de l'école").fill("02 51 58 30 00")
    page.get_by_role("button", name="Valider les modifications").click()
    page.wait_for_url(re.compile(r"/coop/identite$"))
    assert page.get_by_text("Les modifications ont été enregistrées (2 information(s) mise(s) à jour).").is_visible()
    assert page.get_by_label("Numéro UAI (ex-RNE) de l'école").input_value() == "0850012B"

    page.get_by_role("link", name="Accueil").first.click()
    assert page.get_by_role("region", name="1. Identité de la coop").get_by_text("Informations complètes.").is_visible()
    axe_check(page)

    coop = db_check(lambda s: s.scalar(sa.select(Coop).where(Coop.number == 12)))
    assert coop.uai == "0850012B" and coop.phone == "02 51 58 30 00"
    events = db_check(lambda s: s.scalars(sa.select(AuditEvent.action).where(AuditEvent.coop_id == coop.id)).all())
    assert "password.changed" in events and "coop.identity_updated" in events

    # Log out: the back button does not bring the page back
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(re.compile(r"/connexion$"))
    page.go_back()
    assert "/connexion" in page.url


def test_phone_layout_and_keyboard(page, demo, browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740}, is_mobile=True)
    phone = context.new_page()
    axe_on_every_page(phone)
    phone.goto("/connexion")
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.textContent").strip() == "Aller au contenu"
    phone.get_by_label("Identifiant").fill("secretariat")
    phone.get_by_label("Mot de passe").fill("demo-secretariat-85")
    phone.keyboard.press("Enter")
    # first staff login: the authenticator app is enrolled before any back-office page opens
    phone.wait_for_url(re.compile(r"/connexion/code/activation$"))
    assert phone.get_by_role("img", name=re.compile("Code QR")).is_visible()
    secret = phone.locator("#totp-secret").inner_text().replace(" ", "")
    phone.get_by_label("Code affiché par l'application").fill(auth.totp_code(secret, clock.now()))
    phone.get_by_role("button", name="Activer et continuer").click()
    assert phone.locator("#recovery-codes li").count() == 10
    axe_check(phone)
    phone.get_by_role("link", name="J'ai noté mes codes, continuer").click()
    phone.wait_for_url(re.compile(r"/admin/$"))
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"horizontal scroll on a phone: {width}px"
    context.close()
