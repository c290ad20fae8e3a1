"""Back-office review of submitted CRA/CRF: automatic checks, documents inline, approve, return, reopen."""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from reportlab.pdfgen import canvas

from app import cahier as cahier_format
from app import closing, cra, submission
from app import ledger as books
from app.annual_report import ensure_report
from app.crf import build_crf
from app.extensions import db
from app.models import Coop, OutboxEmail
from app.models.reports import AnnualReport

EXAMPLE = Path(__file__).parent / "data" / "exemple_2024-2025.csv"
NOW = datetime(2025, 9, 20, 10)


def _pdf(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def submitted_report(app, coop_id: int, upload_dir: str) -> int:
    """The worked example, closed, CRA and quitus filled, documents uploaded, submitted."""
    with app.app_context():
        session = db.session
        coop = session.get(Coop, coop_id)
        ledger = books.open_ledger(session, coop, 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        closing.close_ledger(session, ledger, statement_balance=309240, cash_count=5000, by=None, now=NOW)
        report = ensure_report(session, ledger)
        answers = cra.CraAnswers(
            classes=(cra.CraClass("CP", "CP", 24),),
            council_count=3,
            actions=(cra.CraAction("Classe de mer", "Trois jours à Noirmoutier"),),
            occe_participation="oui",
            occe_actions="Rencontres chorales",
            comment="",
        )
        cra.save_cra(session, report, answers, by=None, now=NOW)
        mandataires = cra.current_mandataires(coop, NOW.date())
        cra.save_quitus(
            session,
            report,
            [cra.Auditor("Paul Durand", "parent"), cra.Auditor("Anne Lemaire", "teacher")],
            mandataires[0],
            mandataires=mandataires,
            by=None,
            now=NOW,
        )
        crf = build_crf(session, ledger)
        for slot in submission.document_slots(crf):
            if slot.required:
                submission.attach_document(
                    session,
                    report,
                    slot,
                    upload_dir=upload_dir,
                    filename=f"{slot.key}.pdf",
                    content=_pdf(slot.label),
                    by=None,
                )
        submission.submit_report(session, report, crf, mandataires=mandataires, by=None, now=NOW)
        session.commit()
        report_id = report.id
        session.remove()
    return report_id


@pytest.fixture
def two_reports(app, make_coop):
    first, second = make_coop(1), make_coop(2)
    upload_dir = app.config["UPLOAD_DIR"]
    return submitted_report(app, first.id, upload_dir), submitted_report(app, second.id, upload_dir)


def test_review_page_shows_figures_checks_and_documents(app, two_reports, make_staff, login_as):
    client = login_as(make_staff(), on=app.test_client())
    listing = client.get("/admin/comptes-rendus/").get_data(as_text=True)
    assert "Envoyé à l&#39;OCCE 85 (2)" in listing and "085-001" in listing and "085-002" in listing
    page = client.get(f"/admin/comptes-rendus/{two_reports[0]}").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Résultat (excédent) 1 142,40" in text.replace("\u202f", " ").replace("\u00a0", " ")
    assert "✔ Le bilan est équilibré" in text and "✔ Le rapprochement bancaire au 31 août est expliqué" in text
    assert "✔ Les justificatifs obligatoires sont déposés." in text
    assert "Classe de mer" in text and "Paul Durand (Parent d&#39;élève)" in page
    link = re.search(r'href="(/admin/comptes-rendus/\d+/document/\d+)"', page).group(1)
    document = client.get(link)
    body = document.get_data()
    document.close()  # send_file streams from an open file
    assert document.status_code == 200 and body.startswith(b"%PDF")
    assert document.headers["Content-Security-Policy"] == "sandbox" and "inline" in document.headers.get(
        "Content-Disposition", "inline"
    )


def test_approve_one_and_return_another(app, two_reports, make_staff, login_as, db_check):
    client = login_as(make_staff(), on=app.test_client())
    approve, send_back = two_reports
    assert client.post(f"/admin/comptes-rendus/{approve}/approuver").status_code == 302
    refused = client.post(f"/admin/comptes-rendus/{send_back}/renvoyer", data={"reason": ""})
    assert refused.status_code == 302
    assert db_check(lambda s: s.get(AnnualReport, send_back).status) == "submitted"
    client.post(
        f"/admin/comptes-rendus/{send_back}/renvoyer", data={"reason": "Le relevé du 31 août manque de la page 2."}
    )
    statuses = db_check(
        lambda s: (
            s.get(AnnualReport, approve).status,
            s.get(AnnualReport, send_back).status,
            s.get(AnnualReport, send_back).return_reason,
        )
    )
    assert statuses == ("approved", "returned", "Le relevé du 31 août manque de la page 2.")
    mails = db_check(
        lambda s: [
            (m.recipient, m.subject, m.body_text)
            for m in s.scalars(
                sa.select(OutboxEmail).where(OutboxEmail.subject.like("Compte rendu%")).order_by(OutboxEmail.id)
            )
        ]
    )
    assert any("approuvé" in subject and to == "coop1@example.org" for to, subject, _ in mails)
    assert any("corrections" in subject and "manque de la page 2" in body for _, subject, body in mails)
    # an approved report cannot be returned any more
    client.post(f"/admin/comptes-rendus/{approve}/renvoyer", data={"reason": "Trop tard"})
    assert db_check(lambda s: s.get(AnnualReport, approve).status) == "approved"


def test_reopen_the_ledger_from_the_review(app, two_reports, make_staff, login_as, db_check):
    client = login_as(make_staff(), on=app.test_client())
    report_id = two_reports[0]
    client.post(f"/admin/comptes-rendus/{report_id}/rouvrir", data={"reason": ""})
    assert db_check(lambda s: s.get(AnnualReport, report_id).ledger.status) == "closed"
    client.post(f"/admin/comptes-rendus/{report_id}/rouvrir", data={"reason": "Erreur de ventilation en juin"})
    assert db_check(lambda s: s.get(AnnualReport, report_id).ledger.status) == "open"


def test_coops_cannot_review(app, two_reports, make_coop, login_as):
    client = login_as("085-001", on=app.test_client())
    assert client.get(f"/admin/comptes-rendus/{two_reports[0]}").status_code == 403


def test_automatic_checks_read_the_crf_and_what_is_missing(app, two_reports):
    with app.app_context():
        report = db.session.get(AnnualReport, two_reports[0])
        crf = build_crf(db.session, report.ledger)
        checks = submission.automatic_checks(crf, [])
        assert all(check.ok for check in checks) and len(checks) == 5
        missing = [submission.Missing("documents", "Déposer : Quitus signé."), submission.Missing("cra", "CRA.")]
        *_, documents = submission.automatic_checks(crf, missing)
        assert documents == (False, "Justificatifs manquants : Déposer : Quitus signé.")
