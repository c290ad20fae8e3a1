"""What an operator runs: `flask backup`, `flask backup --verify`, `flask files clean`."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import sqlalchemy as sa

from app import documents
from app.extensions import db


def _store_voucher(app, coop_id: int) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (30, 20), (250, 250, 250)).save(out, format="PNG")
    with app.app_context():
        document = documents.store_document(
            db.session,
            upload_dir=app.config["UPLOAD_DIR"],
            coop_id=coop_id,
            kind="voucher",
            filename="facture.png",
            content=out.getvalue(),
            max_bytes=10**6,
            by=None,
        )
        db.session.commit()
        key = document.storage_key
        db.session.remove()
    return key


def test_backup_holds_the_database_and_the_files_and_verifies(app, make_coop, tmp_path):
    info = make_coop(1)
    key = _store_voucher(app, info.id)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Sauvegarde écrite" in result.output
    (archive,) = tmp_path.glob("coop85-*.tar.gz")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert f"uploads/{key}" in names and "MANIFEST.json" in names
    assert names & {"database.sqlite", "database.dump"}

    verified = runner.invoke(args=["backup", "--verify", str(archive)])
    assert verified.exit_code == 0, verified.output
    assert "Sauvegarde intacte." in verified.output


def test_a_tampered_archive_fails_verification(app, make_coop, tmp_path):
    info = make_coop(1)
    key = _store_voucher(app, info.id)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["backup", str(tmp_path / "ok")]).exit_code == 0
    (archive,) = (tmp_path / "ok").glob("*.tar.gz")
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == f"uploads/{key}":
                data = data[:-1] + bytes([data[-1] ^ 1])
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    result = runner.invoke(args=["backup", "--verify", str(tampered)])
    assert result.exit_code == 1
    assert f"somme de contrôle fausse : uploads/{key}" in result.output


def test_a_document_whose_file_is_gone_is_reported(app, make_coop, tmp_path):
    info = make_coop(1)
    key = _store_voucher(app, info.id)
    (Path(app.config["UPLOAD_DIR"]) / key).unlink()
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path)])
    assert result.exit_code == 1
    assert f"justificatif manquant au moment de la sauvegarde : {key}" in result.output


def test_files_clean_removes_only_old_unreferenced_files(app, make_coop):
    info = make_coop(1)
    kept = _store_voucher(app, info.id)
    folder = Path(app.config["UPLOAD_DIR"])
    old_orphan, recent_orphan, old_partial = folder / "oldorphan", folder / "recent", folder / "abc.part"
    for path in (old_orphan, recent_orphan, old_partial):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in (old_orphan, old_partial, folder / kept):
        os.utime(path, (two_hours_ago, two_hours_ago))
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["files", "clean", "--dry-run"])
    assert "2 fichier(s) orphelin(s) (rien supprimé)" in dry.output and old_orphan.exists()
    result = runner.invoke(args=["files", "clean"])
    assert result.exit_code == 0 and "2 fichier(s) orphelin(s)" in result.output
    assert not old_orphan.exists() and not old_partial.exists()
    assert recent_orphan.exists() and (folder / kept).exists()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(documents.Document)) == 1
        db.session.remove()
