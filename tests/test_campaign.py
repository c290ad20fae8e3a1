"""Campaign dashboard, reminders through the outbox, federation exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from app import campaign
from app import ledger as books
from app import membership as memberships
from app.cahier import import_cahier
from app.errors import DomainError
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
        sent = campaign.send_reminders(
            session, "adhesion", "absente", YEAR, subject="Relance {identifiant}", body="Bonjour {nom}", by=by
        )
        assert sent.queued == 1 and [coop.login for coop in sent.missing] == ["085-003"] and sent.unusable == []
        assert session.scalars(sa.select(OutboxEmail.subject)).all() == ["Relance 085-002"]
        event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "campaign.reminder"))
        assert event.actor_login == "agent" and event.after["queued"] == 1 and event.after["state"] == "absente"
        session.rollback()


# -- issue 14 §7: exports are formula-guarded, reminders skip bad addresses ------------------------

EXPORTS = (
    "coops",
    f"adhesions-{YEAR}",
    "crf-2024",
    "crf-2024?par=coop",
    "crf-2024?par=inventaire",
)


def _csv(client, name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_export(client, name, "csv").data.decode("utf-8-sig")), delimiter=";"))


def _export(client, name: str, fmt: str):
    path, _, query = name.partition("?")
    return client.get(f"/admin/exports/{path}.{fmt}" + (f"?{query}" if query else ""))


def test_guard_cell_quotes_formulas_and_keeps_numbers():
    from app.exports import guard_cell

    assert [guard_cell(v) for v in ("=1+1", "+33 2 51", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "\rx")] == [
        "'=1+1",
        "'+33 2 51",
        "'-2+3+cmd|' /C calc'!A0",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [guard_cell(v) for v in ("-12,50", "-3", "École", "", None, 5, -7)] == [
        "-12,50",
        "-3",
        "École",
        "",
        None,
        5,
        -7,
    ]


def test_every_text_cell_of_every_export_is_guarded(app, make_coop, make_staff, login_as):
    _setup(app, make_coop)
    with app.app_context():  # what a form would refuse today, but older rows may hold
        coop = db.session.get(Coop, 2)
        coop.school_name, coop.city, coop.address = "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd", "\t=1+1"
        coop.director_name, coop.phone = "-1+1", "-12"
        db.session.commit()
        db.session.remove()
    client = login_as(make_staff(), on=app.test_client())
    for name in EXPORTS:
        rows = _csv(client, name)
        cells = [cell for row in rows for cell in row]
        assert cells, name
        for cell in cells:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
            assert not cell.startswith("-") or re.fullmatch(r"-\d+(,\d+)?", cell), (name, cell)
        workbook = load_workbook(io.BytesIO(_export(client, name, "xlsx").data))
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (name, cell.coordinate, cell.value)
                    if isinstance(cell.value, str):  # text, shown as typed: no quote added
                        assert cell.data_type == "s" and cell.number_format == "@", (name, cell.coordinate)
                        assert not cell.value.startswith("'"), (name, cell.value)
    coops_sheet = load_workbook(io.BytesIO(_export(client, "coops", "xlsx").data)).active
    values = [cell.value for cell in coops_sheet[3]]
    assert "+cmd|' /C calc'!A0" in values and "\t=1+1" in values and "-12" in values


def test_consolidated_crf_reads_closed_ledgers_as_stored_and_lists_the_inventory(app, make_coop, make_staff, login_as):
    from app import closing
    from app.models import Account, Entry, EntryLine

    _setup(app, make_coop)
    with app.app_context():
        session = db.session
        ledger = books.open_ledger(session, session.get(Coop, 1), 2024)
        import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        closing.close_ledger(
            session, ledger, statement_balance=309240, cash_count=5000, by=None, now=datetime(2025, 9, 5)
        )
        session.commit()
        # a change behind the closing's back (a repair, a bug): the consolidated CRF keeps the stored figures
        lines = session.scalars(
            sa.select(EntryLine)
            .join(EntryLine.entry)
            .join(EntryLine.account)
            .where(Entry.ledger_id == ledger.id, Account.nature.in_(("expense", "bank")))
        ).all()
        expense = next(line for line in lines if line.account.nature == "expense")
        bank = next(line for line in lines if line.entry_id == expense.entry_id and line.account.nature == "bank")
        for line_id, change in ((expense.id, 100_000), (bank.id, -100_000)):  # the entry stays balanced
            session.execute(
                sa.text("UPDATE entry_line SET amount_cents = amount_cents + :change WHERE id = :id"),
                {"change": change, "id": line_id},
            )
        session.commit()
        session.remove()
    client = login_as(make_staff(), on=app.test_client())
    rows = _csv(client, "crf-2024?par=coop")
    by_login = {row[0]: row for row in rows[1:]}
    assert by_login["085-001"][2:6] == ["clôturé", "4467,60", "5610,00", "1142,40"]
    assert by_login["085-002"][2:6] == ["ouvert", "4467,60", "5610,00", "1142,40"]
    accounts = _csv(client, "crf-2024")
    assert {row[5] for row in accounts[1:]} <= {"1", "2"} and "2" in {row[5] for row in accounts[1:]}
    inventory = _csv(client, "crf-2024?par=inventaire")
    assert inventory[0] == ["identifiant", "nom", "date", "piece", "libelle", "montant"]
    assert inventory[1:] == []  # the worked example buys no durable goods (account 68)
    workbook = load_workbook(io.BytesIO(_export(client, "crf-2024", "xlsx").data))
    assert workbook.sheetnames == ["Comptes", "Inventaire"]


def test_a_reminder_skips_and_reports_a_coop_whose_name_would_break_the_subject(
    app, make_coop, make_staff, login_as, db_check
):
    _setup(app, make_coop)
    make_coop(4)
    with app.app_context():
        db.session.get(Coop, 2).name = "École\r\nBcc: tous@example.org"
        db.session.commit()
        db.session.remove()
    client = login_as(make_staff(), on=app.test_client())
    url = f"/admin/campagne/coops?etape=adhesion&etat=absente&annee={YEAR}"
    done = client.post(url, data={"subject": "Relance {nom}", "body": "Bonjour", "envoyer": "1"})
    assert done.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "1 courriel(s) de relance mis dans la file d&#39;envoi." in page
    assert "caractère invisible (à corriger dans la fiche) : 085-002." in page
    assert db_check(lambda s: s.scalars(sa.select(OutboxEmail.recipient)).all()) == ["coop4@example.org"]
    event = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "campaign.reminder")))
    assert event.after["unusable_address"] == ["085-002"] and event.after["without_address"] == ["085-003"]


def test_a_reminder_with_an_unknown_placeholder_is_refused_in_french(app, make_coop, make_staff, login_as, db_check):
    _setup(app, make_coop)
    client = login_as(make_staff(), on=app.test_client())
    url = f"/admin/campagne/coops?etape=adhesion&etat=absente&annee={YEAR}"
    for send in ({}, {"envoyer": "1"}):
        page = client.post(url, data={"subject": "Relance", "body": "Bonjour {inconnu} de {nom}", **send})
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert "{inconnu} : ce n&#39;est pas un champ connu" in text and "Aperçu pour" not in text
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 0
    with pytest.raises(DomainError) as refused:
        campaign.queue_reminders(None, [], subject="{Nom}", body="x", year_label="2025-2026")
    assert refused.value.field == "subject"


def _set_deadlines(app, membership, reports):
    with app.app_context():
        year = db.session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == YEAR))
        year.membership_deadline, year.reports_deadline = membership, reports
        db.session.commit()
        db.session.remove()


def _late_link(page: str, state: str) -> re.Match | None:
    return re.search(
        rf'href="(/admin/campagne/coops\?[^"]*etape=retard[^"]*etat={state}[^"]*annee={YEAR}[^"]*)"[^>]*>(\d+)<', page
    )


def test_dashboard_shows_coops_late_on_a_deadline_and_lists_them(app, make_coop, make_staff, login_as, clock):
    _setup(app, make_coop)  # 085-001 committed its membership; 085-002 and 085-003 did not
    _set_deadlines(app, date(YEAR, 10, 15), date(YEAR + 1, 10, 31))
    staff = make_staff()
    client = login_as(staff, on=app.test_client())
    before = client.get("/admin/").get_data(as_text=True)  # 15 September: no deadline passed
    assert "adhésion avant le 15/10/2025" in before and _late_link(before, "adhesion") is None
    clock(datetime(YEAR, 11, 29, 9, 0))
    client = login_as(staff, on=app.test_client())  # a new session: the first one expired meanwhile
    page = client.get("/admin/").get_data(as_text=True)
    link = _late_link(page, "adhesion")
    assert link and link.group(2) == "2", "two coops have not committed their membership after 15/10"
    assert _late_link(page, "comptes_rendus") is None  # reports are due in October next year
    listing = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "085-002" in listing and "085-003" in listing and "085-001" not in listing
    assert "date limite dépassée" in listing and "était attendu avant le 15/10/2025" in listing


def test_reports_not_sent_after_their_deadline_are_late(app, make_coop):
    _setup(app, make_coop)
    _set_deadlines(app, date(YEAR, 10, 15), date(YEAR + 1, 10, 31))
    with app.app_context():
        on_time = {c.step: c.counts for c in campaign.dashboard(db.session, YEAR, date(YEAR + 1, 10, 31))}
        late = {c.step: c.counts for c in campaign.dashboard(db.session, YEAR, date(YEAR + 1, 11, 1))}
        listed = campaign.coops_in_state(db.session, "retard", "comptes_rendus", YEAR, date(YEAR + 1, 11, 1))
        db.session.remove()
    assert on_time["retard"] == {"adhesion": 2, "comptes_rendus": 0}
    assert late["retard"] == {"adhesion": 2, "comptes_rendus": 3}
    assert [c.login for c in listed] == ["085-001", "085-002", "085-003"]


def test_a_long_list_of_coops_comes_page_by_page_and_the_reminder_still_goes_to_all(
    app, make_coop, make_staff, login_as, db_check, monkeypatch
):
    monkeypatch.setattr(campaign, "LIST_PAGE_SIZE", 2)
    _setup(app, make_coop)
    make_coop(4)
    make_coop(1234)
    client = login_as(make_staff(), on=app.test_client())
    url = f"/admin/campagne/coops?etape=adhesion&etat=absente&annee={YEAR}"
    first = client.get(url).get_data(as_text=True)
    assert "4 coopérative(s). Affichées ici : 085-002 à 085-003, par ordre de numéro." in first
    assert "085-004" not in first and "Début de la liste" not in first
    following = re.search(r'href="([^"]*apres=3[^"]*)">Coopératives suivantes \(après 085-003\)', first)
    last = client.get(following.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "Affichées ici : 085-004 à 085-1234" in last and "085-003<" not in last
    assert "Coopératives suivantes" not in last and "← Début de la liste" in last
    assert "La relance part aux 4 coopératives de la liste" in last
    form = {"subject": "Adhésion {identifiant}", "body": "Bonjour {nom}."}
    preview = client.post(url, data=form).get_data(as_text=True)
    assert "Envoyer 4 courriel(s)" in preview
    assert client.post(url, data={**form, "envoyer": "1"}).status_code == 302
    subjects = db_check(lambda s: sorted(s.scalars(sa.select(OutboxEmail.subject))))
    assert subjects == ["Adhésion 085-002", "Adhésion 085-004", "Adhésion 085-1234"]  # 085-003: no address
