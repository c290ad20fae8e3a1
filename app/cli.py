"""Flask commands: demo data, coop import, staff accounts, mail delivery, ledgers, reports, debits.

Each command is one unit of work (`_one_unit`): its change is committed once at the end, or rolled
back as a whole on any error. The one exception is mail delivery, which commits per mail (see
`send_command`). The time is read from `app.clock`, once per command, and passed to the domain.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app import clock
from app.errors import DomainError, ValidationErrors
from app.extensions import db
from app.formats import euros
from app.money import parse_amount

T = TypeVar("T")


def _hash_params():
    return current_app.config["ARGON2_PARAMS"] or None


def _one_unit(action: Callable[[], T]) -> T:
    """Run a command's change and commit it once; on any error roll everything back and re-raise."""
    try:
        value = action()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return value


def _refused(exc: ValidationErrors) -> None:
    """Print every message of a refused import (nothing was recorded) and exit with status 1."""
    click.echo("Import refusé, rien n'a été enregistré :", err=True)
    for where, messages in exc.errors.items():
        for message in messages:
            click.echo(f"  {where} : {message}", err=True)
    sys.exit(1)


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo_command)
    app.cli.add_command(coops_group)
    app.cli.add_command(users_group)
    app.cli.add_command(mail_group)
    app.cli.add_command(ledger_group)
    app.cli.add_command(reports_group)
    app.cli.add_command(statements_group)
    app.cli.add_command(debits_group)
    from app.cli_ops import backup_command, files_group

    app.cli.add_command(backup_command)
    app.cli.add_command(files_group)


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
    logins = _one_unit(lambda: load_demo(db.session, today=clock.today(), hash_params=_hash_params()))
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

    out = out or Path(f"identifiants-coops-{clock.now():%Y%m%d-%H%M%S}.csv")

    def run_import():
        result = import_coops(db.session, file.read_bytes(), by=None, hash_params=_hash_params())
        if result.created:
            # Created 0600 from the start (no window where another local user could read the passwords);
            # written before the commit, so accounts never exist without their password on file.
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # an existing file keeps its mode with O_CREAT
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(credentials_csv(result.created))
        return result

    try:
        result = _one_unit(run_import)
    except ValidationErrors as exc:
        _refused(exc)
    except OSError as exc:
        raise click.ClickException(
            f"Impossible d'écrire le fichier des identifiants {out} ({exc.strerror}) : rien n'a été enregistré."
        ) from None
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
    from app.auth import create_staff

    try:
        user, password = _one_unit(
            lambda: create_staff(
                db.session,
                login,
                email=email,
                full_name=name,
                role="admin" if is_admin else "staff",
                by=None,
                hash_params=_hash_params(),
            )
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    login = user.login
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
            timeout=float(config.get("MAIL_TIMEOUT") or 10),
        )
    return FileTransport(Path(config["MAIL_FILE_DIR"]))


@mail_group.command("send")
def send_command() -> None:
    """Deliver pending mail (schedule every minute or so); failures are retried with backoff.

    The sender is the federation's e-mail from its settings (MAIL_DEFAULT_SENDER when it has none).
    Exits with status 1 when a mail could not be sent (kept for a later try, or failed for good), so
    that the scheduler reports it.
    """
    from app.mail import deliver_pending, sender_address

    config = current_app.config
    sender = sender_address(db.session, config["MAIL_DEFAULT_SENDER"])
    # Not one unit: each mail is claimed, then marked, in a commit of its own, so that no transaction
    # stays open during an SMTP conversation and a crash re-sends one mail at most (app.mail).
    report = _one_unit(
        lambda: deliver_pending(
            db.session,
            transport_from_config(config),
            sender=sender,
            now=clock.now,
            max_attempts=config["MAIL_MAX_ATTEMPTS"],
            commit=db.session.commit,
        )
    )
    click.echo(f"{report.sent} envoyé(s), {report.retried} à réessayer, {report.failed} en échec définitif.")
    if report.retried or report.failed:
        sys.exit(1)


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
    from app.models import User

    start = parse_year(year)
    user = db.session.scalar(sa.select(User).where(User.login == login.strip().lower(), User.role == "coop"))
    if user is None:
        raise click.ClickException(f"Aucune coopérative n'a l'identifiant {login}.")
    content = file.read_bytes()

    def run_import():
        book = ledger.open_ledger(db.session, user.coop, start)
        count = cahier.import_cahier(db.session, book, content, by=None, now=clock.now())
        return count, ledger.balances(db.session, book)

    try:
        count, balances = _one_unit(run_import)
    except ValidationErrors as exc:
        _refused(exc)
    click.echo(
        f"{count} opération(s) importée(s) dans le cahier {start}-{start + 1} de {user.login}. "
        f"Banque : {euros(balances.bank)} ; caisse : {euros(balances.cash)}."
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
    try:
        result = _one_unit(
            lambda: import_statement(db.session, user.coop_id, parsed, filename=file.name, content=content, by=None)
        )
    except DomainError as exc:  # a statement of another account
        click.echo(exc.message, err=True)
        sys.exit(1)
    click.echo(
        f"Relevé {parsed.source_format} importé pour {user.login} : {result.added} ligne(s) ajoutée(s), "
        f"{result.skipped} déjà connue(s)."
    )
    for notice in result.notices:
        click.echo(notice)


def _coop_user(login: str):
    import sqlalchemy as sa

    from app.models import User

    user = db.session.scalar(sa.select(User).where(User.login == login.strip().lower(), User.role == "coop"))
    if user is None:
        raise click.ClickException(f"Aucune coopérative n'a l'identifiant {login}.")
    return user


def _amount(text: str) -> int:
    """An amount option ('3092,40') in cents, through the one parser; a usage error otherwise."""
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@ledger_group.command("close")
@click.argument("login")
@click.argument("year")
@click.option("--statement-balance", required=True, help="Solde du relevé bancaire au 31 août (ex. 3092,40).")
@click.option(
    "--cash-count",
    required=True,
    help="Arrêté de caisse au 31 août : un total (ex. 50,00) ou le détail coupure x nombre (ex. 20x2,10x1,0.5x4).",
)
@click.option(
    "--replace-opening",
    is_flag=True,
    help="Remplacer le report à nouveau déjà saisi dans l'année suivante quand il diffère des soldes de clôture.",
)
def ledger_close_command(login: str, year: str, statement_balance: str, cash_count: str, replace_opening: bool) -> None:
    """Close the ledger of coop LOGIN for YEAR with the checks of the closing wizard (past years).

    Stores the year's CRF figures and carries the closing bank and cash balances into the next
    year's opening entry (a typed opening that differs is replaced only with --replace-opening).
    """
    from app import closing, ledger

    start = parse_year(year)
    user = _coop_user(login)
    book = ledger.find_ledger(db.session, user.coop_id, start)
    if book is None:
        raise click.ClickException(f"{user.login} n'a pas de cahier {start}-{start + 1}.")
    balance = _amount(statement_balance)
    try:
        count = closing.CashCount.parse(cash_count, _amount)
    except DomainError as exc:
        raise click.BadParameter(exc.message, param_hint="'--cash-count'") from None
    try:
        done = _one_unit(
            lambda: closing.close_ledger(
                db.session,
                book,
                statement_balance=balance,
                cash_count=count,
                by=None,
                now=clock.now(),
                replace_opening=replace_opening,
            )
        )
    except closing.ClosingRefused as exc:
        click.echo(f"Clôture refusée, rien n'a été enregistré ({user.login}, {start}-{start + 1}) :", err=True)
        for check in exc.failed:
            click.echo(f"  {check.label} : {check.message}", err=True)
        sys.exit(1)
    except DomainError as exc:
        hint = " En ligne de commande : ajoutez --replace-opening." if exc.field == "replace_opening" else ""
        raise click.ClickException(exc.message + hint) from None
    click.echo(
        f"Cahier {start}-{start + 1} de {user.login} clôturé. Report à nouveau "
        f"{done.next_ledger.school_year.label} : banque {euros(done.bank)}, "
        f"caisse {euros(done.cash)}."
    )


@click.group("reports", cls=AppGroup)
def reports_group() -> None:
    """Yearly reports (CRA / CRF)."""


@reports_group.command("crf")
@click.argument("login")
@click.argument("year")
@click.option("--json", "as_json", is_flag=True, help="Les chiffres en JSON (montants en centimes).")
def reports_crf_command(login: str, year: str, as_json: bool) -> None:
    """Print the CRF (compte rendu financier) of coop LOGIN for YEAR, as stored when its ledger was closed."""
    import json

    from app import ledger
    from app.crf import build_crf

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

    def amount(cents: int | None) -> str:
        return "—" if cents is None else euros(cents)

    click.echo(f"Compte rendu financier {crf.year_label} — {crf.coop.login} {crf.coop.name}")
    click.echo("Charges :")
    for line in crf.charges:
        click.echo(f"  {line.display_code} {line.label:<60} {amount(line.amount):>14}")
    click.echo(f"  Total des charges {amount(crf.total_charges):>73}")
    click.echo("Produits :")
    for line in crf.produits:
        click.echo(f"  {line.display_code} {line.label:<60} {amount(line.amount):>14}")
    click.echo(f"  Total des produits {amount(crf.total_produits):>72}")
    click.echo(f"Résultat : {amount(crf.result)}")
    click.echo(
        f"Report à nouveau : banque {amount(crf.opening_bank)}, caisse {amount(crf.opening_cash)} ; "
        f"au 31 août : banque {amount(crf.closing_bank)}, caisse {amount(crf.closing_cash)} "
        f"({'bilan équilibré' if crf.is_balanced else 'BILAN DÉSÉQUILIBRÉ'})."
    )
    reconciliation = crf.reconciliation
    click.echo(
        f"Relevé au 31 août : {amount(reconciliation.statement_balance)} ; "
        f"{len(reconciliation.uncleared)} opération(s) non pointée(s) "
        f"({amount(reconciliation.uncleared_total)}) : chèques et paiements non débités "
        f"{amount(crf.outstanding_cheques_total)}, remises non créditées {amount(crf.deposits_in_transit_total)}."
    )
    if crf.cash_count is not None:
        detail = ", ".join(f"{n} x {euros(value)}" for value, n, _ in crf.cash_count.lines)
        click.echo(f"Arrêté de caisse : {amount(crf.cash_count.total)}" + (f" ({detail})" if detail else "") + ".")
    click.echo(f"Régies d'avance non restituées : {amount(crf.closing_advance)}.")
    if crf.inventory:
        click.echo(f"Registre d'inventaire (biens durables, compte 68) : {amount(crf.inventory_total)}")
        for line in crf.inventory:
            click.echo(f"  {line.date:%d/%m/%Y} {line.piece:<8} {line.label:<50} {amount(line.amount):>14}")
    if crf.verification is not None:
        click.echo(f"Chiffres enregistrés à la clôture ; code de vérification {crf.verification.code}.")


@click.group("debits", cls=AppGroup)
def debits_group() -> None:
    """Direct debits of membership fees."""


def _parse_fr_date(text: str):
    from datetime import datetime

    try:
        return datetime.strptime(text.strip(), "%d/%m/%Y").date()
    except ValueError:
        raise click.BadParameter(f"« {text} » n'est pas une date JJ/MM/AAAA.") from None


@debits_group.command("create")
@click.option("--date", "collection", required=True, help="Date d'échéance JJ/MM/AAAA (jour ouvré TARGET).")
@click.option("--coops", default="", help="Identifiants séparés par des virgules (085-001,085-1234) ; toutes sinon.")
@click.option("--shorter-notice", is_flag=True, help="Les coopératives ont accepté un délai de prévenance plus court.")
def debits_create_command(collection: str, coops: str, shorter_notice: bool) -> None:
    """Create a run of the memberships waiting for a debit, with the back office's checks; pre-notify the coops."""
    import sqlalchemy as sa

    from app.debits import create_batch, eligible_memberships, federation_settings
    from app.models import DEPARTMENT_CODE, Coop
    from app.web import notifications

    collection_date = _parse_fr_date(collection)
    eligible = eligible_memberships(db.session)
    if coops.strip():
        numbers = set()
        for login in (part.strip() for part in coops.split(",") if part.strip()):
            digits = login.removeprefix(f"{DEPARTMENT_CODE}-")
            if not digits.isdigit():
                raise click.BadParameter(f"« {login} » n'est pas un identifiant de coopérative (085-001).")
            numbers.add(int(digits))
        known = set(db.session.scalars(sa.select(Coop.number).where(Coop.number.in_(numbers))))
        for number in sorted(numbers - known):
            click.echo(f"{DEPARTMENT_CODE}-{number:03d} : coopérative inconnue.", err=True)
        waiting = {m.coop.number for m in eligible}
        for number in sorted((numbers & known) - waiting):
            click.echo(f"{DEPARTMENT_CODE}-{number:03d} : aucune adhésion n'attend de prélèvement.", err=True)
        eligible = [m for m in eligible if m.coop.number in numbers]
    if not eligible:
        raise click.ClickException("Aucune adhésion à prélever.")

    def create():
        batch, excluded = create_batch(
            db.session,
            [m.id for m in eligible],
            collection_date,
            today=clock.today(),
            by=None,
            shorter_notice_agreed=shorter_notice,
        )
        mailed = 0
        if batch is not None:
            mailed = notifications.debit_prenotifications(db.session, batch, federation_settings(db.session))
        return batch, excluded, mailed

    try:
        batch, excluded, mailed = _one_unit(create)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    for exclusion in excluded:
        click.echo(f"{exclusion.coop.login} {exclusion.coop.name} laissée de côté : {', '.join(exclusion.reasons)}.")
    if batch is None:
        raise click.ClickException("Aucune adhésion ne peut être prélevée : corrigez les fiches ci-dessus.")
    click.echo(
        f"Prélèvement n° {batch.id} préparé : {batch.count} adhésion(s), total {euros(batch.control_sum_cents)}, "
        f"échéance {collection_date:%d/%m/%Y} ; {mailed} coopérative(s) prévenue(s) par courriel."
    )


@debits_group.command("export")
@click.argument("batch_id", type=int)
@click.option("--format", "kind", type=click.Choice(["sepa", "csv"]), default="sepa", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--file", "sequence", type=click.IntRange(1, 9999), default=1, show_default=True, help="N° du fichier.")
def debits_export_command(batch_id: int, kind: str, out: Path, sequence: int) -> None:
    """Write the SEPA XML (pain.008) or the CSV of run BATCH_ID to OUT (exporting it first if still a draft);
    a run split in several files is written one file at a time (--file)."""
    from app.debits import export_batch
    from app.formats import fr_date
    from app.models import DebitBatch

    batch = db.session.get(DebitBatch, batch_id)
    if batch is None:
        raise click.ClickException(f"Aucun prélèvement n° {batch_id}.")
    try:
        _one_unit(lambda: export_batch(db.session, batch, by=None, now=clock.now()))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    file = next((f for f in batch.files if f.sequence == sequence), None)
    if file is None:
        raise click.ClickException(f"Le prélèvement n° {batch_id} a {len(batch.files)} fichier(s).")
    out.write_bytes(file.xml_content if kind == "sepa" else file.csv_content)
    click.echo(
        f"{out} : fichier {sequence}/{len(batch.files)}, {file.count} prélèvement(s), "
        f"total {euros(file.control_sum_cents)}, échéance {fr_date(batch.collection_date)}."
    )
