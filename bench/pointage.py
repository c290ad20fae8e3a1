"""Benchmark: pointage matching (R1-R5) and the server time of the pointage page for a year of N bank lines.

    .venv/bin/python bench/pointage.py [--lines 1000] [--runs 15] [--requests 30] [--database-url URL] [--profile]

The year is seeded with a realistic cash-book (cheques cashed days or weeks later, card payments
booked one to three days after, direct debits and transfers the same day, cheque deposits grouped
by slip, cash deposits; many identical amounts — 35,00 membership fees, 45,50 OCCE debits — and
identical lines on the same day) and a statement of about N lines that mostly corresponds to it
(plus bank fees missing from the book, cheques not cashed yet), as the bank's OFX download, imported
twice through the real parser and import (the second import adds nothing). Reported medians:

- `reconciliation.match(...)` on the open items (target: under 1 s on this machine);
- GET /coop/pointage/<year> (Flask test client, so the server's time without the network), with the
  proposals still to confirm, then once they are confirmed (the usual state at the next visit);
- the first view after a change (a line pointed or its pointage undone, in turn, before each view):
  the page is kept per state of the year, so this is the cost of a change, not of a repeated view.
  Reference on this machine: Paheko's reconciliation page takes 21 ms for a year of 1,000 lines.

--profile prints where the page's time goes (cProfile, cumulative), repeated and after a change.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from app import clock, create_app
from app import reconciliation as rec
from app.extensions import db
from app.ledger import current_start_year, open_ledger, record_opening
from app.models import Account, Coop, Entry, EntryLine, User
from app.passwords import hash_password
from app.statements import parse_statement

FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
PASSWORD = "mot de passe du banc d'essai"
COMMON = [3500, 3500, 3500, 1000, 500, 4550, 12000, 1500]  # amounts that repeat all year
SHOPS = ["LECLERC LA ROCHE", "SUPER U AIZENAY", "LIBRAIRIE AGORA", "DECATHLON", "AMAZON EU", "BOULANGERIE"]
PAYEES = ["Librairie", "Autocars Vendée", "Pharmacie", "Musée", "Piscine", "Intervenant musique"]


def _amount(rng: random.Random) -> int:
    return rng.choice(COMMON) if rng.random() < 0.35 else rng.randrange(200, 60_000)


def seed(app, number: int, start_year: int, count: int) -> tuple[int, bytes]:
    """A coop with a year of `count` bank lines; returns its id and an OFX statement of about as many lines."""
    rng = random.Random(number)
    first = date(start_year, 9, 1)
    book: list[dict] = []  # entries: date, amount (bank side, signed), mode, number, label
    bank: list[tuple[date, int, str, str]] = []  # statement lines: date, signed amount, label, OFX type
    cheque, slip = 1200, 4500
    while len(book) < count:
        day = first + timedelta(days=rng.randrange(330))
        kind = rng.choices(
            ["cheque", "carte", "prelevement", "virement_in", "virement_out", "remise", "especes"],
            weights=[30, 20, 8, 8, 6, 18, 10],
        )[0]
        if kind == "cheque":
            cheque += 1
            amount = -_amount(rng)
            book.append(
                {
                    "date": day,
                    "amount": amount,
                    "mode": "cheque",
                    "number": f"{cheque:07d}",
                    "label": f"{rng.choice(PAYEES)} - facture {rng.randrange(1000)}",
                }
            )
            if rng.random() < 0.95:  # the others are not cashed yet
                bank.append((day + timedelta(days=rng.randrange(1, 40)), amount, f"CHEQUE {cheque:07d}", "CHECK"))
        elif kind == "carte":
            amount, shop = -_amount(rng), rng.choice(SHOPS)
            twins = 2 if rng.random() < 0.05 else 1  # the same purchase twice the same day
            for _ in range(twins):
                book.append(
                    {"date": day, "amount": amount, "mode": "carte", "number": "", "label": f"Achat {shop.title()}"}
                )
                bank.append(
                    (
                        day + timedelta(days=rng.randrange(1, 4)),
                        amount,
                        f"CB {shop} {day:%d/%m} CARTE 4970XXXXXXXX1234",
                        "POS",
                    )
                )
        elif kind in ("prelevement", "virement_out"):
            amount = -(4550 if kind == "prelevement" and rng.random() < 0.3 else _amount(rng))
            label = "Cotisation OCCE" if amount == -4550 else f"Règlement {rng.choice(PAYEES)}"
            book.append(
                {
                    "date": day,
                    "amount": amount,
                    "mode": "prelevement" if kind == "prelevement" else "virement",
                    "number": "",
                    "label": label,
                }
            )
            bank.append(
                (
                    day,
                    amount,
                    "PRLV SEPA OCCE 85" if amount == -4550 else "VIR SEPA EMIS " + label.upper(),
                    "DIRECTDEBIT" if kind == "prelevement" else "DEBIT",
                )
            )
        elif kind == "virement_in":
            amount = _amount(rng) * 3
            book.append({"date": day, "amount": amount, "mode": "virement", "number": "", "label": "Subvention mairie"})
            bank.append((day, amount, "VIR SEPA MAIRIE SUBVENTION", "CREDIT"))
        elif kind == "remise":
            slip += 1
            parts = [rng.choice(COMMON[:3]) if rng.random() < 0.6 else _amount(rng) for _ in range(rng.randrange(1, 6))]
            for part in parts:
                book.append(
                    {
                        "date": day,
                        "amount": part,
                        "mode": "remise",
                        "number": f"{slip:07d}",
                        "label": f"Cotisation famille {rng.randrange(500)}",
                    }
                )
            bank.append((day + timedelta(days=rng.randrange(1, 4)), sum(parts), f"REMISE CHEQUES {slip:07d}", "DEP"))
        else:
            amount = _amount(rng)
            book.append({"date": day, "amount": amount, "mode": "especes", "number": "", "label": "Vente de gâteaux"})
            if rng.random() < 0.95:
                bank.append((day + timedelta(days=rng.randrange(0, 3)), amount, "VERSEMENT ESPECES AGENCE", "DEP"))
    book = book[:count]
    while len(bank) < count:  # what the cash-book lacks: fees, interest
        day = first + timedelta(days=rng.randrange(330))
        bank.append(
            (day, -rng.choice([600, 850, 1200]), "FRAIS TENUE DE COMPTE", "SRVCHG")
            if rng.random() < 0.8
            else (day, rng.randrange(100, 900), "INTERETS CREDITEURS", "INT")
        )
    bank = sorted(bank[:count])

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
        record_opening(session, ledger, bank=250_000, cash=0, by=None)
        accounts = {a.code: a.id for a in session.scalars(sa.select(Account))}
        first_id = (session.scalar(sa.select(sa.func.max(Entry.id))) or 0) + 1
        entries, lines = [], []
        for i, item in enumerate(sorted(book, key=lambda b: b["date"])):
            entry_id = first_id + i
            receipt = item["amount"] > 0
            entries.append(
                {
                    "id": entry_id,
                    "ledger_id": ledger.id,
                    "coop_id": coop.id,
                    "piece": f"P{i + 1:05d}",
                    "date": item["date"],
                    "label": item["label"],
                    "kind": "receipt" if receipt else "expense",
                    "cheque_number": item["number"],
                    "payment_mode": item["mode"],
                    "version": 1,
                }
            )
            other = rng.choice(["756", "708"]) if receipt else rng.choice(["6068", "6181", "6251", "6281"])
            lines += [(entry_id, "512", item["amount"]), (entry_id, other, -item["amount"])]
        session.execute(sa.insert(Entry), entries)
        session.execute(
            sa.insert(EntryLine),
            [{"entry_id": e, "account_id": accounts[code], "amount_cents": cents} for e, code, cents in lines],
        )
        session.commit()
        coop_id = coop.id
        db.session.remove()
    return coop_id, _ofx(bank)


def _ofx(bank: list[tuple[date, int, str, str]]) -> bytes:
    """The statement as the bank's OFX 1.0.2 download (FITID, CHECKNUM on cheques, NAME of 32 characters)."""
    out = [
        "OFXHEADER:100",
        "DATA:OFXSGML",
        "VERSION:102",
        "SECURITY:NONE",
        "ENCODING:USASCII",
        "CHARSET:1252",
        "COMPRESSION:NONE",
        "OLDFILEUID:NONE",
        "NEWFILEUID:NONE",
        "",
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20260901060000"
        "<LANGUAGE>FRA</SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO"
        "</STATUS><STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>10278<BRANCHID>36001<ACCTID>00020485001"
        "<ACCTTYPE>CHECKING</BANKACCTFROM>",
        f"<BANKTRANLIST><DTSTART>{bank[0][0]:%Y%m%d}<DTEND>{bank[-1][0]:%Y%m%d}",
    ]
    for number, (day, amount, label, kind) in enumerate(bank, start=1):
        checknum = f"<CHECKNUM>{label.split()[-1]}" if kind == "CHECK" else ""
        out.append(
            f"<STMTTRN><TRNTYPE>{kind}<DTPOSTED>{day:%Y%m%d}<TRNAMT>{amount / 100:.2f}"
            f"<FITID>{day:%Y%m%d}{number:05d}{checknum}<NAME>{label[:32]}<MEMO>{label}</STMTTRN>"
        )
    balance = 250_000 + sum(amount for _, amount, _, _ in bank)
    out.append(
        f"</BANKTRANLIST><LEDGERBAL><BALAMT>{balance / 100:.2f}<DTASOF>{bank[-1][0]:%Y%m%d}</LEDGERBAL>"
        "</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    )
    return "\r\n".join(out).encode("cp1252")


def import_twice(app, coop_id: int, content: bytes) -> tuple[int, int]:
    with app.app_context():
        added = []
        for _ in range(2):
            result = rec.import_statement(
                db.session, coop_id, parse_statement(content), filename="releve.ofx", content=content, by=None
            )
            db.session.commit()
            added.append(result.added)
        db.session.remove()
    return added[0], added[1]


def bench_match(app, coop_id: int, runs: int) -> tuple[list[float], float, rec.MatchResult]:
    with app.app_context():
        start = time.perf_counter()
        bank = rec.open_bank_items(db.session, coop_id)
        book = rec.uncleared_book_lines(db.session, coop_id)
        load = (time.perf_counter() - start) * 1000
        samples, cpu = [], []
        for _ in range(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = rec.match(bank, book)
            samples.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        db.session.remove()
    return samples, cpu, load, result


def confirm_all(app, coop_id: int, result: rec.MatchResult) -> int:
    with app.app_context():
        for proposal in result.proposals:
            rec.confirm_match(db.session, coop_id, proposal.bank_id, list(proposal.line_ids), by=None)
        db.session.commit()
        db.session.remove()
    return len(result.proposals)


FLOOR = "/coop/modifications"  # the cheapest logged-in page: the same-run floor

STATEMENTS = [0]  # SQL statements sent so far (each a round trip to PostgreSQL)


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _count_statement(*_args) -> None:
    STATEMENTS[0] += 1


def _get(client, path: str, statements: list[int]):
    """GET `path`, noting how many SQL statements it sent."""
    before = STATEMENTS[0]
    response = client.get(path)
    statements.append(STATEMENTS[0] - before)
    return response


def bench_page(client, path: str, requests: int) -> tuple[list[float], list[float], int, float, list[int]]:
    """The page's wall-clock and CPU samples, its size (KB), the median of the floor page, requested
    alternately with it (a loaded machine slows both alike: read the ratio), and the SQL statements
    each view sent."""
    for _ in range(3):
        assert client.get(path).status_code == 200
        assert client.get(FLOOR).status_code == 200
    samples, cpu, floor, statements = [], [], [], []
    for _ in range(requests):
        start = time.perf_counter()
        client.get(FLOOR)
        floor.append((time.perf_counter() - start) * 1000)
        start, start_cpu = time.perf_counter(), time.process_time()
        response = _get(client, path, statements)
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200
    return samples, cpu, len(response.data) // 1024, statistics.median(floor), statements


def uncleared_line(app, coop_id: int) -> int:
    """A bank line of the year still to point (the first one), for the first view after a change."""
    with app.app_context():
        line_id = rec.uncleared_book_lines(db.session, coop_id)[0].line_id
        db.session.remove()
    return line_id


def _toggle(client, path: str, line_id: int, cleared: bool) -> None:
    """Point the line, or undo its pointage, as the page's script does (not timed)."""
    action, data = ("depointer", {"confirme": "oui"}) if cleared else ("pointer", {})
    response = client.post(f"{path}/ligne/{line_id}/{action}", data=data, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.status_code


def bench_after_change(
    client, path: str, line_id: int, requests: int
) -> tuple[list[float], list[float], float, list[int]]:
    """The first view after a change (one line pointed, then its pointage undone, in turn): what a
    mandataire sees after each click without JavaScript. Returns the wall-clock and CPU samples, the
    median of the floor page, requested alternately with it, and the SQL statements each view sent."""
    samples, cpu, floor, statements = [], [], [], []
    for number in range(requests):
        _toggle(client, path, line_id, cleared=number % 2 == 1)
        start = time.perf_counter()
        client.get(FLOOR)
        floor.append((time.perf_counter() - start) * 1000)
        start, start_cpu = time.perf_counter(), time.process_time()
        assert _get(client, path, statements).status_code == 200
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    if requests % 2:
        _toggle(client, path, line_id, cleared=True)
    return samples, cpu, statistics.median(floor), statements


def profile_page(client, path: str, change=None) -> str:
    """Where the page's time goes: five views, each after `change()` (not profiled) when given."""
    profiler = cProfile.Profile()
    for number in range(5):
        if change is not None:
            change(number)
        profiler.enable()
        client.get(path)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def _line(label: str, samples: list[float], cpu: list[float], extra: str = "") -> str:
    """Wall-clock median (min, max), and the median CPU time of this process (steadier on a busy machine)."""
    return (
        f"{label:<52}: médiane {statistics.median(samples):8.1f} ms (min {min(samples):.1f}, "
        f"max {max(samples):.1f} ; CPU {statistics.median(cpu):.1f}){extra}"
    )


def _extra(size: int, samples: list[float], floor: float, statements: list[int]) -> str:
    return (
        f" ; page de {size} Ko ; plancher {floor:.1f} ms, rapport {statistics.median(samples) / floor:.1f} ; "
        f"{min(statements)} à {max(statements)} requêtes SQL"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15, help="runs of match()")
    parser.add_argument("--requests", type=int, default=30, help="measured GETs of the page, per state")
    parser.add_argument("--database-url")
    parser.add_argument("--profile", action="store_true")
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
                "UPLOAD_DIR": f"{tmp}/uploads",
            }
        )
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        year = current_start_year(clock.today())
        coop_id, content = seed(app, 1, year, args.lines)
        first, second = import_twice(app, coop_id, content)
        print(
            f"Base : {url.split('://')[0]} ; {args.lines} lignes de banque au cahier, relevé de {first} lignes "
            f"(réimporté : {second} ajoutée)"
        )

        samples, cpu, load, result = bench_match(app, coop_id, args.runs)
        print(
            f"match() : {len(result.proposals)} correspondances sûres, {len(result.suggestions)} suggestions, "
            f"{len(result.unmatched_bank)} lignes du relevé et {len(result.unmatched_book)} du cahier sans "
            f"correspondance, {len(result.anomalies)} anomalies"
        )
        print(
            _line(
                f"reconciliation.match(), {args.runs} passes", samples, cpu, f" ; lecture des deux côtés {load:.1f} ms"
            )
        )

        client = app.test_client()
        client.post("/connexion", data={"login": "085-001", "password": PASSWORD})
        path = f"/coop/pointage/{year}"
        samples, cpu, size, floor, statements = bench_page(client, path, args.requests)
        print(_line(f"GET {path}, correspondances à confirmer", samples, cpu, _extra(size, samples, floor, statements)))
        if args.profile:
            print(profile_page(client, path))
        line_id = uncleared_line(app, coop_id)
        samples, cpu, floor, statements = bench_after_change(client, path, line_id, args.requests)
        print(_line(f"GET {path}, 1re vue après un pointage", samples, cpu, _extra(size, samples, floor, statements)))
        if args.profile:
            print(profile_page(client, path, lambda number: _toggle(client, path, line_id, number % 2 == 1)))
            _toggle(client, path, line_id, cleared=True)
        confirmed = confirm_all(app, coop_id, result)
        samples, cpu, size, floor, statements = bench_page(client, path, args.requests)
        extra = _extra(size, samples, floor, statements)
        print(_line(f"GET {path}, après confirmation ({confirmed})", samples, cpu, extra))
        if args.profile:
            print(profile_page(client, path))


if __name__ == "__main__":
    main()
