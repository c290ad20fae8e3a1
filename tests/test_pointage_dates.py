"""Pointing by hand never dates a bank line before its operation: a statement dated earlier cannot show it
(issue 15). The refusal is said in French; the line stays unpointed and nothing is moved silently."""

from __future__ import annotations

from datetime import date

import pytest

from app import reconciliation as rec
from app.errors import DomainError
from app.models import Coop, EntryLine
from tests.test_pointage import IBAN, load_fixture_ledger
from tests.test_pointage_web import JSON, SCREEN, bank_lines, coop, flashes, ledger_ids, set_statement_balance  # noqa: F401

EARLIER = "L'opération L06 est datée du 06/09/2025, après le relevé du 05/09/2025 : elle ne peut pas y figurer."


@pytest.fixture
def made(make_coop):
    return make_coop(44, iban=IBAN)  # created before the test's session opens its write transaction


def test_a_statement_dated_before_the_operation_cannot_clear_it(made, session):
    owner = session.get(Coop, made.id)
    ids = load_fixture_ledger(session, owner)
    with pytest.raises(DomainError) as refused:
        rec.clear_line(session, owner.id, ids["L06"], date(2025, 9, 5), by=None)
    assert refused.value.message.startswith(EARLIER)
    assert refused.value.field == "on"
    assert session.get(EntryLine, ids["L06"]).cleared_on is None
    # the operation's own day, or any later statement, is fine
    assert rec.clear_line(session, owner.id, ids["L06"], date(2025, 9, 6), by=None).cleared_on == date(2025, 9, 6)


def test_the_pointage_screen_says_why_with_and_without_javascript(client, ledger_ids, db_check):  # noqa: F811
    set_statement_balance(client, "05/09/2025", "1 000,00")
    line_id = ledger_ids["L06"]
    response = client.post(f"{SCREEN}/ligne/{line_id}/pointer", headers=JSON)
    assert response.status_code == 422
    assert response.get_json()["message"].startswith(EARLIER)
    response = client.post(f"{SCREEN}/ligne/{line_id}/pointer")
    assert (response.status_code, response.headers["Location"]) == (302, f"{SCREEN}#ligne-{line_id}")
    shown = flashes(client.get(SCREEN))
    assert any(category == "warning" and message.startswith(EARLIER) for category, message in shown), shown
    assert bank_lines(db_check, {"L06": line_id}) == {"L06": (None, None)}


def test_the_closing_step_says_uncleared_cheques_are_added_without_a_double_negative(client, ledger_ids):  # noqa: F811
    """2024-2025 ends with cheque L01 (120,00 €) not yet debited: the expected statement is the book plus it."""
    page = client.get("/coop/cloture/2024").get_data(as_text=True)
    assert "Moins les opérations non pointées" not in page
    row = page[page.index("Opérations non pointées à ajouter") :]
    assert ">120,00\u202f€</td>" in row[: row.index("</tr>") + 5]
