"""Chart of accounts, editable by staff (accounts are deactivated, never deleted)."""

from __future__ import annotations

from flask_login import current_user
from wtforms.validators import DataRequired, Length, Regexp

from admin.base import StaffModelView
from app import audit
from app.extensions import db
from app.models import NATURES
from app.web.netutil import client_ip


class AccountAdmin(StaffModelView):
    column_list = ("display_code", "code", "label", "nature", "is_active")
    column_default_sort = "code"
    column_sortable_list = ("code", "label", "nature", "is_active")
    column_searchable_list = ("code", "label")
    column_filters = ("nature", "is_active")
    column_labels = {
        "display_code": "Code OCCE",
        "code": "Compte",
        "label": "Libellé",
        "nature": "Nature",
        "is_active": "Actif",
        "notes": "Notes",
    }
    column_formatters = {"nature": lambda v, c, m, n: NATURES.get(m.nature, m.nature)}
    form_columns = ("code", "label", "nature", "is_active", "notes")
    form_choices = {"nature": list(NATURES.items())}
    form_args = {
        "code": {
            "validators": [DataRequired(), Regexp(r"^\d{2,7}$", message="De 2 à 7 chiffres (ex. 6281).")],
            "description": "Affiché avec le code OCCE à 8 chiffres : 6281 → 62810008.",
        },
        "label": {"validators": [DataRequired(), Length(max=200)]},
    }
    can_delete = False

    def on_model_change(self, form, model, is_created):
        db.session.flush()
        audit.record(
            db.session,
            "account.created" if is_created else "account.updated",
            actor=current_user,
            entity="account",
            entity_id=model.id,
            after={"code": model.code, "label": model.label, "nature": model.nature, "is_active": model.is_active},
            ip=client_ip(),
        )
