"""Campaign dashboard, reminders through the outbox, federation exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from app import campaign
from app import ledger as books
from app import membership as memberships
from app.cahier import import_cahier
from app.extensions import db
from app.models import AuditEvent, Coop, OutboxEmail, SchoolYear, User, school_year_start
from tests.conftest import DEFAULT_MOMENT

YEAR = school_year_start(DEFAULT_MOMENT.date())  # the clock is pinned for every test below


@pytest.fixture(autouse=True)
def _pinned_clock(clock):
    """Dashboard and lists read the current school year from the clock: never from the real date."""


EXAMPLE = __import__("pathlib").Path(__file__).parent / "data" / "exemple_2024-2025.csv"


def _setup(app, make_coop):
    infos = [make_coop(1, name="=Coop qui calcule"), make_coop(2), make_coop(3, email="")]
    with app.app_context():
        session = db.session
        year = SchoolYear(start_year=YEAR, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25)
        session.add(year)
        coop = session.get(Coop, infos[0].id)
        draft = memberships.save_draft(
            session,
            coop,
            year,
            memberships.Headcounts(classes=(memberships.ClassHeadcount("CE1", "CE1", 24, 1),)),
            by=None,
        )
        memberships.commit_membership(session, draft, coop.mandates[0], by=None, ip="", now=datetime(YEAR, 9, 20))
        second = session.get(Coop, infos[1].id)
        import_cahier(session, books.open_ledger(session, second, 2024), EXAMPLE.read_bytes(), by=None)
        session.commit()
        session.remove()
    return infos


def test_dashboard_counts_link_to_the_coops(app, make_coop, make_staff, login_as):
    _setup(app, make_coop)
    client = login_as(make_staff(), on=app.test_client())
    page = client.get("/admin/").get_data(as_text=True)
    assert f"Année en cours : {YEAR}-{YEAR + 1}" in page
    link = re.search(rf'href="(/admin/campagne/coops\?[^"]*etat=committed[^"]*annee={YEAR}[^"]*)"[^>]*>1<', page)
    assert link, "the committed count links to its coops"
    listing = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "085-001" in listing and "085-002" not in listing
    absent = client.get(f"/admin/campagne/coops?etape=adhesion&etat=absente&annee={YEAR}").get_data(as_text=True)
    assert "2 coopérative(s)" in absent


def test_reminder_preview_then_outbox(app, make_coop, make_staff, login_as, db_check):
    _setup(app, make_coop)
    client = login_as(make_staff(), on=app.test_client())
    url = f"/admin/campagne/coops?etape=adhesion&etat=absente&annee={YEAR}"
    form = {"subject": "Adhésion {annee} : {identifiant}", "body": "Bonjour {nom}, pensez à l'adhésion."}
    preview = client.post(url, data=form).get_data(as_text=True)
    assert "Aperçu pour 085-002" in preview and f"Adhésion {YEAR}-{YEAR + 1} : 085-002" in preview
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 0
    done = client.post(url, data={**form, "envoyer": "1"})
    assert done.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "1 courriel(s) de relance mis dans la file d&#39;envoi. Sans adresse e-mail : 085-003." in page
    mails = db_check(lambda s: s.scalars(sa.select(OutboxEmail)).all())
    assert [(m.recipient, m.subject) for m in mails] == [("coop2@example.org", f"Adhésion {YEAR}-{YEAR + 1} : 085-002")]
    assert "Bonjour Coopérative de test 002" in mails[0].body_text


def test_exports_csv_and_xlsx(app, make_coop, make_staff, login_as):
    _setup(app, make_coop)
    client = login_as(make_staff(), on=app.test_client())
    coops = client.get("/admin/exports/coops.csv")
    assert coops.headers["Content-Disposition"] == 'attachment; filename="cooperatives.csv"'
    rows = list(csv.reader(io.StringIO(coops.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["identifiant", "nom", "ecole"] and rows[1][1] == "'=Coop qui calcule"
    assert rows[1][16] == "Claire Moreau"
    members = list(
        csv.reader(
            io.StringIO(client.get(f"/admin/exports/adhesions-{YEAR}.csv").data.decode("utf-8-sig")), delimiter=";"
        )
    )
    assert members[1][0] == "085-001" and members[1][2] == "committed" and members[1][4] == "24"
    crf = list(
        csv.reader(
            io.StringIO(client.get("/admin/exports/crf-2024.csv?par=coop").data.decode("utf-8-sig")), delimiter=";"
        )
    )
    assert crf[1] == [
        "085-002",
        "Coopérative de test 002",
        "ouvert",
        "4467,60",
        "5610,00",
        "1142,40",
        "2942,40",
        "50,00",
        "0,00",
    ]
    accounts = list(
        csv.reader(io.StringIO(client.get("/admin/exports/crf-2024.csv").data.decode("utf-8-sig")), delimiter=";")
    )
    assert accounts[[r[0] for r in accounts].index("6288")][:2] == ["6288", "62880008"]
    workbook = load_workbook(io.BytesIO(client.get("/admin/exports/crf-2024.xlsx?par=coop").data))
    assert float(workbook.active["F2"].value) == 1142.40


def test_default_reminder_names_the_step_and_the_state():
    subject, body = campaign.default_reminder("adhesion", "draft", 2025)
    assert subject == "OCCE 85 — Adhésions 2025-2026 : action attendue"
    assert "l'étape « Adhésions »" in body and "à l'état « brouillon »" in body and "{nom}" in body


def test_send_reminders_queues_one_mail_per_address_and_audits(app, make_coop, make_staff):
    _setup(app, make_coop)
    staff = make_staff()
    with app.app_context():
        session = db.session
        by = session.get(User, staff.id)
        queued, missing = campaign.send_reminders(
            session, "adhesion", "absente", YEAR, subject="Relance {identifiant}", body="Bonjour {nom}", by=by
        )
        assert queued == 1 and [coop.login for coop in missing] == ["085-003"]
        assert session.scalars(sa.select(OutboxEmail.subject)).all() == ["Relance 085-002"]
        event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "campaign.reminder"))
        assert event.actor_login == "agent" and event.after["queued"] == 1 and event.after["state"] == "absente"
        session.rollback()
