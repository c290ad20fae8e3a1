"""Run the test suite against a throwaway PostgreSQL database, then drop it.

The server is 127.0.0.1:5432, user postgres, trust authentication (override with PGHOST, PGPORT,
PGUSER). With CI=true the PostgreSQL run is mandatory: an unreachable server fails the run.
Elsewhere it is skipped with a loud message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
from psycopg import sql

HOST = os.environ.get("PGHOST", "127.0.0.1")
PORT = os.environ.get("PGPORT", "5432")
USER = os.environ.get("PGUSER", "postgres")
ADMIN_DSN = f"host={HOST} port={PORT} user={USER} dbname=postgres connect_timeout=5"


def main() -> int:
    is_ci = os.environ.get("CI", "").lower() == "true"
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL injoignable sur {HOST}:{PORT} ({exc})."
        if is_ci:
            print(f"ERREUR : {message} La suite PostgreSQL est obligatoire en CI.", file=sys.stderr)
            return 1
        print(f"ATTENTION : {message} Suite PostgreSQL NON exécutée.", file=sys.stderr)
        return 0
    name = f"coop85_test_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"== Suite sur PostgreSQL (base jetable {name}) ==", flush=True)
    try:
        env = dict(os.environ, TEST_DATABASE_URL=f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{name}")
        # Fixed program (this interpreter running pytest); the arguments are the developer's own.
        return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]], env=env)  # noqa: S603
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
