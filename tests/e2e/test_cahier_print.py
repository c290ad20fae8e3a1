"""The printable classic view (`?impression=1`) printed to PDF by Chromium on A4 portrait: every column
of the cahier is on the paper, every account used in the year included (issue 15: the PDF kept only the
first account column)."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app import ledger as books
from app.models import Account, Coop
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_on_every_page

pytestmark = pytest.mark.e2e
NATURES = ("expense", "income", "subsidy")


@pytest.fixture
def year_with_every_account(make_coop, db_check):
    """2025-2026 with one operation on each expense, income and subsidy account of the chart, and one
    operation split over two accounts. Returns the coop's login and the accounts' display codes."""
    coop = make_coop(7)

    def fixture(s):
        ledger = books.open_ledger(s, s.get(Coop, coop.id), 2025)
        books.record_opening(s, ledger, bank=1234567, cash=0, by=None)
        accounts = s.scalars(sa.select(Account).where(Account.nature.in_(NATURES)).order_by(Account.code)).all()
        for number, account in enumerate(accounts, start=1):
            income = account.nature != "expense"
            amount = 1000 + number
            books.record_entry(
                s,
                ledger,
                books.EntryData(
                    piece=f"P{number}",
                    date=date(2025, 9, 1 + number % 28),
                    label=f"Opération sur {account.label}",
                    payment_mode="virement",
                    kind="receipt" if income else "expense",
                    treasury=books.Treasury(bank_in=amount) if income else books.Treasury(bank_out=amount),
                    splits=[books.Split(account.code, amount)],
                ),
                by=None,
            )
        books.record_entry(
            s,
            ledger,
            books.EntryData(
                piece="V1",
                date=date(2025, 10, 3),
                label="Sortie au musée, car et entrées",
                payment_mode="cheque",
                cheque_number="0001234",
                kind="expense",
                treasury=books.Treasury(bank_out=30000),
                splits=[books.Split("6251", 20000), books.Split("6288", 10000)],
            ),
            by=None,
        )
        s.commit()
        return [account.display_code for account in accounts]

    codes = db_check(fixture)
    assert len(codes) > 12
    return coop.login, codes


def test_printed_cahier_keeps_every_account_on_a4_portrait(page, year_with_every_account):
    login, codes = year_with_every_account
    axe_on_every_page(page)  # on the screen: the checks stop before the print media below
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/coop/cahier/2025?impression=1")
    # the printable width of A4 portrait: 210 mm - 2 x 8 mm of margins = 194 mm = 733 CSS px
    page.set_viewport_size({"width": 733, "height": 1000})
    page.emulate_media(media="print")
    # nothing of the table goes past the right edge of the paper
    widths = page.evaluate(
        "() => [document.querySelector('table.cahier').getBoundingClientRect().right, document.body.clientWidth]"
    )
    assert widths[0] <= widths[1] + 1, f"the table is {widths[0]} px wide for {widths[1]} px of paper"

    pdf = PdfReader(io.BytesIO(page.pdf(format="A4", prefer_css_page_size=True)))
    first = pdf.pages[0].mediabox
    assert round(float(first.width) / 72 * 25.4) == 210 and round(float(first.height) / 72 * 25.4) == 297
    printed = "\n".join(p.extract_text() for p in pdf.pages)
    missing = [code for code in codes if code not in printed]
    assert missing == [], f"account codes missing from the printed cahier: {missing}"
    # the headers of every column, balances and the breakdown included
    for header in ("Pièce", "Banque 512", "Caisse 530", "Régie 541", "Pointé le", "Ventilation", "Totaux par compte"):
        assert header in printed, header
    assert "V1" in printed and "Sortie au musée" in printed
