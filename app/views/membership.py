"""The membership step (adhésion) of the coop face: headcounts, fee, engagement, documents."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app import clock
from app.errors import DomainError
from app.extensions import db, limiter
from app.formats import fr_date
from app.mandates import current_mandate
from app.membership import (
    MAX_CLASSES,
    PAYMENT_LABELS,
    STATUS_LABELS,
    FeeBreakdown,
    Headcounts,
    Rates,
    commit_membership,
    compute_fee,
    frozen_fee,
    headcounts_from_rows,
    membership_of,
    no_debit_banks,
    past_memberships,
    payment_method_for,
    prefill,
    previous_membership,
    save_draft,
    year_of,
)
from app.models import Federation, Mandate, Membership, SchoolYear
from app.money import format_rate_ppm
from app.pdf import render_pdf
from app.web import notifications, uow
from app.web.netutil import client_ip
from app.web.security import access
from app.web.tenancy import owned_or_404
from forms.membership import LEVELS, ClassForm, EngagementForm, MembershipForm

bp = Blueprint("membership", __name__)
bp.add_app_template_filter(format_rate_ppm, "rate_ppm")

DOCUMENTS = {
    "attestation": ("pdf/membership_attestation.html", "attestation-adhesion"),
    "certificat": ("pdf/insurance_certificate.html", "certificat-assurance"),
}


def _coop():
    return current_user.coop


def _federation() -> Federation | None:
    return db.session.scalar(sa.select(Federation).limit(1))


def _lenient_headcounts(form: MembershipForm) -> Headcounts | None:
    """What the form holds now (a page re-rendered without saving), reading blanks as zero."""
    try:
        rows = [
            (
                e.form.name.data or "",
                e.form.level.data or "",
                int(e.form.pupils.data or 0),
                int(e.form.teachers.data or 0),
            )
            for e in form.classes.entries
        ]
        return headcounts_from_rows(
            rows,
            atsem=int(form.atsem.data or 0),
            aesh=int(form.aesh.data or 0),
            other_adults=int(form.other_adults.data or 0),
            property_value_cents=int(form.property_value.data or 0),
        )
    except (TypeError, ValueError):
        return None


def _fee_or_none(rates: Rates, headcounts: Headcounts) -> FeeBreakdown | None:
    try:
        return compute_fee(rates, headcounts)
    except DomainError:
        return None


def _render_form(
    form: MembershipForm,
    year: SchoolYear,
    *,
    domain_errors: list[str] | None = None,
    focus: str | None = None,
    status: int = 200,
):
    coop = _coop()
    rates = Rates.of_year(year)
    counts = _lenient_headcounts(form)
    return render_template(
        "coop/membership.html",
        form=form,
        coop=coop,
        year=year,
        rates=rates,
        counts=counts,
        fee=_fee_or_none(rates, counts) if counts is not None else None,
        row_template=ClassForm(prefix="classes-__index__-"),
        levels=LEVELS,
        max_classes=MAX_CLASSES,
        domain_errors=domain_errors or [],
        focus=focus,
        previous=previous_membership(db.session, coop, year),
        mandate=current_mandate(coop, clock.today()),
        payment_method=payment_method_for(db.session, coop),
        has_draft=membership_of(db.session, coop, year) is not None,
        past=past_memberships(db.session, coop, year),
        status_labels=STATUS_LABELS,
    ), status


def _render_summary(membership: Membership, year: SchoolYear):
    coop = _coop()
    return render_template(
        "coop/membership_summary.html",
        coop=coop,
        year=year,
        membership=membership,
        fee=frozen_fee(membership),
        status_labels=STATUS_LABELS,
        payment_labels=PAYMENT_LABELS,
        federation=_federation(),
        past=past_memberships(db.session, coop, year),
    )


@bp.route("/coop/adhesion", methods=["GET", "POST"])
@access("coop")
def step():
    coop = _coop()
    today = clock.today()
    year = year_of(db.session, today)
    if year is None:
        return render_template("coop/membership_closed.html", coop=coop, today=today)
    membership = membership_of(db.session, coop, year)
    if membership is not None and not membership.is_draft:
        if not _is_get():
            flash(f"L'adhésion {year.label} est déjà engagée : ses effectifs ne peuvent plus être modifiés.", "info")
            return redirect(url_for(".step"))
        return _render_summary(membership, year)
    form = MembershipForm()
    if _is_get():
        form.fill(prefill(db.session, coop, year))
        return _render_form(form, year)
    if form.add_class.data or form.remove_class.data:
        return _edit_rows(form, year)
    if not form.validate_on_submit():
        return _render_form(form, year)
    return _save_draft(form, coop, year)


def _save_draft(form: MembershipForm, coop, year):
    """Save the headcounts (a draft until the engagement), then go on to the engagement or back."""
    outcome = uow.run(
        lambda: save_draft(db.session, coop, year, form.headcounts(), by=current_user, ip=client_ip()),
        form=form,
        fields=_DRAFT_FIELDS,
        on_conflict=lambda exc: SAVED_MEANWHILE,  # the same coop saved from two tabs at once
    )
    if outcome.conflict:
        flash(outcome.errors[0], "warning")
        return redirect(url_for(".step"))
    if not outcome.ok:  # the messages are on the form (summary box at the top)
        return _render_form(form, year)
    return _after_draft_saved(form.engagement.data)


# Where save_draft's refusals show: whole-list problems and the engaged-meanwhile refusal go to the
# summary box (form errors); per-field ones stay on their field, which the box lists too.
_DRAFT_FIELDS = {"classes": ""}
SAVED_MEANWHILE = "Ces informations ont été enregistrées entre-temps depuis un autre onglet : vérifiez-les."


def _after_draft_saved(engagement: str | None):
    """PRG after a saved draft: on to the engagement, or a reminder of what is left to do."""
    if engagement == "oui":
        flash(
            "Vos informations sont mises à jour. Vérifiez le récapitulatif, puis confirmez votre engagement.", "success"
        )
        return redirect(url_for(".engagement"))
    if engagement == "non":
        flash(
            "Vos informations sont enregistrées. Seul·e la ou le mandataire de la coopérative peut engager "
            "l'adhésion : si le mandataire a changé, contactez l'OCCE 85.",
            "info",
        )
    else:
        flash(
            "Vos informations sont enregistrées. Pour terminer, répondez « Oui » à l'engagement du mandataire "
            "puis cliquez sur « Mettre à jour ces informations ».",
            "info",
        )
    return redirect(url_for(".step"))


def _edit_rows(form: MembershipForm, year: SchoolYear):
    """« Ajouter une classe » / « Supprimer » without JavaScript: the page again, nothing saved."""
    if form.add_class.data:
        if len(form.classes.entries) >= MAX_CLASSES:
            return _render_form(form, year, domain_errors=[f"Au plus {MAX_CLASSES} classes."])
        form.classes.append_entry()
        return _render_form(form, year, focus=form.classes.entries[-1].form.name.id)
    _remove_row(form, form.remove_class.data)
    return _render_form(form, year, focus=form.add_class.id)


def _is_get() -> bool:
    return request.method == "GET"


def _remove_row(form: MembershipForm, raw: str) -> None:
    """Remove the row at position `raw` (the button « Supprimer » without JavaScript); keep one row."""
    try:
        position = int(raw)
    except ValueError:
        return
    if 0 <= position < len(form.classes.entries):
        form.classes.entries.pop(position)
    if not form.classes.entries:
        form.classes.append_entry()


@bp.route("/coop/adhesion/engagement", methods=["GET", "POST"])
@access("coop")
def engagement():
    coop = _coop()
    today = clock.today()
    year = year_of(db.session, today)
    membership = membership_of(db.session, coop, year) if year is not None else None
    mandate = current_mandate(coop, today)
    form = EngagementForm()
    if form.validate_on_submit():
        return _engage(membership, mandate, year)
    fee = counts = None
    if membership is not None and membership.is_draft:
        counts = Headcounts.of(membership)
        fee = _fee_or_none(Rates.of_year(year), counts)
    return render_template(
        "coop/membership_engagement.html",
        coop=coop,
        year=year,
        membership=membership,
        mandate=mandate,
        fee=fee,
        counts=counts,
        form=form,
        payment_method=payment_method_for(db.session, coop),
        no_debit_banks=no_debit_banks(db.session),
    )


def _engage(membership: Membership | None, mandate: Mandate | None, year: SchoolYear | None):
    """« Je m'engage »: freeze the membership, queue the acknowledgement, on to the identity step."""
    if membership is None:
        flash("Enregistrez d'abord les effectifs de la coopérative.", "warning")
        return redirect(url_for(".step"))
    if not membership.is_draft:  # a double click or the Back button: nothing to do twice
        flash(f"L'adhésion {year.label} est déjà engagée.", "info")
        return redirect(url_for(".step"))
    label = year.label

    def engage() -> Membership:
        commit_membership(db.session, membership, mandate, by=current_user, ip=client_ip(), now=clock.now())
        notifications.membership_committed(db.session, membership)
        return membership

    outcome = uow.run(engage, on_conflict=lambda exc: f"L'adhésion {label} est déjà engagée.")  # another tab
    if not outcome.ok:
        return redirect(url_for(".step"))
    flash(
        f"Votre adhésion {label} est enregistrée (référence {outcome.value.reference}) ; un accusé de "
        "réception a été envoyé par courriel. Dernière étape : vérifiez l'identité de la coop et corrigez "
        "ce qui est faux ou manquant, puis cliquez sur « Valider les modifications ».",
        "success",
    )
    return redirect(url_for("coop.identity"))


@bp.route("/coop/adhesion/<int:id>/attestation.pdf")
@access("coop")
@limiter.limit("30 per minute")
def attestation(id: int):
    return _document(id, "attestation")


@bp.route("/coop/adhesion/<int:id>/certificat-assurance.pdf")
@access("coop")
@limiter.limit("30 per minute")
def certificate(id: int):
    return _document(id, "certificat")


def _document(membership_id: int, kind: str) -> Response:
    membership = owned_or_404(Membership, membership_id)
    if membership.status != "paid":  # documents exist once the payment is recorded
        abort(404)
    template, stem = DOCUMENTS[kind]
    html = render_template(
        template,
        coop=membership.coop,
        membership=membership,
        year=membership.school_year,
        fee=frozen_fee(membership),
        federation=_federation(),
        issued_on=fr_date(clock.today()),
    )
    pdf = render_pdf(html, current_app.static_folder)
    filename = f"{stem}-{membership.school_year.label}-{membership.coop.login}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"},
    )
