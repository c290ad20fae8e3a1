"""A teacher reconciles September 2025 in Chromium: imports the bank's OFX file, confirms the
proposed matches, creates the missing bank fee from its statement line, and the yellow box says
0,00 €. With JavaScript, « Pointer » / « Dépointer » update the row and the box without reloading
the page; without it, the same buttons are plain forms and « Dépointer » asks on a page of its own."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.models import Coop
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check, axe_on_every_page
from tests.test_pointage import DATA, load_fixture_ledger

pytestmark = pytest.mark.e2e
SCREEN = "/coop/pointage/2025"
MARKER = "chargée une seule fois"


def _login(page, login: str) -> None:
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))


def _fixture_ledger(db_check, coop_id: int) -> dict[str, int]:
    def run(s):
        ids = load_fixture_ledger(s, s.get(Coop, coop_id))
        s.commit()
        return ids

    return db_check(run)


def _money(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text).strip()


def _difference(page) -> str:
    return _money(page.locator('[data-summary="difference"]').inner_text())


def _flash(page, text: str) -> None:
    expect(page.locator(".flash-messages")).to_contain_text(text)


def test_reconcile_a_month_from_the_ofx_file(page, make_coop, db_check):
    coop = make_coop(42, iban="FR7610278360010002048500175")  # the account of the sample statements
    ids = _fixture_ledger(db_check, coop.id)
    axe_on_every_page(page)  # every page reached below: no serious or critical accessibility violation
    _login(page, coop.login)
    page.goto(SCREEN)
    expect(page.get_by_role("heading", name="Pointage du compte bancaire — 2025-2026")).to_be_visible()
    assert _difference(page) == "saisissez le solde du relevé"

    # 1. Import last month's OFX file: the closing balance fills the yellow box
    page.get_by_label("Relevé téléchargé de votre banque (OFX, CSV, CAMT.053 ou QIF)").set_input_files(
        DATA / "releve_2025-09_credit_mutuel.ofx"
    )
    page.get_by_role("button", name="Importer le relevé").click()
    page.wait_for_url(re.compile(rf"{SCREEN}#correspondances$"))
    _flash(page, "Relevé importé : 9 ligne(s) nouvelle(s).")
    assert page.get_by_label("Date du relevé").input_value() == "2025-09-30"
    assert _money(page.get_by_label("Solde du relevé à cette date (€)").input_value()) == "1 853,06"
    assert _difference(page) == "618,50 €"
    proposed = page.locator('#correspondances input[name="match"]')
    assert proposed.count() == 8
    assert all(proposed.nth(i).is_checked() for i in range(8))

    # 2. Confirm the suggestions: six euros are left, the bank fee
    page.get_by_role("button", name="Confirmer les correspondances cochées").click()
    page.wait_for_url(re.compile(rf"{SCREEN}#resume$"))
    _flash(page, "8 correspondance(s) confirmée(s) : les lignes sont pointées.")
    assert _difference(page) == "-6,00 €"
    assert page.locator("#reconciled-note").is_hidden()
    assert page.get_by_role("button", name="Dépointer L06", exact=True).is_visible()

    # 3. Create the missing fee from its statement line: the form is prefilled, the entry is pointed
    page.get_by_role("link", name="Créer l'opération du 30/09/2025").click()
    page.wait_for_url(re.compile(r"/coop/cahier/2025/nouvelle\?jeton=[0-9a-f]{32}&releve=\d+$"))
    assert page.get_by_label("Dépense", exact=True).is_checked()
    assert page.get_by_label("3. Libellé").input_value().startswith("FRAIS TENUE DE COMPTE")
    assert page.get_by_label("Montant par la banque (€)").input_value() == "6,00"
    assert page.get_by_label("Compte de la ligne 1", exact=True).input_value() == "627"
    assert page.get_by_label("Montant de la ligne 1", exact=True).input_value() == "6,00"
    page.get_by_role("button", name="Valider et calculer cette opération comptable").click()
    page.wait_for_url(re.compile(rf"{SCREEN}#resume$"))
    _flash(page, "Elle est pointée avec la ligne du relevé.")
    assert _difference(page) == "0,00 €"
    expect(page.locator("#reconciled-note")).to_have_text("Écart nul : le cahier est rapproché avec le relevé.")
    assert page.get_by_text("Lignes du relevé absentes du cahier").count() == 0

    # 4. Without reloading: unclear a line (confirm() dialog), then clear it again
    url = page.url
    page.evaluate(f"() => {{ window.pointageMarker = {MARKER!r}; }}")
    row = page.locator(f"#ligne-{ids['L06']}")
    page.once("dialog", lambda dialog: dialog.dismiss())  # « Annuler »: nothing changes
    row.get_by_role("button", name="Dépointer L06").click()
    expect(row.locator(".cleared")).to_have_text("08/09/2025")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Dépointer L06").click()
    expect(row.get_by_role("button", name="Pointer L06", exact=True)).to_be_visible()
    expect(row.locator(".cleared")).to_have_text("")
    expect(page.locator('[data-summary="difference"]')).to_have_text(re.compile(r"^500,00\s€$"))
    assert page.locator("#reconciled-note").is_hidden()
    assert _money(page.locator('[data-summary="uncleared_count"]').inner_text()) == "3"
    row.get_by_role("button", name="Pointer L06", exact=True).click()
    expect(row.locator(".cleared")).to_have_text("30/09/2025")  # the statement date of the box
    expect(row.get_by_role("button", name="Dépointer L06")).to_be_visible()
    expect(page.locator('[data-summary="difference"]')).to_have_text(re.compile(r"^0,00\s€$"))
    expect(page.locator("#reconciled-note")).to_be_visible()
    assert page.url == url
    assert page.evaluate("() => window.pointageMarker") == MARKER
    assert _difference(page) == "0,00 €"
    axe_check(page)  # the lines and the box as the script left them


def test_pointage_without_javascript(browser, live_server, make_coop, db_check):
    """No script: « Pointer » reloads the page, « Dépointer » asks on a confirmation page."""
    coop = make_coop(42, iban="FR7610278360010002048500175")  # the account of the sample statements
    ids = _fixture_ledger(db_check, coop.id)
    context = browser.new_context(base_url=live_server, locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    _login(page, coop.login)
    page.goto(SCREEN)
    page.get_by_label("Date du relevé").fill("2025-09-30")
    page.get_by_label("Solde du relevé à cette date (€)").fill("1 853,06")
    page.get_by_role("button", name="Calculer l'écart").click()
    page.wait_for_url(re.compile(rf"{SCREEN}#resume$"))
    _flash(page, "Écart de 618,50 € avec le relevé")

    row = page.locator(f"#ligne-{ids['L06']}")
    row.get_by_role("button", name="Pointer L06", exact=True).click()
    page.wait_for_url(re.compile(rf"{SCREEN}#ligne-{ids['L06']}$"))
    _flash(page, "Ligne pointée au 30/09/2025.")
    assert row.locator(".cleared").inner_text() == "30/09/2025"
    assert _difference(page) == "118,50 €"

    row.get_by_role("button", name="Dépointer L06").click()
    expect(page.get_by_role("heading", name="Confirmation")).to_be_visible()
    assert "Annuler le pointage de la pièce L06" in page.locator("main").inner_text()
    page.get_by_role("link", name="Non, garder le pointage").click()
    page.wait_for_url(re.compile(rf"{SCREEN}#ligne-{ids['L06']}$"))
    assert row.locator(".cleared").inner_text() == "30/09/2025"
    row.get_by_role("button", name="Dépointer L06").click()
    page.get_by_role("button", name="Oui, dépointer").click()
    page.wait_for_url(re.compile(rf"{SCREEN}#ligne-{ids['L06']}$"))
    _flash(page, "Pointage annulé.")
    assert row.locator(".cleared").inner_text() == ""
    assert _difference(page) == "618,50 €"
    context.close()
