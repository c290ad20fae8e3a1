"""Benchmark: importing a cahier CSV of N operations (`app.cahier.import_cahier`, all or nothing).

    .venv/bin/python bench/cahier_import.py [--entries 5000 10000] [--refunds] [--database-url URL]

The file is generated in the exchange format (receipts split over two accounts, cheque and
direct-debit expenses, cash deposits that never empty the cash box, cleared dates, actions; with
`--refunds`, refunds received and paid too), then imported into an empty ledger of a fresh coop
and committed; the time of parsing, checks, inserts and commit is reported. Targets (issues 12
and 17): 5,000 lines ≤ 5 s and 10,000 operations ≤ 10 s on SQLite.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app
from app.extensions import db
from app.models import Coop

FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
HEADER = (
    "piece;date;libelle;mode;cheque;action;pointe;banque_entree;banque_sortie;caisse_entree;caisse_sortie;"
    "regie_entree;regie_sortie;6068;6181;6288;708;756"
)


def cents(value: int) -> str:
    return f"{value // 100},{value % 100:02d}" if value else ""


def generate_csv(count: int, start_year: int, *, refunds: bool, seed: int = 1) -> bytes:
    """A realistic year of `count` operations (plus the opening line) whose cash never goes negative."""
    rng = random.Random(seed)
    days = sorted(date(start_year, 9, 1) + timedelta(days=rng.randrange(365)) for _ in range(count))
    lines = [HEADER, f"RAN;01/09/{start_year};Report à nouveau;report;;;;10000,00;;100,00;;;;;;;;"]
    cash = 10_000
    actions = ["", "", "Classe de mer", "Photos", "Kermesse"]
    kinds = ["receipt", "receipt", "expense", "expense", "expense", "deposit"]
    if refunds:
        kinds += ["refund_received", "refund_paid"]
    for i, day in enumerate(days, start=1):
        kind = rng.choice(kinds)
        amount = rng.randrange(500, 50_000)
        cleared = (day + timedelta(days=3)).strftime("%d/%m/%Y") if rng.random() < 0.9 else ""
        if kind == "deposit" and cash < 1000:
            kind = "receipt"
        head = f"P{i:05d};{day:%d/%m/%Y};Opération {i}"
        action = rng.choice(actions)
        accounts = {"6068": 0, "6181": 0, "6288": 0, "708": 0, "756": 0}
        if kind == "receipt":
            part = amount // 3
            cash += part
            columns = [cents(amount - part), "", cents(part), "", "", ""]
            accounts["756"], accounts["708"] = amount - part, part
            row = f"{head};remise;;{action};{cleared}"
        elif kind == "expense":
            columns = ["", cents(amount), "", "", "", ""]
            accounts[rng.choice(["6068", "6181", "6288"])] = amount
            row = f"{head};cheque;{1000 + i};{action};{cleared}"
        elif kind == "deposit":
            moved = rng.randrange(1, cash + 1)
            cash -= moved
            columns = [cents(moved), "", "", cents(moved), "", ""]
            row = f"{head};interne;;;{cleared}"
        elif kind == "refund_received":
            columns = [cents(amount), "", "", "", "", ""]
            accounts["6068"] = -amount
            row = f"{head};virement;;{action};{cleared}"
        else:  # refund_paid
            columns = ["", cents(amount), "", "", "", ""]
            accounts["756"] = -amount
            row = f"{head};virement;;{action};{cleared}"
        amounts = [("-" + cents(-v)) if v < 0 else cents(v) for v in accounts.values()]
        lines.append(";".join([row, *columns, *amounts]))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def import_year(app, number: int, year: int, count: int, *, refunds: bool = False) -> tuple[int, float, int]:
    """Import a generated year of `count` operations into a fresh coop numbered `number`, committed.

    Returns the operations imported, the seconds taken (parsing, checks, inserts, commit) and the
    file's size in bytes. Also used by `bench/all.py`."""
    from app import cahier, ledger

    content = generate_csv(count, year, refunds=refunds, seed=number)
    with app.app_context():
        coop = Coop(number=number, name=f"Coop {number}", school_name="École", postal_code="85000")
        db.session.add(coop)
        db.session.commit()
        start = time.perf_counter()
        book = ledger.open_ledger(db.session, coop, year)
        imported = cahier.import_cahier(db.session, book, content, by=None)
        db.session.commit()
        elapsed = time.perf_counter() - start
        db.session.remove()
    return imported, elapsed, len(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--refunds", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        app = create_app(
            {
                "COOP85_ENV": "testing",
                "SECRET_KEY": "bench",
                "SQLALCHEMY_DATABASE_URI": url,
                "RATELIMIT_ENABLED": False,
                "ARGON2_PARAMS": FAST,
            }
        )
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        year = 2024
        print(f"Base : {url.split('://')[0]}")
        for number, count in enumerate(args.entries, start=1):
            imported, elapsed, size = import_year(app, number, year, count, refunds=args.refunds)
            print(f"{count:>6} lignes ({size // 1024} Ko) : {imported} opérations importées en {elapsed:.2f} s")


if __name__ == "__main__":
    main()
