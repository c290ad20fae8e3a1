"""The pointage page is kept between requests (app/views/pointage_table.py): whole bodies by the year's
state, and the year itself (its lines, statement lines, matching and rendered rows), brought up to
date from what changed. After every kind of change a user can make (a statement imported, a match
confirmed or undone, a line pointed or not, an operation added, edited or deleted, the statement
box, a year closed or reopened, another day), the page shown is the page built from nothing, and the
change can be seen on it.

Each step views the page with what was kept from the step before (what a user gets), then empties the
caches and views it again (`shown`), or builds it from nothing beside what is kept (`as_built`, so
that changes pile up on the kept year): both must be the same page, byte for byte but for the CSP
nonce (from the breadcrumb on: a message flashed by the change shows on the first view only).
"""

from __future__ import annotations

import random
import re
from datetime import date, datetime
from functools import partial

import pytest
import sqlalchemy as sa

from app import closing
from app import ledger as books
from app import reconciliation as rec
from app.models import Account, Coop, Entry, EntryLine, Ledger, SchoolYear
from app.statements import BankLine, ParsedStatement
from app.views.cahier_table import cahier_cache
from app.views.pointage_table import pointage_cache
from tests import test_pointage_web as web
from tests.test_pointage import IBAN
from tests.test_pointage_closed_year import _entry
from tests.test_pointage_web import OFX, SCREEN, load_ledger, page_of, proposals, summary, text_of, upload

# the pointage web tests' fixtures, used here by name (no pending upload; coop 085-042 with an IBAN)
_no_pending_files = web._no_pending_files
coop = web.coop


@pytest.fixture
def ids(coop, db_check):
    return load_ledger(db_check, coop.id)


def _page(client, address: str) -> str:
    """The page's own content (from its breadcrumb on: not the messages flashed by the change before)."""
    response = client.get(address)
    assert response.status_code == 200
    raw = response.get_data(as_text=True)
    return re.sub(r'nonce="[^"]*"', 'nonce=""', raw[raw.index('aria-label="Fil d') :])


def shown(client, address: str = SCREEN) -> str:
    """The page as a user gets it now (from what was kept), checked against the page built from nothing."""
    kept = _page(client, address)
    cahier_cache.clear()
    pointage_cache.clear()
    assert kept == _page(client, address)
    return kept


def row(page: str, line_id: int) -> str | None:
    """What a reader sees of the row of bank line `line_id`, or None when it is not listed."""
    found = re.search(rf'<tr id="ligne-{line_id}".*?</tr>', page, re.S)
    return text_of(found.group(0)) if found else None


def _ledger(session, coop_id: int, year: int) -> Ledger:
    return session.scalar(
        sa.select(Ledger).join(SchoolYear).where(Ledger.coop_id == coop_id, SchoolYear.start_year == year)
    )


def test_a_repeated_view_is_the_same_page_and_reads_no_more(client, ids):
    first = shown(client)
    assert _page(client, SCREEN) == first
    assert row(first, ids["L02"]) is not None and "Aucune correspondance en attente" in page_of(client.get(SCREEN))


def test_import_confirm_undo_and_clear_each_show_at_once(client, ids, db_check):
    before = shown(client)
    assert not proposals(client.get(SCREEN))

    assert upload(client, OFX).status_code == 302  # a statement: proposals and missing lines appear
    page = shown(client)
    assert page != before and proposals(client.get(SCREEN))
    assert "Lignes du relevé absentes du cahier" in page

    value = next(value for value, checked in proposals(client.get(SCREEN)) if checked)
    line_id = int(value.split(":")[1].split(",")[0])
    assert client.post(f"{SCREEN}/correspondances", data={"un": value, "match": [value]}).status_code == 302
    page = shown(client)  # confirmed: the line is pointed, the proposal gone
    assert "Dépointer" in row(page, line_id)
    assert value not in [v for v, _ in proposals(client.get(SCREEN))]

    assert client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"}).status_code == 302
    page = shown(client)  # undone: offered again
    assert "Pointer" in row(page, line_id) and "Dépointer" not in row(page, line_id)
    assert value in [v for v, _ in proposals(client.get(SCREEN))]

    uncleared = int(summary(client.get(SCREEN))["uncleared_count"])
    response = client.post(f"{SCREEN}/ligne/{ids['L12']}/pointer", headers={"Accept": "application/json"})
    assert response.status_code == 200
    page = shown(client)  # pointed by hand, as the page's script does
    assert "Dépointer" in row(page, ids["L12"])
    assert int(summary(client.get(SCREEN))["uncleared_count"]) == uncleared - 1


def test_a_carried_line_of_the_previous_year_pointed_here_shows_at_once(client, ids):
    page = shown(client)
    assert "année précédente" in row(page, ids["L01"]) and "Dépointer" not in row(page, ids["L01"])
    # its entry lies in 2024-2025: pointing it changes that ledger, not this one
    assert client.post(f"{SCREEN}/ligne/{ids['L01']}/pointer").status_code == 302
    assert "Dépointer" in row(shown(client), ids["L01"])


def test_operations_added_edited_or_deleted_elsewhere_show_at_once(client, coop, ids, db_check):
    shown(client)

    def edit(session):  # as another process would (the classic view, the back office)
        entry = session.get(EntryLine, ids["L05"]).entry
        entry.label = "Libellé corrigé ailleurs"
        session.commit()

    db_check(edit)
    assert "Libellé corrigé ailleurs" in row(shown(client), ids["L05"])

    def amount(session):
        for line in session.get(EntryLine, ids["L06"]).entry.lines:
            line.amount_cents = 7_777 if line.amount_cents > 0 else -7_777
        session.commit()

    db_check(amount)
    assert "77,77" in row(shown(client), ids["L06"])

    def delete(session):
        session.delete(session.get(EntryLine, ids["L07"]).entry)
        session.commit()

    db_check(delete)
    assert row(shown(client), ids["L07"]) is None

    def add(session):
        line_id = _entry(
            session, _ledger(session, coop.id, 2025), "N1", date(2025, 9, 30), -4_200, "carte", label="Neuf"
        )
        session.commit()
        return line_id

    new = db_check(add)
    assert "Neuf" in row(shown(client), new)


def test_the_statement_box_and_the_days_passing_show_at_once(clock, app, client, coop, ids, login_as):
    shown(client)
    assert summary(client.get(SCREEN))["on"] == "15/09/2025"
    clock(datetime(2025, 9, 20, 8, 30))  # another day: the box's date (no statement date typed yet)
    client = login_as(coop, on=app.test_client())  # the session before ran out meanwhile
    shown(client)
    assert summary(client.get(SCREEN))["on"] == "20/09/2025"
    response = client.post(f"{SCREEN}/solde", data={"on": "2025-09-18", "balance": "1 000,00"})
    assert response.status_code == 302
    shown(client)
    figures = summary(client.get(SCREEN))
    assert figures["on"] == "18/09/2025" and figures["difference"] != "saisissez le solde du relevé"


def test_another_coops_changes_leave_the_page_as_it_was(client, ids, make_coop, app, db_check):
    before = shown(client)
    other = make_coop(43, iban=IBAN)
    load_ledger(db_check, other.id)
    theirs = app.test_client()
    theirs.post("/connexion", data={"login": other.login, "password": other.password})
    assert upload(theirs, OFX).status_code == 302
    assert shown(client) == before


@pytest.fixture
def two_years(app, make_coop, login_as, clock):
    """Coop 085-042: 2024-2025 with a cheque not yet debited at 31 August, and 2025-2026 (empty)."""
    info = make_coop(42, iban=IBAN)
    with app.app_context():
        from app.extensions import db

        session = db.session
        coop = session.get(Coop, info.id)
        previous = books.open_ledger(session, coop, 2024)
        books.record_opening(session, previous, bank=120_000, cash=0, by=None)
        ids = {
            "june": _entry(session, previous, "P1", date(2025, 6, 10), 5_000, "virement", label="Subvention"),
            "cheque": _entry(session, previous, "P3", date(2025, 8, 28), -12_000, "cheque", "0001231", "Librairie"),
        }
        rec.clear_line(session, coop.id, ids["june"], date(2025, 6, 15), by=None)
        books.open_ledger(session, coop, 2025)
        session.commit()
        ids["coop"] = coop.id
        db.session.remove()
    login_as(info)
    return ids


def test_closing_and_reopening_the_previous_year_show_at_once(app, client, two_years, db_check):
    old = "/coop/pointage/2024"
    assert "Dépointer" in row(shown(client, old), two_years["june"])
    assert "année précédente" in row(shown(client), two_years["cheque"])

    def close(session):
        closing.close_ledger(
            session,
            _ledger(session, two_years["coop"], 2024),
            statement_balance=125_000,  # the book, 113 000, and the cheque not debited
            cash_count=0,
            by=None,
            now=datetime(2025, 9, 15, 8, 0),
            replace_opening=True,
        )
        session.commit()

    db_check(close)
    frozen = shown(client, old)  # the closed year: frozen, no button
    assert "est clôturée" in frozen and "Dépointer" not in row(frozen, two_years["june"])
    carried = row(shown(client), two_years["cheque"])  # carried from the stored closing now
    assert "année précédente" in carried and "Pointer" in carried

    def reopen(session):
        closing.reopen_ledger(session, _ledger(session, two_years["coop"], 2024), reason="Erreur de saisie", by=None)
        session.commit()

    db_check(reopen)
    assert "Dépointer" in row(shown(client, old), two_years["june"])
    assert "année précédente" in row(shown(client), two_years["cheque"])


def test_the_rows_kept_are_those_of_the_lines_shown(client, ids, db_check):
    """What is kept per year follows the year: one body, and the rows of the lines it shows (a deleted
    line's row is not kept for ever)."""
    cahier_cache.clear()
    pointage_cache.clear()
    _page(client, SCREEN)

    def delete(session):
        session.delete(session.get(EntryLine, ids["L07"]).entry)
        session.commit()

    db_check(delete)
    _page(client, SCREEN)
    pages = [key for key in cahier_cache.pages._items if key[0] == "pointage"]
    assert len(pages) == 1  # the body of the latest state only
    [kept] = pointage_cache.parts._items.values()
    shown_ids = {line_id for block in kept.lines.blocks.values() for _day, line_id in block.keys}
    assert shown_ids == set(ids.values()) - {ids["L07"]}


@pytest.fixture
def as_built(monkeypatch):
    """The page built from nothing, leaving what is kept as it was: the changes that follow pile up
    on the kept page, as they do for a user."""

    def build(client, address: str = SCREEN) -> str:
        with monkeypatch.context() as patch:
            patch.setattr(pointage_cache.parts, "take", lambda key: None)
            patch.setattr(pointage_cache, "keep", lambda where, kept: None)
            patch.setattr(cahier_cache.pages, "get", lambda key, default=None: default)
            patch.setattr(cahier_cache.pages, "put", lambda *args, **kwargs: None)
            return _page(client, address)

    return build


def _bulk_entry(session, coop_id: int, piece: str, day: date, amount: int) -> int:
    """An operation written in bulk without the revision stamp (`Entry.ledger_revision` left at 0), the
    ledger's revision bumped by hand: what a careless bulk import would do. Returns its bank line."""
    ledger = _ledger(session, coop_id, 2025)
    accounts = dict(session.execute(sa.select(Account.code, Account.id).where(Account.code.in_(["512", "6068"]))).all())
    entry_id = session.execute(
        sa.insert(Entry)
        .values(
            ledger_id=ledger.id,
            coop_id=coop_id,
            piece=piece,
            date=day,
            label="Écrite en masse",
            kind="expense",
            cheque_number="",
            payment_mode="carte",
            version=1,
        )
        .returning(Entry.id)
    ).scalar_one()
    line_id = session.execute(
        sa.insert(EntryLine)
        .values(entry_id=entry_id, account_id=accounts["512"], amount_cents=-amount)
        .returning(EntryLine.id)
    ).scalar_one()
    session.execute(sa.insert(EntryLine).values(entry_id=entry_id, account_id=accounts["6068"], amount_cents=amount))
    session.execute(sa.update(Ledger).where(Ledger.id == ledger.id).values(revision=Ledger.revision + 1))
    session.commit()
    return line_id


def _edit(session, line_id: int, label: str | None, amount: int | None) -> None:
    """Change an operation's label or amount, as another process would (the classic view, the back office)."""
    entry = session.get(EntryLine, line_id).entry
    if label is not None:
        entry.label = label
    if amount is not None:
        for line in entry.lines:
            line.amount_cents = amount if line.amount_cents > 0 else -amount
    session.commit()


def _add(session, coop_id: int, piece: str, day: date, amount: int) -> int:
    line_id = _entry(session, _ledger(session, coop_id, 2025), piece, day, -amount, "carte", label="Neuve")
    session.commit()
    return line_id


def _delete(session, line_id: int) -> None:
    session.delete(session.get(EntryLine, line_id).entry)
    session.commit()


def test_changes_piled_up_on_the_kept_page_give_the_page_built_from_nothing(client, coop, ids, db_check, as_built):
    """Lines pointed and unpointed, matches confirmed, operations edited, added, deleted or written in
    bulk without a stamp: after each, the page brought up to date from the one kept before it is the
    page built from nothing (most changes are brought in from what they changed only; an operation
    without a stamp has the year read whole)."""
    assert upload(client, OFX).status_code == 302
    assert _page(client, SCREEN) == as_built(client)
    rng = random.Random(85)
    lines = dict(ids)  # fixture id -> bank line id, of the operations still there
    amounts = [2_000, 3_500, 4_550, 12_000]
    actions = ["point", "unpoint", "unpoint", "confirm", "label", "amount", "add", "delete", "bulk"]
    for step in range(60):
        pointed = {key: on for key, (on, _) in web.bank_lines(db_check, lines).items()}
        uncleared = sorted(key for key, on in pointed.items() if on is None)
        cleared = sorted(key for key, on in pointed.items() if on is not None)
        offered = [value for value, _ in proposals(client.get(SCREEN))]
        action, key = rng.choice(actions), rng.choice(sorted(lines))
        day, amount = date(2025, 9, rng.randrange(1, 29)), rng.choice(amounts)
        if action == "point" and uncleared:
            line_id = lines[rng.choice(uncleared)]
            response = client.post(f"{SCREEN}/ligne/{line_id}/pointer", headers={"Accept": "application/json"})
            assert response.status_code == 200, step
        elif action == "unpoint" and cleared:
            line_id = lines[rng.choice(cleared)]
            assert client.post(f"{SCREEN}/ligne/{line_id}/depointer", data={"confirme": "oui"}).status_code == 302
        elif action == "confirm" and offered:
            assert client.post(f"{SCREEN}/correspondances", data={"match": [rng.choice(offered)]}).status_code == 302
        elif action in ("label", "amount"):
            label, cents = (f"Libellé {step}", None) if action == "label" else (None, amount)
            db_check(partial(_edit, line_id=lines[key], label=label, amount=cents))
        elif action == "add":
            lines[f"N{step}"] = db_check(partial(_add, coop_id=coop.id, piece=f"N{step}", day=day, amount=amount))
        elif action == "delete" and len(lines) > 6:
            db_check(partial(_delete, line_id=lines.pop(key)))
        elif action == "bulk":
            made = partial(_bulk_entry, coop_id=coop.id, piece=f"M{step}", day=day, amount=amount)
            lines[f"M{step}"] = db_check(made)
        assert _page(client, SCREEN) == as_built(client), (step, action)


def test_a_deposit_slip_unpointed_line_by_line_is_offered_again_once_all_are(client, ids, db_check, as_built):
    """The statement line of a deposit slip is pointed with its three cash-book lines: unpointing one
    leaves it pointed with the two others (neither offered nor missing), unpointing all offers it again."""
    assert upload(client, OFX).status_code == 302
    slip = next(value for value, _ in proposals(client.get(SCREEN)) if value.count(",") == 2)
    assert client.post(f"{SCREEN}/correspondances", data={"match": [slip]}).status_code == 302
    bank_id = slip.split(":")[0]
    assert _page(client, SCREEN) == as_built(client)
    for number, key in enumerate(["L02", "L03", "L04"]):
        assert client.post(f"{SCREEN}/ligne/{ids[key]}/depointer", data={"confirme": "oui"}).status_code == 302
        page = _page(client, SCREEN)
        assert page == as_built(client)
        offered = f'id="m-{bank_id}"' in page
        assert offered == (number == 2), key


def test_a_carried_line_matched_undone_and_pointed_here_piles_up_on_the_kept_page(client, ids, as_built):
    """Cheque L01, of 2024-2025, is pointed in 2025-2026: its match confirmed (its statement line taken
    by a line of the earlier ledger), undone, then pointed by hand; each change is brought in from the
    carried lines and the statement lines read again, and the page is the one built from nothing."""
    assert upload(client, OFX).status_code == 302
    assert _page(client, SCREEN) == as_built(client)
    value = next(value for value, _ in proposals(client.get(SCREEN)) if value.endswith(f":{ids['L01']}"))
    assert client.post(f"{SCREEN}/correspondances", data={"match": [value]}).status_code == 302
    page = _page(client, SCREEN)
    assert page == as_built(client)
    assert "Dépointer" in row(page, ids["L01"]) and f'value="{value}"' not in page
    assert client.post(f"{SCREEN}/ligne/{ids['L01']}/depointer", data={"confirme": "oui"}).status_code == 302
    page = _page(client, SCREEN)
    assert page == as_built(client)
    assert "Dépointer" not in row(page, ids["L01"]) and f'value="{value}"' in page
    response = client.post(f"{SCREEN}/ligne/{ids['L01']}/pointer", headers={"Accept": "application/json"})
    assert response.status_code == 200
    page = _page(client, SCREEN)
    assert page == as_built(client) and "Dépointer" in row(page, ids["L01"])


def test_a_statement_line_taken_by_a_later_years_line_leaves_the_earlier_page_at_once(
    client, two_years, db_check, as_built
):
    """A statement line of 29 August (2024-2025) is pointed with a payment booked on 2 September, in
    2025-2026: the 2024-2025 page, whose own lines did not change, no longer lists it as missing."""
    old = "/coop/pointage/2024"

    def imported(session):
        parsed = ParsedStatement("csv", [BankLine(date(2025, 8, 29), -4_321, "CB LIBRAIRIE AGORA")], account=IBAN)
        rec.import_statement(session, two_years["coop"], parsed, filename="releve.csv", content=b"releve", by=None)
        session.commit()

    db_check(imported)
    page = _page(client, old)
    assert page == as_built(client, old) and "CB LIBRAIRIE AGORA" in page

    def pointed(session):
        following = _ledger(session, two_years["coop"], 2025)
        line_id = _entry(session, following, "S1", date(2025, 9, 2), -4_321, "carte", label="Librairie")
        rec.clear_line(session, two_years["coop"], line_id, date(2025, 9, 5), by=None)
        session.commit()

    db_check(pointed)
    page = _page(client, old)
    assert page == as_built(client, old) and "CB LIBRAIRIE AGORA" not in page
