"""Benchmark: importing a large bank statement (parse + store), and the same file again (nothing added).

    .venv/bin/python bench/statement_import.py [--lines 20000] [--runs 3] [--database-url URL]

For each format (OFX as the banks' download, the Crédit Mutuel CSV, QIF) a statement of N lines is
generated (several lines a day, repeated amounts, cheques), then parsed and imported into a coop with
nothing yet (`reconciliation.import_statement`, one unit of work, committed), then imported again
(every line already known: nothing added, no statement record). Target (issue 12 §5): a
20,000-line statement in 5 s or less on SQLite, all or nothing. Each run uses a fresh coop.
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
from app import reconciliation as rec
from app.extensions import db
from app.models import Coop, StatementLine
from app.statements import parse_statement

AMOUNTS = [-3500, -3500, -4550, 24500, -600, 15000, -12000]


def lines(count: int) -> list[tuple[date, int, str, str]]:
    """Date, signed cents, label, cheque number (every fifth line is a cheque)."""
    rng = random.Random(count)
    first = date(2025, 9, 1)
    out = []
    for i in range(count):
        day = first + timedelta(days=i * 330 // count)
        amount = rng.choice(AMOUNTS) if rng.random() < 0.4 else rng.choice([-1, 1]) * rng.randrange(100, 90_000)
        cheque = f"{1000 + i:07d}" if i % 5 == 0 and amount < 0 else ""
        label = f"CHEQUE {cheque}" if cheque else rng.choice(["CB LECLERC LA ROCHE", "VIR SEPA MAIRIE", "PRLV OCCE 85"])
        out.append((day, amount, label, cheque))
    return out


def as_ofx(rows) -> bytes:
    body = [
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
        f"<BANKTRANLIST><DTSTART>{rows[0][0]:%Y%m%d}<DTEND>{rows[-1][0]:%Y%m%d}",
    ]
    for number, (day, amount, label, cheque) in enumerate(rows, start=1):
        kind, checknum = ("CHECK", f"<CHECKNUM>{cheque}") if cheque else ("DEBIT" if amount < 0 else "CREDIT", "")
        body.append(
            f"<STMTTRN><TRNTYPE>{kind}<DTPOSTED>{day:%Y%m%d}<TRNAMT>{amount / 100:.2f}"
            f"<FITID>{day:%Y%m%d}{number:06d}{checknum}<NAME>{label[:32]}<MEMO>{label}</STMTTRN>"
        )
    balance = sum(amount for _, amount, _, _ in rows)
    body.append(
        f"</BANKTRANLIST><LEDGERBAL><BALAMT>{balance / 100:.2f}<DTASOF>{rows[-1][0]:%Y%m%d}</LEDGERBAL>"
        "</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    )
    return "\r\n".join(body).encode("cp1252")


def as_csv(rows) -> bytes:
    out = ["Date;Date de valeur;Débit;Crédit;Libellé;Solde"]
    for day, amount, label, _ in rows:
        euros = f"{abs(amount) / 100:.2f}".replace(".", ",")
        debit, credit = (f"-{euros}", "") if amount < 0 else ("", euros)
        out.append(f"{day:%d/%m/%Y};{day:%d/%m/%Y};{debit};{credit};{label};")
    return "\r\n".join(out).encode("cp1252")


def as_qif(rows) -> bytes:
    out = ["!Type:Bank"]
    for day, amount, label, cheque in rows:
        out += [f"D{day:%d/%m/%Y}", f"T{amount / 100:.2f}", *([f"N{cheque}"] if cheque else []), f"P{label}", "^"]
    return "\r\n".join(out).encode("cp1252")


def import_twice(app, number: int, content: bytes) -> tuple[float, float, float, int]:
    """Import `content` into a fresh coop numbered `number`, then again (nothing added), each committed.

    Returns the seconds of the first import, of its parsing alone and of the second import, and the
    lines stored; raises AssertionError when the second import adds anything or a line is missing.
    Also used by `bench/all.py`."""
    with app.app_context():
        coop = Coop(number=number, name=f"Coop {number}", school_name="École", postal_code="85000")
        db.session.add(coop)
        db.session.commit()
        coop_id = coop.id
        times, parse = [], 0.0
        for attempt in range(2):
            start = time.perf_counter()
            parsed = parse_statement(content)
            parsed_at = time.perf_counter()
            result = rec.import_statement(db.session, coop_id, parsed, filename="releve", content=content, by=None)
            db.session.commit()
            times.append(time.perf_counter() - start)
            if attempt == 0:
                parse = parsed_at - start
                assert result.added == len(parsed.lines), result
            else:
                assert result.added == 0 and result.statement is None, result
        stored = db.session.scalar(
            sa.select(sa.func.count()).select_from(StatementLine).where(StatementLine.coop_id == coop_id)
        )
        assert stored == len(parsed.lines), (stored, len(parsed.lines))
        db.session.remove()
    return times[0], parse, times[1], stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    rows = lines(args.lines)
    files = {"OFX": as_ofx(rows), "CSV Crédit Mutuel": as_csv(rows), "QIF": as_qif(rows)}
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        app = create_app({"COOP85_ENV": "testing", "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        print(f"Base : {url.split('://')[0]} ; relevé de {args.lines} lignes")
        number = 100
        for name, content in files.items():
            parse_times, first_times, again_times = [], [], []
            for _ in range(args.runs):
                number += 1
                first, parse, again, _ = import_twice(app, number, content)
                first_times.append(first)
                parse_times.append(parse)
                again_times.append(again)
            first, parse, again = (statistics.median(t) for t in (first_times, parse_times, again_times))
            print(
                f"{name:<20} ({len(content) // 1024:5d} Ko) : import {first:6.2f} s "
                f"(dont lecture {parse:5.2f} s) ; réimport {again:6.2f} s"
            )


if __name__ == "__main__":
    main()
