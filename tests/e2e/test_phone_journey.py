"""A mandataire on a phone (375 x 667) in Chromium: menu, home, identity, membership, history and password
change. Every page fits the screen (no sideways scrolling of the page), every tap target stands alone at
24 x 24 px or more (WCAG 2.2, 2.5.8; links inside a sentence are exempt), no serious axe-core violation,
no console error (the `page` fixture). The cash-book walk: a new operation typed and saved, its detail, the
actions, the opening step, and pointage with a statement imported and a line pointed (one card per line, a
« Pointer » button a thumb can hit: 44 px).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.clock import today as paris_today
from app.extensions import db
from app.models import Coop, SchoolYear, school_year_start
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check
from tests.test_pointage import DATA, load_fixture_ledger

pytestmark = pytest.mark.e2e
YEAR = school_year_start(paris_today())
PHONE = {"width": 375, "height": 667}

# Targets smaller than 24 x 24 px, except those inside a line of text, hidden ones and the skip link.
SMALL_TARGETS = """() => {
  const small = [];
  const targets = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]');
  for (const el of targets) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === 'hidden') continue;
    if (box.right <= 0 || box.bottom <= 0) continue;  // moved off-screen (a default submit button)
    if (el.closest('.visually-hidden, .visually-hidden-focusable, [hidden]')) continue;
    if (el.tagName === 'INPUT' && ['radio', 'checkbox'].includes(el.type) && el.labels.length === 0) continue;
    if (style.display === 'inline' && el.parentElement) {
      const text = el.parentElement.textContent.replace(el.textContent, '').trim();
      if (text.length > 0 && !el.parentElement.matches('li.breadcrumb-item, td, th')) continue;
    }
    if (box.width < 24 || box.height < 24) {
      small.push(`${el.tagName.toLowerCase()} « ${(el.innerText || el.name || el.id).trim().slice(0, 40)} » `
                 + `${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}"""


def check_phone_page(page) -> None:
    """The page fits 375 px, its tap targets are large enough, axe-core finds nothing serious."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} scrolls sideways: {width[0]} px for a {width[1]} px screen"
    small = page.evaluate(SMALL_TARGETS)
    assert small == [], f"{page.url}: tap targets under 24 x 24 px: {small}"
    axe_check(page)


@pytest.fixture
def coop_with_a_campaign(app, make_coop):
    info = make_coop(1, email="secretariat.ecole-des-tilleuls-la-roche-sur-yon@ac-nantes.example")
    with app.app_context():
        db.session.add(SchoolYear(start_year=YEAR, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25))
        db.session.commit()
        db.session.remove()
    return info


def _phone(browser, live_server, console_errors):
    context = browser.new_context(
        base_url=live_server, locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    return context, page


def test_phone_walk_through_the_coop_pages(browser, live_server, console_errors, coop_with_a_campaign):
    context, page = _phone(browser, live_server, console_errors)
    try:
        page.goto("/connexion")
        check_phone_page(page)
        page.get_by_label("Identifiant").fill("085-001")
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(re.compile(r"/$"))
        check_phone_page(page)

        # The menu folds behind its button on a phone and opens with a tap
        menu = page.get_by_role("button", name="Ouvrir le menu")
        assert menu.is_visible()
        menu.tap()
        page.get_by_role("navigation", name="Navigation principale").get_by_role(
            "link", name="Identité de la coop"
        ).wait_for()
        check_phone_page(page)
        page.get_by_role("navigation", name="Navigation principale").get_by_role(
            "link", name="Identité de la coop"
        ).tap()
        page.wait_for_url(re.compile(r"/coop/identite$"))
        check_phone_page(page)
        page.get_by_label("Téléphone").fill("02 51 12 34 56")
        page.get_by_role("button", name="Valider les modifications").tap()
        page.get_by_text("Les modifications ont été enregistrées").wait_for()
        check_phone_page(page)

        page.goto("/coop/adhesion")
        check_phone_page(page)
        page.goto("/coop/modifications")
        check_phone_page(page)
        page.goto("/mot-de-passe")
        check_phone_page(page)
        page.goto("/")
        check_phone_page(page)
    finally:
        context.close()


def _login(page, login: str) -> None:
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").tap()
    page.wait_for_url(re.compile(r"/$"))


def test_phone_walk_through_the_cash_book(browser, live_server, console_errors, make_coop, db_check):
    """2025-2026 on a phone: a new operation, its detail, the actions, the opening step, pointage."""
    coop = make_coop(42, iban="FR7610278360010002048500175")  # the account of the sample statements

    def fixture(s):
        ids = load_fixture_ledger(s, s.get(Coop, coop.id))
        s.commit()
        return ids

    ids = db_check(fixture)
    context, page = _phone(browser, live_server, console_errors)
    try:
        _login(page, coop.login)
        page.goto("/coop/cahier/2025/nouvelle")
        page.wait_for_url(re.compile(r"/nouvelle\?jeton=[0-9a-f]{32}$"))
        check_phone_page(page)
        submit = page.get_by_role("button", name="Valider et calculer cette opération comptable")
        assert submit.bounding_box()["width"] > 300  # full width, its label on the screen
        page.get_by_label("1. N° de pièce justificative").fill("D20")
        page.get_by_label("2. Date").fill("2025-10-02")
        page.get_by_label("3. Libellé").fill("Albums pour la BCD")
        page.get_by_label("4. Mode de paiement").select_option("carte")
        page.get_by_label("ou nouvelle action").fill("Bibliothèque")
        page.get_by_label("Dépense", exact=True).check()
        page.get_by_label("Montant par la banque (€)").fill("42,50")
        page.get_by_label("Compte de la ligne 1", exact=True).select_option("6068")
        page.get_by_label("Montant de la ligne 1", exact=True).fill("42,50")
        # box 7 shows the chosen account's code and name, on the screen
        chosen = page.locator("#splits .split-row").first.locator(".split-name")
        expect(chosen).to_contain_text("6068")
        expect(chosen).to_contain_text("Fournitures pour activités")
        assert chosen.bounding_box()["x"] + chosen.bounding_box()["width"] <= PHONE["width"]
        check_phone_page(page)
        submit.tap()
        page.wait_for_url(re.compile(r"/coop/cahier/2025#op-\d+$"))
        entry_id = re.search(r"#op-(\d+)$", page.url).group(1)

        page.goto(f"/coop/cahier/operation/{entry_id}")
        expect(page.get_by_role("heading", name="Pièce D20 — Albums pour la BCD")).to_be_visible()
        check_phone_page(page)
        page.goto("/coop/actions?annee=2025")
        expect(page.get_by_label("Nouveau nom de Bibliothèque")).to_be_visible()
        assert page.get_by_label("Nouveau nom de Bibliothèque").bounding_box()["width"] > 150
        check_phone_page(page)
        page.goto("/coop/cahier/2025/report")
        check_phone_page(page)

        page.goto("/coop/pointage/2025")
        check_phone_page(page)
        page.get_by_label("Relevé téléchargé de votre banque (OFX, CSV, CAMT.053 ou QIF)").set_input_files(
            DATA / "releve_2025-09_credit_mutuel.ofx"
        )
        page.get_by_role("button", name="Importer le relevé").tap()
        page.wait_for_url(re.compile(r"/coop/pointage/2025#correspondances$"))
        check_phone_page(page)
        row = page.locator(f"#ligne-{ids['L06']}")
        button = row.get_by_role("button", name="Pointer L06", exact=True)
        box = button.bounding_box()
        assert box["height"] >= 44 and box["x"] + box["width"] <= PHONE["width"]
        for text in ("L06", "€"):
            assert text in row.inner_text()
        button.tap()
        expect(row.get_by_role("button", name="Dépointer L06")).to_be_visible()
        expect(row.locator(".cleared")).to_have_text("30/09/2025")
        check_phone_page(page)
    finally:
        context.close()
    assert console_errors == [], f"browser console errors: {console_errors}"


def test_phone_classic_view_shows_one_card_per_operation(browser, live_server, console_errors, make_coop, db_check):
    """The classic view of 2025-2026 at 375 px: no sideways scrolling, each operation one card with its
    date, piece, label, amount and balances, and « Voir / Modifier / Supprimer » a thumb can hit."""
    coop = make_coop(43)

    def fixture(s):
        ids = load_fixture_ledger(s, s.get(Coop, coop.id))
        s.commit()
        return ids

    db_check(fixture)
    context, page = _phone(browser, live_server, console_errors)
    try:
        _login(page, coop.login)
        page.goto("/coop/cahier/2025")
        check_phone_page(page)
        card = page.locator("tbody tr", has=page.get_by_role("link", name="Voir la pièce L06"))
        box = card.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert card.evaluate("tr => getComputedStyle(tr).display") == "grid"  # a card, not a table row
        for text in ("L06", "06/09/2025", "Subvention municipale 2025", "500,00", "1\u202f824,56"):
            assert text in card.inner_text()
        # each figure shown with its caption (the cell's ::before)
        captions = card.evaluate(
            """tr => [...tr.cells].filter(c => getComputedStyle(c).display !== 'none')
                .map(c => getComputedStyle(c, '::before').content)"""
        )
        for caption in ("Date", "Libellé", "Banque entrée", "Solde banque", "Solde caisse"):
            assert f'"{caption}"' in captions, (caption, captions)
        for name in ("Voir", "Modifier", "Supprimer"):
            link = card.get_by_role("link", name=f"{name} la pièce L06")
            link_box = link.bounding_box()
            assert link_box["height"] >= 24 and link_box["width"] >= 24
            assert link_box["x"] + link_box["width"] <= PHONE["width"]
        page.goto("/coop/cahier/2025?mois=2025-09")
        check_phone_page(page)
    finally:
        context.close()
    assert console_errors == [], f"browser console errors: {console_errors}"


def test_desktop_classic_view_scrolls_the_table_not_the_page(page, make_coop, db_check):
    """At 1366 px the wide table scrolls inside its box; the page itself does not scroll sideways."""
    coop = make_coop(44)

    def fixture(s):
        load_fixture_ledger(s, s.get(Coop, coop.id))
        s.commit()

    db_check(fixture)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(coop.login)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/coop/cahier/2025")
    axe_check(page)
    assert page.evaluate("() => getComputedStyle(document.querySelector('tbody tr')).display") == "table-row"
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px for {width[1]} px"
    actions = page.get_by_role("link", name="Modifier la pièce L06").bounding_box()
    assert actions["height"] >= 24 and actions["width"] >= 24
