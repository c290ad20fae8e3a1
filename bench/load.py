"""Load test against gunicorn (not part of the test run): N coops writing for a while at once.

Starts gunicorn with the repository's gunicorn.conf.py on a loopback port, on a fresh database
(a temporary SQLite file, or a throwaway PostgreSQL database given with --database-url), creates
N coops, then runs one client thread per coop for --seconds: each logs in, then loops over the
home page, the classic view, the entry form and the save of a new operation, pausing between pages as
a person does (--think seconds on average, 0.5 to 1.5 times that; --think 0 saturates the server
and measures its throughput, not what a user waits). The clients arrive over --ramp seconds (10 by
default): each login verifies an argon2 hash (64 MiB, deliberately costly), and 50 at the same
instant would measure a queue of password checks rather than the pages. The latency is printed for
all requests, per page, and in steady state (requests started once every client has logged in),
which the target (p95 ≤ 300 ms, 0 errors, nothing lost) is checked against. At the end it prints
throughput, p50/p95 latency, errors by kind, and, for the saves: acknowledged by the portal
(redirect after save) vs stored in the database vs reported as refused. Nothing acknowledged may
be missing, and nothing stored may have been reported as refused.

    .venv/bin/python bench/load.py [--coops 50] [--seconds 60] [--workers 4] [--think 1] [--ramp 10]
        [--database-url URL]

The clients start once a worker has answered a page (gunicorn's master accepts connections while
its workers are still importing the application). Exit status 1 when the target is not met.
`Server`, `measure()` and `report()` are also used by `bench/all.py`. Only loopback traffic; the run stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.run import PASSWORD, seed  # noqa: E402

TARGET_P95 = 0.300  # seconds (issue 17 §6, PostgreSQL)
_HIDDEN = re.compile(r'<input[^>]*name="(csrf_token|form_token|version)"[^>]*value="([^"]*)"')
_PIECE = re.compile(r'name="piece"[^>]*value="([^"]*)"')


class Client:
    """A browser-like client: cookies, no redirect following (a 302 after a save is the receipt)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.timings: list[float] = []
        self.by_page: dict[str, list[float]] = {}  # "GET /coop/cahier/N" -> durations
        self.started: list[tuple[float, float]] = []  # (start, duration) of every request, monotonic clock
        self.logged_in_at = 0.0
        self.errors: Counter[str] = Counter()

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        at = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            self.errors[f"réseau : {type(exc).__name__}"] += 1
            return 0, "", ""
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        self.timings.append(elapsed)
        self.started.append((at, elapsed))
        page = f"{method} {re.sub(r'[0-9a-f]{32}', 'JETON', re.sub(r'/[0-9]+', '/N', path.split('?')[0]))}"
        self.by_page.setdefault(page, []).append(elapsed)
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        if response.status >= 500:
            self.errors[f"HTTP {response.status}"] += 1
        return response.status, response.getheader("Location") or "", text


def _hidden(page: str) -> dict[str, str]:
    return dict(_HIDDEN.findall(page))


def run_client(
    client: Client, login: str, year: int, until: float, tally: Counter, lock: threading.Lock, think: float = 0.0
) -> None:
    rng = random.Random(login)

    def pause() -> None:  # a person reads the page before the next click
        if think:
            time.sleep(think * rng.uniform(0.5, 1.5))

    status, _, page = client.request("GET", "/connexion")
    status, location, _ = client.request("POST", "/connexion", {"login": login, "password": PASSWORD, **_hidden(page)})
    if status != 302:
        client.errors["connexion refusée"] += 1
        return
    client.logged_in_at = time.monotonic()
    count = 0
    while time.monotonic() < until:
        client.request("GET", "/")
        pause()
        client.request("GET", f"/coop/cahier/{year}")
        pause()
        status, location, _ = client.request("GET", f"/coop/cahier/{year}/nouvelle")
        status, _, form_page = client.request("GET", location) if status == 302 else (status, "", "")
        fields = _hidden(form_page)
        if "form_token" not in fields:
            continue
        count += 1
        piece = _PIECE.search(form_page)
        data = {
            **fields,
            "piece": piece.group(1) if piece else f"L{count}",
            "date": f"02/10/{year}",
            "label": f"Achat {count}",
            "kind": "expense",
            "payment_mode": "carte",
            "bank_amount": "12,34",
            "splits-0-account": "6068",
            "splits-0-amount": "12,34",
        }
        pause()
        status, location, _ = client.request("POST", f"/coop/cahier/{year}/nouvelle", data)
        with lock:
            if status == 302 and "/coop/cahier/" in location:
                tally["acknowledged"] += 1
            elif status in (200, 409, 503):
                tally["refused (French message)"] += 1
            else:
                tally[f"other {status}"] += 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LoadResult:
    """What a load run measured (durations in seconds)."""

    coops: int
    seconds: int
    workers: int
    think: float
    ramp: float
    database: str
    elapsed: float
    timings: list[float]  # every request, sorted
    steady: list[float]  # requests started once every client had logged in, sorted
    pages: dict[str, list[float]]  # "GET /coop/cahier/N" -> sorted durations
    errors: Counter
    tally: Counter  # answers to the saves
    stored: int  # operations found in the database afterwards

    @property
    def acknowledged(self) -> int:
        return self.tally["acknowledged"]

    @property
    def lost(self) -> bool:
        return self.stored != self.acknowledged

    @property
    def correct(self) -> bool:
        """No error, nothing acknowledged missing, and every client logged in and measured."""
        return bool(self.steady) and not self.errors and not self.lost

    @property
    def steady_p50(self) -> float:
        return statistics.median(self.steady) if self.steady else 0.0

    @property
    def steady_p95(self) -> float:
        return _p95(self.steady)

    @property
    def met(self) -> bool:
        return self.correct and self.steady_p95 <= TARGET_P95


def _p95(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.95) - 1)] if values else 0.0


def _wait_until_serving(port: int, server: subprocess.Popen) -> None:
    """Until a worker answers a page: the port accepts connections (gunicorn's master holds it) while
    the workers still import the application, and those seconds must not count as the clients' wait."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn s'est arrêté (code {server.returncode})")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", "/connexion")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
        finally:
            connection.close()
    raise SystemExit("gunicorn ne répond pas")


class Server:
    """gunicorn (`gunicorn.conf.py`) on a loopback port, on a fresh database (`url`, or a temporary
    SQLite file when None) migrated and holding `coops` coops. `start()` returns at once, the workers
    still importing the application; `measure()` waits until one answers. Also used by `bench/all.py`,
    which starts its servers while other, untimed work runs."""

    def __init__(self, url: str | None = None, *, coops: int = 50, workers: int = 4) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="coop85-load-"))
        self.url = url or f"sqlite:///{self.work / 'load.sqlite'}"
        self.coops, self.workers = coops, workers
        self.process: subprocess.Popen | None = None
        self.app = None
        self.port = 0

    def start(self) -> Server:
        import flask_migrate

        from app import create_app
        from app.extensions import db

        env = {
            **os.environ,
            "COOP85_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": self.url,
            "UPLOAD_DIR": str(self.work / "uploads"),
            "SESSION_COOKIE_SECURE": "0",
            "RATELIMIT_STORAGE_URI": "memory://",
            # Every simulated coop logs in from 127.0.0.1: the per-address login limit would refuse most.
            "RATELIMIT_LOGIN": "1000 per minute",
            "LOG_LEVEL": "WARNING",
            "COOP85_WORKERS": str(self.workers),
        }
        self.app = create_app({"COOP85_ENV": "testing", "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": self.url})
        with self.app.app_context():
            flask_migrate.upgrade()  # the same migrations as `flask db upgrade`, without a second interpreter
            for engine in db.engines.values():
                engine.dispose()  # no connection of ours open while gunicorn starts
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{self.port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seed(self.app, self.coops)  # while the workers import the application
        return self

    def wait_ready(self) -> None:
        """Until a worker answers a page."""
        _wait_until_serving(self.port, self.process)

    def stored(self) -> int:
        """Operations in the database for the clients' coops."""
        from app.extensions import db
        from app.models import Coop, Entry, Ledger

        with self.app.app_context():
            count = db.session.scalar(
                sa.select(sa.func.count()).select_from(Entry).join(Ledger).join(Coop).where(Coop.number <= self.coops)
            )
            db.session.remove()
        return count

    def stop(self) -> None:
        """Stop gunicorn (gracefully), close our connections, remove the temporary directory."""
        from app.extensions import db

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        if self.app is not None:
            with self.app.app_context():
                for engine in db.engines.values():
                    engine.dispose()
        shutil.rmtree(self.work, ignore_errors=True)  # the SQLite file and uploads


def measure(server: Server, *, seconds: int = 60, think: float = 1.0, ramp: float = 10.0) -> LoadResult:
    """One client per coop of `server` for `seconds` (the server keeps running)."""
    from app import clock
    from app.ledger import current_start_year

    year = current_start_year(clock.today())
    server.wait_ready()
    tally: Counter = Counter()
    lock = threading.Lock()
    clients = [Client(server.port) for _ in range(server.coops)]
    until = time.monotonic() + seconds
    started = time.monotonic()
    threads = [
        threading.Thread(target=run_client, args=(c, f"085-{i + 1:03d}", year, until, tally, lock, think))
        for i, c in enumerate(clients)
    ]
    for i, thread in enumerate(threads):  # arrivals spread over --ramp seconds, as people log in
        thread.start()
        if ramp and i < len(threads) - 1:
            time.sleep(ramp / len(threads))
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # steady state: once every client has logged in (the logins' argon2 checks are done)
    all_in = max((c.logged_in_at for c in clients), default=0.0)
    pages: dict[str, list[float]] = {}
    for c in clients:
        for page, durations in c.by_page.items():
            pages.setdefault(page, []).extend(durations)
    return LoadResult(
        coops=server.coops,
        seconds=seconds,
        workers=server.workers,
        think=think,
        ramp=ramp,
        database=server.url.split(":")[0].split("+")[0],
        elapsed=elapsed,
        timings=sorted(t for c in clients for t in c.timings),
        steady=sorted(d for c in clients for at, d in c.started if at >= all_in),
        pages={page: sorted(durations) for page, durations in pages.items()},
        errors=sum((c.errors for c in clients), Counter()),
        tally=tally,
        stored=server.stored(),
    )


def run(
    url: str | None = None,
    *,
    coops: int = 50,
    seconds: int = 60,
    workers: int = 4,
    think: float = 1.0,
    ramp: float = 10.0,
) -> LoadResult:
    """One load run on a fresh database (`url`, or a temporary SQLite file when None)."""
    server = Server(url, coops=coops, workers=workers)
    try:
        return measure(server.start(), seconds=seconds, think=think, ramp=ramp)
    finally:
        server.stop()


def report(result: LoadResult) -> list[str]:
    """The run in French, line by line."""
    out = [
        f"{result.coops} coops, {result.seconds} s, gunicorn {result.workers} workers × 2 threads, "
        f"{result.database}, pause moyenne entre deux pages {result.think:g} s, "
        f"arrivées étalées sur {result.ramp:g} s",
        f"requêtes : {len(result.timings)} ({len(result.timings) / result.elapsed:.0f}/s)",
    ]
    if result.timings:
        out.append(
            f"latence : p50 {statistics.median(result.timings) * 1000:.0f} ms, p95 {_p95(result.timings) * 1000:.0f} ms"
        )
    if result.steady:
        out.append(
            f"régime établi (toutes les coops connectées, {len(result.steady)} requêtes) : "
            f"p50 {result.steady_p50 * 1000:.0f} ms, p95 {result.steady_p95 * 1000:.0f} ms"
        )
    out.append(f"erreurs : {dict(result.errors) or 'aucune'}")
    for page, durations in sorted(result.pages.items()):
        out.append(
            f"  {page:<40} {len(durations):>5} requêtes, p50 {statistics.median(durations) * 1000:5.0f} ms, "
            f"p95 {_p95(durations) * 1000:5.0f} ms"
        )
    others = dict(result.tally - Counter(acknowledged=result.acknowledged)) or "aucune"
    out.append(f"opérations : accusées {result.acknowledged}, en base {result.stored}, autres réponses {others}")
    out.append("=> ÉCART entre accusées et enregistrées" if result.lost else "=> aucune perte")
    verdict = "atteint" if result.met else "NON ATTEINT"
    out.append(f"objectif (0 erreur, aucune perte, p95 ≤ {TARGET_P95 * 1000:.0f} ms en régime établi) : {verdict}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coops", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--think", type=float, default=1.0, help="average pause between pages, in seconds")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the clients arrive")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    result = run(
        args.database_url,
        coops=args.coops,
        seconds=args.seconds,
        workers=args.workers,
        think=args.think,
        ramp=args.ramp,
    )
    print("\n".join(report(result)))
    sys.exit(0 if result.met else 1)


if __name__ == "__main__":
    main()
