"""School years with their rates, and the federation's settings."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from wtforms import TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional, ValidationError

from admin.base import AdminWriteMixin, StaffModelView, format_date, format_money
from app import audit
from app.debits import check_creditor_id
from app.extensions import db
from app.identity import check_bic, check_iban
from app.money import format_rate_ppm
from app.web import uow
from app.web.netutil import client_ip
from forms.fields import MoneyField, RateField
from forms.validators import Normalise


def _after_year_end(form, field) -> None:
    """The reports of 2025-2026 can only be sent once that year ended on 31/08/2026."""
    start = form.start_year.data
    if field.data and start and field.data <= date(start + 1, 8, 31):
        raise ValidationError(
            f"La date limite des comptes rendus doit suivre la fin de l'année scolaire (31/08/{start + 1}), "
            f"par exemple le 31/10/{start + 1}."
        )


def _inside_year(form, field) -> None:
    """The membership of 2025-2026 is due during that year (1/09/2025 - 31/08/2026)."""
    start = form.start_year.data
    if field.data and start and not date(start, 9, 1) <= field.data <= date(start + 1, 8, 31):
        raise ValidationError(f"La date limite d'adhésion doit tomber dans l'année scolaire {start}-{start + 1}.")


class SchoolYearAdmin(AdminWriteMixin, StaffModelView):
    """School years and their rates: administrators only; other staff read them."""

    column_list = (
        "start_year",
        "pupil_fee_cents",
        "adult_fee_cents",
        "insurance_fee_cents",
        "property_threshold_cents",
        "property_rate_ppm",
        "membership_deadline",
        "reports_deadline",
    )
    column_default_sort = ("start_year", True)
    column_labels = {
        "start_year": "Année scolaire",
        "pupil_fee_cents": "Cotisation par élève",
        "adult_fee_cents": "Cotisation par adulte",
        "insurance_fee_cents": "Assurance par assuré",
        "property_threshold_cents": "Biens assurés sans supplément jusqu'à",
        "property_rate_ppm": "Coefficient au-delà (€ par €)",
        "membership_deadline": "Date limite d'adhésion",
        "reports_deadline": "Date limite des comptes rendus",
    }
    column_formatters = {
        "start_year": lambda v, c, m, n: m.label,
        "pupil_fee_cents": format_money,
        "adult_fee_cents": format_money,
        "insurance_fee_cents": format_money,
        "property_threshold_cents": format_money,
        "property_rate_ppm": lambda v, c, m, n: format_rate_ppm(m.property_rate_ppm),
        "membership_deadline": format_date,
        "reports_deadline": format_date,
    }
    form_columns = (
        "start_year",
        "pupil_fee_cents",
        "adult_fee_cents",
        "insurance_fee_cents",
        "property_threshold_cents",
        "property_rate_ppm",
        "membership_deadline",
        "reports_deadline",
    )
    form_overrides = {
        "pupil_fee_cents": MoneyField,
        "adult_fee_cents": MoneyField,
        "insurance_fee_cents": MoneyField,
        "property_threshold_cents": MoneyField,
        "property_rate_ppm": RateField,
    }
    _money = {"validators": [InputRequired("Montant obligatoire (ex. 2,05 ; 0 si rien).")]}  # 0 is a real amount
    form_args = {
        "start_year": {
            "validators": [DataRequired(), NumberRange(2000, 2100)],
            "description": "Année de la rentrée : 2025 pour 2025-2026.",
        },
        "pupil_fee_cents": {**_money, "description": "En euros, par exemple 2,05."},
        "adult_fee_cents": _money,
        "insurance_fee_cents": _money,
        "property_threshold_cents": _money,
        "property_rate_ppm": {"validators": [DataRequired()], "description": "Par exemple 0,00688."},
        "membership_deadline": {
            "validators": [Optional(), _inside_year],
            "description": "Pendant l'année scolaire, en général mi-octobre (15/10).",
        },
        "reports_deadline": {
            "validators": [Optional(), _after_year_end],
            "description": "Après le 31 août qui termine l'année (en général fin octobre de l'année suivante).",
        },
    }
    admin_can_delete = False


class FederationAdmin(AdminWriteMixin, StaffModelView):
    """The federation's settings: administrators only; other staff read them. A new creditor IBAN or
    ICS waits for a second administrator (`app.audit.request_change`), shown above the list."""

    list_template = "admin/federation_list.html"
    edit_template = "admin/federation_edit.html"

    column_list = ("name", "city", "creditor_id", "sender_email")
    column_labels = {
        "name": "Nom",
        "address": "Adresse",
        "postal_code": "Code postal",
        "city": "Commune",
        "department_code": "Département",
        "creditor_id": "Identifiant créancier SEPA (ICS)",
        "iban": "IBAN",
        "bic": "BIC",
        "sender_email": "E-mail d'expédition",
        "phone": "Téléphone",
        "no_debit_banks": "Banques sans prélèvement (adhésion payée par chèque)",
        "sepa_schema": "Version du fichier SEPA de prélèvement",
        "debit_lead_days": "Délai avant l'échéance (jours ouvrés)",
        "debit_notice_days": "Prévenance des coopératives avant le prélèvement (jours)",
        "debit_max_per_file": "Nombre maximal de prélèvements par fichier",
        "post_debits_to_ledgers": "Inscrire le prélèvement dans le cahier de chaque coopérative",
    }
    form_args = {
        "no_debit_banks": {
            "description": "Une banque par ligne ou séparées par des virgules, par exemple "
            "« La Banque Postale ». Les coopératives de ces banques règlent "
            "l'adhésion par chèque."
        },
        "creditor_id": {
            "validators": [Optional(), Normalise(check_creditor_id)],
            "description": "13 caractères, par exemple FR12ZZZ123456, fourni par la banque de l'OCCE 85.",
        },
        "iban": {"validators": [Optional(), Normalise(check_iban)]},
        "bic": {"validators": [Optional(), Normalise(check_bic)]},
        "sepa_schema": {"description": "pain.008.001.08 par défaut ; pain.008.001.02 si la banque le demande."},
        "debit_lead_days": {
            "validators": [NumberRange(1, 30, "Entre 1 et 30 jours ouvrés.")],
            "description": "Temps dont la banque a besoin avant la date d'échéance (souvent 2 à 5).",
        },
        "debit_notice_days": {
            "validators": [NumberRange(1, 60, "Entre 1 et 60 jours.")],
            "description": "Chaque coopérative reçoit un courriel (montant, date, RUM, ICS) à la création du "
            "prélèvement, au moins ce nombre de jours avant l'échéance : 14 selon le règlement SEPA, sauf délai "
            "plus court convenu.",
        },
        "debit_max_per_file": {
            "validators": [Optional(), NumberRange(1, 100000, "Entre 1 et 100 000, ou vide pour aucune limite.")],
            "description": "Vide : pas de limite. Si la banque limite ses fichiers (par exemple à 500 "
            "prélèvements), le prélèvement est découpé en plusieurs fichiers à déposer chacun.",
        },
        "post_debits_to_ledgers": {
            "description": "Si coché, « Prélèvement effectué » ajoute l'opération (non pointée) "
            "dans le cahier de chaque coopérative : cotisation 6281, assurance 61681."
        },
    }
    form_overrides = {"no_debit_banks": TextAreaField}
    form_choices = {
        "sepa_schema": [
            ("pain.008.001.08", "pain.008.001.08 (norme 2019, par défaut)"),
            ("pain.008.001.02", "pain.008.001.02 (ancienne version)"),
        ]
    }
    form_columns = (
        "name",
        "address",
        "postal_code",
        "city",
        "phone",
        "sender_email",
        "creditor_id",
        "iban",
        "bic",
        "no_debit_banks",
        "sepa_schema",
        "debit_lead_days",
        "debit_notice_days",
        "debit_max_per_file",
        "post_debits_to_ledgers",
    )
    admin_can_create = False
    admin_can_delete = False

    def on_model_change(self, form, model, is_created):
        # Runs inside Flask-Admin's own commit: the creditor IBAN and ICS are put back and proposed instead.
        proposed = audit.hold_for_confirmation(db.session, model, audit.FOUR_EYES_FIELDS["federation"], by=current_user)
        for name in proposed:
            flash(
                f"Le changement de « {self.column_labels[name]} » est en attente : il prendra effet quand un autre "
                "administrateur l'aura confirmé (page « OCCE 85 » des réglages).",
                "warning",
            )

    def render(self, template, **kwargs):
        kwargs["pending_changes"] = audit.pending_for(db.session, "federation")
        kwargs["pending_labels"] = self.column_labels
        return super().render(template, **kwargs)

    @expose("/en-attente/<int:change_id>", methods=["POST"])
    def decide_change(self, change_id: int):
        confirm = request.form.get("decision") == "confirmer"

        def decide():
            if confirm:
                return audit.confirm_change(db.session, change_id, by=current_user, ip=client_ip())
            return audit.cancel_change(db.session, change_id, by=current_user, ip=client_ip())

        outcome = uow.run(decide, flash_unplaced=True)
        if outcome.ok:
            flash("Changement confirmé : il est maintenant en vigueur." if confirm else "Changement annulé.", "success")
        return redirect(url_for(".index_view"))
