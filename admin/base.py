"""Access control shared by every back-office view, column formatters, and the dashboard.

Transactions in the back office: custom pages and list actions hand their domain call to the unit
of work (`app.web.uow.run`). The one exception is Flask-Admin's own create/edit/delete of a
`ModelView`: `create_model` / `update_model` / `delete_model` commit (and roll back on error)
inside Flask-Admin itself, so the domain rules of those forms run in `on_model_change`, which only
flushes and audits within that same commit.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user

from app import campaign, clock
from app.extensions import db
from app.formats import euros, fr_date, fr_datetime
from app.models import Coop, OutboxEmail, User, school_year_start


class StaffAccessMixin:
    """Only OCCE 85 staff: anonymous users go to the login page, coop users get 403."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_staff

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)


def format_money(view, context, model, name):
    return euros(getattr(model, name))


def format_date(view, context, model, name):
    return fr_date(getattr(model, name))


def format_datetime(view, context, model, name):
    return fr_datetime(getattr(model, name))


class StaffModelView(StaffAccessMixin, ModelView):
    """Base of every model view: paginated, small page sizes, French dates."""

    page_size = 50
    can_set_page_size = True
    page_size_options = (20, 50, 100)
    can_view_details = True
    details_modal = False
    edit_modal = False
    create_modal = False


class DashboardView(StaffAccessMixin, AdminIndexView):
    """The back-office home: the campaign of the current and the previous school year."""

    @expose("/")
    def index(self):
        current = school_year_start(clock.today())
        years = [(year, f"{year}-{year + 1}", campaign.dashboard(db.session, year)) for year in (current, current - 1)]
        counts = {
            "coops_active": db.session.scalar(sa.select(sa.func.count()).where(Coop.is_active)),
            "never_logged": db.session.scalar(
                sa.select(sa.func.count()).where(User.role == "coop", User.last_login_at.is_(None))
            ),
            "mail_pending": db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.status == "pending")),
            "mail_failed": db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.status == "failed")),
        }
        return self.render("admin/dashboard.html", counts=counts, years=years, steps=campaign.STEPS)
