"""A whole year of coop 085-001 on a phone (375 x 667, touch), from the first login to the reports sent.

September 2024: the first login forces a new password; the identity, the membership (classes, engagement,
then the attestation and the insurance certificate once the OCCE 85 has the cheque); the cash-book opened
with its balances, a receipt of a cheque deposit, a cheque expense for a new action, a cash expense; the
classic view; the pointage of the bank statement of 13 September by hand. September 2025: the closing
(cash count, statement balance), the CRA, the CRF, the quitus, the signed quitus and the statement
uploaded, the reports sent.

Every page reached fails the test if it scrolls sideways (wider than the screen), if axe-core finds a
serious or critical violation, or if the browser console shows an error.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app import membership as memberships
from app.models import AnnualReport, Ledger, Membership, SchoolYear
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check

pytestmark = pytest.mark.e2e
PHONE = {"width": 375, "height": 667}
SEPTEMBER_2024 = datetime(2024, 9, 16, 8, 30)
SEPTEMBER_2025 = datetime(2025, 9, 15, 8, 30)
NEW_PASSWORD = "les goélands de la plage des Dunes"
SUBMIT_ENTRY = "Valider et calculer cette opération comptable"


class Phone:
    """The phone's page, and the check every page it reaches must pass."""

    def __init__(self, page, errors: list[str]):
        self.page = page
        self.errors = errors

    def check(self) -> None:
        """No sideways scrolling, no serious axe-core violation, no console error on the page as it stands."""
        page = self.page
        page.wait_for_load_state()
        width, screen = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        assert width <= screen, f"{page.url} scrolls sideways: {width} px for a {screen} px screen"
        axe_check(page)
        assert self.errors == [], f"{page.url}: browser console errors: {self.errors}"

    def go(self, path: str) -> None:
        self.page.goto(path)
        self.check()

    def arrive(self, pattern: str, check: bool = True) -> None:
        """Wait for the page at this address; check it (unless another state of the same page is checked)."""
        self.page.wait_for_url(re.compile(pattern))
        if check:
            self.check()


@pytest.fixture
def phone(browser, live_server, console_errors):
    context = browser.new_context(
        base_url=live_server, locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.emulate_media(reduced_motion="reduce")  # no colour measured halfway through a transition
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    yield Phone(page, console_errors)
    context.close()
    assert console_errors == [], f"browser console errors: {console_errors}"


@pytest.fixture
def first_year(app, make_coop, clock, db_check):
    """Coop 085-001 with a temporary password, the 2024-2025 rates published, the clock on 16 September 2024."""
    clock(SEPTEMBER_2024)
    info = make_coop(1, must_change_password=True)
    db_check(
        lambda s: (
            s.add(SchoolYear(start_year=2024, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25)),
            s.commit(),
        )
    )
    return info


def _plain(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


@cache
def _pdf() -> bytes:
    from app.pdf import render_pdf

    return render_pdf("<h1>Document signé</h1><p>Paul Martin, Léa Petit</p>", Path(__file__).parent)


def _menu_link(phone: Phone, name: str):
    """The main menu folds behind its button on a phone: open it, return one of its links."""
    page = phone.page
    page.get_by_role("button", name="Ouvrir le menu").tap()
    link = page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name=name)
    link.wait_for()
    phone.check()
    return link


def _log_in(phone: Phone, password: str) -> None:
    phone.go("/connexion")
    phone.page.get_by_label("Identifiant").fill("085-001")
    phone.page.get_by_label("Mot de passe").fill(password)
    phone.page.get_by_role("button", name="Se connecter").tap()


def _first_login(phone: Phone) -> None:
    page = phone.page
    _log_in(phone, PASSWORD)
    phone.arrive(r"/mot-de-passe$")
    expect(page.get_by_role("heading", name="Choisissez votre mot de passe")).to_be_visible()
    page.get_by_label("Mot de passe actuel (ou provisoire)").fill(PASSWORD)
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmez le nouveau mot de passe").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Enregistrer le nouveau mot de passe").tap()
    phone.arrive(r"/$")
    expect(page.get_by_text("Votre mot de passe a été modifié")).to_be_visible()


def _identity(phone: Phone) -> None:
    page = phone.page
    _menu_link(phone, "Identité de la coop").tap()
    phone.arrive(r"/coop/identite$")
    page.get_by_label("Téléphone de l'école").fill("02 51 12 34 56")
    page.get_by_role("button", name="Valider les modifications").tap()
    expect(page.get_by_text("Les modifications ont été enregistrées")).to_be_visible()
    phone.check()


def _membership(phone: Phone, db_check) -> None:
    page = phone.page
    phone.go("/coop/adhesion")
    page.get_by_label("Nom de la classe, classe 1").fill("CP-CE1")
    page.get_by_label("Niveau, classe 1").fill("CP")
    page.get_by_label("Élèves, classe 1").fill("24")
    page.get_by_label("Enseignants, classe 1").fill("1")
    page.get_by_role("button", name="Ajouter une classe").tap()
    page.get_by_label("Nom de la classe, classe 2").fill("CE2-CM1-CM2")
    page.get_by_label("Niveau, classe 2").fill("CM1")
    page.get_by_label("Élèves, classe 2").fill("22")
    page.get_by_label("Enseignants, classe 2").fill("1")
    assert _plain(page.locator('[data-fee="total"]').inner_text()) == "110,40 €"  # 48 x (2,05 + 0,25)
    phone.check()
    page.get_by_label("Oui").check()
    page.get_by_role("button", name="Mettre à jour ces informations").last.tap()
    phone.arrive(r"/coop/adhesion/engagement$")
    page.get_by_role("button", name="Je m'engage à être mandataire").tap()
    phone.arrive(r"/coop/identite$")
    expect(page.get_by_text("Votre adhésion 2024-2025 est enregistrée")).to_be_visible()

    def cheque_received(session):  # the OCCE 85 records the coop's cheque in its back office
        membership = session.scalar(sa.select(Membership))
        memberships.record_cheque(session, membership, by=None, now=SEPTEMBER_2024)
        session.commit()

    db_check(cheque_received)
    phone.go("/coop/adhesion")
    for name in ("Attestation d'adhésion", "Certificat d'assurance"):
        with page.expect_download() as download:
            page.get_by_role("link", name=name).tap()
        assert download.value.suggested_filename.endswith(".pdf")


def _new_entry(phone: Phone, piece: str) -> None:
    """From the classic view, the form of a new operation (checked once filled in)."""
    phone.page.get_by_role("link", name="Nouvelle opération").first.tap()
    phone.arrive(r"/nouvelle\?jeton=[0-9a-f]{32}$", check=False)
    assert phone.page.get_by_label("1. N° de pièce justificative").input_value() == piece


def _record(phone: Phone, piece: str, check: bool = False) -> None:
    phone.page.get_by_role("button", name=SUBMIT_ENTRY).tap()
    phone.arrive(r"/coop/cahier/2024#op-\d+$", check)
    expect(phone.page.get_by_text(f"Opération {piece} enregistrée.")).to_be_visible()


def _split(page, account: str, amount: str) -> None:
    page.get_by_label("Compte de la ligne 1", exact=True).select_option(account)
    page.get_by_label("Montant de la ligne 1", exact=True).fill(amount)


def _cash_book(phone: Phone) -> None:
    page = phone.page
    phone.go("/coop/cahier/2024/report")
    page.get_by_label("Solde de la banque au 1er septembre (€)").fill("500,00")
    page.get_by_label("Espèces en caisse au 1er septembre (€)").fill("20,00")
    page.get_by_role("button", name="Enregistrer le report à nouveau").tap()
    phone.arrive(r"/coop/cahier/2024$")

    _new_entry(phone, "1")  # the families' cheques, paid in with a deposit slip
    page.get_by_label("2. Date").fill("2024-09-05")
    page.get_by_label("3. Libellé").fill("Cotisations des familles")
    page.get_by_label("4. Mode de paiement").select_option("remise")
    page.get_by_label("Recette", exact=True).check()
    page.get_by_label("Montant par la banque (€)").fill("120,00")
    _split(page, "756", "120,00")
    _record(phone, "1")

    _new_entry(phone, "2")  # books for the library, paid by cheque, for a new action
    page.get_by_label("2. Date").fill("2024-09-09")
    page.get_by_label("3. Libellé").fill("Albums pour la BCD")
    page.get_by_label("4. Mode de paiement").select_option("cheque")
    page.get_by_label("N° du chèque émis").fill("1234567")
    page.get_by_label("ou nouvelle action").fill("Bibliothèque")
    page.get_by_label("Dépense", exact=True).check()
    page.get_by_label("Montant par la banque (€)").fill("45,60")
    _split(page, "6068", "45,60")
    phone.check()  # the form filled in, the cheque number and the new action shown
    _record(phone, "2")

    _new_entry(phone, "3")  # the snack of the first day, paid from the cash box
    page.get_by_label("2. Date").fill("2024-09-12")
    page.get_by_label("3. Libellé").fill("Goûter de rentrée")
    page.get_by_label("4. Mode de paiement").select_option("especes")
    page.get_by_label("Dépense", exact=True).check()
    page.get_by_label("Montant en espèces, caisse (€)").fill("10,00")
    _split(page, "6068", "10,00")
    _record(phone, "3", check=True)

    # The classic view: 500 + 120 - 45,60 in the bank, 20 - 10 in the cash box
    balances = _plain(page.get_by_role("region", name="Soldes").inner_text())
    assert "574,40 €" in balances and "10,00 €" in balances, balances


def _pointage(phone: Phone) -> None:
    """The statement of 13 September shows the deposit, not yet the cheque: 500 + 120 = 620,00."""
    page = phone.page
    phone.go("/coop/pointage/2024")
    page.get_by_label("Date du relevé").fill("2024-09-13")
    page.get_by_label("Solde du relevé à cette date (€)").fill("620,00")
    with page.expect_navigation():  # back to the same address, with the difference computed
        page.get_by_role("button", name="Calculer l'écart").tap()
    phone.check()
    page.get_by_role("button", name="Pointer 1", exact=True).tap()
    expect(page.get_by_role("button", name="Dépointer 1", exact=True)).to_be_visible()
    expect(page.locator("#reconciled-note")).to_be_visible()
    phone.check()


def _log_out(phone: Phone) -> None:
    phone.go("/")
    page = phone.page
    page.get_by_role("button", name="Ouvrir le menu").tap()
    page.get_by_role("button", name="Se déconnecter").tap()
    phone.arrive(r"/connexion$")


def _closing(phone: Phone) -> None:
    page = phone.page
    card = page.get_by_role("region", name=re.compile(r"Clôture du cahier 2024-2025"))
    card.get_by_role("link", name=re.compile("Clôturer le cahier")).tap()
    phone.arrive(r"/coop/cloture/2024$")
    page.get_by_label("Nombre de billets de 10 €").fill("1")
    page.get_by_role("button", name="Enregistrer l'arrêté de caisse").tap()
    expect(page.get_by_text("Arrêté de caisse enregistré : 10,00")).to_be_visible()
    phone.check()
    expect(page.get_by_role("cell", name="Albums pour la BCD")).to_be_visible()  # the cheque not yet cashed
    page.get_by_label("Solde du relevé bancaire au 31 août (en euros)").fill("620,00")
    page.get_by_role("button", name="Enregistrer le solde du relevé").tap()
    expect(page.get_by_text("Le rapprochement bancaire tombe juste.")).to_be_visible()
    phone.check()
    page.get_by_label("Pour confirmer, tapez le numéro de votre coopérative").fill("085-001")
    page.get_by_role("button", name="Clôture définitive de ce cahier de compta").tap()


def _reports(phone: Phone) -> None:
    page = phone.page
    phone.arrive(r"/coop/compte-rendu/2024/activites$")
    expect(page.get_by_text("Le cahier 2024-2025 est clôturé.")).to_be_visible()
    assert page.get_by_label("Action 1", exact=True).input_value() == "Bibliothèque"
    if not page.get_by_label("Nom de la classe, classe 1").input_value():
        page.get_by_label("Nom de la classe, classe 1").fill("CP-CE1")
        page.get_by_label("Élèves, classe 1").fill("24")
    page.get_by_label("Ce qui a été fait, action 1").fill("Des albums pour la bibliothèque de l'école")
    page.get_by_label("Nombre de conseils de coopérative tenus dans l'année").fill("5")
    page.get_by_label("Non").check()
    page.get_by_role("button", name="Valider les modifications").last.tap()
    expect(page.get_by_text("Compte rendu d'activités enregistré.")).to_be_visible()
    phone.check()
    page.get_by_role("button", name="Passer à la suite").tap()

    phone.arrive(r"/coop/compte-rendu/2024/financier$")
    text = _plain(page.locator("main").inner_text())
    assert "Total des charges 55,60 €" in text and "Total des produits 120,00 €" in text, text
    page.get_by_role("link", name="Passer à la suite : le quitus").tap()

    phone.arrive(r"/coop/compte-rendu/2024/quitus$")
    page.get_by_label("Nom du vérificateur 1").fill("Paul Martin")
    page.get_by_label("Qualité du vérificateur 1").select_option("parent")
    page.get_by_label("Nom du vérificateur 2").fill("Léa Petit")
    page.get_by_label("Qualité du vérificateur 2").select_option("teacher")
    page.get_by_role("button", name="Valider les modifications").last.tap()
    expect(page.get_by_text("Vérificateurs enregistrés.")).to_be_visible()
    phone.check()
    page.get_by_role("link", name="Passer à la suite : les justificatifs").tap()

    phone.arrive(r"/coop/compte-rendu/2024/justificatifs$")
    for label, name in (("Quitus signé", "quitus-signe.pdf"), ("Relevé bancaire au 31/08/2025", "releve-aout.pdf")):
        page.get_by_label(f"Fichier : {label}").set_input_files(
            {"name": name, "mimeType": "application/pdf", "buffer": _pdf()}
        )
        page.get_by_role("button", name=f"Envoyer ce fichier : {label}").tap()
        expect(page.get_by_text(f"{label} : fichier déposé")).to_be_visible()
        phone.check()
    page.get_by_role("link", name="Passer à la suite : l'envoi").tap()

    phone.arrive(r"/coop/compte-rendu/2024/envoi$")
    expect(page.get_by_text("Tout est prêt.")).to_be_visible()
    page.get_by_role("button", name="Envoyer mon compte rendu").tap()
    expect(page.get_by_text("Compte rendu 2024-2025 envoyé à l'OCCE 85.")).to_be_visible()
    phone.check()


def test_a_whole_year_on_a_phone(phone, first_year, clock, db_check):
    _first_login(phone)
    _identity(phone)
    _membership(phone, db_check)
    _cash_book(phone)
    _pointage(phone)
    _log_out(phone)

    clock(SEPTEMBER_2025)  # a year later: the 2024-2025 cash-book can be closed
    _log_in(phone, NEW_PASSWORD)
    phone.arrive(r"/$")
    _closing(phone)
    _reports(phone)
    phone.go("/")

    def state(session):
        ledger = session.scalar(sa.select(Ledger))
        return session.scalar(sa.select(AnnualReport.status)), ledger.status, ledger.closing_statement_balance_cents

    assert db_check(state) == ("submitted", "closed", 62000)
