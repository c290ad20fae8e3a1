"""A mandataire on a phone (375 x 667) in Chromium: menu, home, identity, membership, history and password
change. Every page fits the screen (no sideways scrolling of the page), every tap target stands alone at
24 x 24 px or more (WCAG 2.2, 2.5.8; links inside a sentence are exempt), no serious axe-core violation,
no console error (the `page` fixture). The other areas' pages join this walk once they fit (see issue 15).
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from app.extensions import db
from app.models import SchoolYear, school_year_start
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check

pytestmark = pytest.mark.e2e
YEAR = school_year_start(date.today())
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


def test_phone_walk_through_the_coop_pages(browser, live_server, console_errors, coop_with_a_campaign):
    context = browser.new_context(
        base_url=live_server, locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
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
