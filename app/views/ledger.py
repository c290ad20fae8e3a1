"""The cash-book on the coop face: classic view, guided entry form, opening, actions, vouchers, CSV."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app import cahier as cahier_format
from app import documents, reconciliation
from app import ledger as books
from app.clock import now
from app.errors import DomainError, ValidationErrors
from app.extensions import db
from app.models import Account, Action, Document, Entry, Ledger, Membership, SchoolYear
from app.views.cahier_table import cahier_cache, cahier_rows
from app.views.pointage import statement_line_for_entry
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import current_coop_id, owned, owned_or_404
from forms.ledger import (
    ActionForm,
    ArchiveActionForm,
    ConfirmForm,
    EntryForm,
    ImportForm,
    OpeningForm,
    RenameActionForm,
    VoucherForm,
)

bp = Blueprint("ledger", __name__)

VOUCHER_MAX_BYTES = 10 * 1024 * 1024
_FORM_TOKEN = re.compile(r"[0-9a-f]{32}")
_FIELD_FOR_BOX = {
    "box6": "bank_amount",
    "box7": "splits",
    "kind": "kind",
    "piece": "piece",
    "date": "date",
    "label": "label",
    "cheque_number": "cheque_number",
    "action": "action",
}


def _current_year() -> int:
    return books.current_start_year(now().date())


def _check_year(year: int) -> int:
    if not 2000 <= year <= _current_year():
        abort(404)
    return year


def _find_ledger(year: int) -> Ledger | None:
    """The coop's ledger for `year` if it exists (GET requests never create one)."""
    return db.session.scalar(owned(Ledger).join(Ledger.school_year).where(SchoolYear.start_year == year))


def _ledger_for_write(year: int) -> Ledger:
    return books.open_ledger(db.session, current_user.coop, _check_year(year))


def _year_choices(selected: int) -> list[int]:
    years = set(books.ledger_years(db.session, current_user.coop)) | {_current_year(), selected}
    return sorted(years, reverse=True)


def _account_choices() -> dict[str, list[tuple[str, str]]]:
    accounts = db.session.scalars(
        sa.select(Account)
        .where(Account.is_active, Account.nature.in_(("expense", "income", "subsidy")))
        .order_by(Account.code)
    ).all()
    groups = {"Charges (dépenses)": "expense", "Produits (recettes)": "income", "Subventions (recettes)": "subsidy"}
    return {
        group: [(a.code, f"{a.display_code} — {a.label}") for a in accounts if a.nature == nature]
        for group, nature in groups.items()
    }


def _prepare_form(form: EntryForm) -> None:
    choices = {"": [("", "— Choisir un compte —")], **_account_choices()}
    for sub in form.splits:
        sub.account.choices = choices
    actions = db.session.scalars(owned(Action).where(Action.is_archived.is_(False)).order_by(Action.name)).all()
    form.action.choices = [("", "— Aucune —")] + [(str(a.id), a.name) for a in actions]
    blank = sum(1 for sub in form.splits if not sub.account.data and not sub.amount.data)
    while len(form.splits) < 3 or blank < 1:
        form.splits.append_entry()
        form.splits[-1].account.choices = choices
        blank += 1


def _entry_data(form: EntryForm) -> books.EntryData:
    kind = form.kind.data
    bank, cash = form.bank_amount.data or 0, form.cash_amount.data or 0
    if kind in ("receipt", "advance_returned"):
        treasury = books.Treasury(bank_in=bank, cash_in=cash)
    elif kind in ("expense", "advance_paid"):
        treasury = books.Treasury(bank_out=bank, cash_out=cash)
    elif kind in ("deposit", "withdrawal"):
        if bank and cash and bank != cash:
            raise DomainError("Pour un mouvement entre caisse et banque, indiquez un seul montant.", field="box6")
        amount = bank or cash
        treasury = (
            books.Treasury(bank_in=amount, cash_out=amount)
            if kind == "deposit"
            else books.Treasury(bank_out=amount, cash_in=amount)
        )
    else:
        treasury = books.Treasury()
    splits = [
        books.Split(sub.account.data, sub.amount.data) for sub in form.splits if sub.account.data or sub.amount.data
    ]
    for split in splits:
        if not split.account_code:
            raise DomainError("Choisissez le compte de chaque ligne de ventilation.", field="box7")
        if not split.amount:
            raise DomainError("Indiquez le montant de chaque ligne de ventilation.", field="box7")
    fixed_modes = {"deposit": "interne", "withdrawal": "interne", "advance_justified": "regie"}
    mode = fixed_modes.get(kind, form.payment_mode.data)
    # The form pre-fills the next cheque number and a hidden field is still posted: keep it only for a
    # cheque the coop wrote, or every cash receipt would carry (and use up) that number.
    cheque = (form.cheque_number.data or "") if mode == "cheque" and kind in ("expense", "advance_paid") else ""
    if mode == "remise":  # the same column holds the deposit slip number of a cheque deposit
        cheque = form.slip_number.data or ""
    action_id = None
    if form.new_action.data and form.new_action.data.strip():
        action_id = books.create_action(db.session, current_coop_id(), form.new_action.data, by=current_user).id
    elif form.action.data:
        action = (
            db.session.scalar(owned(Action).where(Action.id == int(form.action.data)))
            if form.action.data.isdigit()
            else None
        )
        if action is None:
            raise DomainError("Cette action n'existe pas.", field="action")
        action_id = action.id
    return books.EntryData(
        piece=form.piece.data,
        date=form.date.data,
        label=form.label.data,
        payment_mode=mode,
        kind=kind,
        treasury=treasury,
        splits=splits,
        cheque_number=cheque,
        action_id=action_id,
    )


def _show_error(form: EntryForm, exc: DomainError) -> None:
    name = _FIELD_FOR_BOX.get(exc.field or "", "")
    if name == "splits":
        form.split_errors = [exc.message]
    elif name:
        getattr(form, name).errors = [*getattr(form, name).errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _render_form(form: EntryForm, ledger_year: int, entry: Entry | None = None):
    _prepare_form(form)
    return render_template(
        "ledger/entry_form.html",
        form=form,
        year=ledger_year,
        entry=entry,
        year_label=f"{ledger_year}-{ledger_year + 1}",
        split_errors=getattr(form, "split_errors", []),
        kinds=books.KIND_LABELS,
        modes_for_kind=books.MODES_FOR_KIND,
    )


# -- classic view --------------------------------------------------------------------------------


@bp.route("/coop/cahier")
@access("coop")
def cahier_current():
    return redirect(url_for("ledger.cahier", year=_current_year()))


@bp.route("/coop/cahier/<int:year>")
@access("coop")
def cahier(year: int):
    _check_year(year)
    ledger = _find_ledger(year)
    sort = request.args.get("tri", "date")
    filters = {
        "text": request.args.get("q", "").strip()[:100],
        "account": request.args.get("compte", "")[:7],
        "mode": request.args.get("mode", "")[:12],
    }
    action_id = request.args.get("action", type=int)
    printing = bool(request.args.get("impression"))
    data = rows_html = None
    if ledger is not None:
        # created_at too: SQLite may reuse the id of a deleted ledger
        key = (
            ledger.id,
            ledger.created_at,
            ledger.revision,
            ledger.is_open,
            printing,
            sort,
            action_id,
            tuple(filters.items()),
        )

        def build():
            built = cahier_format.build_cahier(db.session, ledger, sort=sort, action_id=action_id, **filters)
            return built, cahier_rows(built, books.MODE_LABELS, links=not printing, editable=ledger.is_open)

        data, rows_html = cahier_cache.get_or_build(key, build)
    actions = db.session.scalars(owned(Action).order_by(Action.name)).all()
    accounts = db.session.scalars(
        sa.select(Account).where(Account.nature.in_(("expense", "income", "subsidy"))).order_by(Account.code)
    ).all()
    template = "ledger/cahier_print.html" if printing else "ledger/cahier.html"
    has_opening = ledger is not None and books.opening_entry(db.session, ledger) is not None
    return render_template(
        template,
        ledger=ledger,
        data=data,
        rows_html=rows_html,
        year=year,
        year_label=f"{year}-{year + 1}",
        years=_year_choices(year),
        sort=sort,
        filters=filters,
        action_id=action_id,
        actions=actions,
        accounts=accounts,
        modes=books.MODE_LABELS,
        coop=current_user.coop,
        has_opening=has_opening,
        filtered=any(filters.values()) or bool(action_id),
    )


# -- entries -------------------------------------------------------------------------------------


@bp.route("/coop/cahier/<int:year>/nouvelle", methods=["GET", "POST"])
@access("coop")
def new_entry(year: int):
    _check_year(year)
    form = EntryForm()
    if request.method == "POST":
        existing = books.find_by_token(db.session, current_coop_id(), form.form_token.data)
        if existing is not None:
            flash(f"L'opération {existing.piece} était déjà enregistrée : rien n'a été ajouté en double.", "info")
            return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{existing.id}"))
        if form.add_line.data:
            form.splits.append_entry()
            return _render_form(form, year)
        if form.validate():
            try:
                ledger = _ledger_for_write(year)
                entry = books.record_entry(
                    db.session,
                    ledger,
                    _entry_data(form),
                    by=current_user,
                    idempotency_key=form.form_token.data or None,
                    ip=client_ip(),
                )
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                _show_error(form, exc)
            except IntegrityError:
                db.session.rollback()
                existing = books.find_by_token(db.session, current_coop_id(), form.form_token.data)
                if existing is None:
                    form.piece.errors = ["Ce numéro de pièce vient d'être utilisé : choisissez-en un autre."]
                    return _render_form(form, year)
                flash(f"L'opération {existing.piece} était déjà enregistrée : rien n'a été ajouté en double.", "info")
                return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{existing.id}"))
            else:
                flash(f"Opération {entry.piece} enregistrée.", "success")
                if form.statement_line.data:
                    return _point_with_statement_line(entry, form.statement_line.data, year)
                return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{entry.id}"))
        return _render_form(form, year)

    # The token lives in the URL: Back re-fetches this no-store page with the same token, so an
    # operation already sent is recognised instead of being offered again with a fresh token.
    token = request.args.get("jeton", "")
    statement_line_id = request.args.get("releve", type=int)
    if not _FORM_TOKEN.fullmatch(token):
        return redirect(url_for("ledger.new_entry", year=year, jeton=uuid.uuid4().hex, releve=statement_line_id))
    existing = books.find_by_token(db.session, current_coop_id(), token)
    if existing is not None:
        return render_template("ledger/entry_recorded.html", entry=existing, year=year, year_label=f"{year}-{year + 1}")
    ledger = _find_ledger(year)
    form.form_token.data = token
    form.piece.data = _suggested_piece(ledger)
    today = now().date()
    form.date.data = today if books.current_start_year(today) == year else None
    form.cheque_number.data = books.next_cheque_number(db.session, current_coop_id())
    item = statement_line_for_entry(statement_line_id)
    if item is not None:
        _prefill_from_statement(form, item)
    return _render_form(form, year)


def _prefill_from_statement(form: EntryForm, item) -> None:
    """« Créer l'opération » from a statement line: date, label, amount and the usual accounts."""
    amount = abs(item.amount_cents)
    membership = db.session.scalar(
        sa.select(Membership)
        .where(
            Membership.coop_id == current_coop_id(),
            Membership.total_cents == amount,
            Membership.cotisation_cents.is_not(None),
        )
        .order_by(Membership.id.desc())
        .limit(1)
    )
    split = (membership.cotisation_cents, amount - membership.cotisation_cents) if membership else None
    suggestion = reconciliation.suggest_entry(item, split)
    form.statement_line.data = str(item.id)
    form.kind.data, form.payment_mode.data = suggestion.kind, suggestion.payment_mode
    form.date.data, form.label.data, form.bank_amount.data = suggestion.date, suggestion.label, suggestion.bank_amount
    form.cheque_number.data = ""
    for sub, (code, cents) in zip(form.splits, suggestion.splits, strict=False):
        sub.account.data, sub.amount.data = code, cents


def _point_with_statement_line(entry: Entry, raw_id: str, year: int):
    """Point the new entry's bank line with the statement line it was created from."""
    item = statement_line_for_entry(int(raw_id)) if raw_id.isdigit() else None
    bank_lines = [line.id for line in entry.lines if line.account.code == books.BANK]
    if item is not None and bank_lines:
        try:
            reconciliation.confirm_match(
                db.session, current_coop_id(), item.id, bank_lines, by=current_user, ip=client_ip()
            )
            db.session.commit()
            flash("Elle est pointée avec la ligne du relevé.", "success")
        except DomainError as exc:
            db.session.rollback()
            flash(f"Elle n'a pas pu être pointée automatiquement : {exc.message}", "warning")
    return redirect(url_for("pointage.screen", year=year, _anchor="resume"))


def _suggested_piece(ledger: Ledger | None) -> str:
    """Next number in the series of the last operation entered (D07 -> D08, 41 -> 42)."""
    if ledger is None:
        return "1"
    last = db.session.scalar(
        sa.select(Entry.piece)
        .where(Entry.ledger_id == ledger.id, Entry.kind != "opening")
        .order_by(Entry.id.desc())
        .limit(1)
    )
    prefix = re.match(r"[A-Za-z]*", last or "").group(0)
    return books.next_piece(db.session, ledger, prefix)


def _fill_from_entry(form: EntryForm, entry: Entry) -> None:
    form.piece.data, form.date.data, form.label.data = entry.piece, entry.date, entry.label
    if entry.payment_mode == "remise":
        form.slip_number.data = entry.cheque_number
    else:
        form.cheque_number.data = entry.cheque_number
    form.kind.data = books.form_kind(entry)
    if entry.payment_mode in dict(form.payment_mode.choices):
        form.payment_mode.data = entry.payment_mode
    form.action.data = str(entry.action_id) if entry.action_id else ""
    form.version.data = str(entry.version)
    bank = sum(line.amount_cents for line in entry.lines if line.account.code == books.BANK)
    cash = sum(line.amount_cents for line in entry.lines if line.account.code == books.CASH)
    if form.kind.data == "deposit":
        bank, cash = bank, 0
    elif form.kind.data == "withdrawal":
        bank, cash = -bank, 0
    form.bank_amount.data, form.cash_amount.data = abs(bank) or None, abs(cash) or None
    splits = [line for line in entry.lines if line.account.nature in ("expense", "income", "subsidy")]
    while len(form.splits) < len(splits):
        form.splits.append_entry()
    for sub, line in zip(form.splits, splits, strict=False):
        sub.account.data = line.account.code
        sub.amount.data = abs(line.amount_cents)


@bp.route("/coop/cahier/operation/<int:entry_id>")
@access("coop")
def entry_detail(entry_id: int):
    entry = owned_or_404(Entry, entry_id)
    vouchers = db.session.scalars(owned(Document).where(Document.entry_id == entry.id).order_by(Document.id)).all()
    return render_template(
        "ledger/entry_detail.html",
        entry=entry,
        vouchers=vouchers,
        voucher_form=VoucherForm(),
        year=entry.ledger.school_year.start_year,
        kinds=books.KIND_LABELS,
        kind=books.form_kind(entry),
        modes=books.MODE_LABELS,
    )


@bp.route("/coop/cahier/operation/<int:entry_id>/modifier", methods=["GET", "POST"])
@access("coop")
def edit_entry(entry_id: int):
    entry = owned_or_404(Entry, entry_id)
    year = entry.ledger.school_year.start_year
    if not entry.ledger.is_open or entry.kind == "opening":
        flash("Cette opération ne peut pas être modifiée ici.", "warning")
        return redirect(url_for("ledger.entry_detail", entry_id=entry.id))
    form = EntryForm()
    if request.method == "POST":
        if form.add_line.data:
            form.splits.append_entry()
            return _render_form(form, year, entry)
        if form.validate():
            try:
                expected = int(form.version.data) if (form.version.data or "").isdigit() else None
                uncleared = books.update_entry(
                    db.session, entry, _entry_data(form), expected_version=expected, by=current_user, ip=client_ip()
                )
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                if exc.field == "stale":
                    flash(exc.message, "warning")
                    return redirect(url_for("ledger.edit_entry", entry_id=entry_id))
                _show_error(form, exc)
            else:
                flash(f"Opération {entry.piece} modifiée.", "success")
                if uncleared:
                    flash(
                        "Le montant ou le côté banque a changé : le pointage de cette opération a été annulé. "
                        "Pointez-la à nouveau sur le relevé.",
                        "warning",
                    )
                return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{entry.id}"))
        return _render_form(form, year, entry)
    _fill_from_entry(form, entry)
    return _render_form(form, year, entry)


@bp.route("/coop/cahier/operation/<int:entry_id>/supprimer", methods=["GET", "POST"])
@access("coop")
def delete_entry(entry_id: int):
    entry = owned_or_404(Entry, entry_id)
    year = entry.ledger.school_year.start_year
    form = ConfirmForm()
    if form.validate_on_submit():
        keys = [d.storage_key for d in db.session.scalars(owned(Document).where(Document.entry_id == entry.id))]
        piece = entry.piece
        try:
            books.delete_entry(db.session, entry, by=current_user, ip=client_ip())
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(url_for("ledger.entry_detail", entry_id=entry_id))
        for key in keys:
            documents.remove_file(current_app.config["UPLOAD_DIR"], key)
        flash(f"Opération {piece} supprimée.", "success")
        return redirect(url_for("ledger.cahier", year=year))
    return render_template("ledger/confirm_delete.html", entry=entry, form=form, year=year)


# -- vouchers ------------------------------------------------------------------------------------


@bp.route("/coop/cahier/operation/<int:entry_id>/justificatifs", methods=["POST"])
@access("coop")
def upload_voucher(entry_id: int):
    entry = owned_or_404(Entry, entry_id)
    form = VoucherForm()
    if not entry.ledger.is_open:
        flash(
            f"Le cahier {entry.ledger.school_year.label} est clôturé : on ne peut plus y ajouter de justificatif.",
            "warning",
        )
    elif form.validate_on_submit():
        upload = form.file.data
        try:
            documents.store_document(
                db.session,
                upload_dir=current_app.config["UPLOAD_DIR"],
                coop_id=entry.coop_id,
                kind="voucher",
                filename=upload.filename or "",
                content=upload.read(),
                max_bytes=VOUCHER_MAX_BYTES,
                by=current_user,
                entry_id=entry.id,
                ip=client_ip(),
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            flash("Justificatif ajouté.", "success")
    else:
        for errors in form.errors.values():
            flash(errors[0], "danger")
    return redirect(url_for("ledger.entry_detail", entry_id=entry.id))


@bp.route("/justificatifs/<int:document_id>")
@access("authenticated")
def download_document(document_id: int):
    """A stored document, as an attachment: its coop, or OCCE 85 staff."""
    if current_user.is_staff:
        document = db.session.get(Document, document_id)
        if document is None:
            abort(404)
    else:
        document = owned_or_404(Document, document_id)
    path = documents.document_path(current_app.config["UPLOAD_DIR"], document)
    if not path.is_file():
        current_app.logger.error(
            "document %s: file %s missing from the upload store", document.id, document.storage_key
        )
        abort(404)
    response = send_file(
        path, mimetype=document.content_type, as_attachment=True, download_name=document.original_name, max_age=0
    )
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


# -- opening balances ----------------------------------------------------------------------------


@bp.route("/coop/cahier/<int:year>/report", methods=["GET", "POST"])
@access("coop")
def opening(year: int):
    _check_year(year)
    form = OpeningForm()
    ledger = _find_ledger(year)
    if form.validate_on_submit():
        try:
            ledger = _ledger_for_write(year)
            books.record_opening(
                db.session, ledger, bank=form.bank.data or 0, cash=form.cash.data or 0, by=current_user, ip=client_ip()
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            getattr(form, exc.field or "bank").errors.append(exc.message)
        else:
            flash("Report à nouveau enregistré.", "success")
            return redirect(url_for("ledger.cahier", year=year))
    elif request.method == "GET" and ledger is not None:
        entry = books.opening_entry(db.session, ledger)
        if entry is not None:
            form.bank.data = sum(line.amount_cents for line in entry.lines if line.account.code == books.BANK)
            form.cash.data = sum(line.amount_cents for line in entry.lines if line.account.code == books.CASH)
    return render_template("ledger/opening.html", form=form, year=year, year_label=f"{year}-{year + 1}")


# -- actions -------------------------------------------------------------------------------------


@bp.route("/coop/actions", methods=["GET", "POST"])
@access("coop")
def actions():
    year = request.args.get("annee", type=int) or _current_year()
    _check_year(year)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            action = books.create_action(db.session, current_coop_id(), form.name.data, by=current_user, reuse=False)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.name.errors.append(exc.message)
        else:
            flash(f"Action « {action.name} » créée.", "success")
            return redirect(url_for("ledger.actions", annee=year))
    totals = books.action_totals(db.session, current_coop_id(), _find_ledger(year))
    return render_template(
        "ledger/actions.html",
        form=form,
        totals=totals,
        year=year,
        year_label=f"{year}-{year + 1}",
        years=_year_choices(year),
        rename_form=RenameActionForm(),
        archive_form=ArchiveActionForm(),
    )


@bp.route("/coop/actions/<int:action_id>/renommer", methods=["POST"])
@access("coop")
def rename_action(action_id: int):
    action = owned_or_404(Action, action_id)
    form = RenameActionForm()
    if form.validate_on_submit():
        try:
            books.rename_action(db.session, action, form.name.data, by=current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            flash("Action renommée.", "success")
    else:
        flash("Indiquez le nouveau nom de l'action.", "danger")
    return redirect(url_for("ledger.actions", annee=request.args.get("annee", type=int)))


@bp.route("/coop/actions/<int:action_id>/archiver", methods=["POST"])
@access("coop")
def archive_action(action_id: int):
    action = owned_or_404(Action, action_id)
    form = ArchiveActionForm()
    if form.validate_on_submit():
        archived = form.archive.data != "0"
        if action.is_archived != archived:  # the wanted state: a double click or a replay changes nothing more
            books.set_action_archived(db.session, action, archived, by=current_user)
            db.session.commit()
        flash(f"Action « {action.name} » {'archivée' if action.is_archived else 'réactivée'}.", "success")
    return redirect(url_for("ledger.actions", annee=request.args.get("annee", type=int)))


# -- CSV / XLSX ----------------------------------------------------------------------------------


def _export_name(year: int, extension: str) -> str:
    return f"cahier-{current_user.coop.login}-{year}-{year + 1}.{extension}"


@bp.route("/coop/cahier/<int:year>/export.csv")
@access("coop")
def export_csv(year: int):
    _check_year(year)
    ledger = _find_ledger(year)
    content = (
        cahier_format.export_csv(db.session, ledger)
        if ledger
        else "\ufeff".encode() + ";".join(cahier_format.FIXED_COLUMNS).encode() + b"\r\n"
    )
    return Response(
        content,
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(year, "csv")}"'},
    )


@bp.route("/coop/cahier/<int:year>/export.xlsx")
@access("coop")
def export_xlsx(year: int):
    _check_year(year)
    ledger = _find_ledger(year)
    if ledger is None:
        flash("Ce cahier est vide : il n'y a rien à exporter.", "info")
        return redirect(url_for("ledger.cahier", year=year))
    title = f"Cahier de comptabilité {year}-{year + 1} — {current_user.coop.login} {current_user.coop.name}"
    content = cahier_format.export_xlsx(db.session, ledger, title)
    return Response(
        content,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(year, "xlsx")}"'},
    )


@bp.route("/coop/cahier/<int:year>/import", methods=["GET", "POST"])
@access("coop")
def import_csv(year: int):
    _check_year(year)
    form = ImportForm()
    errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            ledger = _ledger_for_write(year)
            count = cahier_format.import_cahier(
                db.session, ledger, form.file.data.read(), by=current_user, ip=client_ip()
            )
            db.session.commit()
        except ValidationErrors as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            flash(f"Import terminé : {count} opération(s) ajoutée(s) au cahier {year}-{year + 1}.", "success")
            return redirect(url_for("ledger.cahier", year=year))
    return render_template("ledger/import.html", form=form, errors=errors, year=year, year_label=f"{year}-{year + 1}")
