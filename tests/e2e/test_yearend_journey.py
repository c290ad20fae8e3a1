"""Year over, report sent, in one sitting: a teacher closes the 2024-2025 cash-book of the worked
example on 15 September 2025, fills the CRA, prints the quitus, uploads a PDF and a phone photo,
and sends the reports. Also the closing wizard on a phone."""

from __future__ import annotations

import io
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from pypdf import PdfReader

from app import cahier as cahier_format
from app import ledger as books
from app.models import AnnualReport, Coop, Document, Ledger, OutboxEmail
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check, axe_on_every_page

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).parent.parent / "data" / "exemple_2024-2025.csv"
MOMENT = datetime(2025, 9, 15, 8, 30)


@pytest.fixture
def year_over(app, make_coop, db_check, clock):
    """Coop 085-001 with the worked example 2024-2025, and the app's clock on 15 September 2025."""
    clock(MOMENT)
    info = make_coop(1)

    def load(session):
        ledger = books.open_ledger(session, session.get(Coop, info.id), 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        session.commit()

    db_check(load)
    return info


def _log_in(page) -> None:
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill("085-001")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))


def _plain(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def _pdf() -> bytes:
    from app.pdf import render_pdf

    return render_pdf("<h1>Quitus signé</h1><p>Paul Martin, Léa Petit, Claire Moreau</p>", Path(__file__).parent)


def _photo() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (3024, 4032), (245, 245, 240))
    for y in range(400, 3600, 160):
        image.paste((30, 30, 30), (300, y, 2700, y + 40))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def test_from_year_over_to_report_sent(page, year_over, db_check):
    started = time.monotonic()
    axe_on_every_page(page)
    _log_in(page)
    card = page.get_by_role("region", name=re.compile(r"Clôture du cahier 2024-2025"))
    expect(card.get_by_text("L'année 2024-2025 est terminée")).to_be_visible()
    card.get_by_role("link", name=re.compile("Clôturer le cahier")).click()

    # 1. The closing wizard: cash count, statement balance, definitive closing.
    page.wait_for_url(re.compile(r"/coop/cloture/2024$"))
    expect(page.get_by_role("heading", name="Clôture de ce cahier de compta 2024-2025")).to_be_visible()
    expect(page.locator("#verification-cash_count").get_by_text("À faire")).to_be_visible()
    page.get_by_label("Nombre de billets de 20 €").fill("2")
    page.get_by_label("Nombre de billets de 10 €").fill("1")
    assert _plain(page.locator('[data-total="count"]').inner_text()) == "50,00 €"  # live total
    page.get_by_role("button", name="Enregistrer l'arrêté de caisse").click()
    expect(page.get_by_text("Arrêté de caisse enregistré : 50,00")).to_be_visible()
    expect(page.locator("#verification-cash_count").get_by_text("OK", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="Livres BCD")).to_be_visible()  # the cheque not yet cashed
    page.get_by_label("Solde du relevé bancaire au 31 août (en euros)").fill("3 092,40")
    page.get_by_role("button", name="Enregistrer le solde du relevé").click()
    expect(page.get_by_text("Le rapprochement bancaire tombe juste.")).to_be_visible()
    expect(page.get_by_text("Attention : la clôture est définitive.")).to_be_visible()
    axe_check(page)  # cash count and statement saved: the closing form shown
    page.get_by_label("Pour confirmer, tapez le numéro de votre coopérative").fill("085-001")
    page.get_by_role("button", name="Clôture définitive de ce cahier de compta").click()

    # 2. The CRA, prefilled with the year's actions.
    page.wait_for_url(re.compile(r"/coop/compte-rendu/2024/activites$"))
    expect(page.get_by_text("Le cahier 2024-2025 est clôturé.")).to_be_visible()
    assert page.get_by_label("Action 1", exact=True).input_value() == "Classe de mer"
    page.get_by_label("Nom de la classe, classe 1").fill("CP-CE1")
    page.get_by_label("Élèves, classe 1").fill("24")
    page.get_by_label("Ce qui a été fait, action 1").fill("Trois jours à Noirmoutier")
    page.get_by_label("Nombre de conseils de coopérative tenus dans l'année").fill("6")
    page.get_by_label("Oui").check()
    page.get_by_label("Lesquelles ?").fill("Rencontres théâtre")
    page.get_by_role("button", name="Valider les modifications").last.click()
    expect(page.get_by_text("Compte rendu d'activités enregistré.")).to_be_visible()
    axe_check(page)
    page.get_by_role("button", name="Passer à la suite").click()

    # 3. The CRF, computed from the closed cash-book.
    page.wait_for_url(re.compile(r"/coop/compte-rendu/2024/financier$"))
    text = _plain(page.locator("main").inner_text())
    assert "Total des charges 4 467,60 €" in text and "Total des produits 5 610,00 €" in text
    assert "1 142,40 €" in text and "Équilibre du bilan" in text
    page.get_by_role("link", name="Passer à la suite : le quitus").click()

    # 4. The quitus: vérificateurs, then the page to print and sign.
    page.wait_for_url(re.compile(r"/coop/compte-rendu/2024/quitus$"))
    page.get_by_label("Nom du vérificateur 1").fill("Paul Martin")
    page.get_by_label("Qualité du vérificateur 1").select_option("parent")
    page.get_by_label("Nom du vérificateur 2").fill("Claire Moreau")  # the mandataire: refused
    page.get_by_label("Qualité du vérificateur 2").select_option("teacher")
    page.get_by_role("button", name="Valider les modifications").last.click()
    expect(page.get_by_text("Claire Moreau est mandataire de la coopérative").first).to_be_visible()
    axe_check(page)  # the form shown again with its error
    page.get_by_label("Nom du vérificateur 2").fill("Léa Petit")
    page.get_by_role("button", name="Valider les modifications").last.click()
    expect(page.get_by_text("Vérificateurs enregistrés.")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Imprimer cette page Quitus").click()
    reader = PdfReader(download.value.path())
    quitus = _plain(" ".join(p.extract_text() for p in reader.pages))
    assert "Quitus 2024-2025" in quitus and "Paul Martin" in quitus and "Léa Petit" in quitus
    assert "1 142,40" in quitus and "Date et signature" in quitus
    page.get_by_role("link", name="Passer à la suite : les justificatifs").click()

    # 5. Supporting documents: the signed quitus (PDF), the statement (a phone photo), the subsidy letter.
    page.wait_for_url(re.compile(r"/coop/compte-rendu/2024/justificatifs$"))
    uploads = (
        ("Quitus signé", "quitus-signe.pdf", "application/pdf", _pdf()),
        ("Relevé bancaire au 31/08/2025", "IMG_0412.jpg", "image/jpeg", _photo()),
        ("Justificatifs des subventions", "courrier-mairie.pdf", "application/pdf", _pdf()),
    )
    for label, name, mime, content in uploads:
        page.get_by_label(f"Fichier : {label}").set_input_files({"name": name, "mimeType": mime, "buffer": content})
        page.get_by_role("button", name=f"Envoyer ce fichier : {label}").click()
        expect(page.get_by_text(f"{label} : fichier déposé")).to_be_visible()
    expect(page.get_by_role("link", name="IMG_0412.pdf")).to_be_visible()  # the photo became a PDF
    axe_check(page)
    page.get_by_role("link", name="Passer à la suite : l'envoi").click()

    # 6. Sending.
    page.wait_for_url(re.compile(r"/coop/compte-rendu/2024/envoi$"))
    expect(page.get_by_text("Tout est prêt.")).to_be_visible()
    page.get_by_role("button", name="Envoyer mon compte rendu").click()
    expect(page.get_by_text("Compte rendu 2024-2025 envoyé à l'OCCE 85.")).to_be_visible()
    axe_check(page)
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"the year end took {elapsed:.0f} s"

    page.get_by_role("link", name="Accueil").first.click()
    card = page.get_by_role("region", name=re.compile(r"Comptes rendus 2024-2025"))
    expect(card.get_by_text("Envoyé le 15/09/2025 : l'OCCE 85 va le vérifier.")).to_be_visible()
    axe_check(page)

    def state(session):
        report = session.scalar(sa.select(AnnualReport))
        kinds = sorted(d.kind for d in session.scalars(sa.select(Document)))
        ledger = session.scalar(sa.select(Ledger).where(Ledger.status == "closed"))
        return (
            report.status,
            report.council_count,
            report.crf_snapshot["resultat"],
            kinds,
            ledger.closing_statement_balance_cents,
            session.scalar(sa.select(OutboxEmail.subject)),
        )

    assert db_check(state) == (
        "submitted",
        6,
        114240,
        ["report_quitus", "report_statement", "report_subsidies"],
        309240,
        "Compte rendu 2024-2025 envoyé à l'OCCE 85 (085-001)",
    )


def test_closing_wizard_on_a_phone(browser, live_server, year_over):
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    axe_on_every_page(page)
    _log_in(page)
    page.goto("/coop/cloture/2024")
    expect(page.get_by_label("Nombre de pièces de 2 €")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"horizontal scroll on a phone: {width}px"
    page.get_by_label("Nombre de pièces de 2 €").fill("20")
    page.get_by_role("button", name="Enregistrer l'arrêté de caisse").click()
    expect(page.get_by_text("Il ne correspond pas au solde de caisse du cahier")).to_be_visible()
    axe_check(page)  # the count refused, with its message
    assert errors == []
    context.close()
