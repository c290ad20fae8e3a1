"""Back office at federation scale (issue 17 §5): every staff list, the campaign dashboard, the
debit-run page, creating a run for every coop, and the consolidated CRF export, timed on a database
filled by bench/federation.py (PostgreSQL).

    .venv/bin/python bench/backoffice.py --database-url postgresql://postgres@127.0.0.1/coop85_scale \\
        [--requests 20]

Logs in as the generator's staff account `secretariat` (its second factor is enrolled first), then
prints for each page the median, the p95 and the number of SQL statements per request. Creating a
run is timed once per pass and undone afterwards (batch, debits, mails and audit rows removed,
memberships put back to « engagée »), so the bench can be run again on the same database.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.run import FAST, PASSWORD

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
IBAN = "FR7630006000011234567890189"

# (label, path) of every back-office page that lists rows; "{year}" is the current school year
PAGES = (
    ("Tableau de bord (campagne)", "/admin/"),
    ("Campagne : coops sans adhésion", "/admin/campagne/coops?etape=adhesion&etat=absente&annee={year}"),
    ("Campagne : adhésions engagées", "/admin/campagne/coops?etape=adhesion&etat=committed&annee={year}"),
    ("Coopératives", "/admin/admin_coops/"),
    ("Adhésions", "/admin/admin_memberships/"),
    ("Opérations des cahiers", "/admin/admin_entries/"),
    ("Opérations, page 50", "/admin/admin_entries/?page=49"),
    ("Opérations d'une coop", "/admin/admin_entries/?flt0_0=500"),
    ("Comptes rendus (tous)", "/admin/admin_reports/"),
    ("Comptes rendus à relire", "/admin/comptes-rendus/"),
    ("Cahiers clôturés", "/admin/clotures/"),
    ("Changements de mandataire", "/admin/admin_mandate_changes/"),
    ("Mandataires (historique)", "/admin/admin_mandates/"),
    ("Journal d'audit", "/admin/admin_audit/"),
    ("Courriels", "/admin/admin_outbox/"),
    ("Comptes OCCE 85", "/admin/admin_staff/"),
    ("Page des prélèvements", "/admin/prelevements/"),
    ("Export CRF consolidé (csv)", "/admin/exports/crf-{year}.csv"),
)


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.log: list[str] | None = None  # --verbose: the statements of the last request

    def __call__(self, conn, cursor, statement, *args, **kwargs) -> None:
        self.count += 1
        if self.log is not None:
            self.log.append(statement[:60])


def _app(url: str):
    from app import create_app

    return create_app(
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


def _login(app):
    from app import auth, clock
    from app.auth import FAILURE_ACTIONS
    from app.extensions import db
    from app.models import AuditEvent, Federation, User

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.login == "secretariat"))
        if user is None:
            raise SystemExit("Pas de compte « secretariat » : remplissez la base avec bench/federation.py.")
        user.totp_secret, user.totp_enrolled_at, user.must_change_password = SECRET, datetime(2025, 1, 1), False
        user.totp_last_step = None  # the bench's own enrolment: its code may be used again by the next run
        db.session.execute(  # a run interrupted mid-login must not lock the next one out
            sa.delete(AuditEvent).where(AuditEvent.actor_login == "secretariat", AuditEvent.action.in_(FAILURE_ACTIONS))
        )
        federation = db.session.scalar(sa.select(Federation)) or Federation(name="OCCE 85")
        if not federation.creditor_id:  # the creditor's side of a run (ICS and account)
            federation.creditor_id, federation.iban, federation.bic = "FR15ZZZ850042", IBAN, "CMCIFR2A"
            db.session.add(federation)
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    client.post("/connexion", data={"login": "secretariat", "password": PASSWORD})
    client.post("/connexion/code", data={"code": auth.totp_code(SECRET, clock.now())})
    if client.get("/admin/").status_code != 200:
        raise SystemExit("connexion du secrétariat refusée")
    return client


def _time(client, counter: Counter, path: str, requests: int) -> tuple[float, float, int] | None:
    samples, statements = [], []
    for _ in range(requests):
        counter.count = 0
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        statements.append(counter.count)
        if response.status_code != 200:
            return None
    samples.sort()
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    return statistics.median(samples) * 1000, p95 * 1000, max(statements)


def _create_run(app, client, counter: Counter) -> tuple[float, int, int]:
    """POST the debit-run form as the page shows it (every membership that can be debited, the count and
    total staff confirm); returns (ms, statements, debits, mails), then undoes it."""
    from app.extensions import db
    from app.models import AuditEvent, DebitBatch, Membership, OutboxEmail

    page = client.get("/admin/prelevements/").get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(nombre|total)" value="(\d+)"', page))
    collection = re.search(r'name="collection_date"[^>]*value="([0-9-]+)"', page)
    if len(fields) != 2 or collection is None:
        raise SystemExit("page des prélèvements : aucune adhésion à prélever")
    with app.app_context():
        last_audit = db.session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0
        last_mail = db.session.scalar(sa.select(sa.func.max(OutboxEmail.id))) or 0
        db.session.remove()
    counter.count = 0
    started = time.perf_counter()
    response = client.post("/admin/prelevements/", data={**fields, "collection_date": collection.group(1)})
    elapsed, statements = (time.perf_counter() - started) * 1000, counter.count
    if response.status_code != 302 or "/admin/prelevements/" not in response.headers.get("Location", ""):
        raise SystemExit(f"création du prélèvement refusée ({response.status_code})")
    with app.app_context():
        batch = db.session.scalar(sa.select(DebitBatch).order_by(DebitBatch.id.desc()).limit(1))
        if batch is None:
            raise SystemExit("aucun prélèvement créé : toutes les adhésions ont été laissées de côté")
        count = batch.count
        mails = db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.id > last_mail))
        db.session.execute(sa.delete(DebitBatch).where(DebitBatch.id == batch.id))
        db.session.execute(sa.update(Membership).where(Membership.status == "in_batch").values(status="committed"))
        db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id > last_audit))
        db.session.execute(sa.delete(OutboxEmail).where(OutboxEmail.id > last_mail))
        db.session.commit()
        db.session.remove()
    return elapsed, statements, count, mails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="une base remplie par bench/federation.py")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--only", default="", help="ne mesurer que les pages dont le libellé contient ce texte")
    args = parser.parse_args()
    url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)

    from app import clock
    from app.extensions import db
    from app.ledger import current_start_year
    from app.models import Coop, Entry

    app = _app(url)
    counter = Counter()
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", counter)
        coops = db.session.scalar(sa.select(sa.func.count()).select_from(Coop))
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(Entry))
        db.session.remove()
    client = _login(app)
    year = current_start_year(clock.today())
    print(f"{coops} coopératives, {entries} opérations ; {args.requests} requêtes par page")
    print(f"{'page':<36} {'médiane':>9} {'p95':>9} {'requêtes SQL':>13}")
    for label, path in PAGES:
        if args.only and args.only.lower() not in label.lower():
            continue
        client.get(path.format(year=year))  # warm-up (templates, caches)
        measured = _time(client, counter, path.format(year=year), args.requests)
        if measured is None:
            print(f"{label:<36} erreur (la page ne répond pas 200)")
            continue
        median, p95, statements = measured
        print(f"{label:<36} {median:>7.0f} ms {p95:>6.0f} ms {statements:>13}")
    if not args.only or "création" in args.only.lower():
        elapsed, statements, count, mails = _create_run(app, client, counter)
        print(f"{f'Création d’un prélèvement ({count} coops)':<36} {elapsed:>7.0f} ms {'':>9} {statements:>13}")
        print(f"  ({mails} courriels de prénotification dans la file d'envoi)")


if __name__ == "__main__":
    main()
