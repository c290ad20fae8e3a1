"""A closed year is frozen (issue 13 §1, §2, §6, §8): closing stores the CRF figures, the closed
year's CRF (domain, JSON command, page, PDF) reads them, staff verify a paper CRF by its code; the
CRF lists outstanding cheques and deposits in transit apart, the régie d'avance line, the cash count
by denomination and the inventory register; a typed opening is never replaced silently; every
character of a PDF is drawn and no amount breaks across two lines."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import cahier as cahier_format
from app import closing, submission
from app import crf as year_figures
from app import ledger as books
from app.cash_count import CashCount
from app.errors import DomainError
from app.models import Coop, EntryLine, Ledger
from app.models.reports import LedgerClosing
from app.money import parse_amount
from app.reconciliation import carried_lines, clear_line
from tests.helpers import pdf_download_text, pdf_text, plain

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "exemple_2024-2025.csv"
SEPT_15 = datetime(2025, 9, 15, 9, 30)
STATEMENT = 309240
CASH = CashCount.from_counts({2000: 2, 1000: 1})


@pytest.fixture
def example(session, make_coop):
    coop = session.get(Coop, make_coop(1).id)
    ledger = books.open_ledger(session, coop, 2024)
    cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
    session.flush()
    return ledger


def _close(session, ledger, **kwargs):
    return closing.close_ledger(
        session, ledger, statement_balance=STATEMENT, cash_count=CASH, by=None, now=SEPT_15, **kwargs
    )


def _entry(piece, amount, *, day, code, bank_in=False, mode="virement", cheque=""):
    treasury = books.Treasury(bank_in=amount) if bank_in else books.Treasury(bank_out=amount)
    return books.EntryData(
        piece=piece,
        date=day,
        label=f"Opération {piece}",
        payment_mode="remise" if bank_in else mode,
        kind="receipt" if bank_in else "expense",
        treasury=treasury,
        splits=[books.Split(code, amount)],
        cheque_number=cheque,
    )


def _json(session, ledger) -> bytes:
    return json.dumps(year_figures.build_crf(session, ledger).to_json(), ensure_ascii=False).encode()


# -- the figures stored at closing ---------------------------------------------------------------


def test_closing_stores_the_figures_and_the_closed_crf_reads_only_them(session, example):
    _close(session, example)
    stored = year_figures.stored_closing(session, example)
    assert stored is not None and stored.checksum == year_figures.checksum_of(stored.figures)
    assert re.fullmatch(r"[A-Z2-7]{5}-[A-Z2-7]{5}", stored.code)
    crf = year_figures.build_crf(session, example)
    assert crf.is_frozen and crf.verification.code == stored.code
    assert crf.to_json() == year_figures.compute_crf(session, example).to_json()  # the same figures, stored
    [cheque] = crf.reconciliation.uncleared
    assert (cheque.piece, cheque.date, cheque.cheque, cheque.amount) == ("D04", date(2025, 8, 25), "104", -15000)
    assert crf.cash_count.lines == [(2000, 2, 4000), (1000, 1, 1000)]
    before = _json(session, example)

    # The carried cheque cleared in 2025-2026 with its real bank date, through the pointage domain.
    following = books.find_ledger(session, example.coop_id, 2025)
    [carried] = carried_lines(session, following)
    clear_line(session, example.coop_id, carried.line_id, date(2025, 9, 12), by=None)
    # Behind the domain's back: the same line marked cleared inside the closed year.
    session.get(EntryLine, carried.line_id).cleared_on = date(2025, 8, 29)
    session.flush()
    assert year_figures.compute_crf(session, example).reconciliation.uncleared == ()  # a recomputation would move
    assert _json(session, example) == before


def test_the_stored_figures_cannot_be_changed(session, example):
    _close(session, example)
    stored = year_figures.stored_closing(session, example)
    stored.figures = {**stored.figures, "year_label": "2099-2100"}
    with pytest.raises(DomainError, match="enregistrés à la clôture ne peuvent pas être modifiés"):
        session.flush()


def test_reopening_supersedes_the_figures_and_closing_again_stores_new_ones(session, example):
    _close(session, example)
    first = year_figures.stored_closing(session, example)
    submission.reopen_year(session, example, reason="Facture oubliée", by=None, now=datetime(2025, 9, 20))
    assert year_figures.stored_closing(session, example) is None and first.superseded_at == datetime(2025, 9, 20)
    assert year_figures.build_crf(session, example).verification is None  # open again: computed, provisional
    books.record_entry(session, example, _entry("D99", 1000, day=date(2025, 8, 30), code="68"), by=None)
    # The next year's opening came from the first closing: replacing it needs no confirmation.
    closing.close_ledger(
        session, example, statement_balance=STATEMENT, cash_count=CASH, by=None, now=datetime(2025, 9, 21)
    )
    second = year_figures.stored_closing(session, example)
    assert second.id != first.id and second.code != first.code
    assert year_figures.build_crf(session, example).to_json()["resultat"] == 114240 - 1000
    old = year_figures.verify(session, first.code)
    assert old.superseded_at is not None and old.crf.result == 114240 and old.is_intact


def test_a_code_finds_its_record_and_a_tampered_record_is_told(session, example):
    _close(session, example)
    stored = year_figures.stored_closing(session, example)
    typed = stored.code.lower().replace("-", " ")
    found = year_figures.verify(session, typed)
    assert found.is_intact and found.superseded_at is None and found.closed_at == SEPT_15
    assert (found.crf.coop.login, found.crf.year_label, found.crf.result) == ("085-001", "2024-2025", 114240)
    assert year_figures.verify(session, "AAAAA-AAAAA") is None
    figures = {**stored.figures, "charges": []}
    session.execute(sa.update(LedgerClosing).where(LedgerClosing.id == stored.id).values(figures=figures))
    session.expire_all()
    assert not year_figures.verify(session, stored.code).is_intact


def test_the_crf_command_prints_the_stored_figures_byte_for_byte(app, make_coop, db_check):
    make_coop(1)
    runner = app.test_cli_runner()
    imported = runner.invoke(args=["ledger", "import", "085-001", "2024-2025", str(EXAMPLE)])
    assert imported.exit_code == 0, imported.output
    closed = runner.invoke(
        args=["ledger", "close", "085-001", "2024", "--statement-balance", "3092,40", "--cash-count", "20x2,10x1"]
    )
    assert closed.exit_code == 0, closed.output
    before = runner.invoke(args=["reports", "crf", "085-001", "2024", "--json"]).output
    assert json.loads(before)["cash_count"] == {"total": 5000, "counts": {"2000": 2, "1000": 1}}

    def clear_carried(session):
        ledger = session.scalar(sa.select(Ledger).where(Ledger.status == "open"))
        [carried] = carried_lines(session, ledger)
        clear_line(session, ledger.coop_id, carried.line_id, date(2025, 9, 12), by=None)
        session.commit()

    db_check(clear_carried)
    again = runner.invoke(
        args=["ledger", "close", "085-001", "2024", "--statement-balance", "1", "--cash-count", "0.5x4"]
    )
    assert again.exit_code == 1 and "déjà clôturé" in again.output
    assert runner.invoke(args=["reports", "crf", "085-001", "2024", "--json"]).output == before
    text = plain(runner.invoke(args=["reports", "crf", "085-001", "2024"]).output)
    assert "chèques et paiements non débités 150,00 €, remises non créditées 0,00 €" in text
    assert "Arrêté de caisse : 50,00 € (2 x 20,00 €, 1 x 10,00 €)" in text
    assert "Régies d'avance non restituées : 0,00 €" in text and "code de vérification" in text


# -- the CRF's content ---------------------------------------------------------------------------


def test_outstanding_cheques_deposits_in_transit_and_inventory_apart(session, example):
    # A deposit booked on 30/08, credited by the bank in September; a computer bought on account 68.
    books.record_entry(session, example, _entry("R99", 4500, day=date(2025, 8, 30), code="756", bank_in=True), by=None)
    books.record_entry(session, example, _entry("D98", 60000, day=date(2025, 8, 28), code="68"), by=None)
    # the computer's cheque was debited on 29/08, so the statement balance is 600 € lower
    line = next(
        line for line in session.scalars(sa.select(EntryLine)) if line.entry.piece == "D98" and line.amount_cents < 0
    )
    line.cleared_on = date(2025, 8, 29)
    session.flush()
    closing.close_ledger(session, example, statement_balance=STATEMENT - 60000, cash_count=CASH, by=None, now=SEPT_15)
    crf = year_figures.build_crf(session, example)
    figures = crf.to_json()
    assert (figures["outstanding_cheques"], figures["deposits_in_transit"]) == (15000, 4500)
    assert [line.piece for line in crf.outstanding_cheques] == ["D04"]
    assert [line.piece for line in crf.deposits_in_transit] == ["R99"]
    assert figures["inventory"] == [{"piece": "D98", "date": "2025-08-28", "label": "Opération D98", "amount": 60000}]
    assert crf.charges[-1].display_code == "68000008"


def test_cash_count_typed_as_a_detail():
    assert CashCount.parse("20x2,10x1,0.5x4", parse_amount).lines == [(2000, 2, 4000), (1000, 1, 1000), (50, 4, 200)]
    assert CashCount.parse("20 × 2, 0.05x3", parse_amount).total == 4015
    assert CashCount.parse("50,00", parse_amount) == CashCount.from_total(5000)
    for wrong, message in (
        ("30x1", "n'est pas une coupure"),
        ("20x", "coupure suivie d'un nombre"),
        ("0.3x2", "coupure"),
    ):
        with pytest.raises(DomainError, match=message):
            CashCount.parse(wrong, parse_amount)


# -- the opening of the next year ----------------------------------------------------------------


def test_the_wizard_shows_a_typed_opening_and_closes_only_once_confirmed(client, make_coop, login_as, db_check):
    info = make_coop(1)

    def load(session):
        coop = session.get(Coop, info.id)
        ledger = books.open_ledger(session, coop, 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        books.record_opening(session, books.open_ledger(session, coop, 2025), bank=250000, cash=3000, by=None)
        session.commit()

    db_check(load)
    login_as(info)
    client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2", "d1000": "1"})
    client.post("/coop/cloture/2024/releve", data={"balance": "3 092,40"})
    page = plain(client.get("/coop/cloture/2024").get_data(as_text=True))
    assert "Le report à nouveau 2025-2026 a déjà été saisi" in page
    for figure in ("2 500,00 €", "30,00 €", "2 942,40 €", "50,00 €", "462,40 €"):
        assert figure in page, figure
    refused = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"})
    assert refused.status_code == 200
    assert "écart de 462,40 €" in plain(refused.get_data(as_text=True))
    assert db_check(lambda s: s.scalar(sa.select(Ledger.status).where(Ledger.closed_at.is_(None)).limit(1)))
    done = client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001", "replace_opening": "y"})
    assert done.status_code == 302
    assert db_check(lambda s: closing.opening_balances(s, books.find_ledger(s, info.id, 2025))) == (294240, 5000)


# -- the PDF -------------------------------------------------------------------------------------


def test_the_crf_pdf_draws_every_character_and_never_breaks_an_amount(
    client, make_coop, login_as, db_check, app, make_staff
):
    info = make_coop(1)

    def load(session):
        coop = session.get(Coop, info.id)
        ledger = books.open_ledger(session, coop, 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        books.record_entry(session, ledger, _entry("D98", 123456, day=date(2025, 8, 28), code="68"), by=None)
        line = next(
            line
            for line in session.scalars(sa.select(EntryLine))
            if line.entry.piece == "D98" and line.amount_cents < 0
        )
        line.cleared_on = date(2025, 8, 29)
        session.commit()

    db_check(load)
    login_as(info)
    client.post("/coop/cloture/2024/arrete-de-caisse", data={"d2000": "2", "d1000": "1"})
    client.post("/coop/cloture/2024/releve", data={"balance": "1 857,84"})
    assert client.post("/coop/cloture/2024/cloturer", data={"confirmation": "085-001"}).status_code == 302
    response = client.get("/coop/compte-rendu/2024/financier.pdf")  # a missing glyph would warn: an error here
    raw = response.data
    text = pdf_download_text(response)
    code = db_check(lambda s: s.scalar(sa.select(LedgerClosing.code)))
    assert f"Code de vérification : {code}" in text
    assert "Résultat de l'année (produits − charges)" in text  # U+2212, drawn
    assert "Régies d'avance non restituées (compte 541) 0,00 €" in text
    assert (
        "Chèques et paiements émis non débités" in text and "Total des chèques et paiements non débités 150,00" in text
    )
    assert "Total des remises non créditées 0,00 €" in text
    assert "Registre d'inventaire" in text and "Opération D98 1 234,56 €" in text
    assert "20 € 2 40,00 €" in text  # the cash count by denomination
    # Line by line: every amount is whole on its line (a break would leave « 1 » / « 234,56 € »).
    import io

    from pypdf import PdfReader

    lines = [line for page in PdfReader(io.BytesIO(raw)).pages for line in page.extract_text().splitlines()]
    for line in lines:
        assert not re.match(r"^\s*\d{3},\d{2}", line) or re.search(r"(^|\s)\d{3},\d{2}", line), line
        assert not re.search(r"\d[\u00a0\u202f ]\d{3}$", line.rstrip(" €")), line
    assert any(re.search(r"1\s234,56\s€", line) for line in lines), [line for line in lines if "234" in line]


def test_every_pdf_template_is_drawn_with_an_embedded_font():
    from app.pdf import render_pdf

    pdf = render_pdf(
        "<html><body style='font-family: Vera'>"
        "<p>Produits − charges : 1\u202f234,56\u202f€ « œuvre » l’été…</p></body></html>",
        ".",
    )
    text = pdf_text(pdf)
    assert "Produits − charges : 1 234,56 € « œuvre » l’été…" in text
    assert b"/FontFile2" in pdf or b"Vera" in pdf  # the TrueType font is embedded, not a base-14 font
    with pytest.warns(Warning, match="glyph"):
        render_pdf("<html><body><p>漢</p></body></html>", ".")


def test_staff_check_a_paper_crf_by_its_code(app, client, make_coop, make_staff, login_as, db_check):
    info = make_coop(1)

    def load(session):
        ledger = books.open_ledger(session, session.get(Coop, info.id), 2024)
        cahier_format.import_cahier(session, ledger, EXAMPLE.read_bytes(), by=None)
        _close(session, ledger)
        session.commit()
        return year_figures.stored_closing(session, ledger).code

    code = db_check(load)
    login_as(info)
    pdf = pdf_download_text(client.get("/coop/compte-rendu/2024/financier.pdf"))
    assert f"Code de vérification : {code}" in pdf and "/admin/clotures/verifier?code=" in pdf
    assert client.get(f"/admin/clotures/verifier?code={code}").status_code == 403  # coops never see it
    staff = login_as(make_staff("agent"), on=app.test_client())
    page = plain(staff.get(f"/admin/clotures/verifier?code={code.lower()}").get_data(as_text=True))
    assert "toujours en vigueur" in page
    for shown in ("085-001", "2024-2025", "15/09/2025", "1 142,40 €", "excédent"):
        assert shown in page, shown
    wrong = plain(staff.get("/admin/clotures/verifier?code=AAAAA-BBBBB").get_data(as_text=True))
    assert "Aucun compte rendu financier enregistré ne porte le code « AAAAA-BBBBB »" in wrong
