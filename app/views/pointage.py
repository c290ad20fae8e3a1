"""Pointage (bank reconciliation) on the coop face: statements, matches, one-click clearing, summary box."""

from __future__ import annotations

import re
import secrets
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user

from app import audit
from app import ledger as books
from app import reconciliation as rec
from app.clock import now
from app.errors import DomainError
from app.extensions import db
from app.models import Entry, EntryLine, Ledger, SchoolYear, StatementLine
from app.statements import CsvMapping, NeedsMapping, StatementError, _csv_rows, decode, parse_day, parse_statement
from app.web.filters import money
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import current_coop_id, owned
from forms.pointage import ConfirmMatchesForm, LineActionForm, MappingForm, StatementBalanceForm, StatementImportForm

bp = Blueprint("pointage", __name__)


@bp.app_template_global()
def pointage_rows(*args, **kwargs):
    from app.views.cahier_table import pointage_rows as render

    return render(*args, **kwargs)


STATEMENT_MAX_BYTES = 5 * 1024 * 1024
PENDING_MAX_AGE = 3600  # seconds an unknown CSV waits for its column mapping
_PENDING_KEY = re.compile(r"[0-9a-f]{32}")
NOT_A_STATEMENT = "Ce fichier n'est pas un relevé bancaire reconnu (OFX, CAMT.053, CSV ou QIF)."


def _current_year() -> int:
    return books.current_start_year(now().date())


def _ledger(year: int) -> Ledger | None:
    if not 2000 <= year <= _current_year():
        abort(404)
    return db.session.scalar(owned(Ledger).join(Ledger.school_year).where(SchoolYear.start_year == year))


def _audit_foreign(statement_line_ids: list[int], entry_line_ids: list[int]) -> None:
    """Audit an attempt on another coop's statement or cash-book lines (as `owned_or_404` does)."""
    coop_id = current_coop_id()
    foreign = [
        ("statement_line", ident)
        for ident in db.session.scalars(
            sa.select(StatementLine.id).where(
                StatementLine.id.in_(statement_line_ids), StatementLine.coop_id != coop_id
            )
        )
    ]
    foreign += [
        ("entry_line", ident)
        for ident in db.session.scalars(
            sa.select(EntryLine.id)
            .join(Entry, Entry.id == EntryLine.entry_id)
            .where(EntryLine.id.in_(entry_line_ids), Entry.coop_id != coop_id)
        )
    ]
    for entity, ident in foreign:
        audit.record(db.session, "access.denied", actor=current_user, entity=entity, entity_id=ident, ip=client_ip())
    if foreign:
        db.session.commit()


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _summary_date(ledger: Ledger) -> date:
    """The statement date typed in the summary box, else today (the year's last day for a past year)."""
    return ledger.reconciliation_date or min(now().date(), ledger.school_year.ends_on)


def _summary(ledger: Ledger) -> rec.Reconciliation:
    return rec.reconcile(
        db.session,
        ledger,
        _summary_date(ledger),
        ledger.reconciliation_balance_cents if ledger.reconciliation_date else None,
    )


def _summary_json(ledger: Ledger) -> dict:
    summary = _summary(ledger)
    return {
        "on": f"{summary.on:%d/%m/%Y}",
        "book_balance": money(summary.book_balance),
        "uncleared_total": money(summary.uncleared_total),
        "uncleared_count": summary.uncleared_count,
        "expected_statement": money(summary.expected_statement),
        "difference": None if summary.difference is None else money(summary.difference),
        "reconciled": summary.is_reconciled,
    }


@bp.route("/coop/pointage")
@access("coop")
def pointage_current():
    return redirect(url_for("pointage.screen", year=_current_year()))


@bp.route("/coop/pointage/<int:year>")
@access("coop")
def screen(year: int):
    ledger = _ledger(year)
    balance_form = StatementBalanceForm()
    if ledger is None:
        return render_template(
            "pointage/screen.html",
            ledger=None,
            year=year,
            year_label=f"{year}-{year + 1}",
            import_form=StatementImportForm(),
            balance_form=balance_form,
        )
    summary = _summary(ledger)
    balance_form.on.data = summary.on
    balance_form.balance.data = ledger.reconciliation_balance_cents
    coop_id = current_coop_id()
    items = {item.id: item for item in rec.open_bank_items(db.session, coop_id)}
    book = {line.line_id: line for line in rec.uncleared_book_lines(db.session, coop_id)}
    matches = rec.match(list(items.values()), list(book.values()))
    lines = rec.pointage_lines(db.session, ledger)
    return render_template(
        "pointage/screen.html",
        ledger=ledger,
        year=year,
        year_label=ledger.school_year.label,
        summary=summary,
        lines=lines,
        matches=matches,
        items=items,
        book=book,
        balance_form=balance_form,
        import_form=StatementImportForm(),
        confirm_form=ConfirmMatchesForm(),
        line_form=LineActionForm(),
        modes=books.MODE_LABELS,
        year_start=ledger.school_year.starts_on,
    )


@bp.route("/coop/pointage/<int:year>/solde", methods=["POST"])
@access("coop")
def statement_balance(year: int):
    ledger = _ledger(year)
    form = StatementBalanceForm()
    if ledger is None:
        flash("Ce cahier est vide : saisissez d'abord des opérations.", "warning")
    elif form.validate_on_submit():
        try:
            rec.save_statement_balance(db.session, ledger, form.on.data, form.balance.data, by=current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            summary = _summary(ledger)
            if summary.is_reconciled:
                flash("Écart : 0,00 €. Le cahier est rapproché avec le relevé.", "success")
            else:
                flash(
                    f"Écart de {money(summary.difference)} avec le relevé : pointez les lignes qui y figurent.",
                    "warning",
                )
    else:
        for errors in form.errors.values():
            flash(errors[0], "danger")
    return redirect(url_for("pointage.screen", year=year, _anchor="resume"))


def _pending_path(key: str) -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "pending" / key


def _drop_pending() -> None:
    """Forget the session's file waiting for its column mapping, and remove it."""
    key = (session.pop("pending_statement", None) or {}).get("key", "")
    if _PENDING_KEY.fullmatch(key):
        _pending_path(key).unlink(missing_ok=True)


def _keep_pending(content: bytes, filename: str) -> None:
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
    session["pending_statement"] = {"key": key, "name": filename[:200]}


def _looks_like_a_statement(columns: list[str], sample: list[list[str]]) -> bool:
    """An unknown CSV deserves the column question only with the three columns a statement needs
    (date, label, amount) and a date in its first lines: a letter with commas is not a statement."""
    if len(columns) < 3:
        return False
    for row in sample:
        for cell in row:
            try:
                parse_day(cell)
            except StatementError:
                continue
            return True
    return False


def _header_row(rows: list[list[str]]) -> int:
    """The row whose cells were shown as column names (as `parse_csv` chose it for NeedsMapping)."""
    width = max((len(row) for row in rows[:25]), default=0)
    return next((i for i, row in enumerate(rows[:25]) if len(row) == width and width >= 3), 0)


@bp.route("/coop/pointage/<int:year>/releve", methods=["POST"])
@access("coop")
def import_statement(year: int):
    _ledger(year)
    form = StatementImportForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(errors[0], "danger")
        return redirect(url_for("pointage.screen", year=year))
    content = form.file.data.read(STATEMENT_MAX_BYTES + 1)
    if len(content) > STATEMENT_MAX_BYTES:
        flash("Ce fichier est trop volumineux pour un relevé (5 Mo au plus).", "danger")
        return redirect(url_for("pointage.screen", year=year))
    filename = form.file.data.filename or "releve"
    try:
        parsed = parse_statement(content)
    except NeedsMapping as exc:
        if not _looks_like_a_statement(exc.columns, exc.sample):
            flash(f"Import impossible, rien n'a été enregistré : {NOT_A_STATEMENT}", "danger")
            return redirect(url_for("pointage.screen", year=year))
        _keep_pending(content, filename)
        return _render_mapping(year, exc.columns, exc.sample)
    except StatementError as exc:
        flash(f"Import impossible, rien n'a été enregistré : {exc}", "danger")
        return redirect(url_for("pointage.screen", year=year))
    return _store(year, parsed, filename, content)


def _store(year: int, parsed, filename: str, content: bytes):
    result = rec.import_statement(
        db.session, current_coop_id(), parsed, filename=filename, content=content, by=current_user, ip=client_ip()
    )
    ledger = _ledger(year)
    closing_on = parsed.closing_balance_date
    if (
        ledger is not None
        and parsed.closing_balance_cents is not None
        and closing_on is not None
        and ledger.school_year.contains(closing_on)
        and (ledger.reconciliation_date is None or closing_on >= ledger.reconciliation_date)
    ):
        # The file gives the statement's closing balance: fill the summary box with it.
        rec.save_statement_balance(db.session, ledger, closing_on, parsed.closing_balance_cents, by=current_user)
    db.session.commit()
    message = f"Relevé importé : {result.added} ligne(s) nouvelle(s)"
    if result.skipped:
        message += f", {result.skipped} déjà importée(s) (ignorées)"
    flash(message + ". Vérifiez les correspondances proposées puis confirmez-les.", "success")
    return redirect(url_for("pointage.screen", year=year, _anchor="correspondances"))


def _render_mapping(year: int, columns: list[str], sample: list[list[str]]):
    form = MappingForm()
    choices = [("", "—")] + [(str(i), name or f"Colonne {i + 1}") for i, name in enumerate(columns)]
    for field in (form.date, form.label, form.amount, form.debit, form.credit):
        field.choices = choices
    return render_template(
        "pointage/mapping.html", form=form, year=year, columns=columns, sample=sample, year_label=f"{year}-{year + 1}"
    )


@bp.route("/coop/pointage/<int:year>/colonnes", methods=["POST"])
@access("coop")
def import_with_mapping(year: int):
    _ledger(year)
    pending = session.get("pending_statement") or {}
    key = pending.get("key", "")
    path = _pending_path(key) if _PENDING_KEY.fullmatch(key) else None
    if path is None or not path.is_file():
        flash("Le fichier n'est plus disponible : importez-le à nouveau.", "warning")
        return redirect(url_for("pointage.screen", year=year))
    content = path.read_bytes()
    form = MappingForm()

    def column(field) -> int | None:
        return int(field.data) if (field.data or "").isdigit() else None

    date_col, label_col = column(form.date), column(form.label)
    amount_col, debit_col, credit_col = column(form.amount), column(form.debit), column(form.credit)
    problem = None
    if date_col is None or label_col is None:
        problem = "Indiquez au moins la colonne de la date et celle du libellé."
    elif amount_col is None and (debit_col is None or credit_col is None):
        problem = "Indiquez la colonne du montant, ou bien celles des débits et des crédits."
    if problem is None:
        try:
            mapping = CsvMapping(
                date=date_col, label=(label_col,), amount=amount_col, debit=debit_col, credit=credit_col
            )
            parsed = parse_statement(content, mapping=mapping, header_row=_header_row(_csv_rows(decode(content))))
        except StatementError as exc:
            problem = f"Ces colonnes ne donnent pas un relevé lisible : {exc}"
    if problem is not None:
        flash(problem, "danger")
        try:
            parse_statement(content)
        except NeedsMapping as exc:
            return _render_mapping(year, exc.columns, exc.sample)
        except StatementError:
            pass
        return redirect(url_for("pointage.screen", year=year))
    _drop_pending()
    return _store(year, parsed, pending.get("name", "releve.csv"), content)


@bp.route("/coop/pointage/<int:year>/correspondances", methods=["POST"])
@access("coop")
def confirm(year: int):
    _ledger(year)
    form = ConfirmMatchesForm()
    if not form.validate_on_submit():
        abort(400)
    values = request.form.getlist("match")
    if request.form.get("un"):
        values = [request.form["un"]]
    done, refused = 0, []
    for value in values:
        match = re.fullmatch(r"(\d+):(\d+(?:,\d+)*)", value)
        if not match:
            continue
        bank_id, line_ids = int(match.group(1)), [int(i) for i in match.group(2).split(",")]
        try:
            with db.session.begin_nested():
                rec.confirm_match(db.session, current_coop_id(), bank_id, line_ids, by=current_user, ip=client_ip())
            done += 1
        except DomainError as exc:
            refused.append(exc.message)
            _audit_foreign([bank_id], line_ids)
    db.session.commit()
    if done:
        flash(f"{done} correspondance(s) confirmée(s) : les lignes sont pointées.", "success")
    for message in refused[:3]:
        flash(message, "warning")
    if not done and not refused:
        flash("Cochez au moins une correspondance à confirmer.", "info")
    return redirect(url_for("pointage.screen", year=year, _anchor="resume"))


def _line_result(year: int, ledger: Ledger | None, line, message: str):
    if _wants_json():
        return jsonify(
            {
                "line_id": line.id,
                "cleared_on": line.cleared_on and f"{line.cleared_on:%d/%m/%Y}",
                "message": message,
                "summary": _summary_json(ledger) if ledger else None,
            }
        )
    flash(message, "success")
    return redirect(url_for("pointage.screen", year=year, _anchor=f"ligne-{line.id}"))


@bp.route("/coop/pointage/<int:year>/ligne/<int:line_id>/pointer", methods=["POST"])
@access("coop")
def clear(year: int, line_id: int):
    ledger = _ledger(year)
    form = LineActionForm()
    if not form.validate_on_submit():
        abort(400)
    # The date of the summary box: a line pointed there counts at once in its figures (today would be
    # after the end of a past year, so the line would still count as uncleared there).
    on = _summary_date(ledger) if ledger else now().date()
    if form.on.data:
        try:
            on = date.fromisoformat(form.on.data)
        except ValueError:
            abort(400)
    try:
        line = rec.clear_line(db.session, current_coop_id(), line_id, on, by=current_user, ip=client_ip())
        db.session.commit()
    except DomainError:
        db.session.rollback()
        _audit_foreign([], [line_id])
        abort(404)
    return _line_result(year, ledger, line, f"Ligne pointée au {on:%d/%m/%Y}.")


@bp.route("/coop/pointage/<int:year>/ligne/<int:line_id>/depointer", methods=["POST"])
@access("coop")
def unclear(year: int, line_id: int):
    ledger = _ledger(year)
    form = LineActionForm()
    if not form.validate_on_submit():
        abort(400)
    lines = {line.line_id: line for line in rec.pointage_lines(db.session, ledger)} if ledger else {}
    if line_id not in lines:
        _audit_foreign([], [line_id])
        abort(404)
    if form.confirme.data != "oui":
        return render_template(
            "pointage/confirm_unclear.html", line=lines[line_id], year=year, form=form, modes=books.MODE_LABELS
        )
    line = rec.unclear_line(db.session, current_coop_id(), line_id, by=current_user, ip=client_ip())
    db.session.commit()
    return _line_result(year, ledger, line, "Pointage annulé.")


def statement_line_for_entry(statement_line_id: int | None) -> StatementLine | None:
    """A statement line of the logged-in coop, for prefilling « Créer l'opération »."""
    if not statement_line_id:
        return None
    item = db.session.scalar(owned(StatementLine).where(StatementLine.id == statement_line_id))
    if item is None:
        _audit_foreign([statement_line_id], [])
    return item
