"""Benchmark: server time of the classic view (« visualisation classique ») for a year of N entries.

    .venv/bin/python bench/cahier.py [--entries 1000 10000] [--requests 30] [--database-url URL]

Each year is seeded with a realistic mix (receipts split over two accounts, expenses, cash
deposits, actions), inserted in bulk; the median of the GET /coop/cahier/<year> time is reported
(Flask test client, so the server's time without the network): "warm" (the year unchanged since the
last view), "after a save" (one operation edited and one line pointed before each view: what a
mandataire sees after saving), "after an amount changed early in the year" (every later running
balance moves: the worst save) and "cold" (every cache emptied, as in a new process), with the ratio
after a save / warm (target < 2), then the CSV export of the year. Reference on this machine:
Paheko's comparable page takes 28 ms for 1,000 entries and 254 ms for 10,000.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.ledger import open_ledger
from app.models import Account, Action, Coop, Entry, EntryLine, User
from app.passwords import hash_password
from app.views.cahier_table import cahier_cache

FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
PASSWORD = "mot de passe du banc d'essai"


def seed_year(app, number: int, start_year: int, count: int) -> None:
    rng = random.Random(number)
    with app.app_context():
        session = db.session
        coop = Coop(number=number, name=f"Coop {number}", school_name="École", postal_code="85000")
        session.add(coop)
        session.add(
            User(
                login=f"085-{number:03d}",
                role="coop",
                coop=coop,
                must_change_password=False,
                password_hash=hash_password(PASSWORD, FAST),
            )
        )
        session.flush()
        ledger = open_ledger(session, coop, start_year)
        actions = [Action(coop_id=coop.id, name=name) for name in ("Classe de mer", "Photos", "Kermesse")]
        session.add_all(actions)
        session.flush()
        accounts = {a.code: a.id for a in session.scalars(sa.select(Account))}
        entries, lines = [], []
        first_id = (session.scalar(sa.select(sa.func.max(Entry.id))) or 0) + 1
        for i in range(count):
            entry_id = first_id + i
            day = date(start_year, 9, 1) + timedelta(days=rng.randrange(365))
            amount = rng.randrange(500, 50_000)
            kind = rng.choice(["receipt", "receipt", "expense", "expense", "expense", "transfer"])
            entries.append(
                {
                    "id": entry_id,
                    "ledger_id": ledger.id,
                    "coop_id": coop.id,
                    "piece": f"P{i + 1:05d}",
                    "date": day,
                    "label": f"Opération {i + 1}",
                    "kind": kind,
                    "cheque_number": "",
                    "payment_mode": {"receipt": "remise", "expense": "cheque", "transfer": "interne"}[kind],
                    "action_id": rng.choice([None, None] + [a.id for a in actions]),
                    "version": 1,
                }
            )
            if kind == "receipt":
                part = amount // 3
                lines += [
                    (entry_id, "512", amount - part),
                    (entry_id, "530", part),
                    (entry_id, "756", -(amount - part)),
                    (entry_id, "708", -part),
                ]
            elif kind == "expense":
                entries[-1]["cheque_number"] = str(1000 + i)
                lines += [(entry_id, rng.choice(["6068", "6181", "6288"]), amount), (entry_id, "512", -amount)]
            else:
                lines += [(entry_id, "512", amount), (entry_id, "530", -amount)]
        session.execute(sa.insert(Entry), entries)
        session.execute(
            sa.insert(EntryLine),
            [
                {
                    "entry_id": e,
                    "account_id": accounts[code],
                    "amount_cents": cents,
                    "cleared_on": None if code != "512" or rng.random() < 0.1 else date(start_year, 9, 1),
                }
                for e, code, cents in lines
            ],
        )
        session.commit()
        db.session.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        app = create_app(
            {
                "COOP85_ENV": "testing",
                "SECRET_KEY": "bench",
                "SQLALCHEMY_DATABASE_URI": url,
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
                "ARGON2_PARAMS": FAST,
            }
        )
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        year = date.today().year - (0 if date.today().month >= 9 else 1)
        print(f"Base : {url.split('://')[0]} ; {args.requests} requêtes mesurées par taille")
        for number, count in enumerate(args.entries, start=1):
            seed_year(app, number, year, count)
            client = app.test_client()
            client.post("/connexion", data={"login": f"085-{number:03d}", "password": PASSWORD})
            path = f"/coop/cahier/{year}"
            for _ in range(3):
                assert client.get(path).status_code == 200
            measures = (
                ("à chaud (cahier inchangé)", None),
                ("après l'enregistrement d'une opération", "change"),
                ("après un montant changé en début d'année", "amount"),
                ("à froid (processus neuf, aucun cache)", "cold"),
            )
            medians = {}
            for label, before in measures:
                samples = []
                for i in range(args.requests):
                    if before == "change":
                        change_one(app, number, i)
                    elif before == "amount":
                        change_amount(app, number, i)
                    elif before == "cold":
                        cahier_cache.clear()
                    start = time.perf_counter()
                    response = client.get(path)
                    samples.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200
                size = len(response.data) // 1024
                medians[before] = statistics.median(samples)
                print(
                    f"{count:>6} opérations, {label:<42}: médiane {medians[before]:7.1f} ms "
                    f"(min {min(samples):.1f}, max {max(samples):.1f}) ; page de {size} Ko"
                )
            print(
                f"{count:>6} opérations, rapport après modification / à chaud : {medians['change'] / medians[None]:.2f}"
                f" ; après un montant changé en début d'année / à chaud : {medians['amount'] / medians[None]:.2f}"
            )
            samples = []
            for _ in range(max(3, args.requests // 3)):
                start = time.perf_counter()
                response = client.get(f"{path}/export.csv")
                body = response.get_data()
                samples.append((time.perf_counter() - start) * 1000)
            print(
                f"{count:>6} opérations, export CSV{'':<33}: médiane {statistics.median(samples):7.1f} ms ; "
                f"{len(body) // 1024} Ko"
            )


def change_one(app, number: int, i: int) -> None:
    """What a save does to the year: one operation's label and one line's pointage change (new versions)."""
    with app.app_context():
        session = db.session
        coop_id = session.scalar(sa.select(Coop.id).where(Coop.number == number))
        entry = session.scalars(sa.select(Entry).where(Entry.coop_id == coop_id).order_by(Entry.id).offset(i)).first()
        entry.label = f"Opération modifiée {i}"
        line = entry.lines[0]
        line.cleared_on = None if line.cleared_on else entry.date
        session.commit()
        db.session.remove()


def change_amount(app, number: int, i: int) -> None:
    """The worst save for the running balances: an amount of one of the year's first operations
    changes (1 € more on both lines of a two-line operation), so every later balance moves."""
    with app.app_context():
        session = db.session
        coop_id = session.scalar(sa.select(Coop.id).where(Coop.number == number))
        entries = session.scalars(sa.select(Entry).where(Entry.coop_id == coop_id).order_by(Entry.date, Entry.id))
        entry = [e for e in entries.fetchmany(20 + 2 * i) if len(e.lines) == 2][i % 10]
        first, second = entry.lines
        step = 100 if first.amount_cents > 0 else -100
        first.amount_cents += step
        second.amount_cents -= step
        session.commit()
        db.session.remove()


if __name__ == "__main__":
    main()
