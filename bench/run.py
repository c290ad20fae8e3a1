"""Benchmarks (not part of the test run): server time of the coop pages as the number of coops grows.

A coop's pages must cost O(that coop's data): the medians with 999 coops (the most a department can
number) should stay close to those with 10. Usage:

    .venv/bin/python bench/run.py [--coops 10 999] [--requests 200] [--database-url URL]

Without --database-url a temporary SQLite file is used. Times are measured around the WSGI call
(Flask test client, no network), so they are the server's time per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.models import Coop, Mandate, User
from app.passwords import hash_password

PASSWORD = "mot de passe du banc d'essai"
FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
PAGES = {
    "accueil coop (/)": "/",
    "identité (/coop/identite)": "/coop/identite",
    "historique (/coop/modifications)": "/coop/modifications",
}


def seed(app, count: int) -> None:
    from datetime import date

    with app.app_context():
        existing = db.session.scalar(sa.select(sa.func.count()).select_from(Coop))
        password_hash = hash_password(PASSWORD, FAST)
        for number in range(existing + 1, count + 1):
            coop = Coop(
                number=number,
                name=f"Coopérative {number:03d}",
                school_name=f"École {number}",
                uai="0850001P",
                address="1 rue",
                postal_code="85000",
                city="La Roche-sur-Yon",
                email=f"coop{number}@example.org",
                bank_name="Crédit Mutuel",
                iban="FR7615519000010002000000103",
                bic="CMCIFR2A",
            )
            coop.mandates.append(Mandate(first_name="Claire", last_name="Moreau", started_on=date(2021, 9, 1)))
            db.session.add(coop)
            db.session.add(
                User(
                    login=f"085-{number:03d}",
                    role="coop",
                    coop=coop,
                    password_hash=password_hash,
                    must_change_password=False,
                )
            )
        db.session.commit()


def measure(app, requests: int) -> dict[str, float]:
    client = app.test_client()
    client.post("/connexion", data={"login": "085-001", "password": PASSWORD})
    results = {}
    for label, path in PAGES.items():
        for _ in range(10):  # warm-up
            client.get(path)
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        results[label] = statistics.median(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coops", type=int, nargs="+", default=[10, 999])
    parser.add_argument("--requests", type=int, default=200)
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
        print(f"Base : {app.config['SQLALCHEMY_DATABASE_URI'].split('://')[0]} ; {args.requests} requêtes par page")
        rows = {}
        for count in sorted(args.coops):
            seed(app, count)
            rows[count] = measure(app, args.requests)
        header = "page".ljust(36) + "".join(f"{count:>10} coops" for count in rows)
        print(header)
        for label in PAGES:
            print(label.ljust(36) + "".join(f"{rows[count][label]:>13.2f} ms" for count in rows))


if __name__ == "__main__":
    main()
