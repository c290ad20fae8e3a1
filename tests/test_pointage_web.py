"""Pointage on the coop face: the screen, statement import (every format, re-import, refusals, column
mapping), the summary box, confirming matches, one-click clearing with and without JavaScript,
earlier years' lines, « Créer l'opération » and tenancy.

The fixture cash-book (tests/test_pointage.py `load_fixture_ledger`) is the school year 2025-2026
with cheque L01 of 28/08/2025 left in 2024-2025; the statement files all describe September 2025:
opening 1 234,56, closing 1 853,06, nine lines, eight of them in the cash-book.
"""

from __future__ import annotations

import html
import html.parser
import io
import os
import re
import shutil
import time
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import ledger as books
from app.clock import today as paris_today
from app.models import AuditEvent, Coop, Entry, EntryLine, Ledger, Membership, Statement, StatementLine, utcnow
from tests.test_pointage import DATA, IBAN, load_fixture_ledger

YEAR = 2025
SCREEN = f"/coop/pointage/{YEAR}"
OFX = "releve_2025-09_credit_mutuel.ofx"
FORMATS = {  # file -> does it give the closing balance?
    OFX: True,
    "releve_2025-09_camt.053.001.02.xml": True,
    "releve_2025-09_credit_mutuel.csv": False,
    "releve_2025-09_caisse_epargne.csv": False,
    "releve_2025-09.qif": False,
}
EXPECTED_MATCHES = {  # statement date -> fixture ids of the cash-book lines it clears
    date(2025, 9, 2): ["L01"],
    date(2025, 9, 4): ["L02", "L03", "L04"],
    date(2025, 9, 8): ["L06"],
    date(2025, 9, 10): ["L05"],
    date(2025, 9, 12): ["L07"],
    date(2025, 9, 15): ["L08"],
    date(2025, 9, 22): ["L09"],
    date(2025, 9, 25): ["L11"],
}
UNKNOWN_CSV = "Quand;Quoi;Combien\n03/09/2025;Achat papeterie;-12,50\n04/09/2025;Don APE;100,00\n"


# -- helpers -------------------------------------------------------------------------------------


def norm(value: str) -> str:
    """Entities decoded, French no-break spaces turned into plain spaces, runs of blanks collapsed."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", html.unescape(value)).strip()


def text_of(fragment: str) -> str:
    """What a reader sees of an HTML fragment (tags removed)."""
    return norm(re.sub(r"<[^>]+>", " ", fragment))


def page_of(response) -> str:
    return norm(response.get_data(as_text=True))


def flashes(response) -> list[tuple[str, str]]:
    """The flashed messages (category, text) shown on the page."""
    raw = response.get_data(as_text=True)
    block = re.search(r'<div class="flash-messages".*?</div>\s*</div>|<div class="flash-messages".*?</div>', raw, re.S)
    found = re.findall(r'<div class="alert alert-(\w+)">(.*?)</div>', block.group(0) if block else "", re.S)
    return [(category, norm(message)) for category, message in found]


def summary(response) -> dict[str, str]:
    """The figures of the summary box (« rectangle jaune »), by their data-summary key."""
    raw = response.get_data(as_text=True)
    return {key: norm(value) for key, value in re.findall(r'data-summary="(\w+)"[^>]*>([^<]*)<', raw)}


def proposals(response) -> list[tuple[str, bool]]:
    """The proposed matches: (value posted, checked by default)."""
    raw = response.get_data(as_text=True)
    return [
        (value, bool(checked))
        for value, checked in re.findall(
            r'<input class="form-check-input" type="checkbox" name="match" value="([\d:,]+)"[^>]*?'
            r"( checked)?>",
            raw,
        )
    ]


def upload(client, name: str, content: bytes | None = None, year: int = YEAR):
    content = (DATA / name).read_bytes() if content is None else content
    return client.post(
        f"/coop/pointage/{year}/releve", data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data"
    )


def load_ledger(db_check, coop_id: int) -> dict[str, int]:
    """The fixture cash-book for `coop_id`; fixture id (L01…L12) -> bank EntryLine id."""

    def run(s):
        ids = load_fixture_ledger(s, s.get(Coop, coop_id))
        s.commit()
        return ids

    return db_check(run)


def bank_lines(db_check, ids: dict[str, int]) -> dict[str, tuple[date | None, int | None]]:
    """fixture id -> (cleared_on, statement line id) of its bank line."""

    def run(s):
        return {
            key: (line.cleared_on, line.statement_line_id)
            for key, line in ((key, s.get(EntryLine, line_id)) for key, line_id in ids.items())
        }

    return db_check(run)


def statement_lines(db_check, coop_id: int) -> dict[date, list[int]]:
    """Statement line ids of the coop by date."""

    def run(s):
        found: dict[date, list[int]] = {}
        for line in s.scalars(
            sa.select(StatementLine).where(StatementLine.coop_id == coop_id).order_by(StatementLine.id)
        ):
            found.setdefault(line.date, []).append(line.id)
        return found

    return db_check(run)


def state(db_check):
    """Everything pointage can change: clearing, links, statements, summary box, entries."""

    def run(s):
        return (
            [
                (line.id, line.cleared_on, line.statement_line_id, line.amount_cents)
                for line in s.scalars(sa.select(EntryLine).order_by(EntryLine.id))
            ],
            [(st.id, st.coop_id) for st in s.scalars(sa.select(Statement).order_by(Statement.id))],
            s.scalar(sa.select(sa.func.count()).select_from(StatementLine)),
            [
                (led.id, led.reconciliation_date, led.reconciliation_balance_cents)
                for led in s.scalars(sa.select(Ledger).order_by(Ledger.id))
            ],
            s.scalar(sa.select(sa.func.count()).select_from(Entry)),
        )

    return db_check(run)


def pending_files(app) -> list[Path]:
    folder = Path(app.config["UPLOAD_DIR"]) / "pending"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def set_statement_balance(client, on: str, balance: str, year: int = YEAR):
    return client.post(f"/coop/pointage/{year}/solde", data={"on": on, "balance": balance})


def confirm_all(client) -> None:
    response = client.get(SCREEN)
    values = [value for value, checked in proposals(response) if checked]
    assert client.post(f"{SCREEN}/correspondances", data={"match": values}).status_code == 302


@pytest.fixture(autouse=True)
def _no_pending_files(app):
    """The upload folder is shared by the whole run: start each test without pending statements."""
    shutil.rmtree(Path(app.config["UPLOAD_DIR"]) / "pending", ignore_errors=True)


@pytest.fixture
def coop(make_coop, login_as):
    info = make_coop(42, iban=IBAN)
    login_as(info)
    return info


@pytest.fixture
def ledger_ids(coop, db_check):
    return load_ledger(db_check, coop.id)


@pytest.fixture
def other(make_coop, app, db_check):
    """Coop 43 with the same cash-book and the OFX statement imported (its own ids)."""
    info = make_coop(43, name="Coopérative des Voisins", iban=IBAN)
    ids = load_ledger(db_check, info.id)
    client = app.test_client()
    client.post("/connexion", data={"login": info.login, "password": info.password})
    assert upload(client, OFX).status_code == 302
    return info, ids, statement_lines(db_check, info.id)


# -- the screen ----------------------------------------------------------------------------------


def test_pointage_address_opens_the_current_year(client, coop):
    response = client.get("/coop/pointage")
    current = books.current_start_year(utcnow().date())
    assert (response.status_code, response.headers["Location"]) == (302, f"/coop/pointage/{current}")


def test_year_without_a_cahier_shows_the_empty_state(client, coop, db_check):
    response = client.get(SCREEN)
    page = page_of(response)
    assert response.status_code == 200
    assert "Le cahier 2025-2026 est vide : il n'y a rien à pointer." in page
    assert 'href="/coop/cahier/2025"' in response.get_data(as_text=True)
    assert "Rapprochement avec le relevé" not in page
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Ledger))) == 0  # GET creates nothing


@pytest.mark.parametrize("year", [1999, books.current_start_year(paris_today()) + 1])
def test_unknown_or_future_year_is_404(client, coop, year):
    assert client.get(f"/coop/pointage/{year}").status_code == 404


def test_screen_lists_the_bank_lines_of_the_year_and_earlier_uncleared_ones(client, ledger_ids):
    response = client.get(SCREEN)
    raw = response.get_data(as_text=True)
    page = norm(raw)
    assert response.status_code == 200
    assert "Pointage du compte bancaire — 2025-2026" in page
    rows = re.findall(r'<tr id="ligne-(\d+)"( class="table-info")?>(.*?)</tr>', raw, re.S)
    assert [int(line_id) for line_id, _, _ in rows] == [
        ledger_ids[f"L{i:02d}"] for i in (1, 2, 3, 4, 5, 6, 7, 8, 10, 9, 11, 12)
    ]
    first = text_of(rows[0][2])
    assert rows[0][1] and "Librairie du Marais - albums BCD année précédente" in first
    assert "28/08/2025" in first and "Chèque 0001231" in first
    assert not any(marked for _, marked, _ in rows[1:])
    assert all("Pointer" in text_of(row) and "Dépointer" not in text_of(row) for _, _, row in rows)
    # the summary at the end of the year: the book balance minus every uncleared line is the opening of the statement
    assert summary(response) == {
        "on": "31/08/2026",
        "book_balance": "1 819,06 €",
        "uncleared_count": "12",
        "uncleared_total": "584,50 €",
        "expected_statement": "1 234,56 €",
        "difference": "saisissez le solde du relevé",
    }
    assert "Aucune correspondance en attente. Importez un relevé pour que le portail propose les pointages." in page


# -- statement import ----------------------------------------------------------------------------

NO_ACCOUNT = "Ce fichier n'indique pas le numéro du compte : vérifiez qu'il s'agit bien du compte de la coopérative."


@pytest.mark.parametrize("name", list(FORMATS))
def test_import_of_each_format_then_reimport_adds_nothing(client, ledger_ids, db_check, name):
    response = upload(client, name)
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#correspondances")
    response = client.get(SCREEN)
    # OFX and CAMT name the account (the coop's); QIF and these CSV do not, which the user is told
    unchecked = [] if name.endswith((".ofx", ".xml")) else [("warning", NO_ACCOUNT)]
    assert flashes(response) == [
        (
            "success",
            "Relevé importé : 9 ligne(s) nouvelle(s). Vérifiez les correspondances proposées puis confirmez-les.",
        ),
        *unchecked,
    ]
    # eight sure matches, all checked; the bank fee is left to create
    found = proposals(response)
    assert len(found) == 8 and all(checked for _, checked in found)
    assert "Lignes du relevé absentes du cahier" in page_of(response)
    assert page_of(response).count("Créer l'opération") == 1
    if FORMATS[name]:  # the file gives the closing balance: the summary box is filled with it
        assert summary(response)["on"] == "30/09/2025"
        assert summary(response)["difference"] == "618,50 €"
        assert 'name="balance" required type="text" value="1 853,06"' in norm(response.get_data(as_text=True))
    else:
        assert summary(response)["difference"] == "saisissez le solde du relevé"

    assert upload(client, name).status_code == 302
    assert flashes(client.get(SCREEN)) == [
        (
            "info",
            "Rien de nouveau : les 9 ligne(s) de ce relevé étaient déjà importées (même date, même montant), "
            "quel que soit le format du fichier.",
        ),
        *unchecked,
    ]
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(StatementLine))) == 9
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Statement))) == 1  # no empty record
    assert all(value == (None, None) for value in bank_lines(db_check, ledger_ids).values())  # nothing cleared yet


def test_import_on_a_year_without_cahier_keeps_the_lines_for_later(client, coop, db_check):
    assert upload(client, OFX).status_code == 302
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(StatementLine))) == 9
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Ledger))) == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "releve.pdf",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n",
            "Un relevé PDF ne peut pas être importé : téléchargez le relevé « OFX » ou « CSV » "
            "depuis votre banque en ligne.",
        ),
        (
            "lettre.txt",
            "Bonjour\nVoici le relevé demandé\nCordialement\n".encode(),
            "Ce fichier n'est pas un relevé bancaire reconnu (OFX, CAMT.053, CSV ou QIF).",
        ),
        (
            "lettre.txt",
            "Bonjour, voici le relevé demandé.\nMerci, et à bientôt, Claire\nP.S. : rien, vraiment\n".encode(),
            "Ce fichier n'est pas un relevé bancaire reconnu (OFX, CAMT.053, CSV ou QIF).",
        ),
        ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "Ce fichier n'est pas un relevé"),
        ("vide.ofx", b"", "Le fichier est vide."),
        ("casse.ofx", b"OFXHEADER:100\nDATA:OFXSGML\n\n<OFX><BANKMSGSRSV1>", "Fichier OFX illisible"),
        (
            "page.xml",
            b"<?xml version='1.0'?><html><body>Bonjour</body></html>",
            "Ce fichier XML n'est pas un relevé CAMT.053.",
        ),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused_in_french_and_nothing_is_stored(
    client, app, ledger_ids, db_check, name, content, message
):
    before = state(db_check)
    response = upload(client, name, content)
    assert (response.status_code, response.headers["Location"]) == (302, SCREEN)
    [(category, text)] = flashes(client.get(SCREEN))
    assert category == "danger"
    assert text.startswith("Import impossible, rien n'a été enregistré : ") and message in text, text
    assert state(db_check) == before
    assert pending_files(app) == []


def test_import_without_a_file(client, ledger_ids, db_check):
    response = client.post(f"{SCREEN}/releve", data={}, content_type="multipart/form-data")
    assert response.status_code == 302
    assert flashes(client.get(SCREEN)) == [("danger", "Choisissez le fichier du relevé.")]
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Statement))) == 0


def test_too_large_a_file_is_refused(client, ledger_ids, db_check):
    content = b"Date;Libelle;Montant\n" + b"01/09/2025;x;1,00\n" * 300_000
    # The multipart body is built here: the test client would spool a big one to a file it never closes.
    boundary = "limite-du-formulaire"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="gros.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(f"{SCREEN}/releve", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 302
    assert flashes(client.get(SCREEN)) == [("danger", "Ce fichier est trop volumineux pour un relevé (5 Mo au plus).")]
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Statement))) == 0


# -- column mapping for an unknown CSV -----------------------------------------------------------


def test_unknown_csv_asks_for_the_columns_keeps_the_file_then_imports_and_removes_it(client, app, ledger_ids, db_check):
    response = upload(client, "export.csv", UNKNOWN_CSV.encode("cp1252"))
    page = page_of(response)
    assert response.status_code == 200
    assert "Quelles colonnes contiennent quoi ?" in page
    assert '<th scope="col">Quand</th><th scope="col">Quoi</th><th scope="col">Combien</th>' in page
    assert "<td>03/09/2025</td><td>Achat papeterie</td><td>-12,50</td>" in page
    assert '<option value="2">Combien</option>' in page
    [kept] = pending_files(app)
    assert kept.read_bytes() == UNKNOWN_CSV.encode("cp1252") and kept.stat().st_mode & 0o077 == 0
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Statement))) == 0

    # Missing columns: the question again, the file still kept
    response = client.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "", "amount": "2"})
    assert response.status_code == 200 and "Quelles colonnes contiennent quoi ?" in page_of(response)
    assert ("danger", "Indiquez au moins la colonne de la date et celle du libellé.") in flashes(response)
    response = client.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "1", "debit": "2"})
    assert ("danger", "Indiquez la colonne du montant, ou bien celles des débits et des crédits.") in flashes(response)
    # Columns that do not read: the dates are in column 0, not 1
    response = client.post(f"{SCREEN}/colonnes", data={"date": "1", "label": "0", "amount": "2"})
    [(category, message)] = flashes(response)
    assert category == "danger" and message.startswith("Ces colonnes ne donnent pas un relevé lisible : ")
    assert "« Achat papeterie » n'est pas une date" in message
    assert len(pending_files(app)) == 1
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Statement))) == 0

    response = client.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "1", "amount": "2"})
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#correspondances")
    assert flashes(client.get(SCREEN))[0] == (
        "success",
        "Relevé importé : 2 ligne(s) nouvelle(s). Vérifiez les correspondances proposées puis confirmez-les.",
    )
    stored = db_check(
        lambda s: [
            (line.date, line.amount_cents, line.label, line.statement.filename)
            for line in s.scalars(sa.select(StatementLine).order_by(StatementLine.id))
        ]
    )
    assert stored == [
        (date(2025, 9, 3), -1250, "Achat papeterie", "export.csv"),
        (date(2025, 9, 4), 10000, "Don APE", "export.csv"),
    ]
    assert pending_files(app) == []
    # the same step again: the file is gone
    response = client.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "1", "amount": "2"})
    assert response.status_code == 302
    assert flashes(client.get(SCREEN)) == [("warning", "Le fichier n'est plus disponible : importez-le à nouveau.")]


def test_mapping_with_debit_and_credit_columns_and_a_preamble(client, app, ledger_ids, db_check):
    content = (
        "Compte;FR76 1027\nPériode;septembre 2025\n"
        "Jour;Opération;Sortie;Entrée;Reste\n"
        "02/09/2025;CHEQUE 0001231;120,00;;1114,56\n04/09/2025;REMISE 0004512;;245,00;1359,56\n"
    ).encode()
    response = upload(client, "maison.csv", content)
    assert "Quelles colonnes contiennent quoi ?" in page_of(response)
    assert '<option value="1">Opération</option>' in page_of(response)
    response = client.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "1", "debit": "2", "credit": "3"})
    assert response.status_code == 302, flashes(response)
    stored = db_check(
        lambda s: [
            (line.date, line.amount_cents, line.cheque_number)
            for line in s.scalars(sa.select(StatementLine).order_by(StatementLine.id))
        ]
    )
    assert stored == [(date(2025, 9, 2), -12000, "1231"), (date(2025, 9, 4), 24500, "")]
    assert pending_files(app) == []


def test_a_pending_file_belongs_to_the_session_that_sent_it(client, app, ledger_ids, other, db_check):
    upload(client, "export.csv", UNKNOWN_CSV.encode())
    info, _, _ = other
    neighbour = app.test_client()
    neighbour.post("/connexion", data={"login": info.login, "password": info.password})
    before = state(db_check)
    response = neighbour.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "1", "amount": "2"})
    assert response.status_code == 302
    assert state(db_check) == before
    assert len(pending_files(app)) == 1


def test_a_second_unknown_csv_replaces_the_first_pending_file(client, app, ledger_ids):
    upload(client, "a.csv", UNKNOWN_CSV.encode())
    upload(client, "b.csv", UNKNOWN_CSV.replace("Don APE", "Don mairie").encode())
    [kept] = pending_files(app)
    assert b"Don mairie" in kept.read_bytes()


def test_abandoned_pending_files_are_removed_after_an_hour(client, app, ledger_ids):
    folder = Path(app.config["UPLOAD_DIR"]) / "pending"
    folder.mkdir(parents=True, exist_ok=True)
    stale, recent = folder / ("a" * 32), folder / ("b" * 32)
    for path in (stale, recent):
        path.write_bytes(b"Quand;Quoi;Combien\n")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    upload(client, "a.csv", UNKNOWN_CSV.encode())
    assert stale not in pending_files(app) and recent in pending_files(app) and len(pending_files(app)) == 2


def test_mapping_skips_a_preamble_as_wide_as_the_chosen_columns(client, app, ledger_ids, db_check):
    """The header row is the one whose names were shown, not the first row wide enough for the chosen columns."""
    content = (
        "Titulaire;Coopérative scolaire;Jules Verne\n"
        "Jour;Opération;Montant;Reste;Pointé\n"
        "02/09/2025;CHEQUE 0001231;-120,00;1114,56;\n"
    ).encode()
    response = upload(client, "maison.csv", content)
    assert '<option value="2">Montant</option>' in page_of(response)
    response = client.post(f"{SCREEN}/colonnes", data={"date": "0", "label": "1", "amount": "2"})
    assert response.status_code == 302, flashes(response)
    stored = db_check(lambda s: [(line.date, line.amount_cents) for line in s.scalars(sa.select(StatementLine))])
    assert stored == [(date(2025, 9, 2), -12000)]


# -- the summary box -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "balance", "message"),
    [
        ("31/02/2025", "1 853,06", "Date invalide : écrivez-la jj/mm/aaaa (par exemple 25/09/2025)."),
        ("", "1 853,06", "Indiquez la date du relevé."),
        ("30/09/2025", "douze euros", "« douze euros » n'est pas un montant (exemple : 1 234,56)."),
        ("30/09/2025", "", "Indiquez le solde du relevé."),
        ("30/09/2024", "1 853,06", "La date du relevé doit être dans l'année 2025-2026."),
    ],
)
def test_summary_box_refuses_bad_input_in_french_and_saves_nothing(client, ledger_ids, db_check, on, balance, message):
    before = state(db_check)
    response = set_statement_balance(client, on, balance)
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#resume")
    response = client.get(SCREEN)
    assert flashes(response) == [("danger", message)]
    assert summary(response)["difference"] == "saisissez le solde du relevé"
    assert state(db_check) == before


def test_summary_box_shows_the_difference_with_the_statement(client, ledger_ids, db_check):
    set_statement_balance(client, "30/09/2025", "1 853,06")
    response = client.get(SCREEN)
    assert flashes(response) == [("warning", "Écart de 618,50 € avec le relevé : pointez les lignes qui y figurent.")]
    assert summary(response) == {
        "on": "30/09/2025",
        "book_balance": "1 819,06 €",
        "uncleared_count": "12",
        "uncleared_total": "584,50 €",
        "expected_statement": "1 234,56 €",
        "difference": "618,50 €",
    }
    raw = response.get_data(as_text=True)
    assert re.search(r'class="[^"]*text-danger[^"]*" data-summary="difference"', raw)
    assert re.search(r'<p class="text-success[^"]*" id="reconciled-note" hidden>', raw)
    assert 'value="2025-09-30"' in raw and 'value="1\u202f853,06"' in raw  # the box keeps what was typed
    assert db_check(
        lambda s: s.scalars(
            sa.select(Ledger.reconciliation_balance_cents).where(Ledger.reconciliation_date == date(2025, 9, 30))
        ).all()
    ) == [185306]
    # a date sent by the browser's date picker, and a balance of zero, are accepted
    set_statement_balance(client, "2025-09-01", "0,00")
    response = client.get(SCREEN)
    assert summary(response)["on"] == "01/09/2025"
    assert summary(response)["difference"] == "-1 234,56 €"  # opening 1 114,56 + the 245,00 slip - the L01 cheque


def test_summary_box_on_a_year_without_cahier(client, coop, db_check):
    set_statement_balance(client, "30/09/2025", "1 853,06")
    assert flashes(client.get(SCREEN)) == [("warning", "Ce cahier est vide : saisissez d'abord des opérations.")]
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Ledger))) == 0


def test_an_older_statement_does_not_replace_the_balance_typed_for_a_later_date(client, ledger_ids, db_check):
    set_statement_balance(client, "31/10/2025", "2 000,00")
    upload(client, OFX)  # closing balance of 30/09
    assert summary(client.get(SCREEN))["on"] == "31/10/2025"
    assert db_check(
        lambda s: s.scalars(
            sa.select(Ledger.reconciliation_balance_cents).where(Ledger.reconciliation_date.is_not(None))
        ).all()
    ) == [200000]


# -- confirming the proposed matches -------------------------------------------------------------


def test_confirm_all_clears_and_links_every_proposed_line(coop, client, ledger_ids, db_check):
    upload(client, OFX)
    confirm_all(client)
    response = client.get(SCREEN)
    assert flashes(response) == [("success", "8 correspondance(s) confirmée(s) : les lignes sont pointées.")]
    by_date = statement_lines(db_check, coop.id)
    expected = {key: (None, None) for key in ledger_ids}
    for day, keys in EXPECTED_MATCHES.items():
        for key in keys:
            expected[key] = (day, by_date[day][0])
    assert bank_lines(db_check, ledger_ids) == expected
    # What is left: the fee to book, the outstanding cheque and the deposit in transit
    assert summary(response) == {
        "on": "30/09/2025",
        "book_balance": "1 819,06 €",
        "uncleared_count": "2",
        "uncleared_total": "-40,00 €",
        "expected_statement": "1 859,06 €",
        "difference": "-6,00 €",
    }
    page = page_of(response)
    assert proposals(response) == []
    assert "Aucune correspondance en attente." in page
    assert "30/09/2025 — FRAIS TENUE DE COMPTE ASSOCIATION 09/2025 : -6,00 €" in text_of(page)
    rows = dict(re.findall(r'<tr id="ligne-(\d+)"[^>]*>(.*?)</tr>', response.get_data(as_text=True), re.S))
    assert "04/09/2025 Dépointer" in text_of(rows[str(ledger_ids["L03"])])
    assert text_of(rows[str(ledger_ids["L10"])]).endswith("60,00 € Pointer L10")
    events = db_check(
        lambda s: s.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "pointage.matched")
        )
    )
    assert events == 8


def test_confirm_one_clears_only_that_match(client, ledger_ids, db_check):
    upload(client, OFX)
    deposit = next(value for value, _ in proposals(client.get(SCREEN)) if value.count(",") == 2)
    response = client.post(
        f"{SCREEN}/correspondances", data={"match": [v for v, _ in proposals(client.get(SCREEN))], "un": deposit}
    )
    assert response.status_code == 302
    assert flashes(client.get(SCREEN)) == [("success", "1 correspondance(s) confirmée(s) : les lignes sont pointées.")]
    cleared = {key for key, (on, _) in bank_lines(db_check, ledger_ids).items() if on}
    assert cleared == {"L02", "L03", "L04"}
    assert len(proposals(client.get(SCREEN))) == 7
    # the same match again: refused, nothing changes
    before = state(db_check)
    client.post(f"{SCREEN}/correspondances", data={"un": deposit})
    assert flashes(client.get(SCREEN)) == [("warning", "Cette ligne du relevé est déjà pointée.")]
    assert state(db_check) == before


def test_nothing_checked_says_so(client, ledger_ids, db_check):
    upload(client, OFX)
    client.get(SCREEN)
    before = state(db_check)
    for data in ({}, {"match": ["abc", "12:", ":5", "1:2;3"]}):
        assert client.post(f"{SCREEN}/correspondances", data=data).status_code == 302
        assert flashes(client.get(SCREEN)) == [("info", "Cochez au moins une correspondance à confirmer.")]
    assert state(db_check) == before


def test_tampered_matches_are_refused_and_clear_nothing(coop, client, ledger_ids, other, db_check):
    upload(client, OFX)
    client.get(SCREEN)
    ours = statement_lines(db_check, coop.id)
    _, their_ids, theirs = other
    non_bank = db_check(
        lambda s: next(
            line.id for line in s.get(EntryLine, ledger_ids["L06"]).entry.lines if line.id != ledger_ids["L06"]
        )
    )
    deposit = ours[date(2025, 9, 4)][0]
    mismatch = "Les montants ne correspondent pas : rien n'a été pointé."
    tampered = {
        f"{theirs[date(2025, 9, 8)][0]}:{ledger_ids['L06']}": "Ligne de relevé introuvable.",  # their statement line
        f"{ours[date(2025, 9, 8)][0]}:{their_ids['L06']}": "Ligne du cahier introuvable.",  # their cash-book line
        f"{deposit}:{ledger_ids['L02']},{ledger_ids['L03']}": mismatch,  # the slip without its third cheque
        f"{deposit}:{ledger_ids['L02']},{ledger_ids['L03']},{ledger_ids['L06']}": mismatch,
        f"{ours[date(2025, 9, 8)][0]}:{non_bank}": "Ligne du cahier introuvable.",  # the 756 line of the entry
    }
    before = state(db_check)
    for value, message in tampered.items():
        assert client.post(f"{SCREEN}/correspondances", data={"un": value}).status_code == 302
        assert flashes(client.get(SCREEN)) == [("warning", message)], value
    assert state(db_check) == before
    denied = db_check(
        lambda s: sorted(
            (e.entity, e.entity_id)
            for e in s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "access.denied"))
        )
    )
    assert denied == sorted([("statement_line", theirs[date(2025, 9, 8)][0]), ("entry_line", their_ids["L06"])])


def test_a_tampered_match_among_good_ones_does_not_stop_them(client, ledger_ids, db_check):
    upload(client, OFX)
    good = [value for value, _ in proposals(client.get(SCREEN))]
    deposit = next(value for value in good if value.count(",") == 2)
    bad = deposit.rsplit(",", 1)[0]  # the slip without its third cheque
    client.post(f"{SCREEN}/correspondances", data={"match": [bad, *[v for v in good if v != deposit]]})
    assert flashes(client.get(SCREEN)) == [
        ("success", "7 correspondance(s) confirmée(s) : les lignes sont pointées."),
        ("warning", "Les montants ne correspondent pas : rien n'a été pointé."),
    ]
    cleared = {key for key, (on, _) in bank_lines(db_check, ledger_ids).items() if on}
    assert cleared == {"L01", "L05", "L06", "L07", "L08", "L09", "L11"}


# -- one-click clearing --------------------------------------------------------------------------


def row_text(response, line_id: int) -> str:
    found = re.search(rf'<tr id="ligne-{line_id}"[^>]*>(.*?)</tr>', response.get_data(as_text=True), re.S)
    return text_of(found.group(1)) if found else ""


JSON = {"Accept": "application/json"}


def test_clear_and_unclear_with_the_plain_forms(client, ledger_ids, db_check):
    set_statement_balance(client, "30/09/2025", "1 853,06")
    client.get(SCREEN)
    line_id = ledger_ids["L06"]
    response = client.post(f"{SCREEN}/ligne/{line_id}/pointer")
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#ligne-{line_id}")
    response = client.get(SCREEN)
    assert flashes(response) == [("success", "Ligne pointée au 30/09/2025.")]
    assert row_text(response, line_id).endswith("500,00 € 30/09/2025 Dépointer L06")
    assert summary(response)["difference"] == "118,50 €"
    assert bank_lines(db_check, {"L06": line_id}) == {"L06": (date(2025, 9, 30), None)}

    # Dépointer asks first, and changes nothing until confirmed
    before = state(db_check)
    for headers in ({}, JSON):
        response = client.post(f"{SCREEN}/ligne/{line_id}/depointer", headers=headers)
        assert response.status_code == 200
        page = page_of(response)
        assert '<h1 class="h3">Confirmation</h1>' in page
        assert (
            "Annuler le pointage de la pièce L06 (Subvention municipale 2025, 500,00 €), pointée le 30/09/2025 ?"
            in text_of(page)
        )
        assert "Oui, dépointer" in page and f'href="{SCREEN}#ligne-{line_id}"' in page
        assert state(db_check) == before
    response = client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"})
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#ligne-{line_id}")
    response = client.get(SCREEN)
    assert flashes(response) == [("success", "Pointage annulé.")]
    assert row_text(response, line_id).endswith("500,00 € Pointer L06")
    assert summary(response)["difference"] == "618,50 €"
    assert bank_lines(db_check, {"L06": line_id}) == {"L06": (None, None)}


def test_the_line_buttons_post_the_one_form_of_the_lines_to_their_own_line(client, ledger_ids, db_check):
    """Without JavaScript, « Pointer » sends the form around the lines (one for the page, not one per
    line) to that line's address, and « Dépointer » then asks first, as before."""
    line_id = ledger_ids["L06"]
    page = client.get(SCREEN).get_data(as_text=True)
    lines_form = page.split('id="lignes">', 1)[1].split("</form>", 1)[0]
    assert "<form" not in lines_form and lines_form.count('id="ligne-') == len(re.findall("formaction=", lines_form))
    row = re.search(rf'<tr id="ligne-{line_id}"[^>]*>(.*?)</tr>', lines_form, re.S).group(1)
    clear = re.search(r'formaction="([^"]+)"', row).group(1)
    assert clear == f"{SCREEN}/ligne/{line_id}/pointer"
    assert client.post(clear).headers["Location"] == f"{SCREEN}#ligne-{line_id}"
    response = client.get(SCREEN)
    assert row_text(response, line_id).endswith("Dépointer L06")
    unclear = re.search(rf'<tr id="ligne-{line_id}".*?formaction="([^"]+)"', response.get_data(as_text=True), re.S)
    assert unclear.group(1) == f"{SCREEN}/ligne/{line_id}/depointer"
    assert "Oui, dépointer" in client.post(unclear.group(1)).get_data(as_text=True)
    assert bank_lines(db_check, {"L06": line_id})["L06"][0] is not None


def test_clear_and_unclear_answer_json_for_the_script(client, ledger_ids, db_check):
    set_statement_balance(client, "30/09/2025", "1 853,06")
    client.get(SCREEN)
    line_id = ledger_ids["L06"]
    response = client.post(f"{SCREEN}/ligne/{line_id}/pointer", headers=JSON)
    assert (response.status_code, response.mimetype) == (200, "application/json")
    assert response.get_json() == {
        "line_id": line_id,
        "cleared_on": "30/09/2025",
        "message": "Ligne pointée au 30/09/2025.",
        "summary": {
            "on": "30/09/2025",
            "book_balance": "1\u202f819,06\u202f€",
            "uncleared_count": 11,
            "uncleared_total": "84,50\u202f€",
            "expected_statement": "1\u202f734,56\u202f€",
            "difference": "118,50\u202f€",
            "reconciled": False,
        },
    }
    response = client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"}, headers=JSON)
    assert response.get_json() == {
        "line_id": line_id,
        "cleared_on": None,
        "message": "Pointage annulé.",
        "summary": {
            "on": "30/09/2025",
            "book_balance": "1\u202f819,06\u202f€",
            "uncleared_count": 12,
            "uncleared_total": "584,50\u202f€",
            "expected_statement": "1\u202f234,56\u202f€",
            "difference": "618,50\u202f€",
            "reconciled": False,
        },
    }
    assert bank_lines(db_check, {"L06": line_id}) == {"L06": (None, None)}
    assert flashes(client.get(SCREEN)) == []  # the script shows its own message: nothing left for the next page


def test_clearing_without_a_statement_date_counts_at_once_in_the_summary(client, ledger_ids, db_check):
    """No statement date typed yet: the box works at the end of the (past) year, and so does « Pointer »."""
    line_id = ledger_ids["L06"]
    response = client.post(f"{SCREEN}/ligne/{line_id}/pointer", headers=JSON)
    result = response.get_json()
    assert result["cleared_on"] == result["summary"]["on"] == "31/08/2026"
    assert result["summary"]["uncleared_count"] == 11 and result["summary"]["difference"] is None


def test_a_forged_statement_date_is_refused(client, ledger_ids, db_check):
    before = state(db_check)
    response = client.post(f"{SCREEN}/ligne/{ledger_ids['L06']}/pointer", data={"on": "2025-13-01"})
    assert response.status_code == 400
    assert state(db_check) == before


def test_a_line_changed_meanwhile_is_reported_not_an_error_page(client, ledger_ids, db_check, monkeypatch):
    from sqlalchemy.orm.exc import StaleDataError

    from app import reconciliation

    def stale(*args, **kwargs):
        raise StaleDataError("entry changed meanwhile")

    monkeypatch.setattr(reconciliation, "clear_line", stale)
    before = state(db_check)
    url = f"{SCREEN}/ligne/{ledger_ids['L06']}/pointer"
    response = client.post(url, headers=JSON)
    assert response.status_code == 409 and "modifiées entre-temps" in response.get_json()["message"]
    response = client.post(url)
    assert (response.status_code, response.headers["Location"]) == (302, SCREEN)
    [(category, message)] = flashes(client.get(SCREEN))
    assert category == "warning" and "modifiées entre-temps" in message
    assert state(db_check) == before


def test_the_screen_commits_nothing(client, ledger_ids, other, db_check):
    """Showing the screen, and a forged « Créer l'opération » link, commits nothing: the refused access
    is audited aside."""
    import flask_sqlalchemy.session
    import sqlalchemy.event

    upload(client, OFX)
    commits = []

    def count(session):
        commits.append(session)

    sqlalchemy.event.listen(flask_sqlalchemy.session.Session, "after_commit", count)
    try:
        assert client.get(SCREEN).status_code == 200
        fee = other[2][date(2025, 9, 30)][0]
        assert client.get(f"/coop/cahier/{YEAR}/nouvelle?releve={fee}", follow_redirects=True).status_code == 200
    finally:
        sqlalchemy.event.remove(flask_sqlalchemy.session.Session, "after_commit", count)
    assert commits == []
    denied = db_check(
        lambda s: s.scalars(sa.select(AuditEvent.entity_id).where(AuditEvent.action == "access.denied")).all()
    )
    assert denied == [fee]


def test_unclearing_a_confirmed_match_offers_it_again(client, ledger_ids, db_check):
    upload(client, OFX)
    confirm_all(client)
    line_id = ledger_ids["L06"]
    client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"})
    response = client.get(SCREEN)
    assert [value.split(":")[1] for value, _ in proposals(response)] == [str(line_id)]
    assert bank_lines(db_check, {"L06": line_id}) == {"L06": (None, None)}


def test_reconciled_month_says_zero(coop, client, ledger_ids, db_check):
    """Confirm the proposals, create the missing fee from its statement line: the box says 0,00 €."""
    upload(client, OFX)
    confirm_all(client)
    fee = statement_lines(db_check, coop.id)[date(2025, 9, 30)][0]
    response = client.get(SCREEN)
    assert f'href="/coop/cahier/2025/nouvelle?releve={fee}"' in response.get_data(as_text=True)
    fields = prefilled_entry_form(client, fee)
    assert client.post("/coop/cahier/2025/nouvelle", data=fields).status_code == 302
    response = client.get(SCREEN)
    assert summary(response)["difference"] == "0,00 €"
    raw = response.get_data(as_text=True)
    assert re.search(r'class="[^"]*text-success[^"]*" data-summary="difference"', raw)
    assert '<p class="text-success mb-0 mt-2" id="reconciled-note">Écart nul' in raw
    assert "Lignes du relevé absentes du cahier" not in page_of(response)
    set_statement_balance(client, "30/09/2025", "1 853,06")
    assert flashes(client.get(SCREEN)) == [("success", "Écart : 0,00 €. Le cahier est rapproché avec le relevé.")]


# -- lines of earlier years ----------------------------------------------------------------------


def test_a_cheque_of_the_previous_year_is_pointed_in_the_new_year_only(client, ledger_ids, db_check):
    line_id = ledger_ids["L01"]
    upload(client, OFX)
    response = client.get(SCREEN)
    assert "année précédente" in row_text(response, line_id)
    cheque = next(value for value, _ in proposals(response) if value.endswith(f":{line_id}"))
    client.post(f"{SCREEN}/correspondances", data={"un": cheque})
    assert bank_lines(db_check, {"L01": line_id})["L01"][0] == date(2025, 9, 2)
    response = client.get(SCREEN)
    assert row_text(response, line_id).endswith("02/09/2025 Dépointer L01")  # still listed, with its badge
    assert "année précédente" in row_text(response, line_id)
    # 2024-2025 at 31 August: the cheque was still outstanding (cleared in September)
    previous = client.get("/coop/pointage/2024")
    assert summary(previous)["on"] == "31/08/2025"
    assert (summary(previous)["uncleared_count"], summary(previous)["uncleared_total"]) == ("1", "-120,00 €")
    assert "année précédente" not in row_text(previous, line_id)
    # unclear it from the new year
    client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"})
    assert bank_lines(db_check, {"L01": line_id}) == {"L01": (None, None)}


def test_a_line_of_the_previous_year_cleared_before_september_is_not_listed(client, ledger_ids, db_check):
    line_id = ledger_ids["L01"]
    client.post(f"{SCREEN}/ligne/{line_id}/pointer", data={"on": "2025-08-30"})
    assert bank_lines(db_check, {"L01": line_id})["L01"][0] == date(2025, 8, 30)
    assert row_text(client.get(SCREEN), line_id) == ""
    assert row_text(client.get("/coop/pointage/2024"), line_id).endswith("30/08/2025 Dépointer L01")
    # and it is not unpointed from the new year's screen, where it is not shown
    response = client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"})
    assert response.status_code == 404
    assert bank_lines(db_check, {"L01": line_id})["L01"][0] == date(2025, 8, 30)


# -- « Créer l'opération » -----------------------------------------------------------------------


class _FormFields(html.parser.HTMLParser):
    """The values a browser would post for the form whose id is `form_id`."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.select = form_id, False, None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            elif kind != "submit":
                self.fields.setdefault(a["name"], a.get("value") or "")
        elif tag == "select":
            self.select = a.get("name")
            self.fields.setdefault(self.select, "")
        elif tag == "option" and self.select and "selected" in a:
            self.fields[self.select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        elif tag == "form":
            self.inside = False


def prefilled_entry_form(client, statement_line_id: int) -> dict[str, str]:
    """Follow « Créer l'opération » and return what the prefilled form would post (plus the submit button)."""
    response = client.get(f"/coop/cahier/{YEAR}/nouvelle?releve={statement_line_id}")
    assert response.status_code == 302
    assert re.search(rf"\?jeton=[0-9a-f]{{32}}&releve={statement_line_id}$", response.headers["Location"])
    response = client.get(response.headers["Location"])
    assert response.status_code == 200
    parser = _FormFields("entry-form")
    parser.feed(response.get_data(as_text=True))
    return {**parser.fields, "submit": "Valider et calculer cette opération comptable"}


def entry_lines(db_check, coop_id: int, piece: str) -> tuple[dict[str, int], tuple[date | None, int | None]]:
    """The lines of the coop's entry `piece` by account, and (cleared_on, statement line) of its bank line."""

    def run(s):
        entry = s.scalar(sa.select(Entry).where(Entry.piece == piece, Entry.coop_id == coop_id))
        bank = next(line for line in entry.lines if line.account.code == "512")
        return {line.account.code: line.amount_cents for line in entry.lines}, (bank.cleared_on, bank.statement_line_id)

    return db_check(run)


def test_create_the_missing_bank_fee_from_its_statement_line(coop, client, ledger_ids, db_check):
    upload(client, OFX)
    fee = statement_lines(db_check, coop.id)[date(2025, 9, 30)][0]
    fields = prefilled_entry_form(client, fee)
    assert {
        key: fields[key]
        for key in (
            "statement_line",
            "kind",
            "payment_mode",
            "date",
            "label",
            "bank_amount",
            "cash_amount",
            "splits-0-account",
            "splits-0-amount",
            "splits-1-account",
            "splits-1-amount",
        )
    } == {
        "statement_line": str(fee),
        "kind": "expense",
        "payment_mode": "prelevement",
        "date": "2025-09-30",
        "label": "FRAIS TENUE DE COMPTE ASSOCIATION 09/2025",
        "bank_amount": "6,00",
        "cash_amount": "",
        "splits-0-account": "627",
        "splits-0-amount": "6,00",
        "splits-1-account": "",
        "splits-1-amount": "",
    }
    fields["piece"] = "F01"
    response = client.post(f"/coop/cahier/{YEAR}/nouvelle", data=fields)
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#resume")
    response = client.get(SCREEN)
    assert flashes(response) == [
        ("success", "Opération F01 enregistrée."),
        ("success", "Elle est pointée avec la ligne du relevé."),
    ]
    assert entry_lines(db_check, coop.id, "F01") == ({"627": 600, "512": -600}, (date(2025, 9, 30), fee))
    assert "Lignes du relevé absentes du cahier" not in page_of(response)


@pytest.fixture
def without_the_occe_debit(coop, ledger_ids, db_check, client):
    """The cash-book without L08 (the OCCE debit), the OFX statement imported: its 45,50 line has no entry."""

    def run(s):
        entry = s.get(EntryLine, ledger_ids["L08"]).entry
        books.delete_entry(s, entry, by=None)
        s.commit()

    db_check(run)
    upload(client, OFX)
    return statement_lines(db_check, coop.id)[date(2025, 9, 15)][0]


def add_membership(db_check, coop_id: int, *, total: int, cotisation: int) -> None:
    def run(s):
        year = books.school_year(s, YEAR)
        s.add(
            Membership(
                coop_id=coop_id,
                school_year_id=year.id,
                status="paid",
                committed_at=utcnow(),
                total_cents=total,
                cotisation_cents=cotisation,
                insurance_cents=total - cotisation,
                property_surcharge_cents=0,
                payment_method="debit",
            )
        )
        s.commit()

    db_check(run)


def test_occe_debit_is_split_as_in_the_membership(client, coop, without_the_occe_debit, db_check):
    add_membership(db_check, coop.id, total=4550, cotisation=3220)
    fields = prefilled_entry_form(client, without_the_occe_debit)
    assert {
        key: fields[key]
        for key in (
            "kind",
            "payment_mode",
            "date",
            "bank_amount",
            "splits-0-account",
            "splits-0-amount",
            "splits-1-account",
            "splits-1-amount",
        )
    } == {
        "kind": "expense",
        "payment_mode": "prelevement",
        "date": "2025-09-15",
        "bank_amount": "45,50",
        "splits-0-account": "6281",
        "splits-0-amount": "32,20",
        "splits-1-account": "61681",
        "splits-1-amount": "13,30",
    }
    assert fields["label"].startswith("PRLV SEPA OCCE 85 COTISATION OCCE 2025-2026")
    fields["piece"] = "P08"
    assert client.post(f"/coop/cahier/{YEAR}/nouvelle", data=fields).status_code == 302
    assert entry_lines(db_check, coop.id, "P08") == (
        {"6281": 3220, "61681": 1330, "512": -4550},
        (date(2025, 9, 15), without_the_occe_debit),
    )


@pytest.mark.parametrize("membership", ["none", "another total", "another coop"])
def test_occe_debit_goes_on_6281_without_a_membership_of_that_total(
    client, coop, other, without_the_occe_debit, db_check, membership
):
    if membership == "another total":
        add_membership(db_check, coop.id, total=5000, cotisation=3220)
    elif membership == "another coop":
        add_membership(db_check, other[0].id, total=4550, cotisation=3220)
    fields = prefilled_entry_form(client, without_the_occe_debit)
    assert (fields["splits-0-account"], fields["splits-0-amount"]) == ("6281", "45,50")
    assert (fields["splits-1-account"], fields["splits-1-amount"]) == ("", "")


def test_another_coops_statement_line_prefills_nothing_and_is_not_pointed(coop, client, ledger_ids, other, db_check):
    _, _, theirs = other
    fee = theirs[date(2025, 9, 30)][0]
    fields = prefilled_entry_form(client, fee)
    assert (fields["statement_line"], fields["label"], fields["bank_amount"]) == ("", "", "")
    assert db_check(
        lambda s: s.scalars(
            sa.select(AuditEvent.entity_id).where(
                AuditEvent.action == "access.denied", AuditEvent.entity == "statement_line"
            )
        ).all()
    ) == [fee]
    # a forged hidden field: the entry is recorded, their statement line stays unlinked
    fields.update(
        {
            "statement_line": str(fee),
            "piece": "F01",
            "date": "30/09/2025",
            "label": "Frais",
            "kind": "expense",
            "payment_mode": "prelevement",
            "bank_amount": "6,00",
            "splits-0-account": "627",
            "splits-0-amount": "6,00",
        }
    )
    response = client.post(f"/coop/cahier/{YEAR}/nouvelle", data=fields)
    assert response.status_code == 302
    assert entry_lines(db_check, coop.id, "F01") == ({"627": 600, "512": -600}, (None, None))
    assert (
        db_check(
            lambda s: s.scalar(
                sa.select(sa.func.count()).select_from(EntryLine).where(EntryLine.statement_line_id == fee)
            )
        )
        == 0
    )


# -- tenancy -------------------------------------------------------------------------------------


def test_another_coops_lines_answer_404_and_change_nothing(client, ledger_ids, other, db_check):
    _, their_ids, _ = other
    before = state(db_check)
    attempts = [
        (f"{SCREEN}/ligne/{their_ids['L06']}/pointer", {}, {}),
        (f"{SCREEN}/ligne/{their_ids['L06']}/pointer", {}, JSON),
        (f"{SCREEN}/ligne/{their_ids['L01']}/depointer", {"confirme": "oui"}, {}),
        (f"{SCREEN}/ligne/{their_ids['L01']}/depointer", {}, JSON),
        (f"{SCREEN}/ligne/999999/pointer", {}, {}),
    ]
    for url, data, headers in attempts:
        response = client.post(url, data=data, headers=headers)
        assert response.status_code == 404, url
        assert "Voisins" not in response.get_data(as_text=True)
    assert state(db_check) == before
    denied = db_check(
        lambda s: s.scalars(
            sa.select(AuditEvent.entity_id).where(
                AuditEvent.action == "access.denied", AuditEvent.entity == "entry_line"
            )
        ).all()
    )
    assert sorted(denied) == sorted([their_ids["L06"], their_ids["L06"], their_ids["L01"], their_ids["L01"]])


def test_the_screen_shows_only_the_coops_own_statements_and_lines(client, ledger_ids, other):
    response = client.get(SCREEN)
    assert proposals(response) == []
    assert "Aucune correspondance en attente. Importez un relevé" in page_of(response)
    _, their_ids, _ = other
    raw = response.get_data(as_text=True)
    assert all(f'id="ligne-{line_id}"' not in raw for line_id in their_ids.values())


def test_the_opening_balance_is_not_a_line_to_point(client, ledger_ids, db_check):
    opening = db_check(
        lambda s: next(
            line.id
            for line in s.scalar(sa.select(Entry).where(Entry.kind == "opening")).lines
            if line.account.code == "512"
        )
    )
    assert row_text(client.get(SCREEN), opening) == ""
    assert client.post(f"{SCREEN}/ligne/{opening}/pointer").status_code == 404
    assert bank_lines(db_check, {"RAN": opening}) == {"RAN": (None, None)}


def test_lines_outside_the_year_are_shown_before_the_import(client, coop, db_check):
    """Issue 13 §4: nothing is imported until the coop has seen the lines dated outside the year."""
    from tests.helpers import plain

    qif = (DATA / "releve_2025-09.qif").read_bytes().replace(b"D02/09/2025", b"D28/08/2025")
    response = client.post(
        "/coop/pointage/2025/releve", data={"file": (io.BytesIO(qif), "releve.qif")}, content_type="multipart/form-data"
    )
    page = plain(html.unescape(response.get_data(as_text=True)))
    assert response.status_code == 200 and "hors de l'année 2025-2026" in page
    assert "28/08/2025" in page and "Rien n" in page
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count(Statement.id)))) == 0
    imported = client.post("/coop/pointage/2025/hors-annee", data={})
    assert imported.status_code == 302
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count(Statement.id)))) == 1
    again = client.post("/coop/pointage/2025/hors-annee", data={}, follow_redirects=True)
    assert "plus disponible" in again.get_data(as_text=True)
