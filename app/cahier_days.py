"""The classic view's year kept by day between requests, brought up to date from what changed since.

A mandataire saves an operation and lands on the classic view: that first view after a save is the
common one. Reading and walking the whole year again cost five times a repeated view for a year of
10,000 operations (bench/cahier.py). Instead, each process keeps per ledger the year as of one of
the ledger's revisions (`Year`): its operations grouped by date (`Day`, each with the day's sums).
To bring it up to date, it reads:

- the operations stamped with a later revision: `Entry.ledger_revision` is the revision that the
  entry's last change (its lines and vouchers included) gave its ledger, written in the same
  transaction (`app.models.ledger._bump_ledger_revisions`);
- in the same statement (`app.cahier.changed_figures`: one round trip), their lines, their voucher
  counts and the number of the ledger's operations. When that number differs from what the kept
  year and the changed operations make, some operations went (deleted) or came without a stamp
  (rows written in bulk): the ledger's ids are read to find the deleted ones, and the year is read
  again from scratch if any came without a stamp.

Only the days those operations left or joined are summed again; the running balances are carried
over the days (a few hundred), not over every operation. A year also remembers the chart of
accounts' codes and natures its figures were made with, and is read whole again when staff changed
them. Never stale: the revision recorded is the one read before the changes, so a change committed
meanwhile is read again next time (reading a change twice is harmless: an operation is always
replaced by id).

Pure domain code: no Flask; the cache that holds the `Year` objects lives in the web layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.cahier import (
    Cahier,
    Chart,
    EntryFigures,
    EntryKey,
    assemble,
    changed_figures,
    current_figures,
    in_out,
    reference_names,
    sums_of,
    walk,
)
from app.models import Entry, Ledger

# Above this many changed operations, reading the whole year again is as cheap.
_CHANGES_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Day:
    """The operations of one date (in entry id order, as the classic view lists them) and their sums."""

    items: tuple[tuple[EntryKey, EntryFigures], ...]
    sums: tuple[int, int, int, int, int, int]  # bank in/out, cash in/out, advance in/out
    by_account: tuple[tuple[int, int, int], ...]  # (split account id, total in its natural direction, operations)
    uncleared: int  # bank movements not pointed yet (openings aside)
    has_opening: bool  # the report à nouveau is among them

    @property
    def bank(self) -> int:
        """Net change of the bank balance over the day."""
        return self.sums[0] - self.sums[1]

    @property
    def cash(self) -> int:
        return self.sums[2] - self.sums[3]


def make_day(items: Iterable[tuple[EntryKey, EntryFigures]]) -> Day:
    """A day from its operations, in any order."""
    ordered = tuple(sorted(items, key=lambda item: item[0][0]))
    sums, by_account, uncleared = sums_of(f for _key, f in ordered)
    return Day(
        ordered,
        sums,
        tuple((account_id, total, uses) for account_id, (total, uses) in sorted(by_account.items())),
        uncleared,
        any(f.kind == "opening" for _key, f in ordered),
    )


@dataclass(frozen=True, slots=True)
class Totals:
    """A year's sums, kept with it and moved by the days a change touches (never every day again)."""

    sums: tuple[int, int, int, int, int, int]  # bank in/out, cash in/out, advance in/out
    by_account: dict[int, tuple[int, int]]  # split account id -> (total, operations using it)
    uncleared: int
    openings: int  # days holding a report à nouveau

    @classmethod
    def of(cls, days: Iterable[Day]) -> Totals:
        return cls((0, 0, 0, 0, 0, 0), {}, 0, 0).moved(removed=(), added=days)

    def moved(self, *, removed: Iterable[Day], added: Iterable[Day]) -> Totals:
        """These totals without the `removed` days' sums and with the `added` ones'."""
        sums = list(self.sums)
        by_account = dict(self.by_account)
        uncleared, openings = self.uncleared, self.openings
        for sign, days in ((-1, removed), (1, added)):
            for day in days:
                for i, value in enumerate(day.sums):
                    sums[i] += sign * value
                for account_id, total, uses in day.by_account:
                    before_total, before_uses = by_account.get(account_id, (0, 0))
                    by_account[account_id] = (before_total + sign * total, before_uses + sign * uses)
                uncleared += sign * day.uncleared
                openings += sign * day.has_opening
        by_account = {account_id: value for account_id, value in by_account.items() if value[1]}
        return Totals(tuple(sums), by_account, uncleared, openings)


@dataclass(frozen=True)
class Year:
    """A ledger's operations by day as of `revision`. Never changed once made (threads share it)."""

    ledger_key: tuple  # (ledger id, created_at): SQLite may reuse a deleted ledger's id
    revision: int
    days: dict[date, Day]
    order: tuple[date, ...]  # the dates that have operations, in order
    day_of: dict[int, date]  # entry id -> its date
    totals: Totals
    chart: tuple  # the chart's signature the figures were made with (`Chart.signature`)
    months: tuple[date, ...]  # the first day of each month that has operations, in order

    @property
    def count(self) -> int:
        return len(self.day_of)

    def figures(self) -> list[tuple[EntryKey, EntryFigures]]:
        """Every operation in date order (then entry id), as `current_figures` gives them."""
        days = self.days
        return [item for day in self.order for item in days[day].items]


def _year(ledger: Ledger, revision: int, figures: Iterable[tuple[EntryKey, EntryFigures]], chart: tuple) -> Year:
    by_day: dict[date, list] = {}
    for item in figures:
        by_day.setdefault(item[1].date, []).append(item)
    days = {day: make_day(items) for day, items in by_day.items()}
    day_of = {key[0]: f.date for day in days.values() for key, f in day.items}
    totals = Totals.of(days.values())
    order = tuple(sorted(days))
    return Year((ledger.id, ledger.created_at), revision, days, order, day_of, totals, chart, _months(order))


def _months(order: tuple[date, ...]) -> tuple[date, ...]:
    return tuple(sorted({day.replace(day=1) for day in order}))


def current_year(session: Session, ledger: Ledger, kept: Year | None, chart: Chart) -> Year:
    """The ledger's year now: `kept` brought up to date, or read whole when there is nothing to start from
    (or when staff changed an account's code or nature since: every figure may depend on it)."""
    revision = ledger.revision  # read before the changes: see the module docstring
    if (
        kept is None
        or kept.ledger_key != (ledger.id, ledger.created_at)
        or kept.revision > revision
        or kept.chart != chart.signature
    ):
        return _year(ledger, revision, current_figures(session, ledger), chart.signature)
    if kept.revision == revision:
        return kept
    count, changed = changed_figures(session, ledger, kept.revision)
    if len(changed) > _CHANGES_LIMIT:  # as cheap to make the year again
        if count == len(changed):  # every operation changed (an import into an empty year): all read already
            return _year(ledger, revision, [((row[0], row[1], row[2]), f) for row, f in changed], chart.signature)
        return _year(ledger, revision, current_figures(session, ledger), chart.signature)
    day_of = kept.day_of
    changed_ids = {row[0] for row, _figures in changed}
    gone: set[int] = set()
    if count != len(day_of) + len(changed_ids - day_of.keys()):
        ids = set(session.connection().execute(sa.select(Entry.id).where(Entry.ledger_id == ledger.id)).scalars())
        if ids - day_of.keys() - changed_ids:  # operations written without a stamp (in bulk)
            return _year(ledger, revision, current_figures(session, ledger), chart.signature)
        gone = day_of.keys() - ids - changed_ids
    return _updated(kept, revision, [((row[0], row[1], row[2]), figures) for row, figures in changed], gone)


def _updated(kept: Year, revision: int, fresh: list[tuple[EntryKey, EntryFigures]], gone: set[int]) -> Year:
    """`kept` with the `fresh` operations put in (in place of their former state) and the `gone` ones removed."""
    day_of = dict(kept.day_of)
    leaving = set(gone) | {key[0] for key, _f in fresh}
    touched: set[date] = set()
    for entry_id in leaving:
        day = day_of.pop(entry_id, None)
        if day is not None:
            touched.add(day)
    for key, f in fresh:
        day_of[key[0]] = f.date
        touched.add(f.date)
    days = dict(kept.days)
    removed, added = [], []
    for day in touched:
        former = days.pop(day, None)
        if former is not None:
            removed.append(former)
        items = [item for item in (former.items if former else ()) if item[0][0] not in leaving]
        items += [item for item in fresh if item[1].date == day]
        if items:
            days[day] = made = make_day(items)
            added.append(made)
    same_days = all((day in days) == (day in kept.days) for day in touched)  # no date came or went
    order = kept.order if same_days else tuple(sorted(days))
    totals = kept.totals.moved(removed=removed, added=added)
    months = kept.months if same_days else _months(order)
    return Year(kept.ledger_key, revision, days, order, day_of, totals, kept.chart, months)


def year_cahier(session: Session, ledger: Ledger, year: Year, chart: Chart | None = None) -> Cahier:
    """The classic view of the whole year in date order, from the year's kept totals (its rows are
    rendered by the web layer, kept by month, only changed days again; `walked` is made only if asked for)."""
    totals = in_out(*year.totals.sums)
    return assemble(
        reference_names(session, ledger, chart),
        totals,
        totals,
        {account_id: total for account_id, (total, _uses) in year.totals.by_account.items()},
        year.totals.uncleared,
        year.count,
        months=list(year.months),
        has_opening=year.totals.openings > 0,
        walk_later=lambda: walk(year.figures())[0],
    )
