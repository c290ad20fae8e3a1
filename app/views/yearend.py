"""Year end on the coop face: the closing wizard, then the reports (CRA, CRF, quitus, documents, sending).

Every step is one page; each form posts, the domain checks, the view commits once and redirects
(PRG, one flash). GET requests never write: the yearly report row is created by the first POST.
The clock is `app.clock` (tests move it past 1 September with the `clock` fixture).
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from app import clock, closing, documents, reports
from app import ledger as books
from app.errors import DomainError, ValidationErrors
from app.extensions import db, limiter
from app.models import Federation, Ledger, SchoolYear, school_year_start
from app.pdf import render_pdf
from app.web import notifications
from app.web.filters import fr_date
from app.web.filters import money as _euros
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import owned
from forms.yearend import (
    CashCountForm,
    CloseForm,
    CraForm,
    DocumentForm,
    QuitusForm,
    StatementForm,
    SubmitReportForm,
    confirmation_matches,
)

bp = Blueprint("yearend", __name__)

STEPS = (
    ("closing", "Clôture du cahier", "yearend.closing"),
    ("cra", "Compte rendu d'activités", "yearend.cra"),
    ("crf", "Compte rendu financier", "yearend.crf"),
    ("quitus", "Quitus", "yearend.quitus"),
    ("documents", "Justificatifs", "yearend.documents"),
    ("submit", "Envoi", "yearend.submit"),
)


# -- helpers -------------------------------------------------------------------------------------


def _today() -> date:
    return clock.now().date()


def _last_year() -> int:
    """The school year to close and report on: the one that ended last 31 August."""
    return school_year_start(_today()) - 1


def _check_year(year: int) -> int:
    if not 2000 <= year <= school_year_start(_today()):
        abort(404)
    return year


def _ledger(year: int) -> Ledger | None:
    """The logged-in coop's ledger of `year` (never created here)."""
    return db.session.scalar(owned(Ledger).join(Ledger.school_year).where(SchoolYear.start_year == year))


def _coop():
    return current_user.coop


def _label(year: int) -> str:
    return f"{year}-{year + 1}"


def _federation() -> Federation | None:
    return db.session.scalar(sa.select(Federation).limit(1))


def _mandataires() -> list[str]:
    return reports.current_mandataires(_coop(), _today())


def _context(year: int, ledger: Ledger | None, report, step: str, **extra) -> dict:
    """What every year-end page shows: the year, the steps and where the coop stands."""
    return {
        "year": year,
        "year_label": _label(year),
        "next_label": _label(year + 1),
        "ledger": ledger,
        "report": report,
        "step": step,
        "steps": STEPS,
        "coop": _coop(),
        "status_labels": reports.STATUS_LABELS,
        **extra,
    }


def _require_closed(year: int) -> tuple[Ledger, object] | Response:
    """The closed ledger and its report (None until the first save), or a redirect to the wizard."""
    ledger = _ledger(_check_year(year))
    if ledger is None or ledger.is_open:
        flash(
            f"Clôturez d'abord le cahier {_label(year)} : les comptes rendus se remplissent après la clôture.", "info"
        )
        return redirect(url_for(".closing", year=year))
    return ledger, reports.find_report(db.session, ledger)


def _editable_report(ledger: Ledger):
    """The report to write to (created on the first save); raises DomainError once it is sent."""
    report = reports.ensure_report(db.session, ledger)
    reports.check_editable(report)
    return report


def _pdf_response(html: str, filename: str) -> Response:
    pdf = render_pdf(html, current_app.static_folder)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"},
    )


# -- the closing wizard --------------------------------------------------------------------------


@bp.route("/coop/cloture")
@access("coop")
def closing_current():
    return redirect(url_for(".closing", year=_last_year()))


def _render_closing(
    year: int, ledger: Ledger | None, *, cash_form=None, statement_form=None, close_form=None, status: int = 200
):
    today = _today()
    context = _context(
        year,
        ledger,
        reports.find_report(db.session, ledger) if ledger else None,
        "closing",
        today=today,
        opens_on=date(year + 1, 9, 1),
        end=date(year + 1, 8, 31),
    )
    if ledger is not None and ledger.is_open and closing.can_close_on(ledger, today):
        if cash_form is None:  # a form re-rendered with its errors keeps what was typed
            cash_form = CashCountForm(formdata=None)
            cash_form.fill(closing.CashCount.from_json(ledger.cash_count))
        if statement_form is None:
            statement_form = StatementForm(formdata=None)
            statement_form.balance.data = ledger.closing_statement_balance_cents
            if statement_form.balance.data is None and ledger.reconciliation_date == ledger.school_year.ends_on:
                # Already typed on the pointage screen for 31 August: offered, not retyped.
                statement_form.balance.data = ledger.reconciliation_balance_cents
        checks = closing.closing_checks(db.session, ledger, today=today)
        context.update(
            checks=checks,
            ready=all(c.ok for c in checks),
            balances=books.balances(db.session, ledger),
            reconciliation=closing.bank_reconciliation(db.session, ledger),
            cash_count=closing.CashCount.from_json(ledger.cash_count),
            cash_form=cash_form,
            statement_form=statement_form,
            close_form=close_form or CloseForm(formdata=None),
            denomination_label=closing.denomination_label,
            notes=closing.NOTES,
        )
    elif ledger is not None and not ledger.is_open:
        following = closing.next_ledger(db.session, ledger)
        context.update(
            closing_balances=books.balances(db.session, ledger),
            following=following,
            opening=closing.opening_balances(db.session, following) if following else None,
        )
    return render_template("yearend/closing.html", **context), status


@bp.route("/coop/cloture/<int:year>", endpoint="closing")
@access("coop")
def closing_page(year: int):
    return _render_closing(_check_year(year), _ledger(year))


def _open_ledger_for_closing(year: int) -> Ledger | Response:
    ledger = _ledger(_check_year(year))
    if ledger is None:
        abort(404)
    if not ledger.is_open:
        flash(f"Le cahier {_label(year)} est déjà clôturé.", "info")
        return redirect(url_for(".closing", year=year))
    if not closing.can_close_on(ledger, _today()):
        opens = fr_date(closing.closing_opens_on(ledger))
        flash(f"La clôture du cahier {_label(year)} sera possible à partir du {opens}.", "info")
        return redirect(url_for(".closing", year=year))
    return ledger


@bp.route("/coop/cloture/<int:year>/arrete-de-caisse", methods=["POST"])
@access("coop")
def save_cash_count(year: int):
    ledger = _open_ledger_for_closing(year)
    if not isinstance(ledger, Ledger):
        return ledger
    form = CashCountForm()
    if form.validate_on_submit():
        try:
            count = form.cash_count()
            closing.save_cash_count(db.session, ledger, count, by=current_user, ip=client_ip())
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            target = getattr(form, exc.field, None) if exc.field else None
            (target.errors if target is not None else form.form_errors).append(exc.message)
        else:
            cash = books.balances(db.session, ledger).cash
            if count.total == cash:
                flash(
                    f"Arrêté de caisse enregistré : {_euros(count.total)}, égal au solde de caisse du cahier.",
                    "success",
                )
            else:
                flash(
                    f"Arrêté de caisse enregistré : {_euros(count.total)}. Il ne correspond pas au solde de caisse "
                    f"du cahier ({_euros(cash)}) : recomptez la caisse ou corrigez le cahier.",
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
    if form.validate_on_submit():
        try:
            closing.save_statement_balance(db.session, ledger, form.balance.data, by=current_user, ip=client_ip())
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.balance.errors.append(exc.message)
        else:
            reconciliation = closing.bank_reconciliation(db.session, ledger)
            if reconciliation.is_reconciled:
                flash(
                    f"Solde du relevé enregistré : {_euros(form.balance.data)}. Le rapprochement bancaire tombe juste.",
                    "success",
                )
            else:
                flash(
                    f"Solde du relevé enregistré : {_euros(form.balance.data)}. Le rapprochement ne tombe pas juste "
                    f"(écart de {_euros(reconciliation.difference)}) : vérifiez le pointage.",
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
    form = CloseForm()
    coop = _coop()
    if form.validate_on_submit():
        if not confirmation_matches(form.confirmation.data, coop.login, coop.number):
            form.confirmation.errors.append(f"Ce n'est pas le numéro de votre coopérative : tapez {coop.login}.")
        else:
            try:
                done = closing.close_ledger(
                    db.session,
                    ledger,
                    statement_balance=ledger.closing_statement_balance_cents,
                    cash_count=closing.CashCount.from_json(ledger.cash_count),
                    by=current_user,
                    now=clock.now(),
                    ip=client_ip(),
                )
                db.session.commit()
            except closing.ClosingRefused as exc:
                db.session.rollback()
                form.confirmation.errors.append("La clôture est refusée : " + exc.message)
            except (DomainError, StaleDataError) as exc:
                db.session.rollback()
                form.confirmation.errors.append(
                    getattr(exc, "message", "Le cahier a changé entre-temps : vérifiez-le et recommencez.")
                )
            else:
                flash(
                    f"Le cahier {_label(year)} est clôturé. Le report à nouveau {_label(year + 1)} est de "
                    f"{_euros(done.bank)} en banque et {_euros(done.cash)} en caisse. Étape suivante : le compte "
                    "rendu d'activités.",
                    "success",
                )
                return redirect(url_for(".cra", year=year))
    return _render_closing(year, _ledger(year), close_form=form)


# -- reports: overview ---------------------------------------------------------------------------


@bp.route("/coop/compte-rendu")
@access("coop")
def report_current():
    return redirect(url_for(".overview", year=_last_year()))


@bp.route("/coop/compte-rendu/<int:year>")
@access("coop")
def overview(year: int):
    ledger = _ledger(_check_year(year))
    report = reports.find_report(db.session, ledger) if ledger else None
    missing = []
    if ledger is not None and not ledger.is_open:
        crf = reports.build_crf(db.session, ledger)
        missing = reports.missing_items(db.session, report, ledger, crf, _mandataires())
    return render_template("yearend/overview.html", missing=missing, **_context(year, ledger, report, "overview"))


# -- CRA -----------------------------------------------------------------------------------------


def _action_totals(ledger: Ledger) -> dict[str, books.ActionTotals]:
    return {total.action.name: total for total in books.action_totals(db.session, ledger.coop_id, ledger)}


def _render_cra(year: int, ledger: Ledger, report, form: CraForm, *, domain_errors=(), status: int = 200):
    membership = reports.membership_for(db.session, ledger)
    return render_template(
        "yearend/cra.html",
        form=form,
        totals=_action_totals(ledger),
        membership=membership,
        domain_errors=list(domain_errors),
        **_context(year, ledger, report, "cra"),
    ), status


@bp.route("/coop/compte-rendu/<int:year>/activites", methods=["GET", "POST"])
@access("coop")
def cra(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    form = CraForm()
    if request.method == "GET":
        form.fill(reports.cra_prefill(db.session, ledger, report))
        return _render_cra(year, ledger, report, form)
    if form.add_class.data or form.add_action.data:
        (form.classes if form.add_class.data else form.actions).append_entry()
        return _render_cra(year, ledger, report, form)
    if not form.validate_on_submit():
        return _render_cra(year, ledger, report, form)
    try:
        report = _editable_report(ledger)
        reports.save_cra(db.session, report, form.answers(), by=current_user, now=clock.now(), ip=client_ip())
        db.session.commit()
    except ValidationErrors as exc:
        db.session.rollback()
        return _render_cra(
            year,
            ledger,
            reports.find_report(db.session, ledger),
            form,
            domain_errors=[m for messages in exc.errors.values() for m in messages],
        )
    except (DomainError, StaleDataError) as exc:
        db.session.rollback()
        flash(getattr(exc, "message", "Le compte rendu a été modifié entre-temps : vérifiez-le."), "warning")
        return redirect(url_for(".cra", year=year))
    if form.next.data:
        flash("Compte rendu d'activités enregistré. Vérifiez maintenant le compte rendu financier.", "success")
        return redirect(url_for(".crf", year=year))
    flash("Compte rendu d'activités enregistré.", "success")
    return redirect(url_for(".cra", year=year))


# -- CRF -----------------------------------------------------------------------------------------


@bp.route("/coop/compte-rendu/<int:year>/financier")
@access("coop")
def crf(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    return render_template(
        "yearend/crf.html",
        crf=reports.build_crf(db.session, ledger),
        denomination_label=closing.denomination_label,
        **_context(year, ledger, report, "crf"),
    )


@bp.route("/coop/compte-rendu/<int:year>/financier.pdf")
@access("coop")
@limiter.limit("30 per minute")
def crf_pdf(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    html = render_template(
        "pdf/crf.html",
        crf=reports.build_crf(db.session, ledger),
        federation=_federation(),
        report=report,
        denomination_label=closing.denomination_label,
        issued_on=fr_date(_today()),
    )
    return _pdf_response(html, f"compte-rendu-financier-{_label(year)}-{_coop().login}.pdf")


# -- quitus --------------------------------------------------------------------------------------


def _render_quitus(year: int, ledger: Ledger, report, form: QuitusForm, *, domain_errors=None, status: int = 200):
    general: list[str] = []
    for key, messages in (domain_errors or {}).items():  # put each rule's message on its field
        row = key.removeprefix("auditors-")
        if row.isdigit() and int(row) < len(form.auditors.entries):
            form.auditors.entries[int(row)].form.name.errors = [
                *form.auditors.entries[int(row)].form.name.errors,
                *messages,
            ]
        elif key == "mandataire_name":
            form.mandataire_name.errors = [*form.mandataire_name.errors, *messages]
        else:
            general.extend(messages)
    return render_template(
        "yearend/quitus.html",
        form=form,
        crf=reports.build_crf(db.session, ledger),
        qualities=reports.AUDITOR_QUALITIES,
        general_errors=general,
        has_errors=bool(domain_errors) or bool(form.errors),
        mandataires=_mandataires(),
        **_context(year, ledger, report, "quitus"),
    ), status


@bp.route("/coop/compte-rendu/<int:year>/quitus", methods=["GET", "POST"])
@access("coop")
def quitus(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    form = QuitusForm()
    if request.method == "GET":
        auditors, mandataire = reports.quitus_of(report)
        if not mandataire:
            mandataire = next(iter(_mandataires()), "")
        form.fill(auditors, mandataire)
        return _render_quitus(year, ledger, report, form)
    if form.add_auditor.data:
        if len(form.auditors.entries) < reports.MAX_AUDITORS:
            form.auditors.append_entry()
        return _render_quitus(year, ledger, report, form)
    if not form.validate_on_submit():
        return _render_quitus(year, ledger, report, form)
    try:
        report = _editable_report(ledger)
        reports.save_quitus(
            db.session,
            report,
            form.auditor_list(),
            form.mandataire_name.data,
            mandataires=_mandataires(),
            by=current_user,
            now=clock.now(),
            ip=client_ip(),
        )
        db.session.commit()
    except ValidationErrors as exc:
        db.session.rollback()
        return _render_quitus(year, ledger, reports.find_report(db.session, ledger), form, domain_errors=exc.errors)
    except (DomainError, StaleDataError) as exc:
        db.session.rollback()
        flash(getattr(exc, "message", "Le compte rendu a été modifié entre-temps : vérifiez-le."), "warning")
        return redirect(url_for(".quitus", year=year))
    flash(
        "Vérificateurs enregistrés. Imprimez la page Quitus, faites-la signer, puis déposez-la avec les justificatifs.",
        "success",
    )
    return redirect(url_for(".quitus", year=year, _anchor="imprimer"))


@bp.route("/coop/compte-rendu/<int:year>/quitus.pdf")
@access("coop")
@limiter.limit("30 per minute")
def quitus_pdf(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    if report is None or report.quitus_saved_at is None:
        flash(
            "Indiquez d'abord les vérificateurs aux comptes, puis cliquez sur « Valider les modifications ».", "warning"
        )
        return redirect(url_for(".quitus", year=year))
    auditors, mandataire = reports.quitus_of(report)
    html = render_template(
        "pdf/quitus.html",
        crf=reports.build_crf(db.session, ledger),
        federation=_federation(),
        auditors=auditors,
        mandataire=mandataire,
        qualities=reports.AUDITOR_QUALITIES,
        issued_on=fr_date(_today()),
    )
    return _pdf_response(html, f"quitus-{_label(year)}-{_coop().login}.pdf")


# -- supporting documents ------------------------------------------------------------------------


def _render_documents(year: int, ledger: Ledger, report, *, errors: dict[str, str] | None = None, status: int = 200):
    crf = reports.build_crf(db.session, ledger)
    return render_template(
        "yearend/documents.html",
        slots=reports.document_slots(crf),
        present=reports.report_documents(db.session, report),
        errors=errors or {},
        form=DocumentForm(formdata=None),
        max_mb=reports.REPORT_MAX_BYTES // (1024 * 1024),
        **_context(year, ledger, report, "documents"),
    ), status


@bp.route("/coop/compte-rendu/<int:year>/justificatifs", methods=["GET", "POST"], endpoint="documents")
@access("coop")
def documents_page(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    if request.method == "GET":
        return _render_documents(year, ledger, report)
    form = DocumentForm()
    slots = {slot.key: slot for slot in reports.document_slots(reports.build_crf(db.session, ledger))}
    slot = slots.get(form.slot.data or "")
    if slot is None:
        abort(400)
    if not form.validate_on_submit():
        csrf = getattr(form, "csrf_token", None)
        expired = (
            ["La page a expiré : rechargez-la, puis choisissez à nouveau le fichier."] if (csrf and csrf.errors) else []
        )
        message = next(iter(form.file.errors or expired or ["Choisissez un fichier (PDF, JPEG ou PNG)."]))
        return _render_documents(year, ledger, report, errors={slot.key: message})
    upload = form.file.data
    try:
        report = _editable_report(ledger)
        document, removed = reports.attach_document(
            db.session,
            report,
            slot,
            upload_dir=current_app.config["UPLOAD_DIR"],
            filename=upload.filename or "",
            content=upload.read(),
            by=current_user,
            ip=client_ip(),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.field == "file":
            return _render_documents(
                year, ledger, reports.find_report(db.session, ledger), errors={slot.key: exc.message}
            )
        flash(exc.message, "warning")
        return redirect(url_for(".documents", year=year))
    for key in removed:
        documents.remove_file(current_app.config["UPLOAD_DIR"], key)
    flash(
        f"{slot.label} : {'fichier remplacé' if removed else 'fichier déposé'} ({document.original_name}).", "success"
    )
    return redirect(url_for(".documents", year=year, _anchor=f"piece-{slot.key}"))


# -- submission ----------------------------------------------------------------------------------


@bp.route("/coop/compte-rendu/<int:year>/envoi", methods=["GET", "POST"])
@access("coop")
def submit(year: int):
    found = _require_closed(year)
    if isinstance(found, Response):
        return found
    ledger, report = found
    crf = reports.build_crf(db.session, ledger)
    form = SubmitReportForm()
    if form.validate_on_submit():
        if report is not None and report.status == "submitted":  # a double click or Back then submit
            flash(f"Votre compte rendu {_label(year)} est déjà envoyé.", "info")
            return redirect(url_for(".submit", year=year))
        try:
            report = _editable_report(ledger)
            reports.submit_report(
                db.session, report, crf, mandataires=_mandataires(), by=current_user, now=clock.now(), ip=client_ip()
            )
            notifications.report_submitted(db.session, report, crf)
            db.session.commit()
        except ValidationErrors:
            db.session.rollback()
            flash("Il manque encore des éléments : voyez la liste ci-dessous.", "warning")
            return redirect(url_for(".submit", year=year))
        except (DomainError, StaleDataError) as exc:
            db.session.rollback()
            flash(getattr(exc, "message", "Le compte rendu a été modifié entre-temps : vérifiez-le."), "warning")
            return redirect(url_for(".submit", year=year))
        flash(
            f"Compte rendu {_label(year)} envoyé à l'OCCE 85. Un accusé de réception vous a été envoyé par courriel.",
            "success",
        )
        return redirect(url_for(".submit", year=year))
    missing = reports.missing_items(db.session, report, ledger, crf, _mandataires())
    present = reports.report_documents(db.session, report)
    return render_template(
        "yearend/submit.html",
        form=form,
        crf=crf,
        missing=missing,
        present=present,
        slots=reports.document_slots(crf),
        **_context(year, ledger, report, "submit"),
    )
