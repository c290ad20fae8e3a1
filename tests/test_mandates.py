"""Change of mandataire: the transitions, the dossier's rules (teacher, effective date, documents, proof of
address under six months), the identity document on one page, the merged PDF for the bank, the switch of
mandates; the coop face (PRG, errors on their field, tenancy) and the back office (inline documents,
decisions, mails, mandate history). Test files are generated here (reportlab PDFs, Pillow photos).
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image, ImageDraw
from pypdf import PdfReader

from app.errors import DomainError, ValidationErrors
from app.mandate_pdf import merge_pdfs, page_ranges, render_cover
from app.mandates import (
    STATUS_LABELS,
    TRANSITIONS,
    ChangeDetails,
    attach_bank_document,
    attach_document,
    build_bank_dossier,
    complete_change,
    current_mandate,
    home_card,
    mark_sent_to_bank,
    months_before,
    oldest_proof_of_address,
    return_change,
    start_change,
    submit_change,
    transition,
    update_details,
    validate_change,
)
from app.models import AuditEvent, Coop, Document, Mandate, MandateChange, OutboxEmail
from app.pdf import PdfError
from app.web.home import checklist
from tests.conftest import DEFAULT_MOMENT
from tests.helpers import pdf_text

NOW = DEFAULT_MOMENT  # the clock is pinned (autouse fixture below)
TODAY = NOW.date()
STATIC_DIR = Path(__file__).resolve().parent.parent / "app" / "static"


# --- Generated files -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _pinned_clock(clock):
    """Every test of this module runs on 15 September 2025 (DEFAULT_MOMENT), whatever the real date."""


def make_pdf(*pages: str) -> bytes:
    """A PDF with one line of text per page (reportlab)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    sheet = canvas.Canvas(out, pagesize=A4)
    for text in pages:
        sheet.setFont("Helvetica", 18)
        sheet.drawString(72, 720, text)
        sheet.showPage()
    sheet.save()
    return out.getvalue()


def make_photo(label: str = "RECTO", size=(1600, 1000), colour=(200, 220, 240)) -> bytes:
    """A phone-like JPEG photo of an identity card side (Pillow)."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, size[0] - 40, size[1] - 40), outline=(0, 0, 0), width=8)
    draw.text((100, 100), label, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def pdf_pages(content: bytes) -> int:
    return len(PdfReader(io.BytesIO(content)).pages)


def details(**overrides) -> ChangeDetails:
    values = dict(
        incoming_civility="Mme",
        incoming_last_name="BERNARD",
        incoming_first_name="Julie",
        incoming_email="julie.bernard@example.org",
        incoming_phone="06 12 34 56 78",
        incoming_is_teacher=True,
        outgoing_civility="Mme",
        outgoing_last_name="MOREAU",
        outgoing_first_name="Claire",
        effective_date=TODAY,
        reason="mutation",
        reason_details="",
    )
    values.update(overrides)
    return ChangeDetails(**values)


# --- Fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def upload_dir(app) -> str:
    return app.config["UPLOAD_DIR"]


@pytest.fixture
def coop(session, make_coop) -> Coop:
    info = make_coop(1)
    return session.get(Coop, info.id)


def _complete_dossier(session, coop, upload_dir, *, today=TODAY, proof_date=None, effective=None) -> MandateChange:
    change = start_change(session, coop, details(effective_date=effective or today), by=None, today=today)
    attach_document(
        session,
        change,
        "mandate_form",
        [("formulaire.pdf", make_pdf("FORMULAIRE SIGNE"))],
        upload_dir=upload_dir,
        by=None,
        today=today,
    )
    attach_document(
        session,
        change,
        "identity",
        [("recto.jpg", make_photo("RECTO")), ("verso.jpg", make_photo("VERSO"))],
        upload_dir=upload_dir,
        by=None,
        today=today,
    )
    attach_document(
        session,
        change,
        "address_proof",
        [("edf.pdf", make_pdf("FACTURE PAGE 1", "FACTURE PAGE 2"))],
        upload_dir=upload_dir,
        by=None,
        today=today,
        proof_date=proof_date or today - timedelta(days=30),
    )
    return change


def _submitted(session, coop, upload_dir, **kwargs) -> MandateChange:
    change = _complete_dossier(session, coop, upload_dir, **kwargs)
    submit_change(session, change, by=None, now=NOW, today=TODAY)
    return change


def _cover(text: str):
    """A stand-in for the cover template: `render_html(context) -> str`."""
    return lambda context: f"<html><body><p>{text}</p></body></html>"


def _validated(session, coop, upload_dir) -> MandateChange:
    change = _submitted(session, coop, upload_dir)
    validate_change(
        session,
        change,
        render_html=_cover("PAGE DE GARDE"),
        static_dir=STATIC_DIR,
        upload_dir=upload_dir,
        by=None,
        now=NOW,
    )
    return change


# --- Transitions ---------------------------------------------------------------------------------


def test_the_transition_table_is_the_documented_one():
    assert {
        "draft": {"submitted"},
        "submitted": {"validated", "returned"},
        "returned": {"submitted"},
        "validated": {"sent_to_bank"},
        "sent_to_bank": {"completed"},
        "completed": set(),
    } == TRANSITIONS
    assert set(STATUS_LABELS) == set(TRANSITIONS)


LEGAL = [(start, to) for start, targets in TRANSITIONS.items() for to in targets]
ILLEGAL = [(start, to) for start in TRANSITIONS for to in TRANSITIONS if to not in TRANSITIONS[start]]


@pytest.mark.parametrize(("start", "to"), LEGAL)
def test_legal_transitions(start, to):
    change = MandateChange(status=start, coop_id=7, open_for_coop_id=7)
    transition(change, to)
    assert change.status == to
    assert change.open_for_coop_id == (None if to == "completed" else 7)


@pytest.mark.parametrize(("start", "to"), ILLEGAL)
def test_illegal_transitions_raise(start, to):
    change = MandateChange(status=start, coop_id=7)
    with pytest.raises(DomainError, match="ne peut pas passer"):
        transition(change, to)
    assert change.status == start


def test_unknown_status_raises():
    with pytest.raises(DomainError, match="inconnu"):
        transition(MandateChange(status="draft"), "cancelled")


# --- Dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 3, 15), 6, date(2025, 9, 15)),
        (date(2026, 8, 31), 6, date(2026, 2, 28)),
        (date(2024, 8, 31), 6, date(2024, 2, 29)),
        (date(2026, 1, 10), 1, date(2025, 12, 10)),
    ],
)
def test_months_before(day, months, expected):
    assert months_before(day, months) == expected


def test_proof_of_address_must_be_less_than_six_months_old(session, coop, upload_dir):
    change = start_change(session, coop, details(effective_date=date(2026, 3, 15)), by=None, today=date(2026, 3, 15))
    assert oldest_proof_of_address(date(2026, 3, 15)) == date(2025, 9, 16)
    for proof, message in (
        (date(2025, 9, 15), "plus de 6 mois"),
        (date(2026, 3, 16), "futur"),
        (None, "Indiquez la date"),
    ):
        with pytest.raises(DomainError, match=message) as refused:
            attach_document(
                session,
                change,
                "address_proof",
                [("edf.pdf", make_pdf("EDF"))],
                upload_dir=upload_dir,
                by=None,
                today=date(2026, 3, 15),
                proof_date=proof,
            )
        assert refused.value.field == "proof_date"
    attach_document(
        session,
        change,
        "address_proof",
        [("edf.pdf", make_pdf("EDF"))],
        upload_dir=upload_dir,
        by=None,
        today=date(2026, 3, 15),
        proof_date=date(2025, 9, 16),
    )
    assert change.proof_of_address_date == date(2025, 9, 16)


@pytest.mark.parametrize(("offset", "accepted"), [(-45, True), (-46, False), (0, True), (366, True), (367, False)])
def test_effective_date_window(session, coop, offset, accepted):
    wanted = details(effective_date=TODAY + timedelta(days=offset))
    if accepted:
        assert start_change(session, coop, wanted, by=None, today=TODAY).effective_date == wanted.effective_date
    else:
        with pytest.raises(ValidationErrors) as refused:
            start_change(session, coop, wanted, by=None, today=TODAY)
        assert list(refused.value.errors) == ["effective_date"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"incoming_is_teacher": False}, "incoming_is_teacher", "Seul un enseignant"),
        ({"reason": "autre"}, "reason_details", "Précisez le motif"),
        ({"reason": "promotion"}, "reason", "Choisissez le motif"),
        ({"incoming_last_name": "Moreau", "incoming_first_name": "Claire"}, "incoming_last_name", "même personne"),
        ({"incoming_first_name": "Julie\nBcc: x@example.org"}, "incoming_first_name", "caractère de contrôle"),
        ({"incoming_civility": "Dr"}, "incoming_civility", "civilité"),
    ],
)
def test_invalid_details_are_refused_on_their_field(session, coop, overrides, field, message):
    with pytest.raises(ValidationErrors) as refused:
        start_change(session, coop, details(**overrides), by=None, today=TODAY)
    assert message in refused.value.errors[field][0]
    assert session.scalar(sa.select(sa.func.count()).select_from(MandateChange)) == 0


def test_one_open_dossier_per_coop(session, coop):
    first = start_change(session, coop, details(), by=None, today=TODAY)
    assert re.fullmatch(r"MDT-001-[A-Z2-9]{6}", first.reference)
    assert first.outgoing_mandate.last_name == "Moreau"
    with pytest.raises(DomainError, match="déjà en cours"):
        start_change(session, coop, details(incoming_last_name="DURAND"), by=None, today=TODAY)
    # the database refuses a second open dossier too (two requests at once)
    session.add(
        MandateChange(
            coop_id=coop.id,
            open_for_coop_id=coop.id,
            reference="MDT-001-TWIN",
            incoming_last_name="X",
            incoming_first_name="Y",
            incoming_email="x@example.org",
            effective_date=TODAY,
            reason="autre",
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


# --- Documents -----------------------------------------------------------------------------------


def test_photos_become_pdf_pages_and_identity_fits_on_one_page(session, coop, upload_dir):
    change = start_change(session, coop, details(), by=None, today=TODAY)
    form, _ = attach_document(
        session,
        change,
        "mandate_form",
        [("IMG_2041.JPG", make_photo("FORMULAIRE"))],
        upload_dir=upload_dir,
        by=None,
        today=TODAY,
    )
    assert form.content_type == "application/pdf" and form.mandate_change_id == change.id
    identity, _ = attach_document(
        session,
        change,
        "identity",
        [("recto.jpg", make_photo("RECTO")), ("verso.png", _png("VERSO"))],
        upload_dir=upload_dir,
        by=None,
        today=TODAY,
    )
    stored = (Path(upload_dir) / identity.storage_key).read_bytes()
    assert pdf_pages(stored) == 1
    assert (Path(upload_dir) / identity.storage_key).stat().st_mode & 0o777 == 0o600
    # a scanned PDF with the front on page 1 and the back on page 2 is put on one page as well
    two_pages, removed = attach_document(
        session,
        change,
        "identity",
        [("scan.pdf", make_pdf("RECTO", "VERSO"))],
        upload_dir=upload_dir,
        by=None,
        today=TODAY,
    )
    assert removed == [identity.storage_key]
    assert pdf_pages((Path(upload_dir) / two_pages.storage_key).read_bytes()) == 1
    assert "RECTO" in pdf_text((Path(upload_dir) / two_pages.storage_key).read_bytes())
    assert session.get(Document, identity.id) is None  # replaced, not kept
    with pytest.raises(DomainError, match="une page") as refused:
        attach_document(
            session,
            change,
            "identity",
            [("scan.pdf", make_pdf("A", "B", "C"))],
            upload_dir=upload_dir,
            by=None,
            today=TODAY,
        )
    assert refused.value.field == "identity"
    with pytest.raises(DomainError, match="PDF, JPEG et PNG"):
        attach_document(
            session,
            change,
            "mandate_form",
            [("form.docx", b"PK\x03\x04 not a pdf")],
            upload_dir=upload_dir,
            by=None,
            today=TODAY,
        )


def _png(label: str) -> bytes:
    image = Image.new("RGBA", (1400, 900), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((50, 50), label, fill=(0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_changing_a_printed_detail_drops_the_signed_form(session, coop, upload_dir):
    change = _complete_dossier(session, coop, upload_dir)
    signed = change.document("mandate_form")
    assert update_details(session, change, details(), by=None, today=TODAY) == []  # nothing changed
    removed = update_details(session, change, details(incoming_phone="06 99 99 99 99"), by=None, today=TODAY)
    assert removed == [signed.storage_key]
    assert change.document("mandate_form") is None
    with pytest.raises(ValidationErrors) as refused:
        submit_change(session, change, by=None, now=NOW, today=TODAY)
    assert list(refused.value.errors) == ["mandate_form"]


# --- Submission ----------------------------------------------------------------------------------


def test_missing_documents_are_refused(session, coop, upload_dir):
    change = start_change(session, coop, details(), by=None, today=TODAY)
    with pytest.raises(ValidationErrors) as refused:
        submit_change(session, change, by=None, now=NOW, today=TODAY)
    assert set(refused.value.errors) == {"mandate_form", "identity", "address_proof"}
    assert "signé" in refused.value.errors["mandate_form"][0]
    assert change.status == "draft" and change.submitted_at is None


def test_an_expired_proof_of_address_is_refused_at_submission(session, coop, upload_dir):
    # accepted when uploaded (5 months old), expired when the dossier is finally sent two months later
    uploaded_on = TODAY - timedelta(days=60)
    change = _complete_dossier(
        session, coop, upload_dir, today=uploaded_on, effective=TODAY, proof_date=months_before(uploaded_on, 5)
    )
    with pytest.raises(ValidationErrors) as refused:
        submit_change(session, change, by=None, now=NOW, today=TODAY)
    assert list(refused.value.errors) == ["address_proof"]
    assert "plus de 6 mois" in refused.value.errors["address_proof"][0]
    assert change.status == "draft"


def test_submit_freezes_the_outgoing_mandate_and_audits(session, coop, upload_dir):
    change = _submitted(session, coop, upload_dir)
    assert change.status == "submitted" and change.submitted_at == NOW
    assert change.outgoing_mandate.full_name == "Claire Moreau"
    with pytest.raises(DomainError, match="ne peut plus"):
        attach_document(
            session, change, "mandate_form", [("f.pdf", make_pdf("X"))], upload_dir=upload_dir, by=None, today=TODAY
        )
    actions = session.scalars(sa.select(AuditEvent.action).where(AuditEvent.entity == "mandate_change")).all()
    assert actions[0] == "mandate_change.started" and actions[-1] == "mandate_change.submitted"


def test_returned_then_sent_again(session, coop, upload_dir):
    change = _submitted(session, coop, upload_dir)
    with pytest.raises(DomainError, match="Indiquez ce que la coopérative doit corriger"):
        return_change(session, change, "  ", by=None, now=NOW)
    return_change(session, change, "Le verso de la carte est illisible.", by=None, now=NOW)
    assert (change.status, change.return_reason) == ("returned", "Le verso de la carte est illisible.")
    attach_document(
        session,
        change,
        "identity",
        [("carte.jpg", make_photo("RECTO VERSO NET"))],
        upload_dir=upload_dir,
        by=None,
        today=TODAY,
    )
    submit_change(session, change, by=None, now=NOW, today=TODAY)
    assert change.status == "submitted"


# --- The bank dossier and the switch of mandates -------------------------------------------------


def test_merged_pdf_for_the_bank(session, coop, upload_dir):
    change = _validated(session, coop, upload_dir)
    assert change.bank_name == "Crédit Mutuel" and change.validated_at == NOW
    dossier = change.document("bank_dossier")
    content = (Path(upload_dir) / dossier.storage_key).read_bytes()
    # cover (1) + signed form (1) + identity on one page (1) + proof of address (2)
    assert pdf_pages(content) == 5
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]
    assert "PAGE DE GARDE" in pages[0] and "FORMULAIRE SIGNE" in pages[1] and "FACTURE PAGE 1" in pages[3]
    assert dossier.original_name == f"dossier-banque-{change.reference}-credit-mutuel.pdf"
    assert dossier.sha256 == hashlib.sha256(content).hexdigest()
    # built once: the same bytes every time
    again = build_bank_dossier(
        session, change, render_html=_cover("AUTRE GARDE"), static_dir=STATIC_DIR, upload_dir=upload_dir, by=None
    )
    assert again is dossier


def test_the_cover_lists_each_part_after_itself(session, coop, upload_dir):
    seen = []

    def cover_html(context):
        seen.append(context["parts"])
        assert context["coop"] is coop and context["bank"] == "Crédit Mutuel" and context["validated_by"] == ""
        return "<html><body>" + "".join(f"<p>{label} : {first}-{last}</p>" for label, first, last in context["parts"])

    change = _submitted(session, coop, upload_dir)
    validate_change(
        session, change, render_html=cover_html, static_dir=STATIC_DIR, upload_dir=upload_dir, by=None, now=NOW
    )
    # one cover page: the signed form on page 2, the identity on page 3, the proof of address on 4-5
    assert [(first, last) for _, first, last in seen[-1]] == [(2, 2), (3, 3), (4, 5)]
    assert len(seen) == 1


def test_a_cover_longer_than_planned_is_rendered_again():
    rendered = []

    def two_page_cover(context):
        rendered.append(context["parts"])
        return "<html><body><p>Garde</p><pdf:nextpage /><p>Suite</p></body></html>"

    cover = render_cover(two_page_cover, {}, [("Formulaire", 1), ("Justificatif", 2)], static_dir=STATIC_DIR)
    assert pdf_pages(cover) == 2
    # planned on one page, the cover takes two: the ranges move by one page, then the length is stable
    assert rendered == [
        page_ranges([("Formulaire", 1), ("Justificatif", 2)], first=2),
        [("Formulaire", 3, 3), ("Justificatif", 4, 5)],
    ]
    assert rendered[0] == [("Formulaire", 2, 2), ("Justificatif", 3, 4)]


def test_a_cover_that_cannot_be_rendered_refuses_the_validation(session, coop, upload_dir, monkeypatch):
    change = _submitted(session, coop, upload_dir)

    def broken(html, static_dir):
        raise PdfError("xhtml2pdf reported 1 error(s)")

    monkeypatch.setattr("app.mandate_pdf.render_pdf", broken)
    with pytest.raises(DomainError, match="PDF pour la banque"):
        validate_change(
            session, change, render_html=_cover("X"), static_dir=STATIC_DIR, upload_dir=upload_dir, by=None, now=NOW
        )


def test_merge_keeps_the_order():
    merged = merge_pdfs([make_pdf("UN"), make_pdf("DEUX", "TROIS")], title="Essai")
    assert [p.extract_text().strip() for p in PdfReader(io.BytesIO(merged)).pages] == ["UN", "DEUX", "TROIS"]


def test_completion_switches_the_mandates_once(session, coop, upload_dir):
    change = _validated(session, coop, upload_dir)
    with pytest.raises(DomainError, match="ne peut pas passer"):
        complete_change(session, change, by=None, now=NOW)
    mark_sent_to_bank(session, change, by=None, now=NOW)
    new = complete_change(session, change, by=None, now=NOW)
    old = session.get(Mandate, change.outgoing_mandate_id)
    assert old.ended_on == TODAY - timedelta(days=1)
    assert (new.full_name, new.started_on, new.ended_on, new.email) == (
        "Mme Julie BERNARD",
        TODAY,
        None,
        "julie.bernard@example.org",
    )
    assert current_mandate(coop, TODAY) == new
    assert current_mandate(coop, TODAY - timedelta(days=1)) == old
    assert change.status == "completed" and change.open_for_coop_id is None
    # a double click or a second staff member: nothing more
    assert complete_change(session, change, by=None, now=NOW) is new
    assert session.scalar(sa.select(sa.func.count()).select_from(Mandate).where(Mandate.coop_id == coop.id)) == 2
    # the coop may start a new dossier now
    assert start_change(
        session,
        coop,
        details(incoming_last_name="DURAND", outgoing_last_name="BERNARD", outgoing_first_name="Julie"),
        by=None,
        today=TODAY,
    )


def test_effective_date_must_follow_the_outgoing_mandate(session, make_coop, upload_dir):
    info = make_coop(2)
    coop = session.get(Coop, info.id)
    coop.mandates[0].started_on = TODAY
    session.flush()
    change = _complete_dossier(session, coop, upload_dir)
    with pytest.raises(ValidationErrors, match="doit suivre le début du mandat"):
        submit_change(session, change, by=None, now=NOW, today=TODAY)


def test_credit_mutuel_bank_document(session, make_coop, upload_dir):
    ids = [make_coop(1).id, make_coop(4, bank_name="La Banque Postale").id]
    coop, postale = (session.get(Coop, ident) for ident in ids)
    change = _validated(session, coop, upload_dir)
    with pytest.raises(DomainError, match="après l'envoi"):
        attach_bank_document(session, change, make_pdf("CM"), upload_dir=upload_dir, by=None)
    mark_sent_to_bank(session, change, by=None, now=NOW)
    document, _ = attach_bank_document(session, change, make_pdf("CM"), upload_dir=upload_dir, by=None)
    assert change.document("bank_document") == document
    other = _validated(session, postale, upload_dir)
    mark_sent_to_bank(session, other, by=None, now=NOW)
    with pytest.raises(DomainError, match="Crédit Mutuel"):
        attach_bank_document(session, other, make_pdf("X"), upload_dir=upload_dir, by=None)


@pytest.mark.parametrize(
    ("steps", "status", "text", "label"),
    [
        (0, "done", "Mandataire actuel : Claire Moreau.", "Changement pour le compte bancaire…"),
        (1, "todo", "complétez le dossier", "Reprendre le dossier"),
        (2, "waiting", "dossier envoyé à l'OCCE 85 le", "Suivre le dossier"),
        (3, "todo", "renvoyé par l'OCCE 85", "Corriger le dossier"),
    ],
)
def test_home_card(session, coop, upload_dir, steps, status, text, label):
    if steps >= 1:
        change = _complete_dossier(session, coop, upload_dir)
    if steps >= 2:
        submit_change(session, change, by=None, now=NOW, today=TODAY)
    if steps >= 3:
        return_change(session, change, "Signature manquante", by=None, now=NOW)
    card = next(step for step in checklist(coop, TODAY, "2026-2027") if step.key == "mandate")
    assert (card.status, card.action_label, card.endpoint) == (status, label, "mandates.step")
    assert text in card.summary
    assert home_card(None, coop, None)[0] == "todo"


# --- Coop face -----------------------------------------------------------------------------------


def _text(response) -> str:
    return response.get_data(as_text=True)


def _fetch(client, url):
    """GET a file: read it, then close it (files are streamed from open handles)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


FORM = {
    "incoming_civility": "Mme",
    "incoming_last_name": "Bernard",
    "incoming_first_name": "Julie",
    "incoming_email": "Julie.Bernard@Example.org",
    "incoming_phone": "0612345678",
    "incoming_is_teacher": "y",
    "outgoing_civility": "Mme",
    "outgoing_last_name": "Moreau",
    "outgoing_first_name": "Claire",
    "effective_date": TODAY.isoformat(),
    "reason": "mutation",
    "reason_details": "",
}


def _open_change(db_check, coop_id=None) -> MandateChange | None:
    return db_check(lambda s: s.scalar(sa.select(MandateChange).order_by(MandateChange.id.desc())))


def _upload_all(client, change_id: int, proof_date: date | None = None) -> None:
    for url, data in (
        ("formulaire-signe", {"mandate_form-file": (io.BytesIO(make_pdf("FORMULAIRE SIGNE")), "scan.pdf")}),
        (
            "piece-identite",
            {
                "identity-file": (io.BytesIO(make_photo("RECTO")), "recto.jpg"),
                "identity-back": (io.BytesIO(make_photo("VERSO")), "verso.jpg"),
            },
        ),
        (
            "justificatif-domicile",
            {
                "address_proof-file": (io.BytesIO(make_pdf("FACTURE")), "edf.pdf"),
                "address_proof-proof_date": (proof_date or TODAY).isoformat(),
            },
        ),
    ):
        response = client.post(f"/coop/mandataire/{change_id}/{url}", data=data, content_type="multipart/form-data")
        assert response.status_code == 302, _text(response)[:2000]


def test_coop_journey_with_the_test_client(client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    assert client.get("/coop/mandataire").status_code == 200
    page = _text(client.get("/coop/mandataire/nouveau"))
    assert 'value="MOREAU"' in page or 'value="Moreau"' in page  # the outgoing mandataire, prefilled
    # not a teacher: re-rendered with the message on its field, nothing recorded
    response = client.post("/coop/mandataire/nouveau", data={**FORM, "incoming_is_teacher": ""})
    assert response.status_code == 200
    assert re.search(r'id="incoming_is_teacher-erreur"[^>]*>Seul un enseignant', _text(response))
    assert _open_change(db_check) is None
    response = client.post("/coop/mandataire/nouveau", data=FORM)
    change = _open_change(db_check)
    assert response.headers["Location"] == f"/coop/mandataire/{change.id}"
    assert (change.incoming_last_name, change.incoming_email, change.incoming_phone) == (
        "BERNARD",
        "Julie.Bernard@example.org",
        "06 12 34 56 78",
    )
    # a second click on « Enregistrer et continuer » opens the same dossier
    assert client.post("/coop/mandataire/nouveau", data=FORM).headers["Location"] == f"/coop/mandataire/{change.id}"
    assert client.get("/coop/mandataire").headers["Location"] == f"/coop/mandataire/{change.id}"

    form_pdf = client.get(f"/coop/mandataire/{change.id}/formulaire.pdf")
    assert form_pdf.headers["Content-Disposition"].startswith("attachment;")
    text = pdf_text(form_pdf.data)
    for expected in (
        "Demande de changement de mandataire",
        change.reference,
        "BERNARD",
        "Julie",
        "Mme Claire MOREAU",
        "Crédit Mutuel",
        "Date et lieu de naissance",
        "Signature",
    ):
        assert expected in text, expected

    page = _text(client.get(f"/coop/mandataire/{change.id}"))
    assert "À ajouter" in page and "disabled" in page
    # « Envoyer » while documents are missing: refused, nothing sent
    response = client.post(f"/coop/mandataire/{change.id}/envoyer", data={})
    assert response.status_code == 302
    assert "pas complet" in _text(client.get(response.headers["Location"]))
    assert _open_change(db_check).status == "draft"

    _upload_all(client, change.id)
    assert "Tout est prêt" in _text(client.get(f"/coop/mandataire/{change.id}"))
    confirm = _text(client.get(f"/coop/mandataire/{change.id}/envoyer"))
    assert "Envoyer le dossier à l&#39;OCCE 85" in confirm and "ne peut plus être modifié" in confirm
    response = client.post(f"/coop/mandataire/{change.id}/envoyer", data={})
    assert response.headers["Location"] == f"/coop/mandataire/{change.id}"
    page = _text(client.get(response.headers["Location"]))
    assert page.count("envoyé à l&#39;OCCE 85") >= 1 and "Envoyé à l&#39;OCCE 85" in page
    assert _open_change(db_check).status == "submitted"
    # a double click on the confirmation does nothing more
    client.post(f"/coop/mandataire/{change.id}/envoyer", data={})
    mails = db_check(lambda s: s.scalars(sa.select(OutboxEmail)).all())
    assert len(mails) == 1 and mails[0].recipient == "coop1@example.org"
    assert change.reference in mails[0].subject and "envoyé à l'OCCE 85" in mails[0].subject
    home = _text(client.get("/"))
    assert "Suivre le dossier" in home and "dossier envoyé à l&#39;OCCE 85 le" in home


def test_upload_errors_are_shown_on_their_field(client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    client.post("/coop/mandataire/nouveau", data=FORM)
    change = _open_change(db_check)
    old = months_before(TODAY, 7)
    response = client.post(
        f"/coop/mandataire/{change.id}/justificatif-domicile",
        content_type="multipart/form-data",
        data={
            "address_proof-file": (io.BytesIO(make_pdf("EDF")), "edf.pdf"),
            "address_proof-proof_date": old.isoformat(),
        },
    )
    assert response.status_code == 200
    assert re.search(r'id="address_proof-proof_date-erreur"[^>]*>Ce justificatif de domicile date du', _text(response))
    response = client.post(
        f"/coop/mandataire/{change.id}/formulaire-signe",
        content_type="multipart/form-data",
        data={"mandate_form-file": (io.BytesIO(b"#!/bin/sh\necho"), "form.pdf")},
    )
    assert response.status_code == 200
    assert re.search(r'id="mandate_form-file-erreur"[^>]*>Seuls les fichiers PDF', _text(response))
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Document))) == 0


def test_editing_after_the_form_was_signed(client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    client.post("/coop/mandataire/nouveau", data=FORM)
    change = _open_change(db_check)
    _upload_all(client, change.id)
    response = client.post(f"/coop/mandataire/{change.id}/modifier", data={**FORM, "incoming_first_name": "Juliette"})
    assert response.status_code == 302
    assert "imprimez le nouveau formulaire" in _text(client.get(response.headers["Location"]))
    kinds = db_check(lambda s: sorted(s.scalars(sa.select(Document.kind)).all()))
    assert kinds == ["address_proof", "identity"]


def test_a_replaced_document_file_is_removed_after_the_commit(app, client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    client.post("/coop/mandataire/nouveau", data=FORM)
    change = _open_change(db_check)
    _upload_all(client, change.id)
    first = db_check(lambda s: s.scalar(sa.select(Document).where(Document.kind == "mandate_form")))
    stored = Path(app.config["UPLOAD_DIR"]) / first.storage_key
    assert stored.is_file()
    response = client.post(
        f"/coop/mandataire/{change.id}/formulaire-signe",
        content_type="multipart/form-data",
        data={"mandate_form-file": (io.BytesIO(make_pdf("FORMULAIRE SIGNE DEUX FOIS")), "scan2.pdf")},
    )
    assert response.status_code == 302
    assert "document remplacé" in _text(client.get(response.headers["Location"]))
    assert not stored.exists()
    kept = db_check(lambda s: s.scalars(sa.select(Document).where(Document.kind == "mandate_form")).all())
    assert len(kept) == 1 and (Path(app.config["UPLOAD_DIR"]) / kept[0].storage_key).is_file()


def test_another_coops_dossier_and_documents_are_404(app, client, make_coop, make_staff, login_as, db_check):
    login_as(make_coop(1))
    client.post("/coop/mandataire/nouveau", data=FORM)
    change = _open_change(db_check)
    _upload_all(client, change.id)
    identity = db_check(lambda s: s.scalar(sa.select(Document).where(Document.kind == "identity")))
    own = _fetch(client, f"/coop/mandataire/document/{identity.id}")
    assert own.status_code == 200 and own.headers["Content-Disposition"].startswith("attachment;")
    other = login_as(make_coop(2), on=app.test_client())
    for url in (
        f"/coop/mandataire/{change.id}",
        f"/coop/mandataire/{change.id}/formulaire.pdf",
        f"/coop/mandataire/document/{identity.id}",
        f"/justificatifs/{identity.id}",
    ):
        assert other.get(url).status_code == 404, url
    assert other.post(f"/coop/mandataire/{change.id}/envoyer", data={}).status_code == 404
    denied = db_check(
        lambda s: s.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "access.denied")
        )
    )
    assert denied >= 3
    # staff open it, inline, sandboxed
    staff = login_as(make_staff(), on=app.test_client())
    shown = _fetch(staff, f"/admin/mandataires/document/{identity.id}")
    assert shown.status_code == 200 and shown.mimetype == "application/pdf"
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert shown.headers["Content-Security-Policy"] == "sandbox"
    assert pdf_pages(shown.data) == 1
    viewed = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "document.viewed")))
    assert viewed.entity_id == identity.id and viewed.coop_id == change.coop_id
    # a coop user never reaches the staff route
    assert client.get(f"/admin/mandataires/document/{identity.id}").status_code == 403
    assert client.get(f"/admin/mandataires/{change.id}").status_code == 403


def test_staff_cannot_use_the_coop_face(app, make_staff, login_as):
    staff = login_as(make_staff(), on=app.test_client())
    assert staff.get("/coop/mandataire").status_code == 403
    assert staff.post("/coop/mandataire/nouveau", data=FORM).status_code == 403


def test_form_fields_are_the_only_ones_assigned(client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    client.post(
        "/coop/mandataire/nouveau",
        data={**FORM, "status": "completed", "coop_id": "99", "reference": "FAUX", "return_reason": "x"},
    )
    change = _open_change(db_check)
    assert (change.status, change.reference.startswith("MDT-001-"), change.return_reason) == ("draft", True, "")


# --- Back office ---------------------------------------------------------------------------------


def _submitted_by_the_coop(client, make_coop, login_as, db_check, number=1, **fields) -> MandateChange:
    login_as(make_coop(number, **fields))
    client.post("/coop/mandataire/nouveau", data=FORM)
    change = _open_change(db_check)
    _upload_all(client, change.id)
    client.post(f"/coop/mandataire/{change.id}/envoyer", data={})
    return _open_change(db_check)


def test_staff_decisions_from_submission_to_delegation(app, client, make_coop, make_staff, login_as, db_check):
    change = _submitted_by_the_coop(client, make_coop, login_as, db_check)
    staff = login_as(make_staff(), on=app.test_client())
    listing = _text(staff.get("/admin/admin_mandate_changes/?statut=submitted"))
    assert change.reference in listing and "Julie BERNARD" in listing
    assert change.reference not in _text(staff.get("/admin/admin_mandate_changes/?statut=completed"))
    page = _text(staff.get(f"/admin/mandataires/{change.id}"))
    assert "Valider" in page and "Renvoyer" in page and "Claire Moreau" in page

    # « Renvoyer » needs a reason, which the coop then reads
    response = staff.post(f"/admin/mandataires/{change.id}/renvoyer", data={"reason": ""})
    assert response.status_code == 200 and "Indiquez ce que la coopérative doit corriger" in _text(response)
    response = staff.post(
        f"/admin/mandataires/{change.id}/renvoyer", data={"reason": "La signature du nouveau mandataire manque."}
    )
    assert response.status_code == 302
    coop_page = _text(client.get(f"/coop/mandataire/{change.id}"))
    assert "La signature du nouveau mandataire manque." in coop_page and "Renvoyé pour correction" in coop_page
    client.post(
        f"/coop/mandataire/{change.id}/formulaire-signe",
        content_type="multipart/form-data",
        data={"mandate_form-file": (io.BytesIO(make_pdf("FORMULAIRE SIGNE DEUX FOIS")), "scan2.pdf")},
    )
    client.post(f"/coop/mandataire/{change.id}/envoyer", data={})
    assert _open_change(db_check).status == "submitted"

    assert staff.post(f"/admin/mandataires/{change.id}/valider", data={}).status_code == 302
    change = _open_change(db_check)
    assert change.status == "validated"
    dossier = db_check(lambda s: s.scalar(sa.select(Document).where(Document.kind == "bank_dossier")))
    page = _text(staff.get(f"/admin/mandataires/{change.id}"))
    assert "Télécharger le PDF pour Crédit Mutuel" in page and "4 pages" in page
    merged = _fetch(staff, f"/admin/mandataires/document/{dossier.id}/telecharger")
    assert merged.headers["Content-Disposition"].startswith("attachment;")
    assert pdf_pages(merged.data) == 4  # cover, signed form, identity on one page, proof of address
    text = pdf_text(merged.data)
    assert "Crédit Mutuel" in text and change.reference in text and "FORMULAIRE SIGNE DEUX FOIS" in text
    assert "Contenu du dossier" in text and "Pièce d'identité du nouveau mandataire" in text
    again = _fetch(staff, f"/admin/mandataires/document/{dossier.id}/telecharger")
    assert hashlib.sha256(again.data).hexdigest() == hashlib.sha256(merged.data).hexdigest()
    # a double click on « Valider »
    staff.post(f"/admin/mandataires/{change.id}/valider", data={})
    assert (
        db_check(
            lambda s: s.scalar(sa.select(sa.func.count()).select_from(Document).where(Document.kind == "bank_dossier"))
        )
        == 1
    )

    staff.post(f"/admin/mandataires/{change.id}/banque", data={})
    assert _open_change(db_check).status == "sent_to_bank"
    response = staff.post(
        f"/admin/mandataires/{change.id}/document-banque",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(make_pdf("DOCUMENT DU CREDIT MUTUEL")), "cm.pdf")},
    )
    assert response.status_code == 302
    coop_page = _text(client.get(f"/coop/mandataire/{change.id}"))
    assert "Télécharger le document de la banque" in coop_page
    link = re.search(r'href="(/coop/mandataire/document/\d+)">Télécharger le document de la banque', coop_page)
    assert "DOCUMENT DU CREDIT MUTUEL" in pdf_text(_fetch(client, link.group(1)).data)

    staff.post(f"/admin/mandataires/{change.id}/delegation", data={})
    change = _open_change(db_check)
    assert change.status == "completed" and change.completed_at is not None
    identity_page = _text(client.get("/coop/identite"))
    assert "Mme Julie BERNARD" in identity_page
    assert "Mandataire actuel : Mme Julie BERNARD." in _text(client.get("/"))

    mails = db_check(
        lambda s: [
            (m.recipient, m.subject, m.body_text) for m in s.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id))
        ]
    )
    subjects = [subject for _, subject, _ in mails]
    assert any("envoyé à l'OCCE 85" in s for s in subjects) and any("à corriger" in s for s in subjects)
    assert any("validé" in s for s in subjects) and any("envoyé à la banque" in s for s in subjects)
    assert any("document de votre banque" in s for s in subjects)
    to_new = [body for recipient, _, body in mails if recipient == "Julie.Bernard@example.org"]
    assert len(to_new) == 1 and "par courrier" in to_new[0]
    to_coop = [
        body
        for recipient, subject, body in mails
        if recipient == "coop1@example.org" and "délégation créée" in subject.lower()
    ]
    assert len(to_coop) == 1 and "par courrier" in to_coop[0]
    # every decision is in the audit log with its author
    actions = db_check(
        lambda s: s.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.entity == "mandate_change", AuditEvent.actor_login == "agent")
        ).all()
    )
    assert {
        "mandate_change.returned",
        "mandate_change.validated",
        "mandate_change.sent_to_bank",
        "mandate_change.completed",
        "mandate_change.bank_document_added",
    } <= set(actions)
    # the mandate history, for staff
    history = _text(staff.get("/admin/admin_mandates/?search=Moreau"))
    assert "Moreau" in history and (TODAY - timedelta(days=1)).strftime("%d/%m/%Y") in history
    assert "BERNARD" in _text(staff.get("/admin/admin_mandates/?search=Bernard"))
    page = _text(staff.get(f"/admin/mandataires/{change.id}"))
    assert "(en cours)" in page and "Délégation créée le" in page


def test_staff_decisions_refuse_illegal_moves(app, client, make_coop, make_staff, login_as, db_check):
    change = _submitted_by_the_coop(client, make_coop, login_as, db_check)
    staff = login_as(make_staff(), on=app.test_client())
    for action in ("banque", "delegation"):
        response = staff.post(f"/admin/mandataires/{change.id}/{action}", data={})
        assert response.status_code == 302
        assert "ne peut pas passer" in _text(staff.get(response.headers["Location"]))
    assert _open_change(db_check).status == "submitted"
    response = staff.post(
        f"/admin/mandataires/{change.id}/document-banque",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(make_pdf("CM")), "cm.pdf")},
    )
    assert response.status_code == 302
    assert "après l&#39;envoi du dossier" in _text(staff.get(response.headers["Location"]))
    assert staff.get("/admin/mandataires/999").status_code == 404


def test_user_text_is_escaped_in_pages_and_pdfs(app, client, make_coop, make_staff, login_as, db_check):
    login_as(make_coop(1))
    client.post(
        "/coop/mandataire/nouveau",
        data={
            **FORM,
            "incoming_first_name": "<b>Julie</b>",
            "reason": "autre",
            "reason_details": "<script>x()</script>",
        },
    )
    change = _open_change(db_check)
    page = _text(client.get(f"/coop/mandataire/{change.id}"))
    assert "<script>x()</script>" not in page and "&lt;script&gt;" in page
    assert "<b>Julie</b>" in pdf_text(client.get(f"/coop/mandataire/{change.id}/formulaire.pdf").data)
