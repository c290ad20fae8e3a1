"""Read-only audit log and the mail outbox."""

from __future__ import annotations

from flask import flash
from flask_admin.actions import action

from admin.base import StaffModelView, format_datetime
from app import clock
from app.extensions import db
from app.mail import retry
from app.models import OutboxEmail
from app.web import uow


class AuditEventAdmin(StaffModelView):
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("created_at", "actor_login", "coop", "action", "entity", "entity_id", "ip")
    column_default_sort = ("created_at", True)
    column_labels = {
        "created_at": "Date",
        "actor_login": "Utilisateur",
        "coop": "Coopérative",
        "action": "Action",
        "entity": "Objet",
        "entity_id": "N°",
        "ip": "Adresse IP",
        "before": "Avant",
        "after": "Après",
        "coop.number": "N° de coopérative",
        "coop.name": "Nom de la coopérative",
    }
    column_formatters = {"created_at": format_datetime}
    column_searchable_list = ("actor_login", "action")
    column_filters = ("created_at", "actor_login", "action", "entity", "coop.number", "coop.name")
    column_details_list = (
        "created_at",
        "actor_login",
        "coop_id",
        "action",
        "entity",
        "entity_id",
        "ip",
        "before",
        "after",
    )


class OutboxAdmin(StaffModelView):
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("created_at", "recipient", "subject", "status", "attempts", "next_attempt_at", "last_error")
    column_default_sort = ("created_at", True)
    column_labels = {
        "created_at": "Créé le",
        "recipient": "Destinataire",
        "subject": "Objet",
        "status": "État",
        "attempts": "Essais",
        "next_attempt_at": "Prochain essai",
        "last_error": "Dernière erreur",
        "sent_at": "Envoyé le",
        "body_text": "Texte",
    }
    column_formatters = {"created_at": format_datetime, "next_attempt_at": format_datetime}
    column_filters = ("status", "recipient")
    column_searchable_list = ("recipient", "subject")
    column_details_list = (
        "created_at",
        "recipient",
        "subject",
        "status",
        "attempts",
        "sent_at",
        "last_error",
        "body_text",
    )

    @action("retry", "Renvoyer", "Remettre ces courriels dans la file d'envoi ?")
    def action_retry(self, ids):
        ids = [int(i) for i in ids]

        def retry_mails() -> int:
            rows = db.session.scalars(
                db.select(OutboxEmail).where(OutboxEmail.id.in_(ids), OutboxEmail.status != "sent")
            ).all()
            now = clock.now()
            for row in rows:
                retry(row, now)
            return len(rows)

        outcome = uow.run(retry_mails)
        if outcome.ok:
            flash(f"{outcome.value} courriel(s) remis dans la file d'envoi.", "success")
