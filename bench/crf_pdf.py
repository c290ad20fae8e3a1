"""Benchmark: time to build and render the CRF PDF (and the quitus PDF) of a year of N entries.

    .venv/bin/python bench/crf_pdf.py [--entries 1000 10000] [--repeat 3] [--database-url URL]

Seeds each year with bench/cahier.py's generator (about 10 % of the bank lines left uncleared, so a
10,000-entry year lists several hundred outstanding cheques and deposits), then reports the median
of: computing the CRF from the ledger (`app.crf.compute_crf`), reading it back from the stored
figures (`Crf.from_record`), rendering the CRF template, xhtml2pdf, and the quitus PDF. Target
(issue 17 §3): CRF PDF ≤ 1 s for 10,000 entries, quitus ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import render_template

from app import create_app
from app import crf as year_figures
from app.closing import denomination_label
from app.cra import AUDITOR_QUALITIES
from app.extensions import db
from app.ledger import find_ledger
from app.models import Coop
from app.pdf import qr_data_uri, render_pdf
from bench.cahier import FAST, seed_year


def _median(fn, repeat: int) -> tuple[float, object]:
    samples, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), value


def measure(app, number: int, count: int, year: int, repeat: int) -> None:
    """Print the times for the year of coop `number` (`count` entries)."""
    with app.test_request_context():
        ledger = find_ledger(db.session, db.session.get(Coop, number).id, year)
        ms_compute, crf = _median(lambda: year_figures.compute_crf(db.session, ledger), repeat)
        record = crf.to_record()
        ms_read, crf = _median(lambda: year_figures.Crf.from_record(record), repeat)
        context = dict(
            crf=crf,
            federation=None,
            report=None,
            denomination_label=denomination_label,
            issued_on="15/09/2025",
            verify_url="https://portail.example/admin/clotures/verifier?code=ABCDE-FGHIJ",
            qr_code=qr_data_uri("https://portail.example/admin/clotures/verifier?code=ABCDE-FGHIJ"),
        )
        ms_html, html = _median(lambda: render_template("pdf/crf.html", **context), repeat)
        ms_pdf, pdf = _median(lambda: render_pdf(html, app.static_folder), repeat)
        quitus = render_template(
            "pdf/quitus.html",
            crf=crf,
            federation=None,
            auditors=[{"name": "Paul Martin", "quality": "parent"}],
            mandataire="Claire Moreau",
            qualities=AUDITOR_QUALITIES,
            issued_on="15/09/2025",
        )
        ms_quitus, _ = _median(lambda: render_pdf(quitus, app.static_folder), repeat)
        print(
            f"{count:>6} opérations ({len(crf.reconciliation.uncleared)} non pointées) : CRF calculé "
            f"{ms_compute:6.1f} ms, relu {ms_read:5.1f} ms, HTML {ms_html:6.1f} ms, PDF {ms_pdf:7.1f} ms "
            f"({len(pdf) // 1024} Ko) ; quitus PDF {ms_quitus:6.1f} ms"
        )
        db.session.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        app = create_app(
            {
                "COOP85_ENV": "testing",
                "SECRET_KEY": "bench",
                "SQLALCHEMY_DATABASE_URI": url,
                "ARGON2_PARAMS": FAST,
                "SERVER_NAME": "portail.example",
            }
        )
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        year = date.today().year - 1
        print(f"Base : {url.split('://')[0]} ; médiane de {args.repeat} mesures")
        for number, count in enumerate(args.entries, start=1):
            seed_year(app, number, year, count)
            measure(app, number, count, year, args.repeat)


if __name__ == "__main__":
    main()
