"""Benchmark: a coop's pages cost what its open year holds, never other coops' data nor its closed years.

Two databases are built side by side. The smallest set: 10 coops, each with its open year and the
one before it, closed (so that both sets show the same pages: a home page with last year's closing
and reports cards, not the first-year card; a coop with no history at all shows other cards and
reads less). The largest: many
coops with five years of history each (four closed; coop 085-001's closings made as the portal
makes them, with their stored figures). Coop 085-001 has the same open year in both (the same
operations, the same statement imported, the same lines still to point). Its pages are requested
alternately in one database and the other (interleaved, so a loaded machine slows both alike); per
page: the medians, their ratio (largest / smallest) and the SQL statements of one request.
The check fails when a ratio exceeds 1.2 or the statement counts differ.

    .venv/bin/python bench/independence.py            # 30 coops × 5 years × 300 operations (a minute)
    .venv/bin/python bench/independence.py --full     # 150 coops × 5 years × 2,000 operations

`bench/all.py` (`make bench`) runs it on SQLite and PostgreSQL and prints its table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from app import clock, create_app
from app import crf as year_figures
from app import reconciliation as rec
from app.extensions import db
from app.ledger import current_start_year, open_ledger, record_opening
from app.models import Account, Coop, Entry, EntryLine, Ledger, SchoolYear
from app.statements import parse_statement
from bench.pointage import _ofx
from bench.run import FAST, PASSWORD
from bench.run import seed as seed_coops

MAX_RATIO = 1.2
MEASURED = 1  # coop 085-001
SMALL = {"coops": 30, "entries": 300}
FULL = {"coops": 150, "entries": 2000}


def pages(year: int) -> dict[str, str]:
    return {
        "accueil de la coopérative": "/",
        "cahier, vue classique": f"/coop/cahier/{year}",
        "pointage": f"/coop/pointage/{year}",
        "adhésion": "/coop/adhesion",
        "clôture de l'année": f"/coop/cloture/{year}",
    }


@dataclass
class Independence:
    page: str
    smallest: float  # median, ms
    largest: float
    statements: tuple[int, int]

    @property
    def ratio(self) -> float:
        return self.largest / self.smallest

    @property
    def ok(self) -> bool:
        return self.ratio <= MAX_RATIO and self.statements[0] == self.statements[1]


def make_app(url: str):
    """The benches' app on the database `url`, migrated (no CSRF nor rate limit, a cheap argon2)."""
    from flask_migrate import upgrade

    app = create_app(
        {
            "COOP85_ENV": "testing",
            "SECRET_KEY": "x" * 40,
            "SQLALCHEMY_DATABASE_URI": url,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "ARGON2_PARAMS": FAST,
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade()
    return app


def _year(rng: random.Random, ledger: Ledger, start_year: int, count: int, first_id: int, accounts, *, open_year: bool):
    """The entries and lines of a year of `count` operations. A closed year's bank lines are all
    pointed within it (nothing carried), an open year's a month after, but the last 15% not yet."""
    entries, lines = [], []
    last = date(start_year + 1, 8, 31)
    for i in range(count):
        day = date(start_year, 9, 1) + timedelta(days=rng.randrange(300))
        amount = rng.randrange(500, 50_000)
        receipt = rng.random() < 0.4
        entry_id = first_id + i
        entries.append(
            {
                "id": entry_id,
                "ledger_id": ledger.id,
                "coop_id": ledger.coop_id,
                "piece": f"P{i + 1:05d}",
                "date": day,
                "label": f"Opération {i + 1}",
                "kind": "receipt" if receipt else "expense",
                "cheque_number": "" if receipt else str(1000 + i),
                "payment_mode": "remise" if receipt else "cheque",
                "version": 1,
            }
        )
        bank = amount if receipt else -amount
        cleared = None if open_year and rng.random() < 0.15 else min(day + timedelta(days=rng.randrange(1, 30)), last)
        lines.append({"entry_id": entry_id, "account_id": accounts["512"], "amount_cents": bank, "cleared_on": cleared})
        other = accounts["756" if receipt else rng.choice(["6068", "6181"])]
        lines.append({"entry_id": entry_id, "account_id": other, "amount_cents": -bank, "cleared_on": None})
    return entries, lines


def _insert_years(app, coops: int, years: list[int], entries: int) -> None:
    """Every coop's ledgers with their opening and operations (explicit ids, sequences moved after)."""
    open_year = years[-1]
    with app.app_context():
        session = db.session
        accounts = {a.code: a.id for a in session.scalars(sa.select(Account))}
        ledgers = []
        for coop in session.scalars(sa.select(Coop).where(Coop.number <= coops).order_by(Coop.number)):
            for start in years:
                ledger = open_ledger(session, coop, start)
                record_opening(session, ledger, bank=250_000, cash=0, by=None)
                ledgers.append((coop.number, start, ledger))
        session.commit()
        next_id = (session.scalar(sa.select(sa.func.max(Entry.id))) or 0) + 1
        for number, start, ledger in ledgers:
            rng = random.Random(f"{number}-{start}")  # coop 085-001's open year is the same in both sets
            rows, lines = _year(rng, ledger, start, entries, next_id, accounts, open_year=start == open_year)
            next_id += len(rows)
            session.execute(sa.insert(Entry), rows)
            session.execute(sa.insert(EntryLine), lines)
        session.commit()
        if db.engine.dialect.name == "postgresql":
            session.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('entry', 'id'), (SELECT MAX(id) FROM entry))")
            )
            session.commit()
        db.session.remove()


def _close_history(app, years: list[int]) -> None:
    """The earlier years closed: coop 085-001's as a closing does (status, then its stored figures),
    the other coops' by their status only."""
    now = datetime(years[-1], 6, 1)
    with app.app_context():
        session = db.session
        for ledger in session.scalars(
            sa.select(Ledger).join(Ledger.school_year).join(Coop).where(Coop.number == MEASURED).order_by(Ledger.id)
        ):
            if ledger.school_year.start_year in years[:-1]:
                ledger.status, ledger.closed_at = "closed", now
                session.flush()
                year_figures.freeze(session, ledger, now=now)
        earlier = sa.select(Ledger.id).join(Ledger.school_year).where(SchoolYear.start_year < years[-1])
        session.execute(
            sa.update(Ledger)
            .where(Ledger.id.in_(earlier), Ledger.status == "open")
            .values(status="closed", closed_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        db.session.remove()


def _import_statement(app, year: int) -> None:
    """Coop 085-001's statement of the open year: its uncleared bank lines (a day or two later) and bank fees."""
    with app.app_context():
        session = db.session
        coop = session.scalar(sa.select(Coop).where(Coop.number == MEASURED))
        rows = session.execute(
            sa.select(Entry.date, EntryLine.amount_cents, Entry.cheque_number)
            .join(EntryLine, EntryLine.entry_id == Entry.id)
            .join(Account, Account.id == EntryLine.account_id)
            .join(Ledger, Ledger.id == Entry.ledger_id)
            .join(Ledger.school_year)
            .where(Entry.coop_id == coop.id, Account.code == "512", Entry.kind != "opening")
            .where(EntryLine.cleared_on.is_(None), SchoolYear.start_year == year)
            .order_by(Entry.date, Entry.id)
        ).all()
        rng = random.Random(year)
        bank = [
            (
                day + timedelta(days=rng.randrange(0, 3)),
                amount,
                *((f"CHEQUE {cheque}", "CHECK") if cheque else ("REMISE DE CHEQUES", "DEP")),
            )
            for day, amount, cheque in rows
        ]
        bank += [
            (date(year, 9, 1) + timedelta(days=30 * month), -850, "FRAIS TENUE DE COMPTE", "SRVCHG")
            for month in range(9)
        ]
        content = _ofx(sorted(bank)).replace(  # the account of the coop's IBAN (FR76 15519 00001 00020000001 03)
            b"<BANKID>10278<BRANCHID>36001<ACCTID>00020485001", b"<BANKID>15519<BRANCHID>00001<ACCTID>00020000001"
        )
        rec.import_statement(
            session, coop.id, parse_statement(content), filename="releve.ofx", content=content, by=None
        )
        session.commit()
        db.session.remove()


def build(url: str, coops: int, history: int, entries: int):
    """A database of `coops` coops with `history` years each (the earlier ones closed)."""
    app = make_app(url)
    year = current_start_year(clock.today())
    years = list(range(year - history + 1, year + 1))
    seed_coops(app, coops)
    _insert_years(app, coops, years, entries)
    _close_history(app, years)
    _import_statement(app, year)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":  # statistics as autovacuum keeps them on a live server
            with db.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    return app


class StatementCounter:
    def __init__(self, app) -> None:
        self.count = 0
        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


def _client(app):
    client = app.test_client()
    if client.post("/connexion", data={"login": "085-001", "password": PASSWORD}).status_code != 302:
        raise SystemExit("connexion de 085-001 refusée")
    return client


def _statements(counter: StatementCounter, client, path: str) -> int:
    before = counter.count
    client.get(path)
    return counter.count - before


def compare(smallest, largest, requests: int) -> list[Independence]:
    """Each page of coop 085-001 in both databases, alternately."""
    year = current_start_year(clock.today())
    sides = [(app, _client(app), StatementCounter(app)) for app in (smallest, largest)]
    results = []
    for label, path in pages(year).items():
        for _, client, _ in sides:
            for _ in range(3):  # warm-up: connection pool, templates, caches of a repeated view
                response = client.get(path)
                if response.status_code != 200:
                    raise SystemExit(f"{path} : {response.status_code}")
        samples: list[list[float]] = [[], []]
        for i in range(requests):
            for side in (0, 1) if i % 2 == 0 else (1, 0):
                client = sides[side][1]
                started = time.perf_counter()
                client.get(path)
                samples[side].append((time.perf_counter() - started) * 1000)
        counts = tuple(_statements(counter, client, path) for _, client, counter in sides)
        results.append(Independence(label, statistics.median(samples[0]), statistics.median(samples[1]), counts))
    return results


def run(make_url, *, full: bool, requests: int) -> list[Independence]:
    """`make_url(name)` gives the address of a fresh database for each set."""
    size = FULL if full else SMALL
    smallest = build(make_url("petit"), 10, 2, size["entries"])
    largest = build(make_url("grand"), size["coops"], 5, size["entries"])
    try:
        return compare(smallest, largest, requests)
    finally:
        for app in (smallest, largest):
            with app.app_context():
                for engine in db.engines.values():
                    engine.dispose()


def describe(full: bool) -> str:
    size = FULL if full else SMALL
    return (
        f"10 coops × 2 ans (1 clôturé) contre {size['coops']} coops × 5 ans (4 clôturés), "
        f"{size['entries']} opérations par an ; coop 085-001 : même année ouverte"
    )


def table(results: list[Independence]) -> str:
    out = ["| page | plus petit | plus grand | rapport (≤ 1,2) | requêtes SQL | verdict |", "|---|---|---|---|---|---|"]
    for r in results:
        out.append(
            f"| {r.page} | {r.smallest:.1f} ms | {r.largest:.1f} ms | {r.ratio:.2f} | "
            f"{r.statements[0]} / {r.statements[1]} | {'ok' if r.ok else 'FAIL'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = run(lambda name: f"sqlite:///{work}/{name}.sqlite", full=args.full, requests=args.requests)
    print(describe(args.full))
    print(table(results))
    if not all(r.ok for r in results):
        print("FAIL : une page de la coopérative dépend des autres coopératives ou de ses années closes.")
        sys.exit(1)


if __name__ == "__main__":
    main()
