"""Pointage (bank reconciliation) on the coop face: statements, matches, one-click clearing, summary box.

Every change goes through the unit of work (`uow.run`): the domain call in `app.reconciliation`
flushes, `run` commits once or rolls back. A refused access to another coop's lines is audited as
`owned_or_404` does it: aside on a GET, in a unit of work of its own on a POST.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from datetime import date
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy.orm import contains_eager

from app import audit, clock
from app import ledger as books
from app import reconciliation as rec
from app.extensions import db
from app.formats import euros
from app.models import Ledger, SchoolYear, StatementLine
from app.statements import (
    MAX_BYTES,
    TOO_BIG,
    CsvMapping,
    NeedsMapping,
    StatementError,
    looks_like_a_statement,
    mapping_header_row,
    parse_statement,
)
from app.views.pointage_table import LINES_MARKER, MISSING_MARKER, PROPOSALS_MARKER, page_body, page_with_parts
from app.web import uow
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import current_coop_id, owned
from forms.pointage import (
    ConfirmMatchesForm,
    ConfirmOutsideYearForm,
    LineActionForm,
    MappingForm,
    StatementBalanceForm,
    StatementImportForm,
)

bp = Blueprint("pointage", __name__)


PENDING_MAX_AGE = 3600  # seconds an unknown CSV waits for its column mapping
_PENDING_KEY = re.compile(r"[0-9a-f]{32}")
NOT_A_STATEMENT = "Ce fichier n'est pas un relevé bancaire reconnu (OFX, CAMT.053, CSV ou QIF)."
_READ_ONLY = ("GET", "HEAD", "OPTIONS")


def _current_year() -> int:
    return books.current_start_year(clock.today())


def _check_year(year: int) -> None:
    """A year the portal can show: from 2000 to the current school year (any other: 404)."""
    if not 2000 <= year <= _current_year():
        abort(404)


def _ledger(year: int) -> Ledger | None:
    _check_year(year)
    return db.session.scalar(
        owned(Ledger)
        .join(Ledger.school_year)
        .where(SchoolYear.start_year == year)
        .options(contains_eager(Ledger.school_year))  # its label and dates, without a statement of their own
    )


def _record_denied(foreign: list[tuple[str, int]]) -> None:
    """Add the audit events of an attempt on another coop's lines to the current transaction."""
    for entity, ident in foreign:
        audit.record(db.session, "access.denied", actor=current_user, entity=entity, entity_id=ident, ip=client_ip())


def _audit_foreign(statement_line_ids: list[int], entry_line_ids: list[int]) -> None:
    """Audit an attempt on another coop's statement or cash-book lines (as `owned_or_404` does):
    aside on a GET, which never commits; in a unit of work of its own on a POST, whose refused
    change was already rolled back."""
    foreign = rec.foreign_lines(db.session, current_coop_id(), statement_line_ids, entry_line_ids)
    if not foreign:
        return
    if request.method not in _READ_ONLY:
        uow.run(lambda: _record_denied(foreign))
        return
    who = {"actor_id": current_user.id, "actor_login": current_user.login, "coop_id": current_user.coop_id}
    for entity, ident in foreign:
        uow.record_aside("access.denied", entity=entity, entity_id=ident, ip=client_ip(), **who)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _summary_json(summary: rec.Reconciliation) -> dict:
    return {
        "on": f"{summary.on:%d/%m/%Y}",
        "book_balance": euros(summary.book_balance),
        "uncleared_total": euros(summary.uncleared_total),
        "uncleared_count": summary.uncleared_count,
        "expected_statement": euros(summary.expected_statement),
        "difference": None if summary.difference is None else euros(summary.difference),
        "reconciled": summary.is_reconciled,
    }


@bp.route("/coop/pointage")
@access("coop")
def pointage_current():
    return redirect(url_for("pointage.screen", year=_current_year()))


@bp.route("/coop/pointage/<int:year>")
@access("coop")
def screen(year: int):
    _check_year(year)
    # The ledger and the year's state in one statement. The long parts (lines, proposals, statement
    # lines missing from the book) as kept for that state: a repeated view reads nothing more; after
    # a change only what changed is read, matched and rendered again.
    ledger, state = rec.year_state(db.session, current_coop_id(), year)
    if ledger is None:
        return _render_screen(year, None)
    body = page_body(db.session, ledger, state, year)
    summary = body.summary(db.session, ledger, clock.today())
    html = _render_screen(year, ledger, summary, body, current_year=_current_year())
    return page_with_parts(html, body)


def _render_screen(year: int, ledger: Ledger | None, summary: rec.Reconciliation | None = None, body=None, **context):
    balance_form = StatementBalanceForm()
    if summary is not None:
        balance_form.on.data = summary.on
        balance_form.balance.data = ledger.reconciliation_balance_cents
    if ledger is not None and ledger.is_open:
        context.update(confirm_form=ConfirmMatchesForm(), line_form=LineActionForm())
    return render_template(
        "pointage/screen.html",
        year=year,
        ledger=ledger,
        year_label=ledger.school_year.label if ledger else f"{year}-{year + 1}",
        summary=summary,
        body=body,
        lines_html=LINES_MARKER,
        proposals_html=PROPOSALS_MARKER,
        missing_html=MISSING_MARKER,
        import_form=StatementImportForm(),
        balance_form=balance_form,
        **context,
    )


@bp.route("/coop/pointage/<int:year>/solde", methods=["POST"])
@access("coop")
def statement_balance(year: int):
    ledger = _ledger(year)
    form = StatementBalanceForm()
    if ledger is None:
        flash("Ce cahier est vide : saisissez d'abord des opérations.", "warning")
    elif not form.validate_on_submit():
        for errors in form.errors.values():
            flash(errors[0], "danger")
    else:
        outcome = uow.run(
            lambda: rec.save_statement_balance(db.session, ledger, form.on.data, form.balance.data, by=current_user)
        )
        if outcome.ok and outcome.value.is_reconciled:
            flash("Écart : 0,00 €. Le cahier est rapproché avec le relevé.", "success")
        elif outcome.ok:
            difference = euros(outcome.value.difference)
            flash(f"Écart de {difference} avec le relevé : pointez les lignes qui y figurent.", "warning")
    return redirect(url_for("pointage.screen", year=year, _anchor="resume"))


def _pending_path(key: str) -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "pending" / key


def _drop_pending() -> None:
    """Forget the session's file waiting for its column mapping, and remove it."""
    key = (session.pop("pending_statement", None) or {}).get("key", "")
    if _PENDING_KEY.fullmatch(key):
        _pending_path(key).unlink(missing_ok=True)


def _keep_pending(content: bytes, filename: str, mapping: CsvMapping | None = None) -> None:
    """Keep an unknown CSV server-side until the user maps its columns (one per session; files
    abandoned for more than an hour are removed here)."""
    _drop_pending()
    folder = _pending_path("x").parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    limit = time.time() - PENDING_MAX_AGE
    for old in folder.iterdir():
        try:
            if _PENDING_KEY.fullmatch(old.name) and old.stat().st_mtime < limit:
                old.unlink()
        except FileNotFoundError:  # removed meanwhile by another request
            continue
    key = secrets.token_hex(16)
    path = _pending_path(key)
    path.write_bytes(content)
    path.chmod(0o600)
    session["pending_statement"] = {
        "key": key,
        "name": filename[:200],
        "mapping": dataclasses.asdict(mapping) if mapping is not None else None,
    }


def _read_pending() -> tuple[bytes, str] | None:
    """The content and name of the session's file waiting for its column mapping, if still there."""
    pending = session.get("pending_statement") or {}
    key = pending.get("key", "")
    path = _pending_path(key) if _PENDING_KEY.fullmatch(key) else None
    if path is None or not path.is_file():
        return None
    return path.read_bytes(), pending.get("name", "releve.csv")


def _closed_message(ledger: Ledger) -> str:
    return (
        f"l'année {ledger.school_year.label} est clôturée. Importez ce relevé depuis le pointage de l'année "
        "en cours : les chèques non débités au 31 août s'y pointent."
    )


def _refuse_import(year: int, message: str):
    flash(f"Import impossible, rien n'a été enregistré : {message}", "danger")
    return redirect(url_for("pointage.screen", year=year))


@bp.route("/coop/pointage/<int:year>/releve", methods=["POST"])
@access("coop")
def import_statement(year: int):
    ledger = _ledger(year)
    form = StatementImportForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(errors[0], "danger")
        return redirect(url_for("pointage.screen", year=year))
    content = form.file.data.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        flash(TOO_BIG, "danger")
        return redirect(url_for("pointage.screen", year=year))
    if ledger is not None and not ledger.is_open:
        return _refuse_import(year, _closed_message(ledger))
    filename = form.file.data.filename or "releve"
    try:
        parsed = parse_statement(content)
    except NeedsMapping as exc:
        if not looks_like_a_statement(exc.columns, exc.sample):
            return _refuse_import(year, NOT_A_STATEMENT)
        _keep_pending(content, filename)
        return _render_mapping(MappingForm(), year, exc)
    except StatementError as exc:
        return _refuse_import(year, str(exc))
    return _store(year, ledger, parsed, filename, content)


def _store(year: int, ledger: Ledger | None, parsed, filename: str, content: bytes, mapping=None):
    """Import the parsed statement (the summary box takes its closing balance), then show the proposals.

    Lines dated outside the year are shown first, and imported only once the coop confirms (the file
    waits server-side, as for a column mapping)."""
    outside = rec.lines_outside_year(parsed, year)
    if outside:
        _keep_pending(content, filename, mapping)
        return render_template(
            "pointage/outside_year.html",
            year=year,
            label=f"{year}-{year + 1}",
            first=date(year, 9, 1),
            last=date(year + 1, 8, 31),
            outside=outside,
            total=len(parsed.lines),
        )
    return _import_parsed(year, ledger, parsed, filename, content)


def _import_parsed(year: int, ledger: Ledger | None, parsed, filename: str, content: bytes):
    outcome = uow.run(
        lambda: rec.import_statement(
            db.session,
            current_coop_id(),
            parsed,
            filename=filename,
            content=content,
            by=current_user,
            ip=client_ip(),
            ledger=ledger,
        )
    )
    if not outcome.ok:
        return redirect(url_for("pointage.screen", year=year))
    result = outcome.value
    if result.added:
        message = f"Relevé importé : {result.added} ligne(s) nouvelle(s)"
        if result.skipped:
            message += f", {result.skipped} déjà importée(s) (ignorées)"
        flash(message + ". Vérifiez les correspondances proposées puis confirmez-les.", "success")
    else:
        flash(
            f"Rien de nouveau : les {result.skipped} ligne(s) de ce relevé étaient déjà importées "
            "(même date, même montant), quel que soit le format du fichier.",
            "info",
        )
    for notice in result.notices:
        flash(notice, "warning")
    return redirect(url_for("pointage.screen", year=year, _anchor="correspondances"))


def _render_mapping(form: MappingForm, year: int, question: NeedsMapping):
    form.offer(question.columns)
    return render_template(
        "pointage/mapping.html",
        form=form,
        year=year,
        columns=question.columns,
        sample=question.sample,
        year_label=f"{year}-{year + 1}",
    )


def _ask_mapping_again(form: MappingForm, year: int, content: bytes, problem: str):
    """Say what is wrong with the columns chosen and ask again (the file stays pending)."""
    flash(problem, "danger")
    try:
        parse_statement(content)
    except NeedsMapping as question:
        return _render_mapping(form, year, question)
    except StatementError:
        pass
    return redirect(url_for("pointage.screen", year=year))


@bp.route("/coop/pointage/<int:year>/colonnes", methods=["POST"])
@access("coop")
def import_with_mapping(year: int):
    ledger = _ledger(year)
    pending = _read_pending()
    if pending is None:
        flash("Le fichier n'est plus disponible : importez-le à nouveau.", "warning")
        return redirect(url_for("pointage.screen", year=year))
    content, filename = pending
    if ledger is not None and not ledger.is_open:
        _drop_pending()
        return _refuse_import(year, _closed_message(ledger))
    form = MappingForm()
    if not form.validate():
        return _ask_mapping_again(form, year, content, (form.form_errors or ["Formulaire invalide."])[0])
    try:
        parsed = parse_statement(content, mapping=form.csv_mapping(), header_row=mapping_header_row(content))
    except StatementError as exc:
        return _ask_mapping_again(form, year, content, f"Ces colonnes ne donnent pas un relevé lisible : {exc}")
    _drop_pending()
    return _store(year, ledger, parsed, filename, content, form.csv_mapping())


@bp.route("/coop/pointage/<int:year>/hors-annee", methods=["POST"])
@access("coop")
def import_outside_year(year: int):
    """The coop saw the lines dated outside the year and imports the statement all the same."""
    ledger = _ledger(year)
    pending = _read_pending()
    if pending is None or not ConfirmOutsideYearForm().validate_on_submit():
        flash("Le fichier n'est plus disponible : importez-le à nouveau.", "warning")
        return redirect(url_for("pointage.screen", year=year))
    content, filename = pending
    stored = (session.get("pending_statement") or {}).get("mapping")
    _drop_pending()
    if ledger is not None and not ledger.is_open:
        return _refuse_import(year, _closed_message(ledger))
    try:
        if stored:
            mapping = CsvMapping(**{**stored, "label": tuple(stored["label"])})
            parsed = parse_statement(content, mapping=mapping, header_row=mapping_header_row(content))
        else:
            parsed = parse_statement(content)
    except StatementError as exc:
        return _refuse_import(year, str(exc))
    return _import_parsed(year, ledger, parsed, filename, content)


def _confirm_chosen(chosen: list[tuple[int, tuple[int, ...]]]) -> rec.Confirmation:
    """Confirm each match on its own; a refusal naming another coop's lines is audited."""
    confirmation = rec.confirm_matches(db.session, current_coop_id(), chosen, by=current_user, ip=client_ip())
    for bank_id, line_ids, _ in confirmation.refused:
        _record_denied(rec.foreign_lines(db.session, current_coop_id(), [bank_id], list(line_ids)))
    return confirmation


@bp.route("/coop/pointage/<int:year>/correspondances", methods=["POST"])
@access("coop")
def confirm(year: int):
    _ledger(year)
    form = ConfirmMatchesForm()
    if not form.validate_on_submit():
        abort(400)
    chosen = form.chosen()
    outcome = uow.run(lambda: _confirm_chosen(chosen)) if chosen else None
    if outcome is None:
        flash("Cochez au moins une correspondance à confirmer.", "info")
    elif outcome.ok:
        if outcome.value.done:
            flash(f"{outcome.value.done} correspondance(s) confirmée(s) : les lignes sont pointées.", "success")
        for _, _, message in outcome.value.refused[:3]:
            flash(message, "warning")
    return redirect(url_for("pointage.screen", year=year, _anchor="resume"))


def _changed_line(year: int, ledger: Ledger | None, line_id: int, change, form: LineActionForm, message: str):
    """Run `change` (-> the bank line) and answer the script (JSON) or the plain form (PRG).

    A line the coop cannot point (another coop's, the opening balance, none) answers 404; one
    changed or removed meanwhile says so, and so does a change refused in a closed year."""
    wants_json = _wants_json()

    def action():
        line = change()
        summary = rec.summary(db.session, ledger, clock.today()) if wants_json and ledger else None
        return line, summary

    outcome = uow.run(action, form=form)
    if outcome.conflict:
        if wants_json:  # the script then sends the plain form, which answers with the page
            return jsonify({"message": outcome.errors[0]}), 409
        flash(outcome.errors[0], "warning")
        return redirect(url_for("pointage.screen", year=year))
    if not outcome.ok and outcome.errors[:1] in ([rec.LINE_NOT_FOUND], [rec.OPENING_NOT_CLEARED]):
        return _line_not_found(line_id)
    if not outcome.ok:  # refused (a closed year): the script then sends the plain form, which says why
        if wants_json:
            return jsonify({"message": outcome.errors[0]}), 422
        flash(outcome.errors[0], "warning")
        return redirect(url_for("pointage.screen", year=year, _anchor=f"ligne-{line_id}"))
    line, summary = outcome.value
    if wants_json:
        cleared_on = line.cleared_on and f"{line.cleared_on:%d/%m/%Y}"
        summary_json = _summary_json(summary) if summary else None
        return jsonify({"line_id": line.id, "cleared_on": cleared_on, "message": message, "summary": summary_json})
    flash(message, "success")
    return redirect(url_for("pointage.screen", year=year, _anchor=f"ligne-{line.id}"))


def _line_not_found(line_id: int):
    _audit_foreign([], [line_id])
    abort(404)


@bp.route("/coop/pointage/<int:year>/ligne/<int:line_id>/pointer", methods=["POST"])
@access("coop")
def clear(year: int, line_id: int):
    ledger = _ledger(year)
    form = LineActionForm()
    if not form.validate_on_submit():
        abort(400)
    # The date of the summary box: a line pointed there counts at once in its figures (today would be
    # after the end of a past year, so the line would still count as uncleared there).
    on = form.statement_date() or (rec.summary_date(ledger, clock.today()) if ledger else clock.today())
    return _changed_line(
        year,
        ledger,
        line_id,
        lambda: rec.clear_line(db.session, current_coop_id(), line_id, on, by=current_user, ip=client_ip()),
        form,
        f"Ligne pointée au {on:%d/%m/%Y}.",
    )


@bp.route("/coop/pointage/<int:year>/ligne/<int:line_id>/depointer", methods=["POST"])
@access("coop")
def unclear(year: int, line_id: int):
    ledger = _ledger(year)
    form = LineActionForm()
    if not form.validate_on_submit():
        abort(400)
    lines = rec.pointage_lines(db.session, ledger, line_id=line_id) if ledger else []
    if not lines:
        return _line_not_found(line_id)
    frozen_in = lines[0].cleared_on and rec.closed_year_of(db.session, current_coop_id(), lines[0].cleared_on)
    if frozen_in:
        message = f"Cette ligne est pointée dans l'année {frozen_in}, qui est clôturée : son pointage ne change plus."
        flash(message, "warning")
        return redirect(url_for("pointage.screen", year=year, _anchor=f"ligne-{line_id}"))
    if not form.is_confirmed:
        return render_template(
            "pointage/confirm_unclear.html", line=lines[0], year=year, form=form, modes=books.MODE_LABELS
        )
    return _changed_line(
        year,
        ledger,
        line_id,
        lambda: rec.unclear_line(db.session, current_coop_id(), line_id, by=current_user, ip=client_ip()),
        form,
        "Pointage annulé.",
    )


def statement_line_for_entry(statement_line_id: int | None) -> StatementLine | None:
    """A statement line of the logged-in coop, for prefilling « Créer l'opération »; another coop's
    is audited and answers None. Kept for app/views/ledger.py until it calls
    `reconciliation.statement_line_of_coop` itself."""
    if not statement_line_id:
        return None
    item = rec.statement_line_of_coop(db.session, current_coop_id(), statement_line_id)
    if item is None:
        _audit_foreign([statement_line_id], [])
    return item
