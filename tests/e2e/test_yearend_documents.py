"""Subsidy proofs on a phone: a teacher adds two letters to the same line, both stay listed, then
removes one after the confirmation page; the other stays. Keyboard only for the removal."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app import cahier as cahier_format
from app import closing
from app import ledger as books
from app.closing import CashCount
from app.models import AuditEvent, Coop, Document
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_check

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).parent.parent / "data" / "exemple_2024-2025.csv"
MOMENT = datetime(2025, 9, 15, 8, 30)
PHONE = {"width": 375, "height": 667}


@pytest.fixture
def year_closed(app, make_coop, db_check, clock):
    """Coop 085-001 with the worked example 2024-2025 closed on 15 September 2025 (it has a subsidy)."""
    clock(MOMENT)
    info = make_coop(1)

    def load(session):
        ledger = books.open_ledger(session, session.get(Coop, info.id), 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        cash = CashCount.from_counts({2000: 2, 1000: 1})
        closing.close_ledger(session, ledger, statement_balance=309240, cash_count=cash, by=None, now=MOMENT)
        session.commit()

    db_check(load)
    return info


def _pdf(text: str) -> bytes:
    from app.pdf import render_pdf

    return render_pdf(f"<p>{text}</p>", Path(__file__).parent)


def _no_horizontal_scroll(page) -> None:
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url} scrolls sideways: {width} > {inner}"


def test_two_subsidy_proofs_then_remove_one(page, year_closed, db_check):
    page.set_viewport_size(PHONE)
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill("085-001")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/coop/compte-rendu/2024/justificatifs")

    line = page.locator("#piece-subsidies")
    expect(line.get_by_text("À déposer")).to_be_visible()
    page.get_by_label("Fichier : Justificatifs des subventions").set_input_files(
        {"name": "courrier-mairie.pdf", "mimeType": "application/pdf", "buffer": _pdf("Mairie : 300 €")}
    )
    page.get_by_role("button", name="Envoyer ce fichier : Justificatifs des subventions").click()
    expect(page.get_by_text("Justificatifs des subventions : fichier déposé (courrier-mairie.pdf).")).to_be_visible()
    page.get_by_label("Ajouter un autre fichier : Justificatifs des subventions").set_input_files(
        {"name": "virement-departement-2025.pdf", "mimeType": "application/pdf", "buffer": _pdf("Département")}
    )
    page.get_by_role("button", name="Ajouter ce fichier : Justificatifs des subventions").click()
    expect(page.get_by_text("Cette ligne compte maintenant 2 fichiers.")).to_be_visible()

    files = page.get_by_role("list", name="Fichiers déposés : Justificatifs des subventions").get_by_role("listitem")
    expect(files).to_have_count(2)
    expect(files.nth(0)).to_contain_text("courrier-mairie.pdf")
    expect(files.nth(1)).to_contain_text("virement-departement-2025.pdf")
    expect(line.get_by_role("link", name="Voir virement-departement-2025.pdf")).to_be_visible()
    _no_horizontal_scroll(page)
    axe_check(page)

    # « Retirer », by keyboard: the confirmation page first, nothing removed yet.
    line.get_by_role("link", name="Retirer courrier-mairie.pdf").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Retirer le fichier « courrier-mairie.pdf » ?")).to_be_visible()
    expect(page.get_by_text("L'autre fichier de cette ligne reste déposé.")).to_be_visible()
    _no_horizontal_scroll(page)
    axe_check(page)
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Document))) == 2
    page.get_by_role("button", name="Oui, retirer ce fichier").focus()
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/coop/compte-rendu/2024/justificatifs#piece-subsidies$"))
    expect(page.get_by_text("Justificatifs des subventions : fichier « courrier-mairie.pdf » retiré.")).to_be_visible()
    expect(files).to_have_count(1)
    expect(files.first).to_contain_text("virement-departement-2025.pdf")
    expect(line.locator("#statut-subsidies")).to_have_text(re.compile(r"^\s*Déposé\s+1 fichier\s*$"))

    def state(session):
        names = [d.original_name for d in session.scalars(sa.select(Document))]
        removed = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "document.removed"))
        return names, removed.actor_login, removed.before["name"]

    assert db_check(state) == (["virement-departement-2025.pdf"], "085-001", "courrier-mairie.pdf")
