"""The closing wizard: cash count, statement balance at 31 August, definitive closing."""

from __future__ import annotations

from datetime import date

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from app import clock, closing
from app import ledger as books
from app.annual_report import find_report
from app.extensions import db
from app.formats import euros, fr_date
from app.models import Ledger
from app.reconciliation import Reconciliation
from app.views.yearend.blueprint import bp
from app.views.yearend.common import check_year, context, coop, find_ledger, label, last_year, today
from app.web import uow
from app.web.netutil import client_ip
from app.web.security import access
from forms.yearend import CashCountForm, CloseForm, StatementForm


@bp.route("/coop/cloture")
@access("coop")
def closing_current():
    return redirect(url_for(".closing", year=last_year()))


def _close_form(**kwargs) -> CloseForm:
    return CloseForm(login=coop().login, number=coop().number, **kwargs)


def _wizard(ledger: Ledger, cash_form, statement_form, close_form) -> dict:
    """The open ledger's checks, balances, reconciliation and the three forms (those re-rendered
    with their errors keep what was typed; the others show what is recorded)."""
    if cash_form is None:
        cash_form = CashCountForm(formdata=None)
        cash_form.fill(closing.CashCount.from_json(ledger.cash_count))
    if statement_form is None:
        statement_form = StatementForm(formdata=None)
        statement_form.balance.data = ledger.closing_statement_balance_cents
        if statement_form.balance.data is None and ledger.reconciliation_date == ledger.school_year.ends_on:
            # Already typed on the pointage screen for 31 August: offered, not retyped.
            statement_form.balance.data = ledger.reconciliation_balance_cents
    checks = closing.closing_checks(db.session, ledger, today=today())
    return dict(
        checks=checks,
        ready=all(c.ok for c in checks),
        balances=books.balances(db.session, ledger),
        reconciliation=closing.bank_reconciliation(db.session, ledger),
        cash_count=closing.CashCount.from_json(ledger.cash_count),
        cash_form=cash_form,
        statement_form=statement_form,
        close_form=close_form or _close_form(formdata=None),
        opening_conflict=closing.opening_conflict(db.session, ledger),
    )


def _render_closing(year: int, ledger: Ledger | None, *, cash_form=None, statement_form=None, close_form=None):
    extra = {"today": today(), "opens_on": date(year + 1, 9, 1), "end": date(year + 1, 8, 31)}
    if ledger is not None and ledger.is_open and closing.can_close_on(ledger, today()):
        extra.update(_wizard(ledger, cash_form, statement_form, close_form))
    elif ledger is not None and not ledger.is_open:
        following = closing.next_ledger(db.session, ledger)
        extra.update(
            closing_balances=books.balances(db.session, ledger),
            following=following,
            opening=closing.opening_balances(db.session, following) if following else None,
        )
    report = find_report(db.session, ledger) if ledger else None
    return render_template("yearend/closing.html", **context(year, ledger, report, "closing", **extra))


@bp.route("/coop/cloture/<int:year>", endpoint="closing")
@access("coop")
def closing_page(year: int):
    return _render_closing(check_year(year), find_ledger(year))


def _open_ledger_for_closing(year: int) -> Ledger | Response:
    """The ledger the wizard may write to, or a redirect saying why not (closed, or too early)."""
    ledger = find_ledger(check_year(year))
    if ledger is None:
        abort(404)
    if not ledger.is_open:
        flash(f"Le cahier {label(year)} est déjà clôturé.", "info")
        return redirect(url_for(".closing", year=year))
    if not closing.can_close_on(ledger, today()):
        opens = fr_date(closing.closing_opens_on(ledger))
        flash(f"La clôture du cahier {label(year)} sera possible à partir du {opens}.", "info")
        return redirect(url_for(".closing", year=year))
    return ledger


@bp.route("/coop/cloture/<int:year>/arrete-de-caisse", methods=["POST"])
@access("coop")
def save_cash_count(year: int):
    ledger = _open_ledger_for_closing(year)
    if not isinstance(ledger, Ledger):
        return ledger
    form = CashCountForm()

    def save() -> tuple[int, int]:
        count = form.cash_count()
        closing.save_cash_count(db.session, ledger, count, by=current_user, ip=client_ip())
        return count.total, books.balances(db.session, ledger).cash

    if form.validate_on_submit() and (outcome := uow.run(save, form=form)).ok:
        total, cash = outcome.value
        if total == cash:
            flash(f"Arrêté de caisse enregistré : {euros(total)}, égal au solde de caisse du cahier.", "success")
        else:
            flash(
                f"Arrêté de caisse enregistré : {euros(total)}. Il ne correspond pas au solde de caisse "
                f"du cahier ({euros(cash)}) : recomptez la caisse ou corrigez le cahier.",
                "warning",
            )
        return redirect(url_for(".closing", year=year, _anchor="caisse"))
    return _render_closing(year, ledger, cash_form=form)


@bp.route("/coop/cloture/<int:year>/releve", methods=["POST"])
@access("coop")
def save_statement(year: int):
    ledger = _open_ledger_for_closing(year)
    if not isinstance(ledger, Ledger):
        return ledger
    form = StatementForm()

    def save() -> Reconciliation:
        closing.save_statement_balance(db.session, ledger, form.balance.data, by=current_user, ip=client_ip())
        return closing.bank_reconciliation(db.session, ledger)

    if form.validate_on_submit() and (outcome := uow.run(save, form=form)).ok:
        saved = f"Solde du relevé enregistré : {euros(form.balance.data)}."
        if outcome.value.is_reconciled:
            flash(f"{saved} Le rapprochement bancaire tombe juste.", "success")
        else:
            flash(
                f"{saved} Le rapprochement ne tombe pas juste (écart de {euros(outcome.value.difference)}) : "
                "vérifiez le pointage.",
                "warning",
            )
        return redirect(url_for(".closing", year=year, _anchor="rapprochement"))
    return _render_closing(year, ledger, statement_form=form)


@bp.route("/coop/cloture/<int:year>/cloturer", methods=["POST"])
@access("coop")
def close(year: int):
    ledger = _open_ledger_for_closing(year)
    if not isinstance(ledger, Ledger):
        return ledger
    form = _close_form()

    replace = bool(form.replace_opening.data)
    if form.validate_on_submit() and (outcome := uow.run(lambda: _close_for_good(ledger, replace), form=form)).ok:
        done = outcome.value
        flash(
            f"Le cahier {label(year)} est clôturé. Le report à nouveau {label(year + 1)} est de "
            f"{euros(done.bank)} en banque et {euros(done.cash)} en caisse. Étape suivante : le compte "
            "rendu d'activités.",
            "success",
        )
        return redirect(url_for(".cra", year=year))
    return _render_closing(year, find_ledger(year), close_form=form)


def _close_for_good(ledger: Ledger, replace_opening: bool) -> closing.Closing:
    """Close with the statement balance and the cash count recorded by the wizard's first two steps
    (a typed opening of the next year that differs is replaced only when the coop ticked the box)."""
    return closing.close_ledger(
        db.session,
        ledger,
        statement_balance=ledger.closing_statement_balance_cents,
        cash_count=closing.CashCount.from_json(ledger.cash_count),
        by=current_user,
        now=clock.now(),
        ip=client_ip(),
        replace_opening=replace_opening,
    )
