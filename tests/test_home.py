"""The home checklist says what is missing, shows each deadline, is polite when one has passed, and
announces the coming mandataire; the identity page points at the empty fields."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from app.models import Coop, Mandate, Membership, SchoolYear
from app.web.home import checklist, membership_step, reports_deadline
from tests.helpers import page_html, plain


def _card(session, coop_id: int, key: str, today: date, label: str = "2025-2026"):
    coop = session.get(Coop, coop_id)
    return next(step for step in checklist(coop, today, label) if step.key == key)


def test_identity_card_names_the_missing_information(app, client, make_coop, login_as):
    login_as(make_coop(1, uai=""))
    page = plain(page_html(client.get("/")))
    assert "1 information à compléter : numéro UAI." in page
    other = login_as(make_coop(2, uai="", iban=""), on=app.test_client())
    page = plain(page_html(other.get("/")))
    assert "2 informations à compléter : numéro UAI, IBAN." in page


def test_identity_page_lists_and_marks_the_empty_fields(app, client, make_coop, login_as):
    login_as(make_coop(1, uai="", bic=""))
    page = plain(page_html(client.get("/coop/identite")))
    assert "2 informations à compléter :" in page
    assert '<a href="#uai">Numéro UAI (ex-RNE) de l\'école</a>' in page and '<a href="#bic">BIC</a>' in page
    assert page.count("field-missing") == 2
    other = login_as(make_coop(2), on=app.test_client())
    page = page_html(other.get("/coop/identite"))
    assert "à compléter" not in page and "field-missing" not in page


def test_membership_card_shows_its_deadline_then_a_polite_reminder(session, make_coop):
    year = SchoolYear(start_year=2025, membership_deadline=date(2025, 10, 15))
    session.add(year)
    session.flush()
    before = membership_step(year, None, False, year.label, date(2025, 10, 1))
    assert before.deadline == date(2025, 10, 15) and not before.is_late
    assert "date limite est passée" not in before.summary
    after = membership_step(year, None, False, year.label, date(2025, 11, 29))
    assert after.is_late and after.status == "todo"
    assert "La date limite est passée : pensez à vous engager dès que possible" in after.summary


def test_commitment_after_the_deadline_is_noted_on_the_card(session, make_coop):
    info = make_coop(1)
    coop = session.get(Coop, info.id)
    year = SchoolYear(start_year=2025, membership_deadline=date(2025, 10, 15))
    session.add(year)
    membership = Membership(
        coop=coop,
        school_year=year,
        status="committed",
        payment_method="debit",
        total_cents=11500,
        committed_at=datetime(2025, 11, 29, 9, 0),
    )
    session.add(membership)
    session.flush()
    card = membership_step(year, membership, False, year.label, date(2025, 12, 1))
    assert "Engagée le 29/11/2025 (après la date limite du 15/10/2025 : c'est noté, merci)" in card.summary
    assert card.deadline is None  # done on the coop's side: no deadline line any more


def test_a_reports_deadline_inside_the_year_is_not_shown():
    year = SchoolYear(start_year=2025, reports_deadline=date(2025, 10, 31))
    assert reports_deadline(year) is None
    year.reports_deadline = date(2026, 10, 31)
    assert reports_deadline(year) == date(2026, 10, 31)


def test_home_shows_the_deadline_line_on_a_card_to_do(app, client, make_coop, login_as, clock):
    info = make_coop(1)
    with app.app_context():
        from app.extensions import db

        db.session.add(SchoolYear(start_year=2025, membership_deadline=date(2025, 10, 15)))
        db.session.commit()
        db.session.remove()
    login_as(info)
    page = plain(page_html(client.get("/")))
    assert "<strong>Date limite :</strong> 15/10/2025</p>" in page
    clock(datetime(2025, 11, 29, 9, 0))
    later = login_as(info, on=app.test_client())
    page = plain(page_html(later.get("/")))
    assert "<strong>Date limite :</strong> 15/10/2025 (passée)" in page
    assert "pensez à vous engager dès que possible" in page


def test_mandate_card_announces_the_coming_mandataire(session, make_coop):
    info = make_coop(1)
    coop = session.get(Coop, info.id)
    current = coop.mandates[0]
    current.ended_on = date(2026, 12, 31)
    session.add(
        Mandate(coop=coop, role="mandataire", first_name="Hugo", last_name="Bernard", started_on=date(2027, 1, 1))
    )
    session.flush()
    card = _card(session, info.id, "mandate", date(2026, 12, 1))
    assert "Mandataire actuel : Claire Moreau." in card.summary
    assert "À partir du 01/01/2027, Hugo Bernard sera mandataire de la coopérative." in card.summary
    after = _card(session, info.id, "mandate", date(2027, 1, 2))
    assert "sera mandataire" not in after.summary
    assert session.scalar(sa.select(sa.func.count()).select_from(Mandate)) == 2


def test_a_coop_new_on_the_portal_is_told_how_to_start_its_year(app, session, make_coop):
    """Issue 13 §6: last year kept elsewhere is not « rien à clôturer, terminé »: the card says to type
    the opening (balances and items outstanding) or to bring last year in and close it here."""
    from app import ledger as books

    info = make_coop(1)
    today = date(2025, 9, 15)
    card = _card(session, info.id, "closing", today)
    assert card.status == "todo" and card.endpoint == "ledger.cahier_current"
    assert "n'est pas sur le portail" in card.summary and "report à nouveau 2025-2026" in card.summary
    ledger = books.open_ledger(session, session.get(Coop, info.id), 2025)
    books.record_opening(session, ledger, bank=120_000, cash=5_000, by=None)
    session.flush()
    card = _card(session, info.id, "closing", today)
    assert card.status == "done" and "part du report à nouveau que vous avez saisi" in card.summary


def test_the_home_page_reads_this_years_and_last_years_cash_books_together(app, client, make_coop, login_as, clock):
    """The home is the page every login lands on: each table it needs is read once (on PostgreSQL each
    statement is a round trip). The two cash-book cards show both years all the same."""
    from app import ledger as books
    from app.extensions import db

    info = make_coop(1)
    with app.app_context():
        coop = db.session.get(Coop, info.id)
        last = books.open_ledger(db.session, coop, 2024)
        books.record_opening(db.session, last, bank=50_000, cash=0, by=None)
        current = books.open_ledger(db.session, coop, 2025)
        books.record_opening(db.session, current, bank=80_000, cash=1_000, by=None)
        db.session.commit()
        engine = db.engine
        db.session.remove()
    login_as(info)
    statements: list[str] = []

    def seen(_connection, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        page = plain(page_html(client.get("/")))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert "Clôturer le cahier" in page  # last year's card: 2024-2025 still open
    assert "Banque : 800,00 € · caisse : 10,00 € · tout est pointé." in page  # this year's card
    assert sum("FROM ledger" in s for s in statements) == 1
    assert not any("FROM school_year" in s for s in statements)  # both years came with their ledgers
