"""A teacher keeps the cash-book in Chromium: opening balances, a split receipt, a cheque expense
with a new action, a cash deposit, a refund received net of a contra line; the classic view's
balances; Back, refresh and double clicks never record an operation twice; the "reste à ventiler"
indicator follows what is typed."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.clock import today as paris_today
from app.models import Action, Entry, school_year_start
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check, axe_on_every_page

pytestmark = pytest.mark.e2e
YEAR = school_year_start(paris_today())
SUBMIT = "Valider et calculer cette opération comptable"


def _login(page, login: str) -> None:
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))


def _entries(db_check) -> list[tuple[str, str]]:
    return db_check(lambda s: [(e.piece, e.label) for e in s.scalars(sa.select(Entry).order_by(Entry.id))])


def _rest(page) -> str:
    """The live indicator, spaces normalised (the script writes narrow and no-break spaces)."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", page.locator("#rest").inner_text()).strip()


def _new_entry(page) -> None:
    page.goto(f"/coop/cahier/{YEAR}")
    page.get_by_role("link", name="Nouvelle opération").first.click()
    page.wait_for_url(re.compile(r"/nouvelle\?jeton=[0-9a-f]{32}$"))
    assert page.get_by_role("heading", name="Création d'une nouvelle opération comptable").is_visible()


def _split(page, line: int, account: str, amount: str) -> None:
    page.get_by_label(f"Compte de la ligne {line}", exact=True).select_option(account)
    page.get_by_label(f"Montant de la ligne {line}", exact=True).fill(amount)


def _balances(page) -> tuple[str, str]:
    cards = page.get_by_role("region", name="Soldes")
    text = re.sub(r"[\u00a0\u202f]", " ", cards.inner_text())
    bank = re.search(r"Banque\s+(-?[\d ]+,\d\d) €", text).group(1)
    cash = re.search(r"Caisse\s+(-?[\d ]+,\d\d) €", text).group(1)
    return bank, cash


def test_cash_book_journey(page, make_coop, db_check):
    make_coop(1)
    axe_on_every_page(page)
    _login(page, "085-001")
    page.goto("/coop/cahier")
    assert page.get_by_text("Aucune opération n'est encore enregistrée").is_visible()

    # Opening balances: the « Report à nouveau » step
    page.get_by_role("link", name="report à nouveau", exact=True).click()  # the hint of an empty cahier
    page.get_by_label("Solde de la banque au 1er septembre (€)").fill("500,00")
    page.get_by_label("Espèces en caisse au 1er septembre (€)").fill("20,00")
    page.get_by_role("button", name="Enregistrer le report à nouveau").click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}$"))
    assert page.get_by_text("Report à nouveau enregistré.").is_visible()
    assert _balances(page) == ("500,00", "20,00")

    # 1. A receipt split over bank and cash, and over two income accounts; the indicator follows the typing
    _new_entry(page)
    assert page.get_by_label("1. N° de pièce justificative").input_value() == "1"
    page.get_by_label("Recette", exact=True).check()
    assert page.locator("#rest").is_hidden()  # nothing typed yet: no indicator to read
    page.get_by_label("3. Libellé").fill("Cotisations des familles et vente de gâteaux")
    page.get_by_label("4. Mode de paiement").select_option("remise")
    assert page.get_by_label("N° du chèque émis").is_hidden()  # only for a cheque the coop writes
    page.get_by_label("Montant par la banque (€)").fill("120,00")
    assert _rest(page) == "Reste à ventiler : 120,00 €"
    page.get_by_label("Montant en espèces, caisse (€)").fill("30,00")
    assert _rest(page) == "Reste à ventiler : 150,00 €"
    _split(page, 1, "756", "100,00")
    assert _rest(page) == "Reste à ventiler : 50,00 €"
    assert "text-danger" in page.locator("#rest").get_attribute("class")
    _split(page, 2, "708", "60,00")
    assert _rest(page) == "Reste à ventiler : -10,00 €"
    page.get_by_label("Montant de la ligne 2", exact=True).fill("50,00")
    assert _rest(page) == "Reste à ventiler : 0,00 €"
    assert "text-success" in page.locator("#rest").get_attribute("class")
    page.get_by_role("button", name=SUBMIT).click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert page.get_by_text("Opération 1 enregistrée.").is_visible()
    assert _balances(page) == ("620,00", "50,00")

    # 2. A cheque expense with a new action; the server re-checks the split
    _new_entry(page)
    assert page.get_by_label("1. N° de pièce justificative").input_value() == "2"
    page.get_by_label("Dépense", exact=True).check()
    page.get_by_label("3. Libellé").fill("Acompte car classe de mer")
    page.get_by_label("4. Mode de paiement").select_option("cheque")
    cheque = page.get_by_label("N° du chèque émis")
    assert cheque.is_visible()
    cheque.fill("1234567")
    page.get_by_label("ou nouvelle action").fill("Classe de mer")
    page.get_by_label("Montant par la banque (€)").fill("45,60")
    _split(page, 1, "6251", "40,00")
    assert _rest(page) == "Reste à ventiler : 5,60 €"
    page.get_by_role("button", name=SUBMIT).click()
    alert = page.get_by_role("alert").filter(has_text="L'opération n'est pas enregistrée")
    assert alert.is_visible()
    assert "reste à ventiler 5,60" in re.sub(r"[\u00a0\u202f]", " ", alert.inner_text())
    axe_check(page)  # the form shown again with its error
    assert _entries(db_check) == [("RAN", "Report à nouveau"), ("1", "Cotisations des familles et vente de gâteaux")]
    # the typed values are kept: fix the amount and validate
    assert page.get_by_label("3. Libellé").input_value() == "Acompte car classe de mer"
    page.get_by_label("Montant de la ligne 1", exact=True).fill("45,60")
    assert _rest(page) == "Reste à ventiler : 0,00 €"
    page.get_by_role("button", name=SUBMIT).click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert page.get_by_text("Opération 2 enregistrée.").is_visible()
    row = page.locator("tr", has_text="Acompte car classe de mer")
    assert "Chèque (1234567)" in row.inner_text() and "Classe de mer" in row.inner_text()

    # 3. A cash deposit at the bank: no split
    _new_entry(page)
    page.get_by_label("Dépôt d'espèces à la banque (caisse → banque)").check()
    assert page.locator("#case7").is_hidden() and page.get_by_label("4. Mode de paiement").is_hidden()
    page.get_by_label("3. Libellé").fill("Dépôt des espèces de la vente de gâteaux")
    page.get_by_label("Montant par la banque (€)").fill("30,00")
    page.get_by_label("Montant par la banque (€)").press("Enter")  # Enter validates (it does not add a line)
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert page.get_by_text("Opération 3 enregistrée.").is_visible()

    # The classic view: 500 + 120 - 45,60 + 30 in the bank, 20 + 30 - 30 in the cash box
    assert _balances(page) == ("604,40", "20,00")
    totals = re.sub(r"[\u00a0\u202f]", " ", page.locator("tfoot").inner_text())
    assert "604,40" in totals and "650,00" in totals and "45,60" in totals
    assert len(_entries(db_check)) == 4
    assert db_check(lambda s: s.scalars(sa.select(Action.name)).all()) == ["Classe de mer"]

    # Back: the form page is fetched again (no-store) and knows its token was used; a reload neither
    assert len(_entries(db_check)) == 4
    page.go_back()
    page.wait_for_url(re.compile(r"/nouvelle\?jeton=[0-9a-f]{32}$"))
    assert page.get_by_role("heading", name="Cette opération est déjà enregistrée").is_visible()
    assert page.get_by_text("Rien n'a été ajouté en double.").is_visible()
    assert page.get_by_role("button", name=SUBMIT).count() == 0
    axe_check(page)
    page.reload()
    assert page.get_by_role("heading", name="Cette opération est déjà enregistrée").is_visible()
    deposits = [e for e in _entries(db_check) if e[1] == "Dépôt des espèces de la vente de gâteaux"]
    assert len(deposits) == 1 and len(_entries(db_check)) == 4

    # The same form sent twice (a second tab left open on it): the second sending adds nothing
    _new_entry(page)
    other_tab = page.context.new_page()
    other_tab.goto(page.url)
    for tab in (page, other_tab):
        tab.get_by_label("3. Libellé").fill("Photocopies")
        tab.get_by_label("4. Mode de paiement").select_option("especes")
        tab.get_by_label("Montant en espèces, caisse (€)").fill("3,00")
        _split(tab, 1, "6068", "3,00")
    page.get_by_role("button", name=SUBMIT).click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    other_tab.get_by_role("button", name=SUBMIT).click()
    other_tab.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert other_tab.get_by_text("L'opération 4 était déjà enregistrée : rien n'a été ajouté en double.").is_visible()
    other_tab.close()
    assert [e for e in _entries(db_check) if e[1] == "Photocopies"] == [("4", "Photocopies")]

    # A refresh of the page after the POST re-sends nothing (PRG): the cahier reloads
    page.goto(f"/coop/cahier/{YEAR}")
    page.reload()
    assert len(_entries(db_check)) == 5

    # Double click on the submit button: one operation
    _new_entry(page)
    page.get_by_label("3. Libellé").fill("Timbres pour la correspondance")
    page.get_by_label("4. Mode de paiement").select_option("especes")
    page.get_by_label("Montant en espèces, caisse (€)").fill("12,00")
    _split(page, 1, "6261", "12,00")
    page.get_by_role("button", name=SUBMIT).dblclick()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    page.wait_for_load_state()
    assert [e for e in _entries(db_check) if e[1] == "Timbres pour la correspondance"] == [
        ("5", "Timbres pour la correspondance")
    ]
    assert _balances(page) == ("604,40", "5,00")

    # Last: the coach company refunds part of the deposit (a credit note) net of a late fee: the refund
    # credits the charge account, the fee is a contra line typed with a minus, the indicator is signed
    _new_entry(page)
    page.get_by_label("Remboursement reçu (avoir d'un fournisseur, trop-payé)").check()
    page.get_by_label("3. Libellé").fill("Avoir du transporteur")
    page.get_by_label("4. Mode de paiement").select_option("virement")
    page.get_by_label("Montant par la banque (€)").fill("10,00")
    _split(page, 1, "6251", "12,00")
    assert _rest(page) == "Reste à ventiler : -2,00 €"
    _split(page, 2, "6251", "-2,00")
    assert _rest(page) == "Reste à ventiler : 0,00 €"
    page.get_by_role("button", name=SUBMIT).click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert page.get_by_text("enregistrée.").first.is_visible()
    assert "-10,00" in page.locator("tr", has_text="Avoir du transporteur").inner_text()

    assert _balances(page) == ("614,40", "5,00")


def test_entry_form_without_javascript(browser, live_server, make_coop, db_check):
    """No script: every box is shown, « Ajouter une ligne » asks the server, the split is checked there."""
    make_coop(1)
    context = browser.new_context(base_url=live_server, locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    _login(page, "085-001")
    page.goto(f"/coop/cahier/{YEAR}/nouvelle")
    page.wait_for_url(re.compile(r"/nouvelle\?jeton=[0-9a-f]{32}$"))
    assert page.get_by_label("N° du chèque émis").is_visible() and page.locator("#case7").is_visible()
    page.get_by_label("Recette", exact=True).check()
    page.get_by_label("3. Libellé").fill("Kermesse")
    page.get_by_label("4. Mode de paiement").select_option("especes")
    page.get_by_label("N° du chèque émis").fill("")
    page.get_by_label("Montant en espèces, caisse (€)").fill("90,00")
    _split(page, 1, "708", "50,00")
    _split(page, 2, "7541", "20,00")
    _split(page, 3, "756", "10,00")
    page.get_by_role("button", name="Ajouter une ligne de ventilation").click()
    _split(page, 4, "77", "5,00")
    page.get_by_role("button", name=SUBMIT).click()
    assert page.locator("#case7").get_by_role("alert").get_by_text("reste à ventiler 5,00").is_visible()
    assert _entries(db_check) == []
    page.get_by_label("Montant de la ligne 4", exact=True).fill("10,00")
    page.get_by_label("Montant de la ligne 4", exact=True).press("Enter")  # Enter saves, no line is added
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert page.get_by_text("Opération 1 enregistrée.").is_visible()
    assert _entries(db_check) == [("1", "Kermesse")]
    context.close()


def test_boxes_1_to_7_in_the_guides_order(page, make_coop, db_check):
    """Box 4 before box 6: « Remise de chèques » turns the type into a receipt and shows the slip number;
    an impossible pair chosen on purpose is explained next to the box, nothing is changed behind the user."""
    make_coop(1)
    axe_on_every_page(page)
    _login(page, "085-001")
    _new_entry(page)
    mode = page.get_by_label("4. Mode de paiement")
    assert [o.strip() for o in mode.locator("option").all_inner_texts()] == [
        "Chèque",
        "Virement",
        "Espèces",
        "Carte bancaire",
        "Prélèvement",
        "Remise de chèques",
    ]
    page.get_by_label("1. N° de pièce justificative").fill("R05")
    page.get_by_label("2. Date").fill(f"{YEAR}-10-03")
    page.get_by_label("3. Libellé").fill("Photos de classe")
    mode.select_option("remise")
    assert page.get_by_label("Recette", exact=True).is_checked()
    note = page.locator('.mode-kind-note[data-box="4"]')
    assert "le type d'opération est maintenant « Recette »" in note.inner_text()
    assert page.get_by_label("N° du bordereau de remise").is_visible()
    assert page.get_by_label("N° du chèque émis").is_hidden()
    page.get_by_label("N° du bordereau de remise").fill("0004512")
    page.get_by_label("ou nouvelle action").fill("Photos")
    # Box 6 chosen on purpose against box 4: explained there, box 4 keeps what was chosen
    page.get_by_label("Dépense", exact=True).check()
    assert mode.input_value() == "remise"
    assert (
        "« Remise de chèques » ne va pas avec le type « Dépense »"
        in page.locator('.mode-kind-note[data-box="6"]').inner_text()
    )
    axe_check(page)  # both notes shown
    page.get_by_label("Recette", exact=True).check()
    assert page.locator('.mode-kind-note[data-box="6"]').inner_text() == ""
    page.get_by_label("Montant par la banque (€)").fill("240,00")
    _split(page, 1, "708", "240,00")
    assert _rest(page) == "Reste à ventiler : 0,00 €"
    page.get_by_role("button", name=SUBMIT).click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    saved = db_check(
        lambda s: [(e.piece, e.kind, e.payment_mode, e.cheque_number) for e in s.scalars(sa.select(Entry))]
    )
    assert saved == [("R05", "receipt", "remise", "0004512")]
