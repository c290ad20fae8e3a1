"""axe-core on the main pages of both faces: no serious or critical violation on any of them.

A coop with a year under way (school year published, opening balances, a few operations, an
action) and a staff member; each page is opened in Chromium as its user sees it and checked with
`axe_check` (tests/e2e/conftest.py). The journeys call the same check on the pages they reach.
"""

from __future__ import annotations

from datetime import date

import pytest

from app import ledger as books
from app.clock import today as paris_today
from app.extensions import db
from app.models import Coop, SchoolYear, school_year_start
from tests.e2e.conftest import AXE_IN_THIS_PASS, axe_check
from tests.helpers import browser_log_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not AXE_IN_THIS_PASS, reason="accessibility does not depend on the database: SQLite pass only"),
]
YEAR = school_year_start(paris_today())


ANONYMOUS_PAGES = ["/connexion", "/mot-de-passe/oubli"]
COOP_PAGES = [
    "/",
    "/coop/identite",
    "/coop/modifications",
    "/coop/adhesion",
    f"/coop/cahier/{YEAR}",
    f"/coop/cahier/{YEAR}/nouvelle",
    f"/coop/cahier/{YEAR}/import",
    f"/coop/cahier/{YEAR}/report",
    "/coop/actions",
    f"/coop/pointage/{YEAR}",
    "/coop/cloture",
    "/coop/compte-rendu",
    "/coop/mandataire",
    "/mot-de-passe",
]
ADMIN_PAGES = [
    "/admin/",
    "/admin/campagne/",
    "/admin/admin_coops/",
    "/admin/admin_coops/new/",
    "/admin/admin_memberships/",
    "/admin/admin_years/",
    "/admin/admin_years/new/",
    "/admin/prelevements/",
    "/admin/comptes-rendus/",
    "/admin/clotures/",
    "/admin/mandataires/",
    "/admin/admin_mandate_changes/",
    "/admin/exports/",
    "/admin/import-coops/",
    "/admin/admin_outbox/",
    "/admin/admin_audit/",
]


@pytest.fixture
def year_under_way(app, make_coop, make_staff):
    """Coop 085-001 with this year's rates, opening balances, an action and three operations."""
    info = make_coop(1)
    make_staff("agent")
    with app.app_context():
        session = db.session
        session.add(SchoolYear(start_year=YEAR, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25))
        ledger = books.open_ledger(session, session.get(Coop, info.id), YEAR)
        books.record_opening(session, ledger, bank=50_000, cash=2_000, by=None)
        action = books.create_action(session, info.id, "Classe de mer", by=None)
        start = date(YEAR, 9, 1)
        for piece, label, kind, treasury, splits, mode in (
            ("1", "Cotisations des familles", "receipt", books.Treasury(bank_in=12_000), [("756", 12_000)], "remise"),
            ("2", "Livres de bibliothèque", "expense", books.Treasury(bank_out=4_550), [("6181", 4_550)], "cheque"),
            ("3", "Goûter de rentrée", "expense", books.Treasury(cash_out=1_230), [("6068", 1_230)], "especes"),
        ):
            books.record_entry(
                session,
                ledger,
                books.EntryData(
                    piece=piece,
                    date=start.replace(day=2 + int(piece)),
                    label=label,
                    payment_mode=mode,
                    kind=kind,
                    treasury=treasury,
                    splits=[books.Split(code, amount) for code, amount in splits],
                    cheque_number="0000101" if mode == "cheque" else "",
                    action_id=action.id if piece == "2" else None,
                ),
                by=None,
            )
        session.commit()
        session.remove()
    return info


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_anonymous_pages_have_no_serious_axe_violation(page, path):
    page.goto(path)
    axe_check(page)


@pytest.mark.parametrize("path", COOP_PAGES)
def test_coop_pages_have_no_serious_axe_violation(page, year_under_way, path):
    browser_log_in(page, "085-001")
    page.goto(path)
    axe_check(page)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_have_no_serious_axe_violation(page, year_under_way, path):
    browser_log_in(page, "agent", then="/admin/")
    page.goto(path)
    axe_check(page)
