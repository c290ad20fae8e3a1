"""Backups an operator can trust: one archive holding the database and the uploaded files, with a
manifest of checksums, and a verification that reads it back.

`flask backup DEST` writes `DEST/coop85-AAAAMMJJ-HHMMSS.tar.gz`:

- `database.sqlite` (SQLite's online backup API: consistent while the portal keeps writing) or
  `database.dump` (`pg_dump -Fc`, one snapshot);
- `uploads/<key>` for every stored file (justificatifs, pièces d'identité, relevés…);
- `MANIFEST.json`: date, database kind, migration, and the size and SHA-256 of every member.

The database is copied first, then the files: a file deleted in between (its row already gone
from the copy) is simply absent; a document of the copy whose file is missing is listed in the
manifest as `missing_files`, and the verification reports it.

`flask backup --verify ARCHIVE` recomputes every checksum and opens the database copy
(`PRAGMA integrity_check` and a count of coops for SQLite, `pg_restore --list` for a dump).
`flask files clean` removes stored files that no document points to (left by a crash between the
write of a file and the commit of its row), older than an hour so that an upload in progress is
never touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import Document

ARCHIVE_PREFIX = "coop85-"
ORPHAN_MIN_AGE_SECONDS = 3600


class BackupError(RuntimeError):
    """The backup or its verification failed (French message for the operator)."""


@dataclass
class Verification:
    members: int = 0
    files: int = 0
    coops: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dump_database(engine: Engine, folder: Path) -> tuple[Path, str]:
    """Copy the database into `folder`; return the file and its kind (sqlite or postgresql)."""
    if engine.dialect.name == "sqlite":
        target = folder / "database.sqlite"
        source = sqlite3.connect(engine.url.database)
        try:
            copy = sqlite3.connect(target)
            with copy:
                source.backup(copy)
            copy.close()
        finally:
            source.close()
        return target, "sqlite"
    if engine.dialect.name == "postgresql":
        target = folder / "database.dump"
        url = engine.url
        environment = {**os.environ, "PGPASSWORD": url.password or ""}
        command = ["pg_dump", "-Fc", "--no-owner", "-f", str(target), "-h", url.host or "localhost"]
        command += ["-p", str(url.port or 5432), "-U", url.username or "postgres", url.database or ""]
        result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise BackupError(f"pg_dump a échoué : {result.stderr.strip()[:500]}")
        return target, "postgresql"
    raise BackupError(f"Base de données non prise en charge : {engine.dialect.name}")


def _document_keys(database: Path, kind: str, engine: Engine) -> set[str]:
    """The storage keys of the documents in the copied database (the live one for PostgreSQL)."""
    if kind == "sqlite":
        connection = sqlite3.connect(database)
        try:
            return {row[0] for row in connection.execute("SELECT storage_key FROM document")}
        finally:
            connection.close()
    with engine.connect() as connection:
        return set(connection.scalars(sa.select(Document.storage_key)))


def _stored_files(uploads: Path) -> list[Path]:
    """The completed files of the upload store (a `.part` file is a write in progress)."""
    if not uploads.is_dir():
        return []
    return sorted(path for path in uploads.iterdir() if path.is_file() and not path.name.endswith(".part"))


def create_backup(engine: Engine, upload_dir: str, dest: str, *, migration: str, now: datetime) -> Path:
    """Write one archive of the database and the uploads into `dest`; return its path."""
    destination = Path(dest)
    destination.mkdir(parents=True, exist_ok=True)
    archive = destination / f"{ARCHIVE_PREFIX}{now:%Y%m%d-%H%M%S}.tar.gz"
    uploads = Path(upload_dir)
    with tempfile.TemporaryDirectory(prefix="coop85-backup-") as work:
        database, kind = _dump_database(engine, Path(work))
        keys = _document_keys(database, kind, engine)
        stored = (
            sorted(p for p in uploads.iterdir() if p.is_file() and not p.name.endswith(".part"))
            if uploads.is_dir()
            else []
        )
        manifest = {
            "created_at": now.isoformat(timespec="seconds") + "Z",
            "database": kind,
            "migration": migration,
            "members": {},
            "missing_files": sorted(keys - {p.name for p in stored}),
        }
        partial = archive.with_suffix(".part")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(database, arcname=database.name)
            manifest["members"][database.name] = {"size": database.stat().st_size, "sha256": _sha256(database)}
            for path in stored:
                name = f"uploads/{path.name}"
                tar.add(path, arcname=name)
                manifest["members"][name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
            data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
            info = tarfile.TarInfo("MANIFEST.json")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
        os.chmod(partial, 0o600)  # personal data: identity documents, IBANs
        os.replace(partial, archive)
    return archive


def verify_backup(archive: str) -> Verification:
    """Read an archive back: every checksum, and the database copy opened and checked."""
    result = Verification()
    try:
        with tarfile.open(archive, "r:gz") as tar, tempfile.TemporaryDirectory(prefix="coop85-verify-") as work:
            try:
                manifest = json.load(tar.extractfile("MANIFEST.json"))
            except KeyError:
                raise BackupError("MANIFEST.json absent : ce n'est pas une sauvegarde du portail.") from None
            names = {member.name for member in tar.getmembers() if member.isfile()} - {"MANIFEST.json"}
            for name in sorted(set(manifest["members"]) - names):
                result.problems.append(f"absent de l'archive : {name}")
            for name in sorted(names - set(manifest["members"])):
                result.problems.append(f"inconnu du manifeste : {name}")
            for name in sorted(names & set(manifest["members"])):
                handle = tar.extractfile(name)
                digest = hashlib.sha256()
                for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    digest.update(block)
                if digest.hexdigest() != manifest["members"][name]["sha256"]:
                    result.problems.append(f"somme de contrôle fausse : {name}")
                result.members += 1
                result.files += name.startswith("uploads/")
            for key in manifest.get("missing_files", []):
                result.problems.append(f"justificatif manquant au moment de la sauvegarde : {key}")
            _check_database(tar, manifest["database"], Path(work), result)
    except (tarfile.TarError, OSError, json.JSONDecodeError) as exc:
        raise BackupError(f"Archive illisible : {exc}") from None
    return result


def _check_database(tar: tarfile.TarFile, kind: str, work: Path, result: Verification) -> None:
    if kind == "sqlite":
        target = work / "database.sqlite"
        with tar.extractfile("database.sqlite") as source, target.open("wb") as copy:
            shutil.copyfileobj(source, copy)
        connection = sqlite3.connect(target)
        try:
            check = connection.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                result.problems.append(f"base SQLite abîmée : {check}")
            result.coops = connection.execute("SELECT count(*) FROM coop").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            result.problems.append(f"base SQLite illisible : {exc}")
        finally:
            connection.close()
    else:
        target = work / "database.dump"
        with tar.extractfile("database.dump") as source, target.open("wb") as copy:
            shutil.copyfileobj(source, copy)
        listing = subprocess.run(["pg_restore", "--list", str(target)], capture_output=True, text=True, check=False)  # noqa: S603, S607
        if listing.returncode != 0 or "TABLE DATA public coop" not in listing.stdout:
            result.problems.append(f"sauvegarde PostgreSQL illisible : {listing.stderr.strip()[:300]}")


def orphan_files(session, upload_dir: str, *, now_epoch: float) -> list[Path]:
    """Stored files no document points to, older than an hour (partial writes included)."""
    folder = Path(upload_dir)
    if not folder.is_dir():
        return []
    referenced = set(session.scalars(sa.select(Document.storage_key)))

    def is_orphan(path: Path) -> bool:  # a `.part` file is a write that never completed
        return path.name.endswith(".part") or path.name not in referenced

    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and is_orphan(path) and now_epoch - path.stat().st_mtime > ORPHAN_MIN_AGE_SECONDS
    )
