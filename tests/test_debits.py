"""Direct debits: validation, SEPA XML valid against both schemas, CSV, stored bytes, settlement, rejection."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from datetime import date, datetime

import pytest
import sqlalchemy as sa
import xmlschema
from lxml import etree

from app import debits
from app import membership as memberships
from app.demo import creditor_identifier
from app.errors import DomainError
from app.extensions import db
from app.formats import euros
from app.models import Coop, Debit, DebitBatch, Entry, Federation, Membership, OutboxEmail, SchoolYear

TODAY = date(2025, 9, 1)
NOW = datetime(2025, 9, 1, 10)


@pytest.fixture
def campaign(app, make_coop):
    """Three coops with a committed membership paying by debit; tricky names included."""
    names = ["Coop « Les P'tits Loups » & Cie", "Coopérative_école Ève-Noël", "Ecole d'Olonne"]
    infos = [make_coop(n, name=name) for n, name in enumerate(names, start=1)]
    with app.app_context():
        session = db.session
        session.add(
            Federation(
                name="OCCE 85 — Office central & coopération",
                creditor_id=creditor_identifier("FR", "850042"),
                iban="FR7615519000010008500008515",
                bic="CMCIFR2A",
            )
        )
        year = SchoolYear(
            start_year=2025,
            pupil_fee_cents=205,
            adult_fee_cents=205,
            insurance_fee_cents=25,
            property_threshold_cents=200000,
            property_rate_ppm=6880,
        )
        session.add(year)
        ids = []
        for info in infos:
            coop = session.get(Coop, info.id)
            coop.debit_mandate_ref = f"OCCE85-COOP-{coop.number:03d}"
            coop.debit_mandate_signed_on = date(2024, 9, 2)
            headcounts = memberships.Headcounts(classes=(memberships.ClassHeadcount("CP", "CP", 20 + info.number, 1),))
            membership = memberships.save_draft(session, coop, year, headcounts, by=None)
            memberships.commit_membership(session, membership, coop.mandates[0], by=None, ip="127.0.0.1", now=NOW)
            ids.append(membership.id)
        session.commit()
        session.remove()
    return ids


def test_batch_validates_and_lists_what_is_left_out(session, campaign):
    coop = session.get(Membership, campaign[2]).coop
    coop.debit_mandate_ref = "RUM AVEC ESPACES"
    with pytest.raises(DomainError, match="au plus tôt le 08/09/2025"):
        debits.create_batch(session, campaign, date(2025, 9, 3), today=TODAY, by=None)
    batch, excluded = debits.create_batch(session, campaign, date(2025, 9, 15), today=TODAY, by=None)
    assert batch.count == 2 and batch.control_sum_cents == sum(
        session.get(Membership, i).total_cents for i in campaign[:2]
    )
    assert [(e.coop.number, e.reasons) for e in excluded] == [
        (3, ("RUM invalide (35 caractères au plus : lettres, chiffres et / - ? : ( ) . , ' + sans espace)",))
    ]
    assert {session.get(Membership, i).status for i in campaign[:2]} == {"in_batch"}
    assert session.get(Membership, campaign[2]).status == "committed"


@pytest.mark.parametrize("schema", ["pain.008.001.08", "pain.008.001.02"])
def test_sepa_file_is_valid_against_the_xsd_with_clean_names(session, campaign, schema):
    session.scalar(sa.select(Federation)).sepa_schema = schema
    batch, _ = debits.create_batch(session, campaign, date(2025, 9, 15), today=TODAY, by=None)
    debits.export_batch(session, batch, by=None, now=NOW)
    from pathlib import Path

    import sepaxml

    xsd = Path(sepaxml.__file__).parent / "schemas" / f"{schema}.xsd"
    xmlschema.XMLSchema(str(xsd)).validate(batch.files[0].xml_content)  # raises when invalid
    root = etree.fromstring(batch.files[0].xml_content)
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{schema}"}
    names = root.xpath("//p:Dbtr/p:Nm/text()", namespaces=ns)
    assert names == ["Coop Les P'tits Loups + Cie", "Cooperative ecole Eve-Noel", "Ecole d'Olonne"]
    assert root.xpath("//p:GrpHdr/p:NbOfTxs/text()", namespaces=ns) == ["3"]
    assert root.xpath("//p:GrpHdr/p:CtrlSum/text()", namespaces=ns) == [f"{batch.control_sum_cents / 100:.2f}"]
    assert set(root.xpath("//p:SeqTp/text()", namespaces=ns)) == {"RCUR"}
    assert len(root.xpath("//p:PmtInf", namespaces=ns)) == 1
    assert root.xpath("//p:GrpHdr/p:MsgId/text()", namespaces=ns) == [batch.message_id]
    text_nodes = "".join(root.itertext())
    assert "&" not in text_nodes and "_" not in text_nodes and "é" not in text_nodes


def test_csv_companion_matches_the_xml(session, campaign):
    batch, _ = debits.create_batch(session, campaign, date(2025, 9, 15), today=TODAY, by=None)
    debits.export_batch(session, batch, by=None, now=NOW)
    assert batch.files[0].csv_content.startswith("\ufeff".encode()) and b"\r\n" in batch.files[0].csv_content
    rows = list(csv.reader(io.StringIO(batch.files[0].csv_content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Date d'échéance" and len(rows) == 4
    total = sum(int(row[-1].replace(",", "")) for row in rows[1:])
    assert total == batch.control_sum_cents
    assert rows[1][:3] == ["15/09/2025", "RCUR", "085-001"]


def test_downloading_again_gives_identical_bytes(session, campaign):
    batch, _ = debits.create_batch(session, campaign, date(2025, 9, 15), today=TODAY, by=None)
    debits.export_batch(session, batch, by=None, now=NOW)
    first = batch.files[0].xml_content
    debits.export_batch(session, batch, by=None, now=NOW)
    assert len(batch.files) == 1 and batch.files[0].xml_content == first
    assert batch.files[0].xml_sha256 == hashlib.sha256(first).hexdigest()


def test_settlement_pays_mails_and_posts_to_ledgers(session, campaign):
    batch, _ = debits.create_batch(session, campaign, date(2025, 9, 15), today=TODAY, by=None)
    with pytest.raises(DomainError, match="exporté"):
        debits.settle_batch(session, batch, by=None, now=NOW, post_to_ledgers=True)
    debits.export_batch(session, batch, by=None, now=NOW)
    rejected = debits.reject_debit(session, batch.debits[1], code="AM04", by=None, now=NOW)
    assert rejected.status == "rejected"
    paid = debits.settle_batch(session, batch, by=None, now=NOW, post_to_ledgers=True)
    assert [m.id for m in paid] == [campaign[0], campaign[2]]
    assert {session.get(Membership, i).status for i in (campaign[0], campaign[2])} == {"paid"}
    entry = session.scalar(sa.select(Entry).where(Entry.coop_id == paid[0].coop_id))
    lines = {line.account.code: line.amount_cents for line in entry.lines}
    assert lines["6281"] == paid[0].cotisation_cents and lines["512"] == -paid[0].total_cents
    assert lines["6281"] + lines["61681"] == paid[0].total_cents
    assert all(line.cleared_on is None for line in entry.lines)
    # the rejected membership can go into the next run
    batch2, _ = debits.create_batch(session, [campaign[1]], date(2025, 10, 15), today=TODAY, by=None)
    assert batch2.count == 1 and session.get(Membership, campaign[1]).status == "in_batch"


def test_cheque_memberships_never_enter_a_batch(session, campaign):
    membership = session.get(Membership, campaign[0])
    membership.payment_method = "cheque"
    batch, excluded = debits.create_batch(session, [campaign[0]], date(2025, 9, 15), today=TODAY, by=None)
    assert batch is None and "se règle par chèque" in excluded[0].reasons


def test_sepa_text_and_ids():
    assert debits.sepa_text("École « Jean-Zay » & Co_op n°3", 70) == "Ecole Jean-Zay + Co op n 3"
    assert debits.is_sepa_id("OCCE85-COOP-001") and not debits.is_sepa_id("OCCE 85") and not debits.is_sepa_id("x" * 36)
    assert debits.earliest_collection_date(date(2025, 9, 5), 5) == date(2025, 9, 12)  # a Friday + 5 business days


def test_creditor_id_is_checked_and_normalised():
    ics = creditor_identifier("FR", "123456")
    assert debits.check_creditor_id(f" {ics[:4].lower()} {ics[4:]} ") == ics
    wrong = ics[:2] + f"{(int(ics[2:4]) + 1) % 100:02d}" + ics[4:]
    with pytest.raises(ValueError, match="Identifiant créancier SEPA invalide"):
        debits.check_creditor_id(wrong)


def run_form(page: str, **changes) -> dict:
    """What the run page's « Créer le prélèvement » form posts: the coops set aside, the count and total
    shown to staff (hidden fields) and the collection date it proposes, with `changes` applied."""
    fields: dict = {"exclure": []}
    form = page[page.index('id="run-create-title"') :]
    for name, value in re.findall(r'<input type="hidden" name="(exclure|nombre|total)" value="(\d+)"', form):
        if name == "exclure":
            fields["exclure"].append(value)
        else:
            fields[name] = value
    fields["collection_date"] = re.search(r'name="collection_date"[^>]*value="([0-9-]+)"', form).group(1)
    fields.update(changes)
    return fields


def included(page: str) -> list[str]:
    """The coops (« 085-001 Name ») listed as included in the run to come, on this page of the list."""
    if 'id="run-included"' not in page:
        return []
    table = page[page.index('id="run-included"') :]
    table = table[: table.index("</table>")]
    return [html.unescape(name) for name in re.findall(r'<th scope="row"[^>]*>([^<]+)</th>', table)]


def test_back_office_run_end_to_end(app, campaign, make_staff, login_as, db_check, clock, tmp_path):
    clock(NOW)
    client = login_as(make_staff("tresoriere"), on=app.test_client())
    page = client.get("/admin/prelevements/").get_data(as_text=True)
    assert [name[:7] for name in included(page)] == ["085-001", "085-002", "085-003"]
    total = db_check(lambda s: sum(m.total_cents for m in s.scalars(sa.select(Membership))))
    assert f"3 adhésion(s)</strong> seront prélevées, pour un total de <strong>{euros(total)}" in page
    response = client.post("/admin/prelevements/", data=run_form(page, collection_date="2025-09-15"))
    batch_url = response.headers["Location"]
    batch_id = int(re.search(r"/(\d+)$", batch_url).group(1))
    page = client.get(batch_url).get_data(as_text=True)
    total = db_check(lambda s: s.get(DebitBatch, batch_id).control_sum_cents)
    assert f"Prélèvement n° {batch_id} préparé : 3 adhésion(s)" in page
    assert client.post(f"/admin/prelevements/{batch_id}/exporter").status_code == 302
    first = client.get(f"/admin/prelevements/{batch_id}/sepa.xml")
    second = client.get(f"/admin/prelevements/{batch_id}/sepa.xml")
    assert first.data == second.data and first.headers["Content-Disposition"].startswith("attachment")
    csv_response = client.get(f"/admin/prelevements/{batch_id}/export.csv")
    assert csv_response.data.startswith("\ufeff".encode())
    debit_id = db_check(lambda s: s.scalars(sa.select(Debit.id).where(Debit.batch_id == batch_id)).first())
    client.post(f"/admin/prelevements/{batch_id}/rejet/{debit_id}", data={"reason_code": "AM04"})
    client.post(f"/admin/prelevements/{batch_id}/effectue")
    statuses = db_check(lambda s: sorted(m.status for m in s.scalars(sa.select(Membership))))
    assert statuses == ["paid", "paid", "rejected"]
    mails = db_check(lambda s: [m.subject for m in s.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id))])
    assert sum("rejeté" in subject for subject in mails) == 1 and len(mails) >= 3
    # the CLI writes the same stored bytes
    out = tmp_path / "batch.xml"
    result = app.test_cli_runner().invoke(
        args=["debits", "export", str(batch_id), "--format", "sepa", "--out", str(out)]
    )
    assert result.exit_code == 0 and out.read_bytes() == first.data
    assert f"total {euros(total)}," in result.output


def test_coop_users_cannot_reach_the_runs(app, campaign, make_coop, login_as):
    client = login_as("085-001", on=app.test_client())
    assert client.get("/admin/prelevements/").status_code == 403
