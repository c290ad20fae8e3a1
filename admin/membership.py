"""Memberships in the back office: the campaign list with the frozen amounts, and « Chèque reçu ».

Memberships are read-only here: their status only moves through `app.membership` (the cheque
action below; the direct-debit batches call `transition` / `record_debit_paid`).
"""

from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_login import current_user
from markupsafe import Markup, escape

from admin.base import StaffModelView, format_datetime, format_money
from app import clock
from app.errors import DomainError
from app.extensions import db
from app.formats import euros
from app.membership import PAYMENT_LABELS, STATUS_LABELS, frozen_fee, record_cheque
from app.models import Membership, coop_login
from app.web import notifications, uow
from app.web.netutil import client_ip


def _breakdown(view, context, model: Membership, name) -> Markup:
    if model.total_cents is None:
        return Markup("Non arrêté (brouillon)")
    fee = frozen_fee(model)
    rates = fee.rates
    lines = [
        f"Cotisation : {fee.pupils} élève(s) × {euros(rates.pupil_fee_cents)} + {fee.adults} adulte(s) × "
        f"{euros(rates.adult_fee_cents)} = {euros(fee.cotisation_cents)}",
        f"Assurance : {fee.insured} assuré(s) × {euros(rates.insurance_fee_cents)} = {euros(fee.insurance_cents)}",
        f"Supplément biens : {euros(model.property_value_cents)} déclarés, {euros(fee.property_excess_cents)} "
        f"au-delà du seuil = {euros(fee.property_surcharge_cents)}",
        f"Total : {euros(fee.total_cents)}",
    ]
    return Markup("<br>").join(escape(line) for line in lines)


def _classes(view, context, model: Membership, name) -> Markup:
    rows = [f"{c.name} ({c.level}) : {c.pupils} élève(s), {c.teachers} enseignant(s)" for c in model.classes]
    rows.append(f"ATSEM {model.atsem_count}, AESH {model.aesh_count}, autres adultes {model.other_adults_count}")
    return Markup("<br>").join(escape(row) for row in rows)


class MembershipAdmin(StaffModelView):
    can_create = False
    can_edit = False
    can_delete = False
    column_list = (
        "reference",
        "coop",
        "school_year",
        "status",
        "payment_method",
        "insured_count",
        "cotisation_cents",
        "assurance_cents",
        "total_cents",
        "committed_at",
        "paid_at",
    )
    column_default_sort = ("committed_at", True)
    column_sortable_list = (
        "reference",
        "status",
        "payment_method",
        "insured_count",
        "total_cents",
        "committed_at",
        "paid_at",
        ("coop", "coop.number"),
        ("school_year", "school_year.start_year"),
    )
    column_searchable_list = ("reference", "coop.name", "mandataire_name")
    column_filters = ("status", "payment_method", "school_year.start_year", "coop.number", "committed_at", "paid_at")
    column_choices = {"status": list(STATUS_LABELS.items()), "payment_method": list(PAYMENT_LABELS.items())}
    column_labels = {
        "reference": "Référence",
        "coop": "Coopérative",
        "school_year": "Année scolaire",
        "status": "Statut",
        "payment_method": "Paiement",
        "insured_count": "Assurés",
        "cotisation_cents": "Cotisation",
        "assurance_cents": "Assurance",
        "total_cents": "Total",
        "committed_at": "Engagée le",
        "paid_at": "Réglée le",
        "school_year.start_year": "Année de rentrée",
        "coop.number": "N° de coopérative",
        "mandataire_name": "Mandataire",
        "committed_ip": "Adresse IP de l'engagement",
        "breakdown": "Détail du montant",
        "classes": "Effectifs",
        "property_value_cents": "Biens déclarés",
        "pupils_count": "Élèves",
        "teachers_count": "Enseignants",
        "coop.name": "Nom de la coopérative",
    }
    column_formatters = {
        "coop": lambda v, c, m, n: f"{coop_login(m.coop.number)} {m.coop.name}",
        "cotisation_cents": format_money,
        "total_cents": format_money,
        "assurance_cents": lambda v, c, m, n: euros(m.assurance_cents),
        "property_value_cents": format_money,
        "committed_at": format_datetime,
        "paid_at": format_datetime,
        "breakdown": _breakdown,
        "classes": _classes,
    }
    column_details_list = (
        "reference",
        "coop",
        "school_year",
        "status",
        "payment_method",
        "classes",
        "pupils_count",
        "teachers_count",
        "insured_count",
        "property_value_cents",
        "breakdown",
        "mandataire_name",
        "committed_at",
        "committed_ip",
        "paid_at",
    )

    @action(
        "cheque_received",
        "Chèque reçu",
        "Enregistrer le chèque des adhésions sélectionnées ? Elles passent à « Réglée » et chaque "
        "coopérative reçoit un courriel.",
    )
    def action_cheque_received(self, ids):
        ids = [int(i) for i in ids]
        recorded: list[str] = []
        refused: list[str] = []

        def record_cheques() -> None:
            # One savepoint per membership: a refused one does not undo the others.
            memberships = db.session.scalars(
                db.select(Membership).where(Membership.id.in_(ids)).order_by(Membership.id)
            ).all()
            now = clock.now()
            for membership in memberships:
                try:
                    with db.session.begin_nested():
                        record_cheque(db.session, membership, by=current_user, ip=client_ip(), now=now)
                        notifications.membership_paid(db.session, membership)
                except DomainError as exc:
                    refused.append(exc.message)
                else:
                    recorded.append(membership.reference)

        if not uow.run(record_cheques).ok:
            return
        if recorded:
            flash(
                f"Chèque enregistré pour {len(recorded)} adhésion(s) : {', '.join(recorded)}. "
                "Les coopératives ont été prévenues par courriel.",
                "success",
            )
        for message in refused:
            flash(message, "warning")
