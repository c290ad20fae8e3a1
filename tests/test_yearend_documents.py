"""Year-end documents that take several files (subsidy proofs, other documents): each upload adds one,
each can be removed after a confirmation (audited), none once the report is sent; staff see them all;
another coop sees none of them. The quitus and the statement keep one file each."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app import cahier as cahier_format
from app import closing, submission
from app import ledger as books
from app.annual_report import ensure_report
from app.crf import build_crf
from app.errors import DomainError
from app.models import AnnualReport, AuditEvent, Coop, Document
from tests.conftest import PASSWORD
from tests.test_yearend import (
    CASH,
    EXAMPLE,
    SEPT_15,
    STATEMENT,
    _close_by_web,
    _cra_data,
    _membership,
    _quitus_data,
    _real_pdf,
    _text,
    _upload,
)

PAGE = "/coop/compte-rendu/2024/justificatifs"


def _year_of(session, coop_id: int):
    ledger = books.open_ledger(session, session.get(Coop, coop_id), 2024)
    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    return ledger


@pytest.fixture
def web_example(app, make_coop, db_check, clock):
    """Coop 085-001 with the worked example 2024-2025 (open) and its membership of that year."""
    info = make_coop(1)

    def load(session):
        _membership(session, _year_of(session, info.id))
        session.commit()

    db_check(load)
    return info


def _documents(db_check, kind: str = "report_subsidies") -> list[tuple[int, str, str]]:
    """(id, name, storage key) of the report's documents of `kind`, oldest first."""
    return db_check(
        lambda s: [
            (d.id, d.original_name, d.storage_key)
            for d in s.scalars(sa.select(Document).where(Document.kind == kind).order_by(Document.id))
        ]
    )


def _audits(db_check, action: str) -> list[tuple[str | None, dict | None]]:
    return db_check(
        lambda s: [
            (e.actor_login, e.before)
            for e in s.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        ]
    )


def _two_subsidy_proofs(client, db_check) -> list[tuple[int, str, str]]:
    _close_by_web(client)
    assert _upload(client, "subsidies", _real_pdf(), "courrier-mairie.pdf").status_code == 302
    second = _upload(client, "subsidies", _real_pdf(), "virement-departement.pdf")
    assert second.status_code == 302 and second.headers["Location"].endswith("#piece-subsidies")
    shown = _text(client.get(second.headers["Location"]))
    assert (
        "Justificatifs des subventions : fichier déposé (virement-departement.pdf). "
        "Cette ligne compte maintenant 2 fichiers."
    ) in shown
    return _documents(db_check)


def _send(client) -> None:
    client.post("/coop/compte-rendu/2024/activites", data=_cra_data())
    client.post("/coop/compte-rendu/2024/quitus", data=_quitus_data())
    _upload(client, "quitus", _real_pdf(), "quitus.pdf")
    _upload(client, "statement", _real_pdf(), "releve.pdf")
    sent = client.post("/coop/compte-rendu/2024/envoi", data={})
    assert "envoyé à l'OCCE 85" in _text(client.get(sent.headers["Location"]))


def test_two_subsidy_proofs_are_both_kept_and_listed(app, client, web_example, login_as, db_check):
    login_as(web_example)
    proofs = _two_subsidy_proofs(client, db_check)
    assert [name for _id, name, _key in proofs] == ["courrier-mairie.pdf", "virement-departement.pdf"]
    upload_dir = Path(app.config["UPLOAD_DIR"])
    assert all((upload_dir / key).is_file() for _id, _name, key in proofs)
    assert _audits(db_check, "document.replaced") == []

    page = _text(client.get(PAGE))
    slot = page.split('id="piece-subsidies"')[1].split('id="piece-other"')[0]
    assert "2 fichiers" in slot and "À déposer" not in slot
    for document_id, name, _key in proofs:
        assert name in slot
        assert f'href="/coop/compte-rendu/2024/justificatifs/{document_id}">Voir' in slot
        assert f'href="/coop/compte-rendu/2024/justificatifs/{document_id}/retirer">Retirer' in slot
    assert "Ajouter un autre fichier" in slot and "Ajouter ce fichier" in slot
    assert re.search(r"\(\d+ ko, déposé le 15/09/2025 à 10:30\)", slot)
    empty = page.split('id="piece-other"')[1]
    assert "aucun fichier" in empty and "Retirer" not in empty.split("</li>")[0]

    shown = client.get(f"/coop/compte-rendu/2024/justificatifs/{proofs[1][0]}")
    body = shown.get_data()
    shown.close()  # send_file streams from an open file
    assert shown.status_code == 200 and body.startswith(b"%PDF")
    assert shown.headers["Content-Disposition"].startswith("attachment")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    viewed = db_check(
        lambda s: s.scalar(sa.select(AuditEvent.entity_id).where(AuditEvent.action == "document.downloaded"))
    )
    assert viewed == proofs[1][0]
    assert "Déposer : Justificatifs des subventions." not in _text(client.get("/coop/compte-rendu/2024/envoi"))


def test_the_quitus_and_the_statement_keep_one_file(app, client, web_example, login_as, db_check):
    login_as(web_example)
    _close_by_web(client)
    _upload(client, "quitus", _real_pdf(), "quitus-brouillon.pdf")
    first = _documents(db_check, "report_quitus")
    page = _text(client.get(PAGE)).split('id="piece-quitus"')[1].split('id="piece-statement"')[0]
    assert "Remplacer le fichier déposé" in page and "Retirer" not in page
    assert f"/justificatifs/{first[0][0]}/retirer" not in page
    replaced = _upload(client, "quitus", _real_pdf(), "quitus-signe.pdf")
    assert "Quitus signé : fichier remplacé (quitus-signe.pdf)." in _text(client.get(replaced.headers["Location"]))
    assert [name for _id, name, _key in _documents(db_check, "report_quitus")] == ["quitus-signe.pdf"]
    assert not (Path(app.config["UPLOAD_DIR"]) / first[0][2]).exists()
    assert client.get(f"/coop/compte-rendu/2024/justificatifs/{first[0][0] + 1}/retirer").status_code == 404


def test_removing_one_proof_asks_first_keeps_the_other_and_is_audited(app, client, web_example, login_as, db_check):
    login_as(web_example)
    (first_id, first_name, first_key), second = _two_subsidy_proofs(client, db_check)
    url = f"/coop/compte-rendu/2024/justificatifs/{first_id}/retirer"

    confirm = client.get(url)
    page = _text(confirm)
    assert confirm.status_code == 200
    assert "Retirer le fichier « courrier-mairie.pdf » ?" in page
    assert (
        "L'autre fichier de cette ligne reste déposé." in page
        and "Oui, retirer ce fichier" in page
        and "Non, le garder" in page
    )
    assert len(_documents(db_check)) == 2  # the page alone removes nothing

    done = client.post(url, data={})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"{PAGE}#piece-subsidies")
    shown = _text(client.get(done.headers["Location"]))
    assert "Justificatifs des subventions : fichier « courrier-mairie.pdf » retiré." in shown
    assert "courrier-mairie.pdf" not in shown.split("retiré.")[1] and "virement-departement.pdf" in shown
    assert _documents(db_check) == [second]
    upload_dir = Path(app.config["UPLOAD_DIR"])
    assert not (upload_dir / first_key).exists() and (upload_dir / second[2]).is_file()
    (actor, before), *_ = _audits(db_check, "document.removed")
    assert actor == "085-001" and before["name"] == first_name and before["kind"] == "report_subsidies"
    assert client.post(url, data={}).status_code == 404  # already gone

    last = _text(client.get(f"/coop/compte-rendu/2024/justificatifs/{second[0]}/retirer"))
    assert "C'est le seul fichier de cette ligne : il faudra en déposer un autre" in last
    client.post(f"/coop/compte-rendu/2024/justificatifs/{second[0]}/retirer", data={})
    assert "Déposer : Justificatifs des subventions." in _text(client.get("/coop/compte-rendu/2024/envoi"))


def test_removal_needs_the_csrf_token(make_app, migrated, web_example, db_check):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()

    def token(path: str) -> str:
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(path).get_data(as_text=True))
        assert match, path
        return match.group(1)

    client.post("/connexion", data={"login": "085-001", "password": PASSWORD, "csrf_token": token("/connexion")})
    close = token("/coop/cloture/2024")
    client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2", "d1000": "1", "csrf_token": close})
    client.post("/coop/cloture/2024/releve", data={"balance": "3 092,40", "csrf_token": close})
    client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001", "csrf_token": close})
    upload = {"slot": "subsidies", "csrf_token": token(PAGE), "file": FileStorage(io.BytesIO(_real_pdf()), "a.pdf")}
    boundary, body = encode_multipart(upload)
    client.post(PAGE, data=body, content_type=f"multipart/form-data; boundary={boundary}")
    [(document_id, _name, _key)] = _documents(db_check)
    url = f"/coop/compte-rendu/2024/justificatifs/{document_id}/retirer"

    assert client.post(url, data={}).status_code == 400
    assert len(_documents(db_check)) == 1
    assert client.post(url, data={"csrf_token": token(url)}).status_code == 302
    assert _documents(db_check) == []


def test_nothing_is_added_or_removed_once_the_report_is_sent(app, client, web_example, login_as, make_staff, db_check):
    login_as(web_example)
    proofs = _two_subsidy_proofs(client, db_check)
    _send(client)
    url = f"/coop/compte-rendu/2024/justificatifs/{proofs[0][0]}/retirer"
    page = _text(client.get(PAGE))
    assert "Retirer" not in page and 'type="file"' not in page and "ne peuvent plus être modifiés" in page
    assert page.count(">Voir") == 4  # quitus, statement, two subsidy proofs: still readable

    for refused in (client.get(url), client.post(url, data={})):
        assert refused.status_code == 302 and refused.headers["Location"].endswith("#piece-subsidies")
        assert "il ne peut plus être modifié" in _text(client.get(refused.headers["Location"]))
    late = _upload(client, "subsidies", _real_pdf(), "en-retard.pdf")
    assert "il ne peut plus être modifié" in _text(client.get(late.headers["Location"]))
    assert _documents(db_check) == proofs

    staff = login_as(make_staff("agent"), on=app.test_client())
    report_id = db_check(lambda s: s.scalar(sa.select(AnnualReport.id)))
    review = _text(staff.get(f"/admin/comptes-rendus/{report_id}"))
    assert "Justificatifs des subventions (2 fichiers)" in review
    for document_id, name, _key in proofs:
        assert f'/admin/comptes-rendus/{report_id}/document/{document_id}"' in review and name in review
    assert "quitus.pdf" in review and "releve.pdf" in review

    staff.post(f"/admin/comptes-rendus/{report_id}/approuver")
    assert db_check(lambda s: s.scalar(sa.select(AnnualReport.status))) == "approved"
    refused = client.post(url, data={})
    assert "approuvé par l'OCCE 85 : il ne peut plus être modifié" in _text(client.get(refused.headers["Location"]))
    assert _documents(db_check) == proofs


def test_another_coop_can_neither_see_nor_remove_them(app, client, web_example, make_coop, login_as, db_check):
    """The other coop has its own closed year 2024: the first coop's files are a 404 there, audited."""
    login_as(web_example)
    proofs = _two_subsidy_proofs(client, db_check)
    info = make_coop(2)

    def closed_year(session):
        ledger = _year_of(session, info.id)
        closing.close_ledger(session, ledger, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15)
        session.commit()

    db_check(closed_year)
    other = login_as(info, on=app.test_client())
    for document_id, _name, _key in proofs:
        base = f"/coop/compte-rendu/2024/justificatifs/{document_id}"
        for response in (other.get(base), other.get(f"{base}/retirer"), other.post(f"{base}/retirer", data={})):
            assert response.status_code == 404
            assert "courrier-mairie" not in response.get_data(as_text=True)
    assert "courrier-mairie" not in other.get(PAGE).get_data(as_text=True)
    assert other.get(f"/coop/compte-rendu/2024/justificatifs/{2**63}/retirer").status_code == 404
    assert _documents(db_check) == proofs
    denied = db_check(lambda s: s.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "access.denied")))
    assert denied == 6


def test_a_slot_of_several_files_has_a_limit(monkeypatch, client, web_example, login_as, db_check):
    monkeypatch.setattr(submission, "MAX_FILES_PER_SLOT", 2)
    login_as(web_example)
    _two_subsidy_proofs(client, db_check)
    page = _text(client.get(PAGE))
    assert "Vous avez déposé 2 fichiers ici, le maximum" in page
    third = _upload(client, "subsidies", _real_pdf(), "troisieme.pdf")
    assert third.status_code == 200 and "retirez-en un ou réunissez plusieurs pages dans un seul PDF" in _text(third)
    assert len(_documents(db_check)) == 2


def test_only_the_files_of_a_slot_of_several_can_be_removed(session, make_coop, tmp_path):
    closed = _year_of(session, make_coop(1).id)
    closing.close_ledger(session, closed, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15)
    report = ensure_report(session, closed)
    slots = {slot.key: slot for slot in submission.document_slots(build_crf(session, closed))}
    assert [key for key, slot in slots.items() if slot.multiple] == ["subsidies", "other"]

    def attach(key: str) -> Document:
        document, _removed = submission.attach_document(
            session, report, slots[key], upload_dir=str(tmp_path), filename=f"{key}.pdf", content=_real_pdf(), by=None
        )
        return document

    quitus, proof = attach("quitus"), attach("subsidies")
    with pytest.raises(DomainError, match="ne peut pas être retiré"):
        submission.remove_report_document(session, report, quitus, by=None)
    assert submission.remove_report_document(session, report, proof, by=None) == proof.storage_key
    assert submission.report_documents(session, report) == {"report_quitus": [quitus]}
    report.status = "submitted"
    with pytest.raises(DomainError, match="ne peut plus être modifié"):
        submission.remove_report_document(session, report, quitus, by=None)
