"""The classic view after a save (app.cahier_days): the year kept by day between requests, brought up to
date from the operations changed since, must show exactly what a view built from scratch shows.

Each test makes a sequence of the changes a mandataire makes (new operations, a label, an amount, a
date that moves the operation to another day, a deletion, a pointage, a voucher, an action renamed,
an import) and, after each one, compares the page served from the kept year with the page served by
a process that keeps nothing (every cache emptied): byte for byte.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import cahier as cahier_format
from app import cahier_days
from app import ledger as books
from app.models import Action, Document, Entry, EntryLine, Ledger
from app.views import cahier_table
from app.views.cahier_table import cahier_cache
from tests import test_ledger_web as web
from tests.test_ledger_web import CAHIER, YEAR, book, day, make_action, set_opening

coop = web.coop


def _page(client, path: str = CAHIER) -> bytes:
    """A page without what changes with every request (the CSP nonce, the signed CSRF token's time)."""
    return re.sub(rb'(nonce|content|name="csrf_token" value)="[^"]*"', b"", client.get(path).get_data())


def _pages(client) -> tuple[bytes, bytes]:
    """The whole year's view and its print version, as the kept year serves them."""
    return _page(client), _page(client, f"{CAHIER}?impression=1")


def _pages_from_scratch(client) -> tuple[bytes, bytes]:
    cahier_cache.clear()
    return _pages(client)


def _assert_same_as_from_scratch(client, step: str) -> None:
    kept = _pages(client)
    fresh = _pages_from_scratch(client)
    assert kept[0] == fresh[0], step
    assert kept[1] == fresh[1], step


def _edit(db_check, entry_id: int, change) -> None:
    def run(s):
        change(s, s.get(Entry, entry_id))
        s.commit()

    db_check(run)


def _entry_ids(db_check, coop_id: int) -> list[int]:
    return db_check(
        lambda s: s.scalars(
            sa.select(Entry.id).where(Entry.coop_id == coop_id, Entry.kind != "opening").order_by(Entry.id)
        ).all()
    )


def _new_amount(s, entry: Entry) -> None:
    """1,00 € more on both sides of the operation (its balance stays zero)."""
    first, second = entry.lines[0], entry.lines[1]
    step = 100 if first.amount_cents > 0 else -100
    first.amount_cents += step
    second.amount_cents -= step


def _moved(s, entry: Entry) -> None:
    entry.date = entry.date + timedelta(days=3)


def _pointed(s, entry: Entry) -> None:
    bank = [line for line in entry.lines if line.account.code == books.BANK]
    if bank:
        bank[0].cleared_on = None if bank[0].cleared_on else entry.date


def _voucher(s, entry: Entry) -> None:
    s.add(
        Document(
            coop_id=entry.coop_id,
            entry_id=entry.id,
            kind="voucher",
            original_name="facture.pdf",
            content_type="application/pdf",
            size=10,
            sha256="0" * 64,
            storage_key=uuid.uuid4().hex,
        )
    )


def _deleted(s, entry: Entry) -> None:
    books.delete_entry(s, entry, by=None)


@pytest.mark.parametrize("seed", [1, 2])
def test_after_every_kind_of_change_the_kept_year_shows_what_a_new_process_shows(client, coop, db_check, seed):
    rng = random.Random(seed)
    set_opening(db_check, coop.id, 100000, 5000)
    trip = make_action(db_check, coop.id, "Classe de mer")
    for number in range(12):
        in_cash = number % 4 == 1  # an amount changed there moves the cash balances, not the bank's
        book(
            db_check,
            coop.id,
            piece=f"D{number + 1}",
            when=day(9 + number % 4, 1 + number % 3),  # several operations on the same days
            label=f"Achat {number}",
            bank=0 if in_cash else 1000 + 100 * number,
            cash=1000 + 100 * number if in_cash else 0,
            splits=(("6068", 1000 + 100 * number),),
            action_id=trip if number % 3 == 0 else None,
            cheque="" if in_cash else f"{number + 1:07d}",
        )
    book(db_check, coop.id, piece="V1", when=day(9, 2), kind="withdrawal", bank=2000)  # moves both balances
    _assert_same_as_from_scratch(client, "first view")
    changes = {
        "label": lambda s, e: setattr(e, "label", f"{e.label} (corrigé)"),
        "amount": _new_amount,
        "date": _moved,
        "pointage": _pointed,
        "voucher": _voucher,
        "deletion": _deleted,
    }
    kinds = [*changes, "new", "action"]
    for step in range(32):
        name = kinds[step] if step < len(kinds) else rng.choice(kinds)  # each kind at least once
        if name == "new":
            book(
                db_check,
                coop.id,
                piece=f"R{step}",
                when=day(10, 1 + step % 20),
                kind="receipt",
                bank=500,
                splits=(("708", 500),),
            )
        elif name == "action":

            def rename(s, step=step):
                s.get(Action, trip).name = f"Classe de mer {step}"
                s.commit()

            db_check(rename)
        else:
            ids = _entry_ids(db_check, coop.id)
            _edit(db_check, rng.choice(ids), changes[name])
        _assert_same_as_from_scratch(client, f"step {step}: {name}")


def test_an_early_amount_moves_every_later_balance(client, coop, db_check):
    set_opening(db_check, coop.id, 0, 0)
    ids = [
        book(db_check, coop.id, piece=f"R{n}", when=day(9, 2 + n), kind="receipt", bank=1000, splits=(("708", 1000),))
        for n in range(5)
    ]
    before = _page(client).decode()
    assert ">50,00</td>" in before  # the last balance: 5 × 10,00
    _edit(db_check, ids[0], _new_amount)
    after = _page(client).decode()
    assert ">51,00</td>" in after and ">50,00</td>" not in after.split('id="op-' + str(ids[-1]))[1].split("</tr>")[0]
    assert after.encode() == _pages_from_scratch(client)[0]


def test_an_early_amount_moves_the_balances_of_later_months_and_a_change_within_a_month_keeps_its_other_days(
    client, coop, db_check
):
    """The rows are kept month by month: a change in September moves every later month's balance cells,
    a change on one day of October leaves October's other days' rows as they were (both at once too)."""
    set_opening(db_check, coop.id, 0, 0)
    ids = [
        book(db_check, coop.id, piece=f"R{n}", when=when, kind="receipt", bank=1000, splits=(("708", 1000),))
        for n, when in enumerate((day(9, 2), day(9, 20), day(10, 5), day(10, 20), day(10, 28), day(11, 3)))
    ]
    _pages(client)
    _edit(db_check, ids[0], _new_amount)
    _assert_same_as_from_scratch(client, "an amount in September")
    assert ">61,00</td>" in _page(client).decode().split(f'id="op-{ids[-1]}"')[1].split("</tr>")[0]
    _edit(db_check, ids[3], lambda s, e: setattr(e, "label", "Vente de gâteaux (corrigée)"))
    _assert_same_as_from_scratch(client, "a label in October")
    _edit(db_check, ids[1], _new_amount)
    _edit(db_check, ids[4], _moved)
    _assert_same_as_from_scratch(client, "an amount in September and a date in October")


def test_balance_cells_made_in_one_go_are_those_made_one_by_one():
    """The hot loop's formatting (a float per balance, separators swapped in one go) gives exactly the
    integer way's figures, below zero, around every thousands separator and up to the largest balances."""
    rng = random.Random(7)
    balances = [*range(-2_000, 2_000), 99_999, 100_000, 123_456_789, -100_000_000_00]
    balances += [rng.randrange(-(10**13) + 1, 10**13) for _ in range(20_000)]
    balances += [10**13 - 1, -(10**13) + 1]
    for bank, one_by_one in ((True, cahier_table._bank_cell), (False, cahier_table._cash_cell)):
        assert cahier_table.balance_cells(balances, bank=bank) == [one_by_one(b).encode() for b in balances]
        huge = [5, 10**13, -(10**15) - 7]  # beyond the float's exactness: the integer way
        assert cahier_table.balance_cells(huge, bank=bank) == [one_by_one(b).encode() for b in huge]
    assert cahier_table.balance_cells([], bank=False) == []
    assert cahier_table.balance_cells([-1], bank=True) == [b'<td class="text-danger">-0,01</td>']
    assert cahier_table.balance_cells([123_456_789], bank=False) == ["<td>1\u202f234\u202f567,89</td>".encode()]


def test_an_early_amount_can_bring_a_later_bank_balance_back_above_zero(client, coop, db_check):
    set_opening(db_check, coop.id, 0, 0)
    receipt = book(db_check, coop.id, piece="R1", when=day(9, 2), kind="receipt", bank=1000, splits=(("708", 1000),))
    spent = book(db_check, coop.id, piece="D1", when=day(9, 9), bank=1050, splits=(("6068", 1050),), mode="virement")
    book(db_check, coop.id, piece="D2", when=day(9, 16), bank=100, splits=(("6068", 100),), mode="virement")

    def row(page: bytes, entry_id: int) -> str:
        return page.decode().split(f'id="op-{entry_id}"')[1].split("</tr>")[0]

    before = _page(client)
    assert '<td class="text-danger">-0,50</td>' in row(before, spent)  # below zero: shown in red
    _edit(db_check, receipt, _new_amount)  # 1,00 € more received on 2 September
    after = _page(client)
    assert "<td>0,50</td>" in row(after, spent) and '<td class="text-danger">' not in row(after, spent)
    assert after == _pages_from_scratch(client)[0]


def test_operations_written_in_bulk_without_a_stamp_are_found(client, coop, db_check):
    """Rows written by a script (no flush listener, no stamp): the year is read again, nothing is missed."""
    book(db_check, coop.id, piece="D1", when=day(9, 3), bank=1000, splits=(("6068", 1000),), mode="virement")
    _pages(client)

    def bulk(s):
        ledger = s.scalars(sa.select(Ledger).where(Ledger.coop_id == coop.id)).one()
        bank = books.accounts_by_code(s)[books.BANK]
        expense = books.accounts_by_code(s)["6068"]
        s.execute(
            sa.insert(Entry.__table__).values(
                ledger_id=ledger.id,
                coop_id=coop.id,
                piece="D2",
                date=day(9, 4),
                label="Écrite par un script",
                payment_mode="cheque",
                cheque_number="",
                kind="expense",
                version=1,
                created_at=ledger.created_at,
                updated_at=ledger.created_at,
            )
        )
        entry_id = s.scalar(sa.select(Entry.id).where(Entry.piece == "D2"))
        s.execute(
            sa.insert(EntryLine.__table__),
            [
                {"entry_id": entry_id, "account_id": bank.id, "amount_cents": -700},
                {"entry_id": entry_id, "account_id": expense.id, "amount_cents": 700},
            ],
        )
        s.execute(sa.update(Ledger).where(Ledger.id == ledger.id).values(revision=Ledger.revision + 1))
        s.commit()

    db_check(bulk)
    page = _page(client)
    assert "Écrite par un script".encode() in page
    assert page == _pages_from_scratch(client)[0]


def test_an_import_is_read_from_its_stamps(client, coop, db_check):
    book(db_check, coop.id, piece="D1", when=day(9, 3), bank=1000, splits=(("6068", 1000),), mode="virement")
    _pages(client)
    header = ";".join(cahier_format.FIXED_COLUMNS) + ";6068"
    line = f"D7;{day(9, 20):%d/%m/%Y};Importée;virement;;;;;12,00;;;;;12,00"

    def imported(s):
        ledger = s.scalars(sa.select(Ledger).where(Ledger.coop_id == coop.id)).one()
        assert cahier_format.import_cahier(s, ledger, f"{header}\r\n{line}\r\n".encode(), by=None) == 1
        s.commit()
        return s.scalar(sa.select(Entry.ledger_revision).where(Entry.piece == "D7")), ledger.revision

    stamp, revision = db_check(imported)
    assert stamp == revision > 0
    page = _page(client)
    assert b"Import\xc3\xa9e" in page
    assert page == _pages_from_scratch(client)[0]


@pytest.mark.parametrize("before", [0, 1])
def test_an_import_of_many_operations_makes_the_year_again(client, coop, db_check, before):
    """Above 500 changed operations the year is made again: from the changed rows when they are every
    operation of the ledger (an import into an empty year), otherwise read whole."""
    from app.models import Coop

    def opened(s):
        books.open_ledger(s, s.get(Coop, coop.id), YEAR)
        s.commit()

    db_check(opened)
    if before:
        book(db_check, coop.id, piece="D1", when=day(9, 3), bank=1000, splits=(("6068", 1000),), mode="virement")
    _pages(client)
    header = ";".join(cahier_format.FIXED_COLUMNS) + ";6068"
    amounts = [f"1,{n % 100:02d}" for n in range(602)]
    lines = [f"I{n};{day(9 + n % 3, 1 + n % 28):%d/%m/%Y};Importée {n};virement;;;;;{amounts[n]};;;;;{amounts[n]}"
             for n in range(1, 602)]  # fmt: skip

    def imported(s):
        ledger = s.scalars(sa.select(Ledger).where(Ledger.coop_id == coop.id)).one()
        assert cahier_format.import_cahier(s, ledger, "\r\n".join([header, *lines, ""]).encode(), by=None) == 601
        s.commit()

    db_check(imported)
    page = _page(client)
    assert page.count(b"Import\xc3\xa9e ") == 601 and (b">D1<" in page) == bool(before)
    assert page == _pages_from_scratch(client)[0]


def test_the_kept_year_sums_like_the_whole_walk(coop, db_check):
    """Domain level: the kept year's figures and totals are those of a year read and walked whole."""
    set_opening(db_check, coop.id, 20000, 1000)
    for n in range(6):
        book(
            db_check,
            coop.id,
            piece=f"D{n}",
            when=day(9, 5 + n % 2),
            bank=300 + n,
            splits=(("6068", 300 + n),),
            mode="virement",
        )

    def ledger_of(s) -> Ledger:
        return s.scalars(sa.select(Ledger).where(Ledger.coop_id == coop.id)).one()

    year = db_check(lambda s: cahier_days.current_year(s, ledger_of(s), None, cahier_format.read_chart(s)))

    def changed(s):
        entry = s.scalars(sa.select(Entry).where(Entry.piece == "D3")).one()
        entry.date = day(10, 1)
        _new_amount(s, entry)
        s.commit()

    db_check(changed)

    def compare(s):
        ledger = ledger_of(s)
        kept = cahier_days.current_year(s, ledger, year, cahier_format.read_chart(s))
        assert kept.revision == ledger.revision > year.revision
        assert kept.figures() == cahier_format.current_figures(s, ledger)
        whole = cahier_format.build_cahier(s, ledger)
        view = cahier_days.year_cahier(s, ledger, kept)
        assert (view.totals, view.account_totals, view.bank_balance, view.cash_balance, view.uncleared_count) == (
            whole.totals,
            whole.account_totals,
            whole.bank_balance,
            whole.cash_balance,
            whole.uncleared_count,
        )
        assert view.months == whole.months and view.count == len(whole.walked) == 7
        assert [w[2:] for w in view.walked] == [w[2:] for w in whole.walked]  # running balances, when asked for
        assert ledger.school_year.start_year == YEAR

    db_check(compare)


def test_the_opening_banner_follows_the_report_a_nouveau(client, coop, db_check):
    book(db_check, coop.id, piece="D1", when=day(9, 3), bank=1000, splits=(("6068", 1000),), mode="virement")
    assert "Première année sur le portail ?" in _page(client).decode()
    set_opening(db_check, coop.id, 50000, 2000)
    page = _page(client)
    assert "Première année sur le portail ?" not in page.decode()
    assert page == _pages_from_scratch(client)[0]


def test_the_cache_keeps_what_its_budget_holds_and_forgets_the_oldest():
    from app.views.cahier_table import RenderCache

    cache = RenderCache(size=100, budget=1000)
    for n in range(5):
        cache.put(n, f"year {n}", 300)
    assert [cache.get(n) for n in range(5)] == [None, None, "year 2", "year 3", "year 4"]
    assert cache.weight == 900
    cache.get(2)  # used again: now the newest
    cache.put(5, "year 5", 300)
    assert [cache.get(n) for n in (2, 3, 4, 5)] == ["year 2", None, "year 4", "year 5"]
    cache.put(6, "a year larger than the budget", 5000)  # kept alone rather than never kept
    assert cache.get(6) is not None and cache.get(5) is None and cache.weight == 5000


def test_several_changes_between_two_views_and_every_other_view_of_the_year(client, coop, db_check):
    """Between two views: a deletion, a new operation (SQLite may give it the deleted one's id), a move to
    another day and a new action; then the filtered, sorted, month and print views and the CSV export
    agree with a process that keeps nothing."""
    set_opening(db_check, coop.id, 30000, 2000)
    for n in range(6):
        book(
            db_check,
            coop.id,
            piece=f"D{n + 1}",
            when=day(9, 10 + n),
            label=f"Achat {n}",
            bank=500 + n,
            splits=(("6068", 500 + n),),
            mode="virement",
        )
    views = [
        CAHIER,
        f"{CAHIER}?tri=piece",
        f"{CAHIER}?q=achat",
        f"{CAHIER}?compte=6068",
        f"{CAHIER}?mois={YEAR}-09",
        f"{CAHIER}?impression=1",
    ]
    for path in views:
        _page(client, path)
    client.get(f"{CAHIER}/export.csv").get_data()
    ids = _entry_ids(db_check, coop.id)
    _edit(db_check, ids[-1], _deleted)
    trip = make_action(db_check, coop.id, "Sortie au musée")
    book(
        db_check,
        coop.id,
        piece="D9",
        when=day(9, 12),
        label="Entrées du musée",
        bank=900,
        splits=(("6068", 900),),
        mode="virement",
        action_id=trip,
    )
    _edit(db_check, ids[0], _moved)
    kept = {path: _page(client, path) for path in views}
    csv_kept = client.get(f"{CAHIER}/export.csv").get_data()
    assert "Entrées du musée".encode() in kept[CAHIER] and b"Sortie au mus" in kept[CAHIER]
    assert b"Achat 5" not in kept[CAHIER]
    cahier_cache.clear()
    for path in views:
        assert kept[path] == _page(client, path), path
    assert csv_kept == client.get(f"{CAHIER}/export.csv").get_data()


def test_the_budget_of_the_app_reaches_the_cache(make_app, app):
    make_app(CAHIER_CACHE_MB=10)
    try:
        assert cahier_cache.years.budget == 2_000_000 and cahier_cache.days.budget == 3_000_000
        parts = (cahier_cache.pages, cahier_cache.years, cahier_cache.days, cahier_cache.rows)
        # every share, the pointage page's kept years (as much as the pages) included: the whole budget
        assert sum(part.budget for part in parts) + cahier_cache.pages.budget == 10_000_000
    finally:
        cahier_cache.set_budget(app.config["CAHIER_CACHE_MB"])  # one cache per process: the suite's again
    assert cahier_cache.years.budget == app.config["CAHIER_CACHE_MB"] * 200_000


def test_a_save_replaces_the_kept_table_rather_than_adding_one(client, coop, db_check):
    """Memory: each view keeps its latest table only, so an evening of saves does not pile up old years."""
    ids = [
        book(db_check, coop.id, piece=f"D{n}", when=day(9, 3 + n), bank=100, splits=(("6068", 100),), mode="virement")
        for n in range(3)
    ]
    cahier_cache.clear()
    _page(client)
    kept = (len(cahier_cache.pages._items), cahier_cache.pages.weight, cahier_cache.days.weight)
    for n in range(5):
        _edit(db_check, ids[n % 3], lambda s, e, n=n: setattr(e, "label", f"Libellé {n}"))
        assert f"Libellé {n}" in _page(client).decode()
    assert (len(cahier_cache.pages._items), cahier_cache.pages.weight, cahier_cache.days.weight) == kept


def test_staff_editing_the_chart_renews_every_kept_view(client, coop, db_check):
    """An account's label or nature changed in the back office: no operation changes, but what the year
    shows does (column header; with another nature, the totals). The kept views follow at once."""
    book(db_check, coop.id, piece="D1", when=day(9, 3), bank=2000, splits=(("6068", 2000),), mode="virement")
    book(db_check, coop.id, piece="R1", when=day(9, 4), kind="receipt", bank=5000, splits=(("708", 5000),))
    before = _page(client).decode()
    assert "Fournitures pour activités éducatives" in before

    def relabel(s):
        account = books.accounts_by_code(s)["6068"]
        account.label = "Fournitures de classe"
        s.commit()

    db_check(relabel)
    after = _page(client).decode()
    assert "Fournitures de classe" in after and "Fournitures pour activités éducatives" not in after
    assert after.encode() == _pages_from_scratch(client)[0]

    def renature(s):  # an extreme edit: the receipts' account becomes a charge
        books.accounts_by_code(s)["708"].nature = "expense"
        s.commit()

    _page(client)
    db_check(renature)
    assert _page(client) == _pages_from_scratch(client)[0]


def test_a_label_edited_in_the_back_office_shows_in_the_coops_classic_view(
    app, client, coop, db_check, make_staff, login_as
):
    from tests.test_security import _edit

    book(db_check, coop.id, piece="D1", when=day(9, 3), bank=2000, splits=(("6068", 2000),), mode="virement")
    assert "Fournitures pour activités éducatives" in _page(client).decode()
    account_id = db_check(lambda s: books.accounts_by_code(s)["6068"].id)
    staff = login_as(make_staff("agent"), on=app.test_client())
    saved = _edit(staff, "admin_accounts", account_id, {"label": "Fournitures de classe"})
    assert saved.status_code == 302
    page = _page(client).decode()  # the coop's next view, in the same process
    assert "Fournitures de classe" in page and "Fournitures pour activités éducatives" not in page
