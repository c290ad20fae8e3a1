"""Benchmark: time to build and render the CRF PDF (and the quitus PDF) of a year of N entries.

    .venv/bin/python bench/crf_pdf.py [--entries 1000 10000] [--repeat 3] [--inventory 50] [--database-url URL]

Seeds each year with bench/cahier.py's generator (about 10 % of the bank lines left uncleared, so a
10,000-entry year lists several hundred outstanding cheques and deposits), then reports the median
of: computing the CRF from the ledger (`app.crf.compute_crf`, what closing the year does), the CRF
PDF as its page builds it (figures read back from the stored record with `Crf.from_record`, the
template, then `app.crf_pdf`: the xhtml2pdf summary and the annexes drawn by `app.pdf_tables`), the
quitus PDF and a membership attestation PDF (`documents()`, also used by `bench/all.py`). The
generator books no durable goods: `--inventory N` (default 50) adds N lines to the inventory
register of each CRF. Target (issue 17 §3): CRF PDF ≤ 1 s for 10,000 entries, quitus and
attestation ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import render_template
from pypdf import PdfReader

from app import create_app
from app import crf as year_figures
from app import crf_pdf as crf_document
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


def _inventory(crf, count: int):
    """`crf` with `count` purchases of durable goods (the generator books none on account 68)."""
    lines = tuple(
        year_figures.InventoryLine(
            crf.starts_on + timedelta(days=i % 365), f"I{i + 1:04d}", f"Achat de matériel {i + 1}", 10_000 + i
        )
        for i in range(count)
    )
    return dataclasses.replace(crf, inventory=lines)


def _attestation_html() -> str:
    """The membership attestation of a coop with four classes (the template reads plain attributes)."""
    coop = SimpleNamespace(
        login="085-001",
        name="Coopérative de l'école Jules Ferry",
        school_name="École Jules Ferry",
        uai="0850001A",
        address="1 rue des Écoles",
        postal_code="85000",
        city="La Roche-sur-Yon",
    )
    classes = [SimpleNamespace(name=f"Classe {i}", level="CE1", pupils=24, teachers=1) for i in range(1, 5)]
    moment = datetime(2025, 9, 20, 10, 0)
    membership = SimpleNamespace(
        classes=classes,
        pupils_count=96,
        teachers_count=4,
        atsem_count=1,
        aesh_count=1,
        other_adults_count=0,
        insured_count=102,
        cotisation_cents=19_200,
        property_surcharge_cents=0,
        assurance_cents=10_200,
        total_cents=29_400,
        payment_method="cheque",
        paid_at=moment,
        mandataire_name="Claire Moreau",
        committed_at=moment,
        reference="ADH-2025-085-001-ABCD",
    )
    rates = SimpleNamespace(pupil_fee_cents=200, adult_fee_cents=0, insurance_fee_cents=100)
    fee = SimpleNamespace(pupils=96, adults=6, insured=102, rates=rates)
    year = SimpleNamespace(label="2025-2026", start_year=2025)
    return render_template(
        "pdf/membership_attestation.html",
        coop=coop,
        membership=membership,
        year=year,
        fee=fee,
        federation=None,
        issued_on="20/09/2025",
    )


def documents(app, coop_id: int, year: int, inventory: int = 50) -> dict[str, object]:
    """What a coop's year-end documents cost, as callables timed by this script and by bench/all.py:

    - "compute": the CRF computed from the ledger (`compute_crf`, what closing the year does);
    - "crf": the CRF PDF as its page builds it (figures read back from the stored record, HTML, PDF);
    - "quitus", "attestation": the quitus and membership attestation PDFs (HTML, PDF).

    Each callable returns what it built; "uncleared" and "inventory" give the listing's sizes.
    """
    with app.test_request_context():
        ledger = find_ledger(db.session, coop_id, year)
        record = year_figures.compute_crf(db.session, ledger).to_record()
        db.session.remove()
    issued_on = "15/09/2025"
    verify_url = "https://portail.example/admin/clotures/verifier?code=ABCDE-FGHIJ"

    def compute():
        with app.test_request_context():
            found = year_figures.compute_crf(db.session, find_ledger(db.session, coop_id, year))
            db.session.remove()
        return found

    def read_back():
        crf = _inventory(year_figures.Crf.from_record(record), inventory)
        return dataclasses.replace(crf, verification=year_figures.Verification("ABCDE-FGHIJ", "0" * 64))

    def crf_html(crf) -> str:
        return render_template(
            "pdf/crf.html",
            crf=crf,
            federation=None,
            report=None,
            denomination_label=denomination_label,
            issued_on=issued_on,
            verify_url=verify_url,
            qr_code=qr_data_uri(verify_url),
            annexes=crf_document.annexes(crf),
            footer=crf_document.footer(crf, issued_on),
        )

    def crf_pdf() -> bytes:
        with app.test_request_context():
            crf = read_back()
            return crf_document.render_crf_pdf(crf_html(crf), app.static_folder, crf, issued_on)

    def quitus() -> bytes:
        with app.test_request_context():
            html = render_template(
                "pdf/quitus.html",
                crf=read_back(),
                federation=None,
                auditors=[{"name": "Paul Martin", "quality": "parent"}],
                mandataire="Claire Moreau",
                qualities=AUDITOR_QUALITIES,
                issued_on=issued_on,
            )
            return render_pdf(html, app.static_folder)

    def attestation() -> bytes:
        with app.test_request_context():
            return render_pdf(_attestation_html(), app.static_folder)

    uncleared = len(year_figures.Crf.from_record(record).reconciliation.uncleared)
    return {
        "compute": compute,
        "crf": crf_pdf,
        "quitus": quitus,
        "attestation": attestation,
        "uncleared": uncleared,
        "inventory": inventory,
    }


def measure(app, number: int, count: int, year: int, repeat: int, inventory: int) -> None:
    """Print the times for the year of coop `number` (`count` entries)."""
    with app.app_context():
        coop_id = db.session.get(Coop, number).id
        db.session.remove()
    built = documents(app, coop_id, year, inventory)
    ms_compute, _ = _median(built["compute"], repeat)
    ms_pdf, pdf = _median(built["crf"], repeat)
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    ms_quitus, _ = _median(built["quitus"], repeat)
    ms_attestation, _ = _median(built["attestation"], repeat)
    print(
        f"{count:>6} opérations ({built['uncleared']} non pointées, {inventory} biens durables) : "
        f"CRF calculé {ms_compute:6.1f} ms ; CRF PDF (relu, HTML, PDF) {ms_pdf:7.1f} ms ({pages} pages, "
        f"{len(pdf) // 1024} Ko) ; quitus PDF {ms_quitus:6.1f} ms ; attestation PDF {ms_attestation:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inventory", type=int, default=50, help="purchases of durable goods added to each CRF")
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
            measure(app, number, count, year, args.repeat, args.inventory)


if __name__ == "__main__":
    main()
