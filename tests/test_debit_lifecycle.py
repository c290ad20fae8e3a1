"""Issue 16: direct debits the bank and the rulebook accept every time.

TARGET calendar (one test per closing day over two years), mandate rules, transliteration,
pre-notification timing, every state change of a debit with its mail and cash-book effect, the bank's
pain.002 / camt.054 files (unknown id, file applied twice), files split by the bank's cap with header
checks, both pain.008 versions XSD-valid with a mandate amendment, `flask debits create`, coop
numbers up to 9999.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import sqlalchemy as sa
import xmlschema
from lxml import etree

from app import debits
from app import membership as memberships
from app.errors import DomainError
from app.extensions import db
from app.models import Coop, Debit, DebitBatch, Entry, Federation, Membership, OutboxEmail, coop_login
from tests.test_debits import NOW, TODAY, run_form
from tests.test_debits import campaign as campaign  # the shared fixture (explicit re-export)

DATA = Path(__file__).parent / "data" / "debits"
COLLECTION = date(2025, 9, 15)  # TODAY (01/09/2025) + 14 days, a Monday
OTHER_IBAN_SAME_BANK = "FR7615519000100002000000259"
OTHER_IBAN_OTHER_BANK = "FR7630004000100002000000321"

# TARGET closing days written out by hand (ECB): the library's calendar is checked against them.
CLOSING_DAYS = [
    date(2026, 1, 1),
    date(2026, 4, 3),  # Good Friday
    date(2026, 4, 6),  # Easter Monday
    date(2026, 5, 1),
    date(2026, 12, 25),
    date(2026, 12, 26),
    date(2027, 1, 1),
    date(2027, 3, 26),
    date(2027, 3, 29),
    date(2027, 5, 1),
    date(2027, 12, 25),
    date(2027, 12, 26),
]


# -- calendar --------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", CLOSING_DAYS, ids=lambda d: d.isoformat())
def test_each_target_closing_day_is_refused_with_the_next_valid_date(day):
    assert not debits.is_target_day(day)
    today = day - timedelta(days=40)
    with pytest.raises(DomainError, match="Prochaine date possible") as refused:
        debits.check_collection_date(day, today=today, lead_days=5, notice_days=14)
    proposed = debits.next_target_day(day)
    assert proposed > day and debits.is_target_day(proposed)
    assert f"{proposed:%d/%m/%Y}" in refused.value.message and refused.value.field == "collection_date"


def test_a_year_of_target_days_is_the_weekdays_without_the_closing_days():
    for year, expected in ((2026, 256), (2027, 258)):
        days = [date(year, 1, 1) + timedelta(days=n) for n in range(365)]
        assert sum(debits.is_target_day(d) for d in days) == expected
        assert {d for d in days if d.weekday() < 5 and not debits.is_target_day(d)} <= set(CLOSING_DAYS)


def test_saturday_and_christmas_are_explained_in_french():
    with pytest.raises(DomainError) as saturday:
        debits.check_collection_date(date(2026, 12, 12), today=date(2026, 11, 1), lead_days=5, notice_days=14)
    assert saturday.value.message.startswith("Le 12/12/2026 est un samedi")
    assert "lundi 14/12/2026" in saturday.value.message
    with pytest.raises(DomainError) as christmas:
        debits.check_collection_date(date(2026, 12, 25), today=date(2026, 11, 1), lead_days=5, notice_days=14)
    assert "TARGET (Noël (25 décembre))" in christmas.value.message and "lundi 28/12/2026" in christmas.value.message


def test_lead_time_counts_target_business_days():
    # Tuesday 22/12/2026: 23, 24, (25 and 26 closed, week-end), 28, 29, 30
    assert debits.earliest_collection_date(date(2026, 12, 22), 5) == date(2026, 12, 30)
    assert debits.earliest_collection_date(date(2026, 12, 22), 5, 14) == date(2027, 1, 5)  # 05/01 is a Tuesday


def test_the_run_form_proposes_the_next_valid_date_and_refuses_a_closing_day(
    app, campaign, make_staff, login_as, clock, db_check
):
    clock(datetime(2026, 12, 1, 9))
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    assert 'value="2026-12-15"' in page  # 1 Dec + 14 days, a Tuesday
    response = client.post("/admin/prelevements/", data=run_form(page, collection_date="2026-12-26"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "est un samedi" in page and "lundi 28/12/2026" in page
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(DebitBatch))) == 0


# -- mandates --------------------------------------------------------------------------------------


def _facts(session):
    return debits.MandateFacts.load(session)


def test_mandate_signed_after_the_collection_or_in_the_future_is_left_out(session, campaign):
    coop = session.get(Membership, campaign[0]).coop
    coop.debit_mandate_signed_on = date(2025, 9, 20)
    problems = debits.mandate_problems(coop, _facts(session), collection_date=COLLECTION, today=date(2025, 9, 25))
    assert problems == ["mandat signé le 20/09/2025, après la date d'échéance"]
    problems = debits.mandate_problems(coop, _facts(session), collection_date=COLLECTION, today=TODAY)
    assert problems == ["mandat signé le 20/09/2025, date dans le futur"]
    with pytest.raises(ValueError, match="dans le futur"):
        debits.check_mandate_signed_on(date(2027, 6, 1), today=TODAY)


def test_a_mandate_unused_for_36_months_lapses(session, campaign):
    coop = session.get(Membership, campaign[0]).coop
    coop.debit_mandate_signed_on = date(2020, 3, 2)
    batch, excluded = debits.create_batch(session, campaign, COLLECTION, today=TODAY, by=None)
    assert batch.count == 2
    assert excluded[0].coop.id == coop.id and excluded[0].reasons == (
        "mandat caduc depuis le 02/03/2023 (aucun prélèvement pendant 36 mois) : un nouveau mandat signé par la "
        "coopérative est nécessaire",
    )
    assert "un nouveau mandat signé" in debits.mandate_notice(session, coop, today=TODAY)
    # a collection presented less than 36 months ago keeps a mandate alive
    other = session.get(Membership, campaign[1]).coop
    other.debit_mandate_signed_on = date(2020, 3, 2)
    debits.export_batch(session, batch, by=None, now=NOW)
    assert debits.mandate_lapse_date(other, debits.last_presentations(session)[other.id]) == date(2028, 9, 15)
    assert debits.mandate_notice(session, other, today=TODAY) == ""


def test_rum_is_validated_where_it_is_typed_and_unique(session, campaign):
    assert debits.check_mandate_ref("  OCCE85-COOP-001 ") == "OCCE85-COOP-001"
    for wrong in ("RUM AVEC ESPACES", "RUM-é", "x" * 36):
        with pytest.raises(ValueError, match="RUM invalide"):
            debits.check_mandate_ref(wrong)
    first, second = (session.get(Membership, i).coop for i in campaign[:2])
    assert debits.mandate_ref_taken(session, first.debit_mandate_ref, second.id) == first
    assert debits.mandate_ref_taken(session, first.debit_mandate_ref, first.id) is None
    second.debit_mandate_ref = first.debit_mandate_ref
    session.flush()
    _, excluded = debits.create_batch(session, campaign, COLLECTION, today=TODAY, by=None)
    assert [e.coop.number for e in excluded] == [1, 2]
    assert all("RUM déjà utilisée" in e.reasons[0] for e in excluded)


# -- text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("« Œuvre Ægir naïve — Ç ß ø ½ №5 »", "Oeuvre Aegir naive - C ss o 1/2 No5"),
        ("Müller & Söhne, Straße 3", "Muller + Sohne, Strasse 3"),
        ("Øresund Ærø Åland Þórsdóttir", "Oresund Aero Aland Thorsdottir"),
        ("École n°12 : 10 € (50 %) @home_1", "Ecole n 12 : 10 EUR (50 ) home 1"),
    ],
)
def test_names_are_transliterated_then_reduced_to_the_epc_set(text, expected):
    assert debits.sepa_text(text, 140) == expected


def test_lengths_are_cut_after_transliteration():
    assert debits.sepa_text("a" * 68 + "ßß", 70) == "a" * 68 + "ss"
    assert len(debits.sepa_text("Œ" * 50, 70)) == 70


# -- pre-notification ------------------------------------------------------------------------------


def test_a_run_too_close_to_notify_is_refused_unless_a_shorter_delay_was_agreed(session, campaign):
    with pytest.raises(DomainError, match="prévenues 14 jours avant") as refused:
        debits.create_batch(session, campaign, date(2025, 9, 10), today=TODAY, by=None)
    assert "lundi 15/09/2025" in refused.value.message
    batch, _ = debits.create_batch(
        session, campaign, date(2025, 9, 10), today=TODAY, by=None, shorter_notice_agreed=True
    )
    assert batch.shorter_notice_agreed and batch.count == 3
    session.scalar(sa.select(Federation)).debit_notice_days = 30
    with pytest.raises(DomainError, match="prévenues 30 jours avant"):
        debits.create_batch(session, campaign, date(2025, 9, 29), today=TODAY, by=None)


def test_creating_a_run_pre_notifies_every_coop(app, campaign, make_staff, login_as, clock, db_check):
    clock(datetime(2025, 9, 1, 8))
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    response = client.post("/admin/prelevements/", data=run_form(page, collection_date="2025-09-15"))
    assert response.status_code == 302
    mails = db_check(
        lambda s: [
            (m.recipient, m.subject, m.body_text) for m in s.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id))
        ]
    )
    totals = db_check(lambda s: {m.coop.email: m.total_cents for m in s.scalars(sa.select(Membership))})
    ics = db_check(lambda s: s.scalar(sa.select(Federation)).creditor_id)
    assert sorted(m[0] for m in mails) == ["coop1@example.org", "coop2@example.org", "coop3@example.org"]
    for recipient, subject, body in mails:
        amount = f"{totals[recipient] // 100},{totals[recipient] % 100:02d}"
        assert "le 15/09/2025" in subject and amount in subject
        assert f"OCCE85-COOP-00{recipient[4]}" in body and ics in body and "FR76 … 0103" in body


# -- the life of a debit ---------------------------------------------------------------------------


def test_the_run_mails_are_those_of_the_single_prenotification(app, campaign, make_staff, login_as, clock, db_check):
    """A run renders its thousand mails in one go: each reads exactly as the one-coop pre-notification."""
    from app.web import notifications

    clock(datetime(2025, 9, 1, 8))
    with app.app_context():
        coop = db.session.scalar(sa.select(Coop).where(Coop.number == 2))
        coop.email = ""  # a coop without an address gets no mail; it is still debited
        db.session.commit()
        db.session.remove()
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    assert client.post("/admin/prelevements/", data=run_form(page, collection_date="2025-09-15")).status_code == 302
    with app.test_request_context():
        session = db.session
        queued = session.execute(sa.select(OutboxEmail.recipient, OutboxEmail.subject, OutboxEmail.body_text)).all()
        federation = session.scalar(sa.select(Federation))
        batch = session.scalar(sa.select(DebitBatch))
        assert batch.count == 3
        single = [notifications.debit_prenotification(session, debit, federation) for debit in batch.debits]
        assert sorted(queued) == sorted((m.recipient, m.subject, m.body_text) for m in single if m is not None)
        assert [m.recipient for m in single if m is not None] == ["coop1@example.org", "coop3@example.org"]
        session.rollback()


def _exported(session, membership_ids, **kwargs):
    batch, _ = debits.create_batch(session, membership_ids, COLLECTION, today=TODAY, by=None, **kwargs)
    debits.export_batch(session, batch, by=None, now=NOW)
    return batch


def test_every_state_change_of_a_debit(session, campaign):
    batch = _exported(session, campaign)
    first, second, third = batch.debits
    assert [debits.status_label(d) for d in batch.debits] == ["dans le fichier envoyé à la banque"] * 3
    with pytest.raises(DomainError, match="code motif"):
        debits.reject_debit(session, second, code="", by=None, now=NOW)
    debits.reject_debit(session, second, code="MD01", by=None, now=NOW)
    assert (second.status, second.membership.status) == ("rejected", "rejected")
    assert (
        debits.status_label(second)
        == "rejeté avant règlement (MD01 : pas de mandat valable (mandat absent ou révoqué))"
    )
    with pytest.raises(DomainError, match="Seul un prélèvement réglé"):
        debits.return_debit(session, second, code="AC04", on=COLLECTION, by=None, now=NOW)
    debits.settle_batch(session, batch, by=None, now=NOW, post_to_ledgers=True)
    assert (first.status, first.membership.status, first.entry_id is not None) == ("paid", "paid", True)

    returned = debits.return_debit(session, first, code="AC04", on=date(2025, 10, 1), by=None, now=NOW)
    assert (first.status, first.membership.status, first.membership.paid_at) == ("returned", "returned", None)
    lines = {line.account.code: line.amount_cents for line in returned.reversal.lines}
    assert lines["512"] == first.amount_cents and lines["6281"] + lines["61681"] == -first.amount_cents
    assert all(line.cleared_on is None for line in returned.reversal.lines)
    assert returned.reversal.date == date(2025, 10, 1) and not returned.refunded

    refunded = debits.return_debit(session, third, code="MD06", on=date(2025, 10, 2), by=None, now=NOW)
    assert (third.status, refunded.refunded) == ("refunded", True)

    # re-presented in a later run with a new EndToEndId, or switched to cheque
    later, _ = debits.create_batch(session, [first.membership_id], date(2025, 10, 20), today=date(2025, 10, 2), by=None)
    assert later.debits[0].end_to_end_id != first.end_to_end_id and first.membership.status == "in_batch"
    debits.switch_to_cheque(session, second.membership, by=None)
    memberships.record_cheque(session, second.membership, by=None, now=NOW)
    assert (second.membership.status, second.membership.payment_method) == ("paid", "cheque")


def test_a_return_is_recorded_and_mailed_from_the_back_office(app, campaign, make_staff, login_as, clock, db_check):
    clock(datetime(2025, 9, 1, 8))
    with app.app_context():
        db.session.scalar(sa.select(Federation)).post_debits_to_ledgers = True
        batch = _exported(db.session, campaign)
        debits.settle_batch(db.session, batch, by=None, now=NOW, post_to_ledgers=True)
        db.session.commit()
        batch_id, debit_id = batch.id, batch.debits[0].id
        db.session.remove()
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    page = client.get(f"/admin/prelevements/{batch_id}").get_data(as_text=True)
    assert "Retourné après règlement" in page and "AM04 : provision insuffisante" in page
    client.post(f"/admin/prelevements/{batch_id}/rejet/{debit_id}", data={"reason_code": "AM04"})
    state = db_check(lambda s: (s.get(Debit, debit_id).status, s.get(Debit, debit_id).membership.status))
    assert state == ("returned", "returned")
    mail = db_check(lambda s: s.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id.desc())).first())
    assert "retourné" in mail.subject and "AM04 : provision insuffisante" in mail.body_text
    assert "Pointez-la" in mail.body_text and "Ce qu'il faut faire" in mail.body_text
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    assert "retourné après règlement, à représenter" in page and "passer au chèque" in page


# -- the bank's files ------------------------------------------------------------------------------


def _sample(name: str, batch: DebitBatch) -> bytes:
    return (DATA / name).read_bytes().replace(b"BATCH", str(batch.id).encode())


def test_pain_002_rejections_are_matched_confirmed_and_applied_once(session, campaign):
    batch = _exported(session, campaign)
    content = _sample("pain.002.001.03_rejets.xml", batch)
    report = debits.store_report(session, content, "rejets.xml", by=None)
    plan = debits.report_plan(session, report)
    assert [(c.debit.coop.number, c.action) for c in plan.changes] == [(2, "reject"), (1, "none")]
    assert [t.end_to_end_id for t in plan.unknown] == ["AUTRE-CREANCIER-0042"]
    assert batch.debits[1].status == "pending"  # nothing applied before the confirmation
    applied = debits.apply_report(session, report, today=TODAY, by=None, now=NOW)
    assert [(a.debit.coop.number, a.debit.reason_code, a.returned) for a in applied] == [(2, "AM04", None)]
    assert batch.debits[1].membership.status == "rejected"
    with pytest.raises(DomainError, match="déjà été appliqué"):
        debits.apply_report(session, report, today=TODAY, by=None, now=NOW)
    assert debits.store_report(session, content, "encore.xml", by=None).id == report.id


def test_camt_054_returns_after_settlement_from_the_back_office(app, campaign, make_staff, login_as, clock, db_check):
    clock(datetime(2025, 10, 2, 8))
    with app.app_context():
        batch = _exported(db.session, campaign)
        debits.settle_batch(db.session, batch, by=None, now=NOW, post_to_ledgers=True)
        db.session.commit()
        content = _sample("camt.054.001.02_retours.xml", batch)
        db.session.remove()
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    response = client.post(
        "/admin/prelevements/retours",
        data={"file": (io.BytesIO(content), "retours.xml")},
        content_type="multipart/form-data",
    )
    report_url = response.headers["Location"]
    page = client.get(report_url).get_data(as_text=True)
    assert "INCONNU-2025-999" in page and "sera marqué retourné après règlement : AC04 : compte clôturé" in page
    assert "sera marqué remboursé" in page
    assert db_check(lambda s: sorted(d.status for d in s.scalars(sa.select(Debit)))) == ["paid"] * 3
    client.post(report_url + "/appliquer")
    statuses = db_check(
        lambda s: [(d.coop.number, d.status, d.reason_code) for d in s.scalars(sa.select(Debit).order_by(Debit.id))]
    )
    assert statuses == [(1, "returned", "AC04"), (2, "paid", ""), (3, "refunded", "MD06")]
    reversal = db_check(
        lambda s: s.get(Entry, s.scalars(sa.select(Debit).order_by(Debit.id)).first().reversal_entry_id).date
    )
    assert reversal == date(2025, 10, 1)  # the booking date of the bank's file
    subjects = db_check(lambda s: [m.subject for m in s.scalars(sa.select(OutboxEmail))])
    assert sum("retourné" in s for s in subjects) == 1 and sum("remboursé" in s for s in subjects) == 1
    # the same file again: nothing applied twice
    response = client.post(
        "/admin/prelevements/retours",
        data={"file": (io.BytesIO(content), "retours.xml")},
        content_type="multipart/form-data",
    )
    assert response.headers["Location"] == report_url
    assert "déjà été appliqué" in client.get(report_url).get_data(as_text=True)
    client.post(report_url + "/appliquer")
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == len(subjects)


def test_a_file_that_is_not_a_bank_report_is_refused_in_french(session):
    with pytest.raises(DomainError, match="ni un compte rendu"):
        debits.parse_bank_report(
            b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>'
        )
    with pytest.raises(DomainError, match="pas un fichier XML"):
        debits.parse_bank_report(b"IBAN;Montant\n")


# -- files -----------------------------------------------------------------------------------------


def _xsd(schema: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(Path(sepaxml.__file__).parent / "schemas" / f"{schema}.xsd"))


@pytest.mark.parametrize("schema", ["pain.008.001.08", "pain.008.001.02"])
def test_a_run_is_split_by_the_bank_cap_with_consistent_headers(session, campaign, schema):
    federation = session.scalar(sa.select(Federation))
    federation.sepa_schema, federation.debit_max_per_file = schema, 2
    batch = _exported(session, campaign)
    assert [f.count for f in batch.files] == [2, 1]
    assert len({f.message_id for f in batch.files}) == 2
    assert sum(f.control_sum_cents for f in batch.files) == batch.control_sum_cents
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{schema}"}
    for file in batch.files:
        _xsd(schema).validate(file.xml_content)
        root = etree.fromstring(file.xml_content)
        amounts = [Decimal(a) for a in root.xpath("//p:DrctDbtTxInf/p:InstdAmt/text()", namespaces=ns)]
        assert root.xpath("//p:GrpHdr/p:MsgId/text()", namespaces=ns) == [file.message_id]
        assert root.xpath("//p:GrpHdr/p:NbOfTxs/text()", namespaces=ns) == [str(file.count)] == [str(len(amounts))]
        assert Decimal(root.xpath("//p:GrpHdr/p:CtrlSum/text()", namespaces=ns)[0]) == sum(amounts)
        assert Decimal(root.xpath("//p:PmtInf/p:CtrlSum/text()", namespaces=ns)[0]) * 100 == file.control_sum_cents
        rows = list(csv.reader(io.StringIO(file.csv_content.decode("utf-8-sig")), delimiter=";"))[1:]
        assert sum(int(row[-1].replace(",", "")) for row in rows) == file.control_sum_cents and len(rows) == file.count
    assert {d.file_id for d in batch.debits} == {f.id for f in batch.files}


@pytest.mark.parametrize("schema", ["pain.008.001.08", "pain.008.001.02"])
def test_the_first_debit_after_a_mandate_change_carries_the_amendment(session, campaign, schema):
    session.scalar(sa.select(Federation)).sepa_schema = schema
    batch = _exported(session, campaign)
    debits.settle_batch(session, batch, by=None, now=NOW, post_to_ledgers=False)
    for debit in batch.debits:
        debits.return_debit(session, debit, code="AM04", on=COLLECTION, by=None, now=NOW)
    coops = [session.get(Membership, i).coop for i in campaign]
    coops[0].iban = OTHER_IBAN_SAME_BANK
    coops[1].debit_mandate_ref = "OCCE85-COOP-002-B"
    coops[2].iban = OTHER_IBAN_OTHER_BANK
    later, _ = debits.create_batch(session, campaign, date(2025, 10, 15), today=date(2025, 10, 1), by=None)
    debits.export_batch(session, later, by=None, now=NOW)
    content = later.files[0].xml_content
    _xsd(schema).validate(content)
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{schema}"}
    root = etree.fromstring(content)
    mandates = root.xpath("//p:MndtRltdInf", namespaces=ns)
    assert [m.findtext("p:AmdmntInd", namespaces=ns) for m in mandates] == ["true"] * 3
    assert (
        mandates[0].findtext("p:AmdmntInfDtls/p:OrgnlDbtrAcct/p:Id/p:IBAN", namespaces=ns)
        == "FR7615519000010002000000103"
    )
    assert mandates[1].findtext("p:AmdmntInfDtls/p:OrgnlMndtId", namespaces=ns) == "OCCE85-COOP-002"
    assert mandates[2].findtext("p:AmdmntInfDtls/p:OrgnlDbtrAgt/p:FinInstnId/p:Othr/p:Id", namespaces=ns) == "SMNDA"


def test_downloads_carry_one_charset(app, campaign, make_staff, login_as, clock):
    clock(datetime(2025, 9, 1, 8))
    with app.app_context():
        batch_id = _exported(db.session, campaign).id
        db.session.commit()
        db.session.remove()
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    assert client.get(f"/admin/prelevements/{batch_id}/export.csv").headers["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        client.get(f"/admin/prelevements/{batch_id}/fichier/1/sepa.xml").headers["Content-Type"].count("charset") == 1
    )
    page = client.get(f"/admin/prelevements/{batch_id}").get_data(as_text=True)
    assert re.search(r"1 / 1</td><td>OCCE85-SDD-20250915-\d{4}</td><td class=\"text-right\">3</td>", page)


# -- command line and coop numbers -----------------------------------------------------------------


def test_flask_debits_create(app, campaign, clock, db_check):
    clock(datetime(2025, 9, 1, 8))
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["debits", "create", "--date", "13/09/2025"])
    assert refused.exit_code != 0 and "est un samedi" in refused.output
    with app.app_context():
        coop = db.session.scalar(sa.select(Coop).where(Coop.number == 2))
        coop.debit_mandate_signed_on = date(2020, 1, 6)
        db.session.commit()
        db.session.remove()
    result = runner.invoke(args=["debits", "create", "--date", "15/09/2025", "--coops", "085-001,085-002,085-0042"])
    assert result.exit_code == 0, result.output
    assert "085-042 : coopérative inconnue." in result.output
    assert "085-002 Coopérative_école Ève-Noël laissée de côté : mandat caduc" in result.output
    assert "Prélèvement n° " in result.output and "1 adhésion(s)" in result.output
    assert "1 coopérative(s) prévenue(s) par courriel" in result.output
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 1


def test_coop_numbers_go_up_to_9999(session, make_coop):
    make_coop(1234)
    coop = session.scalar(sa.select(Coop).where(Coop.number == 1234))
    assert coop.login == coop_login(1234) == "085-1234" and coop_login(7) == "085-007"
    session.add(Coop(number=10000, name="Trop grand"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


WHOLE_FILE_REJECTED = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BQ-PSR-REJET-FICHIER</MsgId><CreDtTm>2025-09-12T07:30:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>{message_id}</OrgnlMsgId>
      <OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>
      <GrpSts>RJCT</GrpSts>
      <StsRsnInf><Rsn><Cd>FF01</Cd></Rsn></StsRsnInf>
    </OrgnlGrpInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"""


def test_a_whole_file_rejected_by_the_bank_rejects_each_of_its_debits(session, campaign):
    """pain.002 with a group status RJCT and no line per debit (e.g. the file's format refused)."""
    batch = _exported(session, campaign)
    message_id = batch.files[0].message_id
    content = WHOLE_FILE_REJECTED.format(message_id=message_id).encode()
    report = debits.store_report(session, content, "rejet-fichier.xml", by=None)
    plan = debits.report_plan(session, report)
    assert sorted(c.debit.coop.number for c in plan.to_apply) == [1, 2, 3] and plan.unknown == []
    debits.apply_report(session, report, today=TODAY, by=None, now=NOW)
    assert {(d.status, d.reason_code) for d in batch.debits} == {("rejected", "FF01")}

    unknown = WHOLE_FILE_REJECTED.format(message_id="FICHIER-INCONNU").encode()
    plan = debits.report_plan(session, debits.store_report(session, unknown, "autre.xml", by=None))
    assert [t.end_to_end_id for t in plan.unknown] == ["fichier FICHIER-INCONNU"] and plan.changes == []
