"""OCCE 85 staff run a direct debit from the back office in Chromium: create, export, download, done."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import sqlalchemy as sa

from app import membership as memberships
from app.clock import today as paris_today
from app.demo import creditor_identifier
from app.extensions import db
from app.models import Coop, Federation, Membership, SchoolYear, school_year_start
from tests.e2e.conftest import axe_check, axe_on_every_page
from tests.helpers import browser_log_in

pytestmark = pytest.mark.e2e
YEAR = school_year_start(paris_today())


@pytest.fixture
def committed(app, make_coop, make_staff):
    make_staff("tresoriere")
    infos = [make_coop(n, name=f"Coop « {n} » & Cie") for n in (1, 2)]
    with app.app_context():
        session = db.session
        session.add(
            Federation(
                name="OCCE 85",
                creditor_id=creditor_identifier("FR", "850042"),
                iban="FR7615519000010008500008515",
                bic="CMCIFR2A",
            )
        )
        year = SchoolYear(start_year=YEAR, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25)
        session.add(year)
        for info in infos:
            coop = session.get(Coop, info.id)
            # signed a year ago: a mandate unused for 36 months would have lapsed
            signed_on = paris_today().replace(year=paris_today().year - 1, day=1)
            coop.debit_mandate_ref, coop.debit_mandate_signed_on = f"OCCE85-COOP-{coop.number:03d}", signed_on
            draft = memberships.save_draft(
                session,
                coop,
                year,
                memberships.Headcounts(classes=(memberships.ClassHeadcount("CP", "CP", 20, 1),)),
                by=None,
            )
            memberships.commit_membership(session, draft, coop.mandates[0], by=None, ip="", now=datetime.now())
        session.commit()
        session.remove()


@pytest.fixture
def two_reports(app, committed):
    from tests.test_review import submitted_report

    with app.app_context():
        ids = [c.id for c in db.session.scalars(sa.select(Coop).order_by(Coop.number))]
        db.session.remove()
    return [submitted_report(app, coop_id, app.config["UPLOAD_DIR"]) for coop_id in ids]


def test_staff_run_a_direct_debit(page, committed, two_reports, db_check, tmp_path):
    axe_on_every_page(page)
    browser_log_in(page, "tresoriere", then="/admin/")
    assert page.get_by_role("heading", name="Tableau de bord de la campagne").is_visible()

    page.get_by_role("link", name="Prélèvements").first.click()
    page.wait_for_url(re.compile(r"/admin/prelevements/$"))
    assert page.locator("#run-summary").inner_text().startswith("2 adhésion(s) seront prélevées")
    included = page.get_by_role("table", name=re.compile("Adhésions comprises"))
    assert included.get_by_role("rowheader").count() == 2
    # set 085-002 aside with the keyboard, then bring it back: the run and its button follow
    page.get_by_role("link", name=re.compile("Exclure 085-002")).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"exclure="))
    assert page.locator("#run-summary").inner_text().startswith("1 adhésion(s) seront prélevées")
    assert page.get_by_role("button", name=re.compile("Créer le prélèvement de 1 adhésion")).is_visible()
    page.get_by_role("link", name=re.compile("Réintégrer 085-002")).click()
    page.wait_for_url(re.compile(r"/admin/prelevements/$"))
    page.get_by_role("button", name=re.compile("Créer le prélèvement de 2 adhésion")).click()
    page.wait_for_url(re.compile(r"/admin/prelevements/\d+$"))
    assert page.get_by_text("2 adhésion(s)").first.is_visible()
    total = db_check(lambda s: sum(m.total_cents for m in s.scalars(sa.select(Membership))))

    page.get_by_role("button", name=re.compile("Exporter les fichiers")).click()
    with page.expect_download() as xml_download:
        page.get_by_role("link", name=re.compile("Télécharger le fichier SEPA")).click()
    xml_path = tmp_path / "sepa.xml"
    xml_download.value.save_as(xml_path)
    content = xml_path.read_text(encoding="utf-8")
    assert "<NbOfTxs>2</NbOfTxs>" in content and f"<CtrlSum>{total / 100:.2f}</CtrlSum>" in content
    assert "Coop 1 + Cie" in content and "&amp;" not in content
    with page.expect_download() as csv_download:
        page.get_by_role("link", name=re.compile("Télécharger le CSV")).click()
    csv_path = tmp_path / "export.csv"
    csv_download.value.save_as(csv_path)
    assert csv_path.read_bytes().startswith("\ufeff".encode()) and "085-002" in csv_path.read_text(encoding="utf-8-sig")
    assert page.locator("#batch-count").inner_text() == "2"

    page.get_by_role("button", name="Prélèvement effectué").click()
    assert page.get_by_text("2 adhésion(s) réglée(s)").is_visible()
    axe_check(page)
    assert db_check(lambda s: {m.status for m in s.scalars(sa.select(Membership))}) == {"paid"}

    # Review the yearly reports: approve one, return the other with a comment
    page.goto("/admin/comptes-rendus/")
    page.get_by_role("link", name=re.compile("Examiner le compte rendu de 085-001")).click()
    assert page.get_by_text("Le bilan est équilibré").is_visible()
    axe_check(page)
    page.get_by_role("button", name="Approuver").click()
    assert page.locator("#report-status").inner_text() == "Approuvé par l'OCCE 85"
    axe_check(page)
    page.goto("/admin/comptes-rendus/")
    page.get_by_role("link", name=re.compile("Examiner le compte rendu de 085-002")).click()
    page.get_by_label("Commentaire pour la coopérative").first.fill("Le relevé du 31 août est illisible.")
    page.get_by_role("button", name="Renvoyer à la coopérative").click()
    assert page.locator("#report-status").inner_text() == "Renvoyé par l'OCCE 85"
    from app.models.reports import AnnualReport

    assert db_check(lambda s: sorted(r.status for r in s.scalars(sa.select(AnnualReport)))) == ["approved", "returned"]


def test_back_office_list_actions_and_filters_work_under_the_csp(page, make_coop, make_staff):
    """Flask-Admin's few inline handlers are allowed by their exact CSP hashes: actions and filters work."""
    make_staff("agent")
    make_coop(7)
    axe_on_every_page(page)
    browser_log_in(page, "agent", then="/admin/")
    page.goto("/admin/admin_coops/")
    page.get_by_role("button", name=re.compile("Ajouter un filtre|Add Filter")).or_(
        page.get_by_role("link", name=re.compile("Ajouter un filtre|Add Filter"))
    ).first.click()
    page.locator(".field-filters .filter").first.click()
    assert page.locator("#filter_form table.filters tr").count() >= 1  # a filter row was added
    axe_check(page)
    page.locator("input.action-checkbox").first.check()
    page.get_by_role("button", name=re.compile("Avec la sélection|With selected")).or_(
        page.get_by_role("link", name=re.compile("Avec la sélection|With selected"))
    ).first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Nouveau mot de passe provisoire").click()
    page.wait_for_load_state()
    assert page.get_by_text(re.compile(r"085-007 : nouveau mot de passe provisoire")).is_visible()
    axe_check(page)
