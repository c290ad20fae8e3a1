"""Federation-scale data generator (not part of the test run): thousands of coops and millions of
operations in a throwaway PostgreSQL database, written with COPY in a few minutes.

    .venv/bin/python bench/federation.py --database-url postgresql://postgres@127.0.0.1/coop85_scale \\
        [--coops 1000] [--years 5] [--operations 5000000]

The database is migrated first (`flask db upgrade`), then filled with: school years, coops with
their login (password `mot de passe du banc d'essai`) and mandataire, one ledger per coop and
year, `--operations` balanced operations spread over them (two lines each), a committed membership
per coop for the current year (ready for a debit run) and a few audit events per coop. Ids are
written explicitly and the sequences moved past them. A database that already holds coops is
refused (run it on an empty, throwaway database).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from psycopg import sql as psycopg_sql

from bench.run import FAST, PASSWORD

NOW = datetime(2026, 11, 29, 12, 0)
IBAN = "FR7615519000010002000000103"


def _copy(raw, table: str, columns: tuple[str, ...], rows) -> int:
    """COPY rows into `table`; returns the count."""
    count = 0
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _drop_indexes(cursor, tables: tuple[str, ...]) -> list[str]:
    """Drop the foreign keys, unique constraints and secondary indexes of `tables` (primary keys stay);
    returns the statements that put them back. COPY into a bare table, then one index build per index,
    is several times faster than maintaining eight indexes and checking three foreign keys per row."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('f', 'u')",
        (list(tables),),
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary "
        "AND i.indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE contype = 'u')",
        (list(tables),),
    )
    indexes = cursor.fetchall()
    for table, name, _ in constraints:
        cursor.execute(psycopg_sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            psycopg_sql.Identifier(table), psycopg_sql.Identifier(name)))  # fmt: skip
    for name, _ in indexes:
        cursor.execute(psycopg_sql.SQL("DROP INDEX {}").format(psycopg_sql.Identifier(name)))
    restore = [definition for _, definition in indexes]
    restore += [
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}' for table, name, definition in constraints
    ]
    return restore


def generate(url: str, coops: int, years: int, operations: int) -> None:
    from flask_migrate import upgrade

    from app import create_app, ledger
    from app.extensions import db
    from app.models import Account, Coop, SchoolYear, User
    from app.passwords import hash_password

    app = create_app({"COOP85_ENV": "testing", "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": url})
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        if db.session.scalar(sa.select(sa.func.count()).select_from(Coop)):
            raise SystemExit("Cette base contient déjà des coopératives : donnez une base vide et jetable.")
        current = ledger.current_start_year(NOW.date())
        first = current - years + 1
        for start in range(first, current + 1):
            if db.session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == start)) is None:
                db.session.add(
                    SchoolYear(start_year=start, pupil_fee_cents=205, adult_fee_cents=205, insurance_fee_cents=25)
                )
        staff = User(login="secretariat", role="admin", password_hash=hash_password(PASSWORD, FAST), full_name="Banc")
        db.session.add(staff)
        db.session.commit()
        year_ids = dict(db.session.execute(sa.select(SchoolYear.start_year, SchoolYear.id)).all())
        accounts = dict(db.session.execute(sa.select(Account.code, Account.id)).all())
        password_hash = hash_password(PASSWORD, FAST)
        db.session.remove()  # no transaction of ours left holding locks on the tables altered below
        raw = db.engine.raw_connection()
        try:
            driver = raw.driver_connection
            with driver.cursor() as cursor:  # the app's per-statement limit is for web requests, not bulk loads
                cursor.execute("SET statement_timeout = 0")
                cursor.execute("SET lock_timeout = 0")
            rng = random.Random(85)
            _copy(
                driver,
                "coop",
                ("id", "number", "name", "school_name", "uai", "address", "postal_code", "city", "email", "phone",
                 "director_name", "bank_name", "iban", "bic", "debit_mandate_ref", "debit_mandate_signed_on",
                 "is_active", "created_at", "updated_at", "version"),
                ((n, n, f"Coopérative {n:04d}", f"École {n}", "0850001P", "1 rue de l'École", "85000",
                  "La Roche-sur-Yon", f"coop{n}@bench.example.org", "0251000000", "Mme Directrice", "Crédit Mutuel",
                  IBAN, "CMCIFR2A", f"OCCE85-{n:04d}", date(NOW.year - 1, 9, 1), True, NOW, NOW, 1)
                 for n in range(1, coops + 1)),
            )  # fmt: skip
            _copy(
                driver,
                "user_account",
                ("id", "login", "password_hash", "role", "coop_id", "full_name", "email", "must_change_password",
                 "is_enabled", "session_version", "created_at"),
                ((n + 1, f"085-{n:03d}", password_hash, "coop", n, "", "", False, True, 1, NOW)
                 for n in range(1, coops + 1)),
            )  # fmt: skip
            _copy(
                driver,
                "mandate",
                ("coop_id", "role", "civility", "last_name", "first_name", "email", "phone", "started_on"),
                ((n, "mandataire", "Mme", "Moreau", "Claire", "", "", date(2021, 9, 1)) for n in range(1, coops + 1)),
            )
            ledgers = [(coop, start) for coop in range(1, coops + 1) for start in range(first, current + 1)]
            _copy(
                driver,
                "ledger",
                ("id", "coop_id", "school_year_id", "status", "created_at", "revision"),
                ((i + 1, coop, year_ids[start], "open" if start == current else "closed", NOW, 1)
                 for i, (coop, start) in enumerate(ledgers)),
            )  # fmt: skip
            per_ledger = max(1, operations // len(ledgers))
            with driver.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '256MB'")
                restore = _drop_indexes(cursor, ("entry", "entry_line"))

            def entries():
                # year after year, as they are entered: the ids of a school year's operations are close
                # together (the older years first), like a federation's real database
                entry_id = 0
                by_year = sorted(enumerate(ledgers, start=1), key=lambda item: item[1][1])
                for ledger_id, (coop, start) in by_year:
                    for k in range(per_ledger):
                        entry_id += 1
                        day = date(start, 9, 1) + timedelta(days=rng.randrange(365))
                        yield (entry_id, ledger_id, coop, f"P{k + 1}", day, "Fournitures", "cheque", str(1000 + k),
                               "expense", NOW, NOW, 1)  # fmt: skip

            t0 = time.perf_counter()
            count = _copy(
                driver,
                "entry",
                ("id", "ledger_id", "coop_id", "piece", "date", "label", "payment_mode", "cheque_number", "kind",
                 "created_at", "updated_at", "version"),
                entries(),
            )  # fmt: skip
            print(f"{count} opérations en {time.perf_counter() - t0:.0f} s")

            def lines():
                line_id = 0
                for entry_id in range(1, count + 1):
                    amount = 100 + entry_id % 9000
                    line_id += 2
                    yield (line_id - 1, entry_id, accounts["6068"], amount)
                    yield (line_id, entry_id, accounts["512"], -amount)

            t0 = time.perf_counter()
            _copy(driver, "entry_line", ("id", "entry_id", "account_id", "amount_cents"), lines())
            print(f"{2 * count} lignes en {time.perf_counter() - t0:.0f} s")
            t0 = time.perf_counter()
            with driver.cursor() as cursor:
                for statement in restore:
                    cursor.execute(statement)
            print(f"{len(restore)} index et contraintes reconstruits en {time.perf_counter() - t0:.0f} s")
            _copy(
                driver,
                "membership",
                ("coop_id", "school_year_id", "status", "atsem_count", "aesh_count", "other_adults_count",
                 "property_value_cents", "pupils_count", "teachers_count", "insured_count", "cotisation_cents",
                 "insurance_cents", "property_surcharge_cents", "total_cents", "mandataire_name", "committed_at",
                 "committed_ip", "payment_method", "reference", "created_at", "updated_at", "version"),
                ((n, year_ids[current], "committed", 1, 0, 0, 0, 50, 2, 53, 10865, 1325, 0, 12190, "Claire Moreau",
                  NOW, "", "debit", f"ADH{current}-{n:05d}", NOW, NOW, 1) for n in range(1, coops + 1)),
            )  # fmt: skip
            _copy(
                driver,
                "audit_event",
                ("created_at", "actor_login", "coop_id", "action", "entity", "ip"),
                ((NOW - timedelta(minutes=i), f"085-{n:03d}", n, "login.succeeded", "", "127.0.0.1")
                 for n in range(1, coops + 1) for i in range(5)),
            )  # fmt: skip
            with driver.cursor() as cursor:
                for table in ("coop", "user_account", "mandate", "ledger", "entry", "entry_line", "membership",
                              "audit_event"):  # fmt: skip
                    query = psycopg_sql.SQL("SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT MAX(id) FROM {}))")
                    cursor.execute(query.format(psycopg_sql.Identifier(table)), (table,))
                cursor.execute("ANALYZE")
            driver.commit()
        finally:
            raw.close()
    elapsed = time.perf_counter() - started
    print(f"Base prête en {elapsed:.0f} s : {coops} coopératives, {years} années, {count} opérations.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="une base PostgreSQL vide et jetable")
    parser.add_argument("--coops", type=int, default=1000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--operations", type=int, default=5_000_000)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("PostgreSQL seulement (COPY).")
    url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    generate(url, args.coops, args.years, args.operations)


if __name__ == "__main__":
    main()
