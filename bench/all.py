"""All the page benchmarks in one run, one table (not part of the test run): `make bench`.

For SQLite (a temporary file) and PostgreSQL (a throwaway database created on 127.0.0.1:5432 and
dropped at the end; skipped with a warning when no server answers), the same data is built: 10
coops, one coop with a year of N operations, one with N bank lines to point, and a staff account.
Each page is requested through the Flask test client (the server's time, no network) and the
table gives, per page: the median, the 95th percentile, and the ratio to the floor (the cheapest
logged-in page, measured in the same run) — so a loaded machine changes the milliseconds but not
the ratios.

Then, per database, the independence check (`bench/independence.py`): coop 085-001's pages (home,
classic view, pointage, membership, year end) in the smallest set (10 coops, two years, one closed)
and in the largest (many coops with five years of history each), requested alternately: the ratio of the
medians must stay ≤ 1.2 and the SQL statements per request must be equal. Otherwise the run
prints FAIL and exits with status 1.

    .venv/bin/python bench/all.py            # N = 1,000, 30 requests per page (a few minutes)
    .venv/bin/python bench/all.py --full     # N = 10,000; independence at 150 coops × 5 years × 2,000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

from app import auth, clock
from app.extensions import db
from app.ledger import current_start_year
from app.models import User
from app.passwords import hash_password
from bench import cahier as cahier_bench
from bench import independence
from bench import pointage as pointage_bench
from bench.run import FAST, PASSWORD
from bench.run import seed as seed_coops

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PG = {"host": os.environ.get("PGHOST", "127.0.0.1"), "port": os.environ.get("PGPORT", "5432")}
PG_USER = os.environ.get("PGUSER", "postgres")


@dataclass
class Row:
    page: str
    size: str
    median: float
    p95: float


def _time(client, path: str, requests: int, before=None) -> tuple[float, float]:
    for _ in range(2):  # warm-up: connection pool, template compilation, caches of a repeated view
        client.get(path)
    samples = []
    for i in range(requests):
        if before is not None:
            before(i)
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path} : {response.status_code}")
    samples.sort()
    return statistics.median(samples) * 1000, samples[max(0, int(len(samples) * 0.95) - 1)] * 1000


def _login(app, login: str, staff: bool = False):
    client = app.test_client()
    response = client.post("/connexion", data={"login": login, "password": PASSWORD})
    if staff:
        response = client.post("/connexion/code", data={"code": auth.totp_code(SECRET, clock.now())})
    if response.status_code != 302:
        raise SystemExit(f"connexion de {login} refusée")
    return client


def _sync_sequences(app) -> None:
    """PostgreSQL: move the id sequences past rows written with explicit ids."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            for table in ("entry", "entry_line"):
                db.session.execute(
                    db.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")  # noqa: S608
                )
            db.session.commit()
        db.session.remove()


def run(url: str, entries: int, requests: int) -> list[Row]:
    app = independence.make_app(url)  # the bench app, migrated
    with app.app_context():
        db.session.add(
            User(
                login="secretariat",
                role="admin",
                password_hash=hash_password(PASSWORD, FAST),
                full_name="Banc d'essai",
                email="banc@example.org",
                totp_secret=SECRET,
                totp_enrolled_at=datetime(2025, 1, 1),
                must_change_password=False,
            )
        )
        db.session.commit()
        db.session.remove()
    year = current_start_year(clock.today())
    seed_coops(app, 10)
    cahier_bench.seed_year(app, 11, year, entries)
    _sync_sequences(app)  # the year was written with explicit ids
    pointage_coop, ofx = pointage_bench.seed(app, 12, year, entries)
    pointage_bench.import_twice(app, pointage_coop, ofx)

    small, size = f"{entries} op.", "—"
    rows: list[Row] = []
    coop = _login(app, "085-001")
    rows.append(
        Row(
            "plancher : historique (page connectée la plus simple)", size, *_time(coop, "/coop/modifications", requests)
        )
    )
    rows.append(Row("accueil de la coopérative", size, *_time(coop, "/", requests)))
    rows.append(Row("identité de la coop", size, *_time(coop, "/coop/identite", requests)))
    books = _login(app, "085-011")
    path = f"/coop/cahier/{year}"
    books.get(path)
    rows.append(Row("cahier, vue répétée", small, *_time(books, path, requests)))
    rows.append(
        Row("cahier, première vue après un enregistrement", small,
            *_time(books, path, requests, before=lambda i: cahier_bench.change_one(app, 11, i)))
    )  # fmt: skip
    rows.append(Row("cahier, export CSV", small, *_time(books, f"{path}/export.csv", max(5, requests // 3))))
    pointing = _login(app, "085-012")
    rows.append(Row("pointage", f"{entries} lignes", *_time(pointing, f"/coop/pointage/{year}", requests)))
    staff = _login(app, "secretariat", staff=True)
    for label, page in (
        ("back office : tableau de bord", "/admin/"),
        ("back office : coopératives", "/admin/admin_coops/"),
        ("back office : opérations des cahiers", "/admin/admin_entries/"),
        ("back office : journal d'audit", "/admin/admin_audit/"),
        ("back office : prélèvements", "/admin/prelevements/"),
    ):
        rows.append(Row(label, size, *_time(staff, page, max(5, requests // 3))))
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()
    return rows


def _postgres_database():
    try:
        admin = psycopg.connect(dbname="postgres", user=PG_USER, connect_timeout=5, autocommit=True, **PG)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL injoignable ({exc}) : mesures SQLite seulement.", file=sys.stderr)
        return None, None
    name = f"coop85_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin, name


def _independence(full: bool, requests: int) -> dict[str, list[independence.Independence]]:
    """The independence check on SQLite, then on PostgreSQL (two throwaway databases) if a server answers."""
    results = {}
    with tempfile.TemporaryDirectory() as work:
        results["SQLite"] = independence.run(
            lambda name: f"sqlite:///{work}/{name}.sqlite", full=full, requests=requests
        )
    created = []
    try:
        for _ in range(2):
            admin, name = _postgres_database()
            if admin is None:
                return results
            created.append((admin, name))
        urls = iter(f"postgresql+psycopg://{PG_USER}@{PG['host']}:{PG['port']}/{name}" for _, name in created)
        results["PostgreSQL"] = independence.run(lambda _: next(urls), full=full, requests=requests)
    finally:
        for admin, name in created:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="10 000 opérations au lieu de 1 000")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    entries = 10_000 if args.full else 1_000
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as work:
        results["SQLite"] = run(f"sqlite:///{work}/bench.sqlite", entries, args.requests)
    admin, name = _postgres_database()
    if admin is not None:
        try:
            url = f"postgresql+psycopg://{PG_USER}@{PG['host']}:{PG['port']}/{name}"
            results["PostgreSQL"] = run(url, entries, args.requests)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.close()
    engines = list(results)
    header = "| page | taille | " + " | ".join(f"{e} médiane | {e} p95 | {e} × plancher" for e in engines) + " |"
    print(header)
    print("|" + "---|" * (2 + 3 * len(engines)))
    for index, row in enumerate(results[engines[0]]):
        cells = []
        for engine in engines:
            measured, floor = results[engine][index], results[engine][0].median
            cells += [f"{measured.median:.1f} ms", f"{measured.p95:.1f} ms", f"{measured.median / floor:.1f}"]
        print(f"| {row.page} | {row.size} | " + " | ".join(cells) + " |")
    checks = _independence(args.full, max(20, args.requests))
    failed = False
    for engine, found in checks.items():
        print(f"\nIndépendance, {engine} : {independence.describe(args.full)}")
        print(independence.table(found))
        failed = failed or not all(r.ok for r in found)
    if failed:
        print("\nFAIL : une page de la coopérative dépend des autres coopératives ou de ses années closes.")
        sys.exit(1)


if __name__ == "__main__":
    main()
