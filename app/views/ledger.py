"""The cash-book on the coop face: classic view, guided entry form, opening, actions, vouchers, CSV.

Every write goes through the unit of work (`app.web.uow.run`): the view parses the form, hands
the domain call to `uow.run` and redirects (one flash) or re-renders the form with the refusal on
the box it names.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app import cahier as cahier_format
from app import cahier_days, clock, documents, reconciliation
from app import ledger as books
from app.errors import DomainError, ValidationErrors
from app.extensions import db
from app.models import (
    Account,
    Action,
    AuditEvent,
    Document,
    Entry,
    Ledger,
    Membership,
    SchoolYear,
    StatementLine,
    school_year_label,
)
from app.views.cahier_table import (
    ROWS_MARKER,
    cahier_cache,
    cahier_rows,
    days_weight,
    fragments_weight,
    gc_paused,
    page_weight,
    page_with_rows,
    phone_captions,
    year_rows,
    year_weight,
)
from app.web import uow
from app.web.downloads import send_document
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import current_coop_id, owned, owned_or_404, owned_or_none
from forms.ledger import (
    ENTRY_FIELDS,
    FORM_MODES,
    ActionForm,
    ArchiveActionForm,
    BoxValue,
    ConfirmForm,
    EntryForm,
    ImportForm,
    OpeningForm,
    RenameActionForm,
    VoucherForm,
    box_values,
    typed_differences,
)

bp = Blueprint("ledger", __name__)

VOUCHER_MAX_BYTES = 10 * 1024 * 1024
_FORM_TOKEN = re.compile(r"[0-9a-f]{32}")
PIECE_TAKEN = "Ce numéro de pièce vient d'être utilisé : choisissez-en un autre."
TAKEN_MEANWHILE = (
    "Le numéro de pièce ou le nom d'action choisi vient d'être utilisé ailleurs : changez-le, puis enregistrez "
    "à nouveau (rien n'a été enregistré)."
)
SPLIT_NATURES = ("expense", "income", "subsidy")


def _current_year() -> int:
    return books.current_start_year(clock.today())


def _check_year(year: int) -> int:
    if not 2000 <= year <= _current_year():
        abort(404)
    return year


def _year_label(year: int) -> str:
    return school_year_label(year)


def _find_ledger(year: int) -> Ledger | None:
    """The coop's ledger for `year` if it exists (GET requests never create one)."""
    return db.session.scalar(owned(Ledger).join(Ledger.school_year).where(SchoolYear.start_year == year))


def _ledgers_by_year() -> dict[int, Ledger]:
    """Every ledger of the coop by start year, in one query (a coop has one per year it kept): the
    classic view shows one and offers the others."""
    rows = db.session.execute(owned(Ledger).join(Ledger.school_year).add_columns(SchoolYear.start_year))
    return {start_year: ledger for ledger, start_year in rows}


def _ledger_for_write(year: int) -> Ledger:
    return books.open_ledger(db.session, current_user.coop, _check_year(year))


def _year_choices(selected: int, existing: Iterable[int] | None = None) -> list[int]:
    """Every year with a ledger (`existing` when already read), plus the ones the coop can open: this one
    and the previous school year (a coop coming from another tool imports or types that year, then
    closes it here)."""
    current = _current_year()
    if existing is None:
        existing = books.ledger_years(db.session, current_user.coop)
    years = set(existing) | {current, current - 1, selected}
    return sorted(years, reverse=True)


def _account_choices() -> dict[str, list[tuple[str, str]]]:
    accounts = db.session.scalars(
        sa.select(Account).where(Account.is_active, Account.nature.in_(SPLIT_NATURES)).order_by(Account.code)
    ).all()
    groups = {"Charges (dépenses)": "expense", "Produits (recettes)": "income", "Subventions (recettes)": "subsidy"}
    return {
        group: [(a.code, f"{a.display_code} — {a.label}") for a in accounts if a.nature == nature]
        for group, nature in groups.items()
    }


def _action_choices() -> list[tuple[str, str]]:
    actions = db.session.scalars(owned(Action).where(Action.is_archived.is_(False)).order_by(Action.name)).all()
    return [(str(a.id), a.name) for a in actions]


def _action_id(new_name: str, chosen: str) -> int | None:
    """Box 5: a new action is created (or the coop's action of that name reused); a chosen one must be the coop's."""
    if new_name.strip():
        return books.create_action(db.session, current_coop_id(), new_name, by=current_user).id
    if not chosen:
        return None
    action = db.session.scalar(owned(Action).where(Action.id == int(chosen))) if chosen.isdigit() else None
    if action is None:
        raise DomainError("Cette action n'existe pas.", field="action")
    return action.id


@dataclass
class Merge:
    """A version conflict on the edit form: what this tab typed where it differs from the saved values,
    the typed form's fields to post back (« Reprendre toute ma saisie »), and whether files were dropped."""

    differences: dict[str, BoxValue]
    typed_fields: list[tuple[str, str]] = field(default_factory=list)
    files_dropped: bool = False


def _render_form(
    form: EntryForm, ledger_year: int, entry: Entry | None = None, *, merge: Merge | None = None, resumed: bool = False
):
    form.prepare(_account_choices(), _action_choices())
    return render_template(
        "ledger/entry_form.html",
        form=form,
        year=ledger_year,
        entry=entry,
        year_label=_year_label(ledger_year),
        split_errors=form.box7.errors,
        kinds=books.KIND_LABELS,
        modes_for_kind=books.MODES_FOR_KIND,
        mode_refusals=_mode_refusals(),
        merge=merge,
        notes=merge.differences if merge else {},
        resumed=resumed,
    )


def _mode_refusals() -> dict[str, dict[str, str]]:
    """Box 4 against box 6: the domain's French explanation of every impossible pair, for the script."""
    pairs = ((kind, mode, books.mode_refusal(kind, mode)) for kind in books.KIND_LABELS for mode in FORM_MODES)
    refusals: dict[str, dict[str, str]] = {}
    for kind, mode, message in pairs:
        if message:
            refusals.setdefault(kind, {})[mode] = message
    return refusals


def _statement_line(ident: int | None) -> StatementLine | None:
    """A statement line of the logged-in coop (« Créer l'opération »); another coop's is refused and audited."""
    return owned_or_none(StatementLine, ident) if ident else None


# -- classic view --------------------------------------------------------------------------------


@bp.route("/coop/cahier")
@access("coop")
def cahier_current():
    return redirect(url_for("ledger.cahier", year=_current_year()))


def _cahier_filters() -> dict[str, str]:
    return {
        "text": request.args.get("q", "").strip()[:100],
        "account": request.args.get("compte", "")[:7],
        "mode": request.args.get("mode", "")[:12],
    }


def _cahier_table(
    ledger: Ledger, *, sort: str, action_id: int | None, filters: dict[str, str], printing: bool, month: date | None
):
    """The classic view's figures and rendered rows. Each view (filters, sort, month, print) keeps its
    latest table with the revision it shows; after a change, the year is brought up to date from the
    operations changed since (`app.cahier_days`) and the whole year's view renders only the changed
    day again (`year_rows`). A change replaces the view's table: a year's former tables are not kept."""
    # created_at too: SQLite may reuse the id of a deleted ledger
    ledger_key = (ledger.id, ledger.created_at)
    key = (*ledger_key, ledger.is_open, printing, sort, action_id, month, tuple(filters.items()))
    kept = cahier_cache.pages.get(key)
    if kept is not None and kept[0] == ledger.revision:
        return kept[1]
    with gc_paused():
        chart = cahier_format.read_chart(db.session)
        year = _current_year_of(ledger, chart)
        whole_year = sort == "date" and month is None and not action_id and not any(filters.values())
        if whole_year:
            table = _whole_year_rows(ledger, year, chart, printing)
        else:
            table = _filtered_rows(
                chart, ledger, year, sort=sort, action_id=action_id, filters=filters, printing=printing, month=month
            )
    cahier_cache.pages.put(key, (ledger.revision, table), page_weight(table))
    return table


def _filtered_rows(
    chart: cahier_format.Chart, ledger: Ledger, year: cahier_days.Year, *, sort, action_id, filters, printing, month
):
    """A filtered, sorted or month view: the kept year's figures walked, the rows shown rendered (each
    unchanged operation's cells kept from the views before)."""
    ledger_key = (ledger.id, ledger.created_at)
    built = cahier_format.build_cahier(
        db.session,
        ledger,
        sort=sort,
        action_id=action_id,
        month=month,
        figures=year.figures(),
        chart=chart,
        **filters,
    )
    # a row's cells follow from its operation's key and the chart's codes and natures
    columns = (tuple(a.code for a in built.accounts), not printing, ledger.is_open, chart.signature)
    kept = cahier_cache.rows.get(ledger_key) or {}
    rows_html, fragments = cahier_rows(
        built, books.MODE_LABELS, links=not printing, editable=ledger.is_open, fragments=kept.get(columns)
    )
    merged = {**kept.get(columns, {}), **fragments}
    if len(merged) > 2 * year.count:  # changed operations' old cells add up: keep those of this view only
        merged = fragments
    kept = {**kept, columns: merged}
    cahier_cache.rows.put(ledger_key, kept, fragments_weight(kept))
    return built, rows_html


def _current_year_of(ledger: Ledger, chart: cahier_format.Chart) -> cahier_days.Year:
    """The ledger's operations by day, brought up to date from the process's last look at them."""
    ledger_key = (ledger.id, ledger.created_at)
    kept = cahier_cache.years.get(ledger_key)
    year = cahier_days.current_year(db.session, ledger, kept, chart)
    if kept is None or year.revision >= kept.revision:  # a request on an older snapshot keeps the newer year
        cahier_cache.years.put(ledger_key, year, year_weight(year))
    return year


def _whole_year_rows(ledger: Ledger, year: cahier_days.Year, chart: cahier_format.Chart, printing: bool):
    """The whole year's classic view in date order, its rows kept by month (only changed days rendered)."""
    built = cahier_days.year_cahier(db.session, ledger, year, chart)
    columns = (
        (ledger.id, ledger.created_at),
        tuple(a.code for a in built.accounts),
        not printing,
        ledger.is_open,
        chart.signature,  # a row's cells follow from its operation's key and the chart's codes and natures
    )
    parts, kept = year_rows(
        built, year, books.MODE_LABELS, links=not printing, editable=ledger.is_open, kept=cahier_cache.days.get(columns)
    )
    cahier_cache.days.put(columns, kept, days_weight(kept))
    return built, parts


def _month(value: str | None, year: int) -> date | None:
    """The month asked for by `?mois=2025-10`, if it lies in the school year starting in `year`."""
    match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", value or "")  # a real month: 2026-13 is none
    if not match:
        return None
    chosen = (int(match[1]), int(match[2]))
    return date(*chosen, 1) if (year, 9) <= chosen <= (year + 1, 8) else None


@bp.route("/coop/cahier/<int:year>")
@access("coop")
def cahier(year: int):
    _check_year(year)
    ledgers = _ledgers_by_year()
    ledger = ledgers.get(year)
    sort = "piece" if request.args.get("tri") == "piece" else "date"  # a key of the page cache: two values only
    action_id = request.args.get("action", type=int)
    filters, printing = _cahier_filters(), bool(request.args.get("impression"))
    month = _month(request.args.get("mois"), year)
    data, rows = None, b""
    if ledger is not None:
        data, rows = _cahier_table(
            ledger, sort=sort, action_id=action_id, filters=filters, printing=printing, month=month
        )
    html = render_template(
        "ledger/cahier_print.html" if printing else "ledger/cahier.html",
        data=data,
        rows_html=ROWS_MARKER,
        phone_captions=phone_captions(data.accounts) if data is not None else "",
        sort=sort,
        filters=filters,
        action_id=action_id,
        month=month,
        filtered=any(filters.values()) or bool(action_id),
        bank_warning=books.bank_warning(data.bank_balance) if data is not None else None,
        **_cahier_page(year, ledger, data, ledgers.keys()),
    )
    return page_with_rows(html, rows)


class _ActionChoice(NamedTuple):
    id: int
    name: str


def _cahier_page(year: int, ledger: Ledger | None, data: cahier_format.Cahier | None, years: Iterable[int]) -> dict:
    """What the classic view shows around the table: years, actions and accounts to filter on, opening.
    The actions and accounts come with the table's data (read with it, kept with it) when there is one."""
    if data is not None:
        accounts = list(data.chart.values())
        names = sorted(data.action_names.items(), key=lambda item: (item[1].casefold(), item[1]))
        actions = [_ActionChoice(*item) for item in names]
    else:
        accounts = list(cahier_format.read_chart(db.session).columns.values())
        actions = sorted(db.session.scalars(owned(Action)), key=lambda a: (a.name.casefold(), a.name))
    return {
        "ledger": ledger,
        "year": year,
        "year_label": _year_label(year),
        "years": _year_choices(year, years),
        "actions": actions,
        "accounts": accounts,
        "modes": books.MODE_LABELS,
        "coop": current_user.coop,
        "has_opening": data is not None and data.has_opening,
    }


# -- entries -------------------------------------------------------------------------------------


@bp.route("/coop/cahier/<int:year>/nouvelle", methods=["GET", "POST"])
@access("coop")
def new_entry(year: int):
    _check_year(year)
    form = EntryForm()
    if request.method == "POST":
        return _submit_new_entry(form, year)
    # The token lives in the URL: Back re-fetches this no-store page with the same token, so an
    # operation already sent is recognised instead of being offered again with a fresh token.
    token = request.args.get("jeton", "")
    statement_line_id = request.args.get("releve", type=int)
    if not _FORM_TOKEN.fullmatch(token):
        return redirect(url_for("ledger.new_entry", year=year, jeton=uuid.uuid4().hex, releve=statement_line_id))
    existing = books.find_by_token(db.session, current_coop_id(), token)
    if existing is not None:
        return render_template("ledger/entry_recorded.html", entry=existing, year=year, year_label=_year_label(year))
    form.form_token.data = token
    form.piece.data = books.suggested_piece(db.session, _find_ledger(year))
    today = clock.today()
    form.date.data = today if books.current_start_year(today) == year else None
    form.cheque_number.data = books.next_cheque_number(db.session, current_coop_id())
    item = _statement_line(statement_line_id)
    if item is not None:
        form.prefill(reconciliation.suggest_entry(item, _membership_split(abs(item.amount_cents))), item.id)
    return _render_form(form, year)


def _already_recorded(entry: Entry, year: int):
    flash(f"L'opération {entry.piece} était déjà enregistrée : rien n'a été ajouté en double.", "info")
    return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{entry.id}"))


def _submit_new_entry(form: EntryForm, year: int):
    """POST of the entry form: recorded once per form token, whatever the clicks, refreshes or Back."""
    existing = books.find_by_token(db.session, current_coop_id(), form.form_token.data)
    if existing is not None:
        return _already_recorded(existing, year)
    if form.add_line.data:
        form.splits.append_entry()
        return _render_form(form, year)
    if form.resume.data:  # « Reprendre ma saisie » of a deleted operation: the typed values, nothing saved yet
        return _render_form(form, year, resumed=True)
    outcome = _record(form, year) if form.validate() else None
    if outcome is not None and outcome.conflict:  # a unique key lost a race: this form's token, or the piece
        existing = books.find_by_token(db.session, current_coop_id(), form.form_token.data)
        if existing is not None:
            return _already_recorded(existing, year)
    if outcome is None or not outcome.ok:
        return _render_form(form, year)
    entry, warning = outcome.value
    flash(f"Opération {entry.piece} enregistrée.", "success")
    if warning:
        flash(warning, "warning")
    if form.statement_line.data:
        return _point_with_statement_line(entry, form.statement_line_id(), year)
    return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{entry.id}"))


def _with_bank_warning(ledger: Ledger, result):
    """The domain call's result and the negative-bank warning, read inside the transaction (never after)."""
    return result, books.bank_warning(books.balances(db.session, ledger).bank)


def _record(form: EntryForm, year: int) -> uow.Outcome[tuple[Entry, str | None]]:
    """Record the valid form's entry (with the bank warning); a piece number taken meanwhile is said on box 1."""

    def record() -> tuple[Entry, str | None]:
        ledger = _ledger_for_write(year)
        entry = books.record_entry(
            db.session,
            ledger,
            form.entry_data(_action_id),
            by=current_user,
            idempotency_key=form.form_token.data or None,
            ip=client_ip(),
        )
        _store_vouchers(entry, form.voucher_uploads())
        return _with_bank_warning(ledger, entry)

    outcome = uow.run(
        record,
        form=form,
        fields=ENTRY_FIELDS,
        on_conflict=lambda exc: PIECE_TAKEN if isinstance(exc, IntegrityError) else None,
    )
    if PIECE_TAKEN in form.form_errors:  # the unit of work shows a conflict above the form: move it to box 1
        form.form_errors.remove(PIECE_TAKEN)
        form.piece.errors = [PIECE_TAKEN]
    return outcome


def _membership_split(amount: int) -> tuple[int, int] | None:
    """(cotisation, insurance) of the coop's membership of that total: how an OCCE debit is split."""
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
    return (membership.cotisation_cents, amount - membership.cotisation_cents) if membership else None


def _point_with_statement_line(entry: Entry, statement_line_id: int | None, year: int):
    """Point the new entry's bank line with the statement line it was created from.

    A transaction of its own, after the entry's: a refused pointage must not lose the entry.
    """
    item = _statement_line(statement_line_id)
    bank_lines = [line.id for line in entry.lines if line.account.code == books.BANK]
    if item is not None and bank_lines:

        def point() -> None:
            try:
                reconciliation.confirm_match(
                    db.session, current_coop_id(), item.id, bank_lines, by=current_user, ip=client_ip()
                )
            except DomainError as exc:
                raise DomainError(f"Elle n'a pas pu être pointée automatiquement : {exc.message}") from exc

        if uow.run(point, flash_category="warning").ok:
            flash("Elle est pointée avec la ligne du relevé.", "success")
    return redirect(url_for("pointage.screen", year=year, _anchor="resume"))


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
    entry = owned_or_none(Entry, entry_id)
    if entry is None:
        return _deleted_meanwhile(entry_id)
    year = entry.ledger.school_year.start_year
    if not entry.ledger.is_open or entry.kind == "opening":
        flash("Cette opération ne peut pas être modifiée ici.", "warning")
        return redirect(url_for("ledger.entry_detail", entry_id=entry.id))
    form = EntryForm()
    if request.method == "GET":
        form.fill_from(entry)
    elif form.add_line.data:
        form.splits.append_entry()
    elif form.resume.data:  # after a conflict: this tab's values again, on the new version; nothing saved
        return _render_form(form, year, entry, resumed=True)
    elif form.validate():
        return _submit_edit(form, entry, year)
    return _render_form(form, year, entry)


def _submit_edit(form: EntryForm, entry: Entry, year: int):
    """POST of a valid edit form: saved, or refused on its box; a stale form shows both versions to merge."""
    entry_id = entry.id

    def save():
        uncleared = books.update_entry(
            db.session,
            entry,
            form.entry_data(_action_id),
            expected_version=form.expected_version(),
            by=current_user,
            ip=client_ip(),
            now=clock.now(),
        )
        _store_vouchers(entry, form.voucher_uploads())
        return _with_bank_warning(entry.ledger, uncleared)

    lost_race: list[IntegrityError] = []

    def unique_key(exc: Exception) -> str | None:
        """A piece number or action name taken meanwhile elsewhere: not a change of this operation."""
        if isinstance(exc, IntegrityError):
            lost_race.append(exc)
            return TAKEN_MEANWHILE
        return None

    outcome = uow.run(save, form=form, fields=ENTRY_FIELDS, on_conflict=unique_key)
    if (outcome.conflict and not lost_race) or form.version.errors:  # changed meanwhile: show both to merge
        return _conflict_form(form, entry_id)
    if not outcome.ok:
        return _render_form(form, year, entry)
    uncleared, warning = outcome.value
    flash(f"Opération {entry.piece} modifiée.", "success")
    if warning:
        flash(warning, "warning")
    if uncleared:
        flash(
            "Le montant ou le côté banque a changé : le pointage de cette opération a été annulé. "
            "Pointez-la à nouveau sur le relevé.",
            "warning",
        )
    return redirect(url_for("ledger.cahier", year=year, _anchor=f"op-{entry.id}"))


# What a conflict page posts back of the typed form: its boxes, not its token, version, buttons or files.
_NOT_CARRIED = frozenset({"csrf_token", "form_token", "version", "submit", "add_line", "resume", "vouchers"})


def _typed_fields(**replacing: str) -> list[tuple[str, str]]:
    """The boxes this request posted, as (name, value) pairs for hidden inputs, with `replacing` added."""
    kept = [(name, value) for name, value in request.form.items(multi=True) if name not in _NOT_CARRIED]
    return kept + list(replacing.items())


def _conflict_form(typed: EntryForm, entry_id: int):
    """The edit form again with the saved values and version, and what this tab typed beside each box that
    differs. Nothing is saved: the user takes back what they want, then submits again."""
    entry = owned_or_none(Entry, entry_id)  # read again: the failed transaction was rolled back
    if entry is None:
        return _deleted_meanwhile(entry_id)
    saved = EntryForm(formdata=None)
    saved.fill_from(entry)
    typed.prepare(_account_choices(), _action_choices())
    differences = typed_differences(typed, saved)
    while len(saved.splits) < len(box_values(typed)["splits"].value):  # a row for each typed line to take back
        saved.splits.append_entry()
    merge = Merge(
        differences,
        typed_fields=_typed_fields(version=str(entry.version)),
        files_dropped=bool(typed.voucher_uploads()),
    )
    return _render_form(saved, entry.ledger.school_year.start_year, entry, merge=merge)


def _deleted_meanwhile(entry_id: int):
    """An edit form posted for an operation this coop deleted meanwhile: what was typed, to start a new one.

    Only a deletion recorded for the logged-in coop is told; any other missing id stays a 404.
    """
    deletion = None
    if request.method == "POST":
        deletion = db.session.scalar(
            sa.select(AuditEvent)
            .where(
                AuditEvent.action == "entry.deleted",
                AuditEvent.entity == "entry",
                AuditEvent.entity_id == entry_id,
                AuditEvent.coop_id == current_coop_id(),
            )
            # newest first along the (coop, created_at) index: only this coop's events are read
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(1)
        )
    if deletion is None:
        abort(404)
    before = deletion.before or {}
    year = books.current_start_year(date.fromisoformat(before["date"])) if before.get("date") else _current_year()
    typed = EntryForm()
    typed.prepare(_account_choices(), _action_choices())
    return render_template(
        "ledger/entry_deleted.html",
        piece=before.get("piece", ""),
        values=[value for value in box_values(typed).values() if value.value],
        typed_fields=_typed_fields(form_token=uuid.uuid4().hex, version=""),
        files_dropped=bool(typed.voucher_uploads()),
        year=year,
        year_label=_year_label(year),
    )


@bp.route("/coop/cahier/operation/<int:entry_id>/supprimer", methods=["GET", "POST"])
@access("coop")
def delete_entry(entry_id: int):
    entry = owned_or_404(Entry, entry_id)
    year = entry.ledger.school_year.start_year
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("ledger/confirm_delete.html", entry=entry, form=form, year=year)
    keys = [d.storage_key for d in db.session.scalars(owned(Document).where(Document.entry_id == entry.id))]
    piece, ledger = entry.piece, entry.ledger
    outcome = uow.run(
        lambda: _with_bank_warning(ledger, books.delete_entry(db.session, entry, by=current_user, ip=client_ip())),
        after_commit=lambda _: _remove_files(keys),  # its vouchers went with it
    )
    if not outcome.ok:
        return redirect(url_for("ledger.entry_detail", entry_id=entry_id))
    flash(f"Opération {piece} supprimée.", "success")
    if outcome.value[1]:
        flash(outcome.value[1], "warning")
    return redirect(url_for("ledger.cahier", year=year))


def _remove_files(storage_keys: list[str]) -> None:
    for key in storage_keys:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)


# -- vouchers ------------------------------------------------------------------------------------


@bp.route("/coop/cahier/operation/<int:entry_id>/justificatifs", methods=["POST"])
@access("coop")
def upload_voucher(entry_id: int):
    entry = owned_or_404(Entry, entry_id)
    form = VoucherForm()
    if not entry.ledger.is_open:
        label = entry.ledger.school_year.label
        flash(f"Le cahier {label} est clôturé : on ne peut plus y ajouter de justificatif.", "warning")
    elif not form.validate_on_submit():
        for errors in form.errors.values():
            flash(errors[0], "danger")
    elif uow.run(lambda: _store_voucher(entry, form.file.data)).ok:
        flash("Justificatif ajouté.", "success")
    return redirect(url_for("ledger.entry_detail", entry_id=entry.id))


def _store_vouchers(entry: Entry, uploads: list) -> None:
    """The files chosen in the entry form, stored with the entry: all or nothing (the caller's unit of work).

    A refused file is named in the message on the form's file field."""
    for upload in uploads:
        try:
            _store_voucher(entry, upload)
        except DomainError as exc:
            name = documents.safe_display_name(upload.filename)
            raise DomainError(
                f"« {name} » : {exc.message} Rien n'a été enregistré : choisissez à nouveau vos fichiers.",
                field="file",
            ) from exc


def _store_voucher(entry: Entry, upload) -> Document:
    return documents.store_document(
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


@bp.route("/coop/cahier/justificatif/<int:document_id>/supprimer", methods=["GET", "POST"])
@access("coop")
def delete_voucher(document_id: int):
    """Remove one voucher of an open year's entry, after a confirmation page; the file goes after the commit."""
    document = owned_or_404(Document, document_id)
    entry = owned_or_none(Entry, document.entry_id) if document.entry_id else None
    if entry is None or document.kind != "voucher":
        abort(404)
    if not entry.ledger.is_open:
        label = entry.ledger.school_year.label
        flash(f"Le cahier {label} est clôturé : ses justificatifs ne peuvent plus être supprimés.", "warning")
        return redirect(url_for("ledger.entry_detail", entry_id=entry.id))
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            "ledger/voucher_delete.html",
            document=document,
            entry=entry,
            form=form,
            year=entry.ledger.school_year.start_year,
        )
    name, key, entry_id = document.original_name, document.storage_key, entry.id
    outcome = uow.run(
        lambda: documents.remove_document(db.session, document, by=current_user, ip=client_ip()),
        after_commit=lambda _: _remove_files([key]),
    )
    if outcome.ok:
        flash(f"Justificatif « {name} » supprimé.", "success")
    return redirect(url_for("ledger.entry_detail", entry_id=entry_id))


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
    return send_document(document, audited=True)


# -- opening balances ----------------------------------------------------------------------------


@bp.route("/coop/cahier/<int:year>/report", methods=["GET", "POST"])
@access("coop")
def opening(year: int):
    _check_year(year)
    form = OpeningForm()
    if form.more.data and form.is_submitted():  # « Ajouter des lignes »: the same page with more blank rows
        form.add_rows()
    elif form.validate_on_submit():
        outcome = uow.run(
            lambda: books.record_opening(
                db.session,
                _ledger_for_write(year),
                bank=form.bank.data or 0,
                cash=form.cash.data or 0,
                items=form.carried_items(),
                by=current_user,
                ip=client_ip(),
                now=clock.now(),
            ),
            form=form,
            fields={"": "bank"},  # a refusal that names no field is about the bank balance
        )
        if outcome.ok:
            flash("Report à nouveau enregistré.", "success")
            return redirect(url_for("ledger.cahier", year=year))
    elif request.method == "GET":
        _fill_opening(form, _find_ledger(year))
    return render_template("ledger/opening.html", form=form, year=year, year_label=_year_label(year))


def _fill_opening(form: OpeningForm, ledger: Ledger | None) -> None:
    entry = books.opening_entry(db.session, ledger) if ledger is not None else None
    if entry is None:
        return
    items = books.carried_items(db.session, ledger)
    lines = [line for e in (entry, *items) for line in e.lines]
    form.bank.data = sum(line.amount_cents for line in lines if line.account.code == books.BANK)
    form.cash.data = sum(line.amount_cents for line in lines if line.account.code == books.CASH)
    while len(form.items) < len(items) + 1:
        form.items.append_entry()
    for row, item in zip(form.items, items, strict=False):
        amount = sum(line.amount_cents for line in item.lines if line.account.code == books.BANK)
        label, _, rest = item.label.rpartition(" (du ")
        row.form.direction.data = "out" if amount < 0 else "in"
        row.form.date.data = date(int(rest[6:10]), int(rest[3:5]), int(rest[0:2])) if label else None
        row.form.label.data = label or item.label
        row.form.cheque_number.data = item.cheque_number
        row.form.amount.data = abs(amount)


# -- actions -------------------------------------------------------------------------------------


@bp.route("/coop/actions", methods=["GET", "POST"])
@access("coop")
def actions():
    year = _check_year(request.args.get("annee", type=int) or _current_year())
    form = ActionForm()
    if form.validate_on_submit():
        outcome = uow.run(
            lambda: books.create_action(db.session, current_coop_id(), form.name.data, by=current_user, reuse=False),
            form=form,
        )
        if outcome.ok:
            flash(f"Action « {outcome.value.name} » créée.", "success")
            return redirect(url_for("ledger.actions", annee=year))
    return render_template(
        "ledger/actions.html",
        form=form,
        totals=books.action_totals(db.session, current_coop_id(), _find_ledger(year)),
        year=year,
        year_label=_year_label(year),
        years=_year_choices(year),
        rename_form=RenameActionForm(),
        archive_form=ArchiveActionForm(),
    )


@bp.route("/coop/actions/<int:action_id>/renommer", methods=["POST"])
@access("coop")
def rename_action(action_id: int):
    action = owned_or_404(Action, action_id)
    form = RenameActionForm()
    if not form.validate_on_submit():
        flash("Indiquez le nouveau nom de l'action.", "danger")
    elif uow.run(lambda: books.rename_action(db.session, action, form.name.data, by=current_user)).ok:
        flash("Action renommée.", "success")
    return redirect(url_for("ledger.actions", annee=request.args.get("annee", type=int)))


@bp.route("/coop/actions/<int:action_id>/archiver", methods=["POST"])
@access("coop")
def archive_action(action_id: int):
    action = owned_or_404(Action, action_id)
    form = ArchiveActionForm()
    if form.validate_on_submit():
        archived = form.archive.data != "0"
        # the wanted state: a double click or a replay changes nothing more
        if (
            action.is_archived == archived
            or uow.run(lambda: books.set_action_archived(db.session, action, archived, by=current_user)).ok
        ):
            flash(f"Action « {action.name} » {'archivée' if archived else 'réactivée'}.", "success")
    return redirect(url_for("ledger.actions", annee=request.args.get("annee", type=int)))


# -- CSV / XLSX ----------------------------------------------------------------------------------


def _export_name(year: int, extension: str) -> str:
    return f"cahier-{current_user.coop.login}-{year}-{year + 1}.{extension}"


@bp.route("/coop/cahier/<int:year>/export.csv")
@access("coop")
def export_csv(year: int):
    _check_year(year)
    ledger = _find_ledger(year)
    if ledger is None:
        content = iter(["\ufeff".encode() + ";".join(cahier_format.FIXED_COLUMNS).encode() + b"\r\n"])
    else:
        # the year the classic view keeps: only the operations changed since are read
        with gc_paused():
            figures = _current_year_of(ledger, cahier_format.read_chart(db.session)).figures()
            content = cahier_format.export_csv_chunks(db.session, ledger, figures)  # read now, formatted while sent
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
    line_errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        outcome = uow.run(lambda: _import(year, form.file.data, line_errors), form=form)
        if outcome.ok:
            flash(f"Import terminé : {outcome.value} opération(s) ajoutée(s) au cahier {_year_label(year)}.", "success")
            return redirect(url_for("ledger.cahier", year=year))
    return render_template("ledger/import.html", form=form, errors=line_errors, year=year, year_label=_year_label(year))


def _import(year: int, upload, line_errors: dict[str, list[str]]) -> int:
    """Import the CSV, all or nothing; its refusals are also kept in `line_errors`, listed by line on the page."""
    try:
        return cahier_format.import_cahier(
            db.session, _ledger_for_write(year), upload.read(), by=current_user, ip=client_ip(), now=clock.now()
        )
    except ValidationErrors as exc:
        line_errors.update(exc.errors)
        raise
