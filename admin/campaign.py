"""The campaign dashboard's lists of coops, and reminders by mail (preview first, then the outbox)."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin
from app import campaign, clock
from app.extensions import db
from app.web import uow
from app.web.netutil import client_ip
from forms.admin import ReminderForm


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
        today = clock.today()
        after = request.args.get("apres", type=int)
        listed = campaign.coops_page(db.session, step, state, year, today, after=after)
        coops = listed.coops
        label = campaign.year_label(year)
        form = ReminderForm()
        preview = None
        if request.method == "GET":
            deadline = campaign.deadlines(db.session, year).get(state) if step == "retard" else None
            form.subject.data, form.body.data = campaign.default_reminder(step, state, year, deadline)
        elif form.validate_on_submit():
            if request.form.get("envoyer") == "1":
                outcome = uow.run(
                    lambda: campaign.send_reminders(
                        db.session,
                        step,
                        state,
                        year,
                        subject=form.subject.data,
                        body=form.body.data,
                        by=current_user,
                        ip=client_ip(),
                        today=today,
                    ),
                    form=form,
                )
                if outcome.ok:
                    sent = outcome.value
                    message = f"{sent.queued} courriel(s) de relance mis dans la file d'envoi."
                    if sent.missing:
                        message += " Sans adresse e-mail : " + ", ".join(c.login for c in sent.missing) + "."
                    if sent.unusable:
                        message += (
                            " Non envoyé, adresse ou nom contenant un retour à la ligne ou un caractère invisible "
                            "(à corriger dans la fiche) : " + ", ".join(c.login for c in sent.unusable) + "."
                        )
                    flash(message, "warning" if sent.unusable else "success")
                    return redirect(url_for(".coops", etape=step, etat=state, annee=year))
            elif coops:
                first = coops[0]
                preview = {
                    "to": first.email or "(pas d'adresse)",
                    "subject": campaign.render_reminder(form.subject.data, first, label),
                    "body": campaign.render_reminder(form.body.data, first, label),
                }
        return self.render(
            "admin/campaign_coops.html",
            coops=coops,
            listed=listed,
            step=step,
            state=state,
            year=year,
            title=campaign.late_title(db.session, year, today) if step == "retard" else title,
            state_label=states[state],
            label=label,
            form=form,
            preview=preview,
        )
