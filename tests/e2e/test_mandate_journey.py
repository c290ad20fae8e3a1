"""Change of mandataire in a real browser: the coop fills in the request, prints the form, uploads the
signed form, the two sides of the identity card and a proof of address, and sends the dossier; OCCE 85
staff open the documents, validate, download the one PDF for the bank, note it sent, forward the
Crédit Mutuel document and record the delegation. Also the coop's pages on a phone.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from pypdf import PdfReader

from app.extensions import db
from app.mandates import attach_document, start_change, submit_change
from app.models import Coop, Document, Mandate, MandateChange, OutboxEmail
from tests.conftest import DEFAULT_MOMENT
from tests.e2e.conftest import axe_check, axe_on_every_page
from tests.helpers import browser_log_in
from tests.test_mandates import details, make_pdf, make_photo

pytestmark = pytest.mark.e2e
TODAY = DEFAULT_MOMENT.date()  # the clock is pinned (autouse fixture below)


@pytest.fixture(autouse=True)
def _pinned_clock(clock):
    """Every test of this module runs on 15 September 2025 (DEFAULT_MOMENT), whatever the real date."""


def _pdf_text(path) -> tuple[int, str]:
    reader = PdfReader(path)
    return len(reader.pages), re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))


@pytest.fixture
def files(tmp_path):
    """What a teacher has on the phone or the school's scanner."""
    paths = {
        "signed": tmp_path / "formulaire-signe.pdf",
        "front": tmp_path / "IMG_0001.jpg",
        "back": tmp_path / "IMG_0002.jpg",
        "proof": tmp_path / "facture-edf.pdf",
    }
    paths["signed"].write_bytes(make_pdf("FORMULAIRE SIGNE PAR JULIE BERNARD"))
    paths["front"].write_bytes(make_photo("RECTO"))
    paths["back"].write_bytes(make_photo("VERSO", colour=(230, 230, 200)))
    paths["proof"].write_bytes(make_pdf("FACTURE EDF PAGE 1", "FACTURE EDF PAGE 2"))
    return paths


def test_coop_sends_a_complete_dossier(page, make_coop, files, db_check):
    make_coop(1)
    axe_on_every_page(page)
    browser_log_in(page, "085-001")
    card = page.get_by_role("region", name="6. Mandataire")
    assert card.get_by_text("Mandataire actuel : Claire Moreau.").is_visible()
    card.get_by_role("link", name=re.compile("Changement pour le compte bancaire")).click()
    page.wait_for_url(re.compile(r"/coop/mandataire$"))
    page.get_by_role("link", name="Changement pour le compte bancaire…").click()

    page.wait_for_url(re.compile(r"/coop/mandataire/nouveau$"))
    outgoing = page.get_by_role("group", name="Le mandataire sortant")
    assert outgoing.get_by_label("Nom", exact=True).input_value() == "Moreau"  # prefilled with today's mandataire
    incoming = page.get_by_role("group", name="Le nouveau mandataire")
    incoming.get_by_label("Mme").check()
    incoming.get_by_label("Nom", exact=True).fill("Bernard")
    incoming.get_by_label("Prénom").fill("Julie")
    incoming.get_by_label("E-mail personnel ou académique").fill("julie.bernard@example.org")
    incoming.get_by_label("Téléphone portable").fill("06 12 34 56 78")
    page.get_by_label("Date d'effet du changement").fill(TODAY.isoformat())
    page.get_by_label("Motif du changement").select_option("mutation")
    page.get_by_role("button", name="Enregistrer et continuer").click()
    # forgot the box: the message is on that field, nothing else is lost
    error = page.locator("#incoming_is_teacher-erreur")
    assert "Seul un enseignant de l'école" in error.inner_text()
    assert incoming.get_by_label("Prénom").input_value() == "Julie"
    axe_check(page)  # the form shown again with its error
    page.get_by_label("Cette personne enseigne à l'école").check()
    page.get_by_role("button", name="Enregistrer et continuer").click()

    page.wait_for_url(re.compile(r"/coop/mandataire/\d+$"))
    assert page.get_by_text("Le dossier est commencé").is_visible()
    assert page.get_by_role("button", name="Envoyer le dossier").is_disabled()
    with page.expect_download() as download:
        page.get_by_role("link", name="Imprimer le formulaire de demande (PDF)").click()
    pages, text = _pdf_text(download.value.path())
    assert pages == 1
    assert "Demande de changement de mandataire" in text and "BERNARD" in text and "Claire MOREAU" in text
    assert "Signature" in text and "Crédit Mutuel" in text

    page.get_by_label("Formulaire daté et signé (scan ou photo)").set_input_files(files["signed"])
    page.get_by_role("button", name="Ajouter le formulaire signé").click()
    assert page.get_by_text("Formulaire de demande daté et signé : document ajouté.").is_visible()
    page.get_by_label("Recto (ou un seul fichier avec les deux faces)").set_input_files(files["front"])
    page.get_by_label("Verso (si vous avez une photo par face)").set_input_files(files["back"])
    page.get_by_role("button", name="Ajouter la pièce d'identité").click()
    assert page.get_by_text("Pièce d'identité du nouveau mandataire : document ajouté.").is_visible()
    page.get_by_label("Justificatif de domicile", exact=True).set_input_files(files["proof"])
    page.get_by_label("Date du justificatif").fill((TODAY - timedelta(days=250)).isoformat())
    page.get_by_role("button", name="Ajouter le justificatif de domicile").click()
    assert "plus de 6 mois" in page.locator("#address_proof-proof_date-erreur").inner_text()
    axe_check(page)
    page.get_by_label("Justificatif de domicile", exact=True).set_input_files(files["proof"])
    page.get_by_label("Date du justificatif").fill((TODAY - timedelta(days=20)).isoformat())
    page.get_by_role("button", name="Ajouter le justificatif de domicile").click()
    assert page.get_by_text("Justificatif de domicile de moins de 6 mois : document ajouté.").is_visible()
    axe_check(page)  # every document in the dossier

    page.get_by_role("link", name="Envoyer le dossier").click()
    page.wait_for_url(re.compile(r"/envoyer$"))
    assert page.get_by_text("ne peut plus être modifié").is_visible()
    page.get_by_role("button", name="Envoyer le dossier à l'OCCE 85").click()
    page.wait_for_url(re.compile(r"/coop/mandataire/\d+$"))
    assert page.get_by_text("envoyé à l'OCCE 85. Vous recevrez un courriel").is_visible()
    assert page.locator(".badge", has_text="Envoyé à l'OCCE 85").is_visible()
    assert page.get_by_role("button", name=re.compile("Ajouter")).count() == 0  # nothing to change any more

    def check(session):
        change = session.scalar(sa.select(MandateChange))
        kinds = sorted(d.kind for d in change.documents)
        return change.status, kinds, [m.subject for m in session.scalars(sa.select(OutboxEmail))]

    status, kinds, subjects = db_check(check)
    assert status == "submitted" and kinds == ["address_proof", "identity", "mandate_form"]
    assert len(subjects) == 1 and "envoyé à l'OCCE 85" in subjects[0]
    page.get_by_role("link", name="Accueil").first.click()
    card = page.get_by_role("region", name="6. Mandataire")
    assert card.get_by_text("dossier envoyé à l'OCCE 85 le").is_visible()


@pytest.fixture
def submitted(app, make_coop):
    """Coop 085-001 (Crédit Mutuel) has sent its dossier: signed form, identity photos, a 2-page proof."""
    info = make_coop(1)
    with app.app_context():
        coop = db.session.get(Coop, info.id)
        upload_dir = app.config["UPLOAD_DIR"]
        change = start_change(db.session, coop, details(), by=None, today=TODAY)
        attach_document(
            db.session,
            change,
            "mandate_form",
            [("f.pdf", make_pdf("FORMULAIRE SIGNE"))],
            upload_dir=upload_dir,
            by=None,
            today=TODAY,
        )
        attach_document(
            db.session,
            change,
            "identity",
            [("r.jpg", make_photo("RECTO")), ("v.jpg", make_photo("VERSO"))],
            upload_dir=upload_dir,
            by=None,
            today=TODAY,
        )
        attach_document(
            db.session,
            change,
            "address_proof",
            [("p.pdf", make_pdf("FACTURE 1", "FACTURE 2"))],
            upload_dir=upload_dir,
            by=None,
            today=TODAY,
            proof_date=TODAY - timedelta(days=10),
        )
        submit_change(db.session, change, by=None, now=DEFAULT_MOMENT, today=TODAY)
        db.session.commit()
        reference = change.reference
        db.session.remove()
    return reference


def test_staff_validate_merge_and_complete(page, make_staff, submitted, files, db_check):
    make_staff("agent")
    axe_on_every_page(page)
    browser_log_in(page, "agent", then="/admin/admin_mandate_changes/")
    page.get_by_role("link", name=re.compile(r"Envoyé à l'OCCE 85 1")).click()
    page.get_by_role("link", name=submitted).click()
    page.wait_for_url(re.compile(r"/admin/mandataires/\d+$"))
    assert page.get_by_role("heading", name=re.compile(f"Dossier {submitted}")).is_visible()

    # the identity document opens in the browser's PDF viewer, in a new tab
    with page.context.expect_page() as opened:
        page.get_by_role("link", name=re.compile(r"^Voir : Pièce d'identité")).click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert re.search(r"/admin/mandataires/document/\d+$", viewer.url)
    assert viewer.evaluate("document.contentType") == "application/pdf"  # shown, not downloaded
    viewer.close()

    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_text("Dossier validé ; la coopérative est prévenue par courriel.")).to_be_visible()
    axe_check(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger le PDF pour Crédit Mutuel").click()
    assert download.value.suggested_filename == f"dossier-banque-{submitted}-credit-mutuel.pdf"
    pages, text = _pdf_text(download.value.path())
    assert pages == 5  # cover, signed form, identity (front and back on one page), proof of address (2)
    assert text.index("Crédit Mutuel") < text.index("FORMULAIRE SIGNE") < text.index("FACTURE 1")
    assert submitted in text and "Mme Julie BERNARD" in text

    page.get_by_role("button", name="Envoyé à la banque").click()
    assert page.get_by_text("Dossier noté « Envoyé à la banque »").is_visible()
    page.get_by_label("Document du Crédit Mutuel à transmettre à la coopérative").set_input_files(files["signed"])
    page.get_by_role("button", name="Transmettre à la coopérative", exact=True).click()
    assert page.get_by_text("Document de la banque transmis : la coopérative peut le télécharger").is_visible()

    page.get_by_role("button", name="Délégation créée").click()
    assert page.get_by_text("Délégation créée : le nouveau mandat est enregistré").is_visible()
    current = page.locator("tr.table-success")
    assert "Mme Julie BERNARD" in current.inner_text() and "(en cours)" in current.inner_text()
    assert page.get_by_role("button", name="Délégation créée").count() == 0
    axe_check(page)

    def check(session):
        mandates = session.scalars(sa.select(Mandate).order_by(Mandate.started_on)).all()
        return (
            [(m.last_name, m.started_on, m.ended_on) for m in mandates],
            sorted(session.scalars(sa.select(OutboxEmail.recipient)).all()),
            session.scalar(sa.select(sa.func.count()).select_from(Document).where(Document.kind == "bank_dossier")),
        )

    mandates, recipients, dossiers = db_check(check)
    assert mandates[-2][0] == "Moreau" and mandates[-2][2] == TODAY - timedelta(days=1)
    assert mandates[-1] == ("BERNARD", TODAY, None)
    assert recipients.count("coop1@example.org") == 4 and recipients.count("julie.bernard@example.org") == 1
    assert dossiers == 1


def test_dossier_on_a_phone(browser, live_server, make_coop, submitted):
    make_coop(2)
    for login, path in (("085-002", "/coop/mandataire/nouveau"), ("085-001", "/coop/mandataire")):
        context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740}, is_mobile=True)
        phone = context.new_page()
        errors: list[str] = []
        phone.on(
            "console", lambda message, errors=errors: errors.append(message.text) if message.type == "error" else None
        )
        axe_on_every_page(phone)
        browser_log_in(phone, login)
        phone.goto(path)
        if login == "085-002":
            assert phone.get_by_label("Date d'effet du changement").is_visible()
        else:
            phone.wait_for_url(re.compile(r"/coop/mandataire/\d+$"))  # straight to the open dossier
            assert phone.locator(".badge", has_text="Envoyé à l'OCCE 85").is_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"horizontal scroll on a phone ({path}): {width}px"
        assert errors == []
        context.close()
