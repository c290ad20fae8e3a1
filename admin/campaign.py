"""The campaign dashboard's lists of coops, and reminders by mail (preview first, then the outbox)."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from admin.base import StaffAccessMixin
from app import audit, campaign
from app.extensions import db
from app.web.netutil import client_ip

DEFAULT_BODY = """Bonjour,

Sur le portail Coop 85, l'étape « {etape} » de la coopérative {identifiant} ({nom})
pour l'année {annee} est encore à l'état « {etat} ».

Pouvez-vous la compléter dès que possible ? Le portail vous guide pas à pas ;
en cas de difficulté, répondez simplement à ce message.

Merci et bonne journée,
L'équipe de l'OCCE 85
"""


class ReminderForm(FlaskForm):
    subject = StringField("Objet", validators=[DataRequired("Indiquez l'objet."), Length(max=200)])
    body = TextAreaField(
        "Message",
        validators=[DataRequired("Écrivez le message."), Length(max=5000)],
        description="Vous pouvez utiliser {nom}, {identifiant}, {ecole} et {annee} : ils sont "
        "remplacés pour chaque coopérative.",
        render_kw={"rows": 10},
    )


def _selection():
    step, state = request.args.get("etape", ""), request.args.get("etat", "")
    year = request.args.get("annee", type=int)
    if step not in campaign.STEPS or state not in campaign.STEPS[step][1] or year is None:
        abort(404)
    return step, state, year


class CampaignView(StaffAccessMixin, BaseView):
    """Reached from the dashboard's counts; not in the menu."""

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self):
        return redirect(url_for("admin.index"))

    @expose("/coops", methods=("GET", "POST"))
    def coops(self):
        step, state, year = _selection()
        title, states = campaign.STEPS[step]
        coops = campaign.coops_in_state(db.session, step, state, year)
        label = f"{year}-{year + 1}"
        form = ReminderForm()
        preview = None
        if request.method == "GET":
            form.subject.data = f"OCCE 85 — {title} {label} : action attendue"
            form.body.data = DEFAULT_BODY.replace("{etape}", title).replace("{etat}", states[state])
        elif form.validate_on_submit():
            if request.form.get("envoyer") == "1":
                queued, missing = campaign.queue_reminders(
                    db.session, coops, subject=form.subject.data, body=form.body.data, year_label=label
                )
                audit.record(
                    db.session,
                    "campaign.reminder",
                    actor=current_user,
                    entity="campaign",
                    after={
                        "step": step,
                        "state": state,
                        "year": year,
                        "queued": queued,
                        "subject": form.subject.data[:200],
                    },
                    ip=client_ip(),
                )
                db.session.commit()
                message = f"{queued} courriel(s) de relance mis dans la file d'envoi."
                if missing:
                    message += " Sans adresse e-mail : " + ", ".join(c.login for c in missing) + "."
                flash(message, "success")
                return redirect(url_for(".coops", etape=step, etat=state, annee=year))
            if coops:
                first = coops[0]
                preview = {
                    "to": first.email or "(pas d'adresse)",
                    "subject": campaign.render_reminder(form.subject.data, first, label),
                    "body": campaign.render_reminder(form.body.data, first, label),
                }
        return self.render(
            "admin/campaign_coops.html",
            coops=coops,
            step=step,
            state=state,
            year=year,
            title=title,
            state_label=states[state],
            label=label,
            form=form,
            preview=preview,
        )
