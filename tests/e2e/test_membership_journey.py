"""A demo coop renews its membership: last year's table prefilled, a class edited, one added and one
removed with the live fee following, the engagement of the mandataire, then the identity step.
Also without JavaScript, and on a phone.
"""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from app import clock
from app.demo import load_demo, load_demo_memberships
from app.extensions import db
from app.models import Coop, Membership, OutboxEmail, SchoolYear, User, school_year_start
from app.passwords import hash_password
from tests.conftest import DEFAULT_MOMENT, FAST_ARGON2, PASSWORD
from tests.e2e.conftest import axe_check, axe_on_every_page
from tests.helpers import browser_log_in

pytestmark = pytest.mark.e2e
TODAY = DEFAULT_MOMENT.date()  # the clock is pinned (autouse fixture below)
CURRENT = school_year_start(TODAY)
LABEL = f"{CURRENT}-{CURRENT + 1}"


@pytest.fixture(autouse=True)
def _pinned_clock(clock):
    """Every test of this module runs on 15 September 2025 (DEFAULT_MOMENT), whatever the real date."""


@pytest.fixture
def demo(app):
    """The demo data, with the current and last school years whatever today's date, and 085-001's
    password already chosen."""
    with app.app_context():
        load_demo(db.session, today=clock.today(), hash_params=FAST_ARGON2)
        existing = set(db.session.scalars(sa.select(SchoolYear.start_year)))
        for start in (CURRENT - 1, CURRENT):
            if start not in existing:
                db.session.add(
                    SchoolYear(
                        start_year=start,
                        pupil_fee_cents=205,
                        adult_fee_cents=205,
                        insurance_fee_cents=25,
                        property_threshold_cents=200_000,
                        property_rate_ppm=6880,
                    )
                )
        db.session.flush()
        load_demo_memberships(db.session, TODAY)
        for user in db.session.scalars(sa.select(User).where(User.login.in_(["085-001", "085-004"]))):
            user.password_hash = hash_password(PASSWORD, FAST_ARGON2)
            user.must_change_password = False
        db.session.commit()
        db.session.remove()


def _total(page) -> str:
    return page.locator('[data-fee="total"]').inner_text().replace("\u202f", " ").replace("\u00a0", " ")


def test_renewal_from_the_prefilled_table_to_the_identity_step(page, demo, db_check):
    started = time.monotonic()
    axe_on_every_page(page)
    browser_log_in(page, "085-001")
    card = page.get_by_role("region", name=f"2. Adhésion {LABEL}")
    assert card.get_by_text("Vérifiez les effectifs de l'an dernier").is_visible()
    card.get_by_role("link", name=re.compile("Renouveler l'adhésion")).click()

    page.wait_for_url(re.compile(r"/coop/adhesion$"))
    assert page.get_by_role("heading", name=f"Adhésion {LABEL}", exact=True).is_visible()
    # Last year's table as the portal kept it: CP 23, CE1-CE2 25, CM1-CM2 27 (2 teachers), 3 500 € of goods.
    assert page.get_by_label("Nom de la classe, classe 1").input_value() == "CP"
    assert page.get_by_label("Élèves, classe 1").input_value() == "23"
    assert page.get_by_label("Nom de la classe, classe 3").input_value() == "CM1-CM2"
    assert page.get_by_label("Enseignants, classe 3").input_value() == "2"
    # 75 pupils + 4 teachers = 79 x (2,05 + 0,25) = 181,70, plus (3 500 - 2 000) x 0,00688 = 10,32
    assert _total(page) == "192,02 €"

    page.get_by_label("Élèves, classe 1").fill("25")  # edit a class
    assert _total(page) == "196,62 €"

    page.get_by_role("button", name="Ajouter une classe").click()  # add one, without reloading
    assert page.url.endswith("/coop/adhesion")
    name = page.get_by_label("Nom de la classe, classe 4")
    assert name.evaluate("node => node === document.activeElement")
    name.fill("ULIS école")
    page.get_by_label("Niveau, classe 4").fill("ULIS")
    page.get_by_label("Élèves, classe 4").fill("10")
    page.get_by_label("Enseignants, classe 4").fill("1")
    assert _total(page) == "221,92 €"  # 92 coopérateurs x 2,30 + 10,32

    page.get_by_role("button", name="Supprimer la classe 2").click()  # CE1-CE2 closed this year
    assert page.get_by_label("Nom de la classe, classe 2").input_value() == "CM1-CM2"
    assert _total(page) == "162,12 €"  # 66 x 2,30 + 10,32
    assert page.get_by_text("Classe supprimée.").count() == 1
    axe_check(page)  # the table changed by the script

    page.get_by_label("AESH").fill("1")
    assert _total(page) == "164,42 €"  # 67 x 2,30 + 10,32

    page.get_by_label("Oui").check()
    page.get_by_role("button", name="Mettre à jour ces informations").last.click()
    page.wait_for_url(re.compile(r"/coop/adhesion/engagement$"))
    assert page.get_by_text("Vos informations sont mises à jour").is_visible()
    assert page.get_by_text("définitive").is_visible()
    assert "164,42" in page.locator('[data-fee="total"]').inner_text()
    page.get_by_role("button", name="Je m'engage à être mandataire").click()

    page.wait_for_url(re.compile(r"/coop/identite$"))
    assert page.get_by_text(f"Votre adhésion {LABEL} est enregistrée").is_visible()
    assert page.get_by_role("heading", name="Identité de la coop 085-001").is_visible()
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"the renewal took {elapsed:.0f} s"

    def check(session):
        membership = session.scalar(
            sa.select(Membership).join(Coop).join(SchoolYear).where(Coop.number == 1, SchoolYear.start_year == CURRENT)
        )
        return (
            membership.status,
            membership.total_cents,
            membership.payment_method,
            [(c.name, c.level, c.pupils, c.teachers) for c in membership.classes],
            membership.mandataire_name,
        )

    assert db_check(check) == (
        "committed",
        16442,
        "debit",
        [("CP", "CP", 25, 1), ("CM1-CM2", "CM1-CM2", 27, 2), ("ULIS école", "ULIS", 10, 1)],
        "Mme Claire Moreau",
    )
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 1

    page.get_by_role("link", name="Accueil").first.click()
    card = page.get_by_role("region", name=f"2. Adhésion {LABEL}")
    assert card.get_by_text("164,42 € sera prélevé par l'OCCE 85").is_visible()
    axe_check(page)


def test_rows_without_javascript(browser, live_server, demo, db_check):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    page = context.new_page()
    browser_log_in(page, "085-004")
    page.goto("/coop/adhesion")
    assert page.get_by_text("ne permet pas le prélèvement").is_visible()  # La Banque Postale: cheque path
    page.get_by_role("button", name="Ajouter une classe").click()
    page.get_by_label("Nom de la classe, classe 4").fill("TPS")
    page.get_by_label("Élèves, classe 4").fill("8")
    page.get_by_label("Enseignants, classe 4").fill("1")
    page.get_by_role("button", name="Supprimer la classe 1").click()
    assert page.get_by_label("Nom de la classe, classe 3").input_value() == "TPS"
    # Enter in a field saves (it does not press « Supprimer »).
    page.get_by_label("Élèves, classe 3").press("Enter")
    assert page.get_by_text("Vos informations sont enregistrées").is_visible()
    names = db_check(
        lambda s: [
            c.name
            for c in s.scalar(
                sa.select(Membership)
                .join(Coop)
                .join(SchoolYear)
                .where(Coop.number == 4, SchoolYear.start_year == CURRENT)
            ).classes
        ]
    )
    assert names == ["Moyenne section", "Grande section", "TPS"]
    context.close()


def test_step_on_a_phone(browser, live_server, demo):
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    axe_on_every_page(page)
    browser_log_in(page, "085-001")
    page.goto("/coop/adhesion")
    assert page.get_by_label("Élèves, classe 1").is_visible()
    assert page.locator("label[for='classes-0-pupils']").is_visible()  # labels shown when rows are stacked
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"horizontal scroll on a phone: {width}px"
    # Keyboard: Tab from the class name reaches the level, then the counts.
    page.get_by_label("Nom de la classe, classe 1").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "classes-0-level"
    assert errors == []
    context.close()
