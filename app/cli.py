"""Flask commands: demo data, coop import, staff accounts, mail delivery.

Each command is one unit of work: it commits once at the end (mail delivery commits per mail).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app.extensions import db


def _hash_params():
    return current_app.config["ARGON2_PARAMS"] or None


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo_command)
    app.cli.add_command(coops_group)
    app.cli.add_command(users_group)
    app.cli.add_command(mail_group)
    app.cli.add_command(ledger_group)
    app.cli.add_command(reports_group)
    app.cli.add_command(statements_group)
    app.cli.add_command(debits_group)


# AppGroup / with_appcontext: the app context is also there when the command is invoked through
# `app.cli` directly (test runner, embedding), not only through the `flask` script.
@click.command("demo")
@click.option("--force", is_flag=True, help="Autoriser en production (déconseillé).")
@with_appcontext
def demo_command(force: bool) -> None:
    """Load the demo data (idempotent) and print the logins to use."""
    from app.demo import load_demo

    if current_app.config["COOP85_ENV"] == "production" and not force:
        raise click.ClickException("Les données de démonstration ne se chargent pas en production (--force).")
    logins = load_demo(db.session, hash_params=_hash_params())
    db.session.commit()
    click.echo("Données de démonstration prêtes. Identifiants :")
    for entry in logins:
        password = entry.password or "(déjà créé : mot de passe inchangé)"
        role = "OCCE 85" if entry.role == "staff" else "coopérative"
        click.echo(f"  {entry.login:<12} {password:<40} {role}")
    click.echo("Les coopératives choisissent leur propre mot de passe à la première connexion.")


@click.group("coops", cls=AppGroup)
def coops_group() -> None:
    """Coops: import of the OCCE 85 list."""


@coops_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier CSV des nouveaux identifiants (défaut : identifiants-coops-DATE.csv).",
)
def import_command(file: Path, out: Path | None) -> None:
    """Create or update coops from FILE (numero;nom;ecole;uai;…), all or nothing."""
    from app.coops import credentials_csv, import_coops
    from app.errors import ValidationErrors
    from app.models import utcnow

    try:
        result = import_coops(db.session, file.read_bytes(), by=None, hash_params=_hash_params())
    except ValidationErrors as exc:
        db.session.rollback()
        click.echo("Import refusé, rien n'a été enregistré :", err=True)
        for where, messages in exc.errors.items():
            for message in messages:
                click.echo(f"  {where} : {message}", err=True)
        sys.exit(1)
    if result.created:
        out = out or Path(f"identifiants-coops-{utcnow():%Y%m%d-%H%M%S}.csv")
        # Created 0600 from the start (no window where another local user could read the passwords);
        # written before the commit, so accounts never exist without their password on file.
        try:
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # an existing file keeps its mode with O_CREAT
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(credentials_csv(result.created))
        except OSError as exc:
            db.session.rollback()
            raise click.ClickException(
                f"Impossible d'écrire le fichier des identifiants {out} ({exc.strerror}) : rien n'a été enregistré."
            ) from None
    db.session.commit()
    click.echo(f"{len(result.created)} coopérative(s) créée(s), {len(result.updated)} mise(s) à jour.")
    if result.created:
        click.echo(f"Identifiants et mots de passe provisoires : {out} (à supprimer après le publipostage).")


@click.group("users", cls=AppGroup)
def users_group() -> None:
    """Staff accounts."""


@users_group.command("create-staff")
@click.argument("login")
@click.option("--email", required=True, help="Adresse qui recevra les liens de réinitialisation.")
@click.option("--name", default="", help="Nom affiché.")
@click.option("--admin", "is_admin", is_flag=True, help="Rôle administrateur.")
def create_staff_command(login: str, email: str, name: str, is_admin: bool) -> None:
    """Create an OCCE 85 staff login with a temporary password (printed once)."""
    import sqlalchemy as sa

    from app import audit
    from app.auth import normalize_login
    from app.coops import check_email, temporary_password
    from app.models import User
    from app.passwords import hash_password

    login = normalize_login(login)
    if db.session.scalar(sa.select(User).where(User.login == login)):
        raise click.ClickException(f"L'identifiant {login} existe déjà.")
    try:
        email = check_email(email)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    password = temporary_password()
    user = User(
        login=login,
        role="admin" if is_admin else "staff",
        email=email,
        full_name=name,
        password_hash=hash_password(password, _hash_params()),
        must_change_password=True,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(db.session, "staff.created", actor_login="cli", entity="user", entity_id=user.id)
    db.session.commit()
    click.echo(f"Compte {login} créé. Mot de passe provisoire (à changer à la première connexion) : {password}")


@click.group("mail", cls=AppGroup)
def mail_group() -> None:
    """Mail outbox."""


def transport_from_config(config):
    from app.mail import FileTransport, SMTPTransport

    if config.get("MAIL_SERVER"):
        return SMTPTransport(
            host=config["MAIL_SERVER"],
            port=config["MAIL_PORT"],
            use_tls=config["MAIL_USE_TLS"],
            use_ssl=config["MAIL_USE_SSL"],
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
        )
    return FileTransport(Path(config["MAIL_FILE_DIR"]))


@mail_group.command("send")
def send_command() -> None:
    """Deliver pending mail (schedule every minute or so); failures are retried with backoff."""
    from app.mail import deliver_pending
    from app.models import utcnow

    config = current_app.config
    report = deliver_pending(
        db.session,
        transport_from_config(config),
        sender=config["MAIL_DEFAULT_SENDER"],
        now=utcnow,
        max_attempts=config["MAIL_MAX_ATTEMPTS"],
        commit=db.session.commit,
    )
    db.session.commit()
    click.echo(f"{report.sent} envoyé(s), {report.retried} à réessayer, {report.failed} en échec définitif.")


@click.group("ledger", cls=AppGroup)
def ledger_group() -> None:
    """Cash-books."""


def parse_year(text: str) -> int:
    """'2024-2025' or '2024' -> 2024 (the calendar year of the rentrée)."""
    import re

    match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", text.strip())
    if not match or (match.group(2) and int(match.group(2)) != int(match.group(1)) + 1):
        raise click.BadParameter("année attendue sous la forme 2024-2025 ou 2024")
    return int(match.group(1))


@ledger_group.command("import")
@click.argument("login")
@click.argument("year")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ledger_import_command(login: str, year: str, file: Path) -> None:
    """Import FILE (cahier CSV) into the ledger of coop LOGIN for YEAR (2024-2025 or 2024), all or nothing.

    A past school year missing from the database is created (with the latest known rates).
    """
    import sqlalchemy as sa

    from app import cahier, ledger
    from app.errors import ValidationErrors
    from app.models import User

    start = parse_year(year)
    user = db.session.scalar(sa.select(User).where(User.login == login.strip().lower(), User.role == "coop"))
    if user is None:
        raise click.ClickException(f"Aucune coopérative n'a l'identifiant {login}.")
    book = ledger.open_ledger(db.session, user.coop, start)
    try:
        count = cahier.import_cahier(db.session, book, file.read_bytes(), by=None)
    except ValidationErrors as exc:
        db.session.rollback()
        click.echo("Import refusé, rien n'a été enregistré :", err=True)
        for where, messages in exc.errors.items():
            for message in messages:
                click.echo(f"  {where} : {message}", err=True)
        sys.exit(1)
    db.session.commit()
    balances = ledger.balances(db.session, book)
    from app.money import format_amount

    click.echo(
        f"{count} opération(s) importée(s) dans le cahier {start}-{start + 1} de {user.login}. "
        f"Banque : {format_amount(balances.bank)} € ; caisse : {format_amount(balances.cash)} €."
    )


@click.group("statements", cls=AppGroup)
def statements_group() -> None:
    """Bank statements (pointage)."""


@statements_group.command("import")
@click.argument("login")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def statements_import_command(login: str, file: Path) -> None:
    """Import a bank statement FILE (OFX, CAMT.053, bank CSV or QIF) for coop LOGIN; known lines are skipped."""
    import sqlalchemy as sa

    from app.models import User
    from app.reconciliation import import_statement
    from app.statements import NeedsMapping, StatementError, parse_statement

    user = db.session.scalar(sa.select(User).where(User.login == login.strip().lower(), User.role == "coop"))
    if user is None:
        raise click.ClickException(f"Aucune coopérative n'a l'identifiant {login}.")
    content = file.read_bytes()
    try:
        parsed = parse_statement(content)
    except NeedsMapping:
        click.echo(
            "Mise en page CSV inconnue : importez ce relevé depuis le portail, qui permet d'indiquer les colonnes.",
            err=True,
        )
        sys.exit(1)
    except StatementError as exc:
        click.echo(f"Ce fichier n'est pas un relevé lisible : {exc}", err=True)
        sys.exit(1)
    result = import_statement(db.session, user.coop_id, parsed, filename=file.name, content=content, by=None)
    db.session.commit()
    click.echo(
        f"Relevé {parsed.source_format} importé pour {user.login} : {result.added} ligne(s) ajoutée(s), "
        f"{result.skipped} déjà connue(s)."
    )


def _coop_user(login: str):
    import sqlalchemy as sa

    from app.models import User

    user = db.session.scalar(sa.select(User).where(User.login == login.strip().lower(), User.role == "coop"))
    if user is None:
        raise click.ClickException(f"Aucune coopérative n'a l'identifiant {login}.")
    return user


def _amount(text: str) -> int:
    from app.money import parse_amount

    try:
        return parse_amount(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@ledger_group.command("close")
@click.argument("login")
@click.argument("year")
@click.option("--statement-balance", required=True, help="Solde du relevé bancaire au 31 août (ex. 3092,40).")
@click.option("--cash-count", required=True, help="Arrêté de caisse au 31 août, en un total (ex. 50,00).")
def ledger_close_command(login: str, year: str, statement_balance: str, cash_count: str) -> None:
    """Close the ledger of coop LOGIN for YEAR with the checks of the closing wizard (past years).

    Carries the closing bank and cash balances into the next year's opening entry.
    """
    from app import closing, ledger
    from app.errors import DomainError
    from app.models import utcnow
    from app.money import format_amount

    start = parse_year(year)
    user = _coop_user(login)
    book = ledger.find_ledger(db.session, user.coop_id, start)
    if book is None:
        raise click.ClickException(f"{user.login} n'a pas de cahier {start}-{start + 1}.")
    balance, count = _amount(statement_balance), _amount(cash_count)
    try:
        done = closing.close_ledger(
            db.session, book, statement_balance=balance, cash_count=count, by=None, now=utcnow()
        )
    except closing.ClosingRefused as exc:
        db.session.rollback()
        click.echo(f"Clôture refusée, rien n'a été enregistré ({user.login}, {start}-{start + 1}) :", err=True)
        for check in exc.failed:
            click.echo(f"  {check.label} : {check.message}", err=True)
        sys.exit(1)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(
        f"Cahier {start}-{start + 1} de {user.login} clôturé. Report à nouveau "
        f"{done.next_ledger.school_year.label} : banque {format_amount(done.bank)} €, "
        f"caisse {format_amount(done.cash)} €."
    )


@click.group("reports", cls=AppGroup)
def reports_group() -> None:
    """Yearly reports (CRA / CRF)."""


@reports_group.command("crf")
@click.argument("login")
@click.argument("year")
@click.option("--json", "as_json", is_flag=True, help="Les chiffres en JSON (montants en centimes).")
def reports_crf_command(login: str, year: str, as_json: bool) -> None:
    """Print the CRF (compte rendu financier) of coop LOGIN for YEAR, computed from its closed ledger."""
    import json

    from app import ledger
    from app.crf import build_crf
    from app.money import format_amount

    start = parse_year(year)
    user = _coop_user(login)
    book = ledger.find_ledger(db.session, user.coop_id, start)
    if book is None:
        raise click.ClickException(f"{user.login} n'a pas de cahier {start}-{start + 1}.")
    if book.is_open:
        raise click.ClickException(
            f"Le cahier {start}-{start + 1} de {user.login} n'est pas clôturé : le compte "
            "rendu financier s'établit après la clôture."
        )
    crf = build_crf(db.session, book)
    if as_json:
        click.echo(json.dumps(crf.to_json(), ensure_ascii=False, indent=2))
        return

    def euros(cents: int | None) -> str:
        return "—" if cents is None else f"{format_amount(cents)} €".replace("\u202f", " ")

    click.echo(f"Compte rendu financier {crf.year_label} — {crf.coop.login} {crf.coop.name}")
    click.echo("Charges :")
    for line in crf.charges:
        click.echo(f"  {line.display_code} {line.label:<60} {euros(line.amount):>14}")
    click.echo(f"  Total des charges {euros(crf.total_charges):>73}")
    click.echo("Produits :")
    for line in crf.produits:
        click.echo(f"  {line.display_code} {line.label:<60} {euros(line.amount):>14}")
    click.echo(f"  Total des produits {euros(crf.total_produits):>72}")
    click.echo(f"Résultat : {euros(crf.result)}")
    click.echo(
        f"Report à nouveau : banque {euros(crf.opening_bank)}, caisse {euros(crf.opening_cash)} ; "
        f"au 31 août : banque {euros(crf.closing_bank)}, caisse {euros(crf.closing_cash)} "
        f"({'bilan équilibré' if crf.is_balanced else 'BILAN DÉSÉQUILIBRÉ'})."
    )
    reconciliation = crf.reconciliation
    click.echo(
        f"Relevé au 31 août : {euros(reconciliation.statement_balance)} ; "
        f"{len(reconciliation.uncleared)} opération(s) non pointée(s) "
        f"({euros(reconciliation.uncleared_total)})."
    )


@click.group("debits", cls=AppGroup)
def debits_group() -> None:
    """Direct debits of membership fees."""


@debits_group.command("export")
@click.argument("batch_id", type=int)
@click.option("--format", "kind", type=click.Choice(["sepa", "csv"]), default="sepa", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def debits_export_command(batch_id: int, kind: str, out: Path) -> None:
    """Write the SEPA XML (pain.008) or the CSV of run BATCH_ID to OUT (exporting it first if still a draft)."""
    from app.debits import export_batch
    from app.errors import DomainError
    from app.models import DebitBatch, utcnow

    batch = db.session.get(DebitBatch, batch_id)
    if batch is None:
        raise click.ClickException(f"Aucun prélèvement n° {batch_id}.")
    try:
        export_batch(db.session, batch, by=None, now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    out.write_bytes(batch.xml_content if kind == "sepa" else batch.csv_content)
    click.echo(
        f"{out} : {batch.count} prélèvement(s), total {batch.control_sum_cents // 100},"
        f"{batch.control_sum_cents % 100:02d} €, échéance {batch.collection_date:%d/%m/%Y}."
    )
