"""Operator commands: `flask backup`, `flask backup --verify`, `flask files clean`.

The work is in `app/backup.py`; these commands read the configuration and the clock and print
French summaries. Exit status 1 when something is wrong, so that cron and monitoring notice.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app import backup, clock
from app.extensions import db


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--verify", "archive", type=click.Path(exists=True, dir_okay=False), help="Vérifier une archive.")
@with_appcontext
def backup_command(dest: Path | None, archive: str | None) -> None:
    """Sauvegarder la base et les fichiers déposés dans DEST, ou vérifier une archive (--verify)."""
    if archive:
        _verify(archive)
        return
    if dest is None:
        raise click.UsageError("Indiquez le dossier de destination, ou --verify ARCHIVE.")
    from app.web.health import code_head

    try:
        path = backup.create_backup(
            db.engine, current_app.config["UPLOAD_DIR"], str(dest), migration=code_head(), now=clock.now()
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    result = backup.verify_backup(str(path))
    click.echo(f"Sauvegarde écrite : {path} ({path.stat().st_size // 1024} Kio, {result.files} fichier(s) déposé(s)).")
    if not result.ok:
        for problem in result.problems:
            click.echo(f"  ! {problem}", err=True)
        raise SystemExit(1)


def _verify(archive: str) -> None:
    try:
        result = backup.verify_backup(archive)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    coops = f", {result.coops} coopérative(s)" if result.coops is not None else ""
    click.echo(f"{archive} : {result.members} élément(s) vérifié(s), {result.files} fichier(s) déposé(s){coops}.")
    for problem in result.problems:
        click.echo(f"  ! {problem}", err=True)
    if not result.ok:
        raise SystemExit(1)
    click.echo("Sauvegarde intacte.")


@click.group("files")
def files_group() -> None:
    """Fichiers déposés (justificatifs, pièces)."""


@files_group.command("clean")
@click.option("--dry-run", is_flag=True, help="Lister sans supprimer.")
@with_appcontext
def files_clean_command(dry_run: bool) -> None:
    """Supprimer les fichiers qu'aucun document ne référence (plus d'une heure)."""
    orphans = backup.orphan_files(db.session, current_app.config["UPLOAD_DIR"], now_epoch=time.time())
    for path in orphans:
        click.echo(f"{'à supprimer' if dry_run else 'supprimé'} : {path.name} ({path.stat().st_size} octets)")
        if not dry_run:
            path.unlink(missing_ok=True)
    click.echo(f"{len(orphans)} fichier(s) orphelin(s){' (rien supprimé)' if dry_run else ''}.")
