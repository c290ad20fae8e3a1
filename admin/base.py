"""Access control shared by every back-office view, the audit hook, column formatters, and the dashboard.

Audit: every create, edit and delete made through a back-office model view (inline rows such as a
coop's mandataires included) writes one audit event per changed row, ``<table>.created_by_staff``,
``<table>.updated_by_staff`` or ``<table>.deleted_by_staff``, with the values before and after
(`app.audit.redact` masks IBANs and drops secrets). It is one SQLAlchemy flush hook, switched on
by `StaffModelView` around Flask-Admin's own save, so no view has to remember it.

Least privilege: views built with `AdminWriteMixin` (federation settings, school years and rates,
staff accounts) are read-only for staff who are not administrators.

Transactions in the back office: custom pages and list actions hand their domain call to the unit
of work (`app.web.uow.run`). The one exception is Flask-Admin's own create/edit/delete of a
`ModelView`: `create_model` / `update_model` / `delete_model` commit (and roll back on error)
inside Flask-Admin itself, so the domain rules of those forms run in `on_model_change`, which only
flushes and audits within that same commit.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import BaseForm
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.orm import Session

from app import audit, campaign, clock
from app.errors import DomainError
from app.extensions import db
from app.formats import euros, fr_date, fr_datetime
from app.models import AuditEvent, Coop, OutboxEmail, User, school_year_start
from app.web.netutil import client_ip
from forms.validators import SingleLineMeta


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


_AUDIT_KEY = "coop85_admin_audit"


def _coop_id_of(obj: Any) -> int | None:
    if isinstance(obj, Coop):
        return obj.id
    return getattr(obj, "coop_id", None)


def _values(obj: Any) -> dict[str, Any]:
    return {attr.key: getattr(obj, attr.key) for attr in sa.inspect(obj).mapper.column_attrs}


@event.listens_for(Session, "before_flush")
def _collect_admin_changes(session: Session, flush_context, instances) -> None:
    """Remember what a back-office save is about to change (values before, while they are known)."""
    pending = session.info.get(_AUDIT_KEY)
    if pending is None:
        return
    for obj in session.new:
        if not isinstance(obj, AuditEvent):
            pending.append(("created", obj, None, None))
    for obj in session.dirty:
        if isinstance(obj, AuditEvent):
            continue
        state = sa.inspect(obj)
        before, after = {}, {}
        for attr in state.mapper.column_attrs:
            history = state.attrs[attr.key].history
            if history.added or history.deleted:
                old = history.deleted[0] if history.deleted else None
                new = history.added[0] if history.added else None
                if old != new:
                    before[attr.key], after[attr.key] = old, new
        if after:
            pending.append(("updated", obj, before, after))
    for obj in session.deleted:
        if not isinstance(obj, AuditEvent):
            pending.append(("deleted", obj, _values(obj), None))


@event.listens_for(Session, "after_flush_postexec")
def _write_admin_changes(session: Session, flush_context) -> None:
    """One audit event per row changed (ids known now); the commit flushes them with the change."""
    pending = session.info.get(_AUDIT_KEY)
    if not pending:
        return
    changes = list(pending)
    pending.clear()
    actor = session.info.get(_AUDIT_KEY + "_actor") or {}
    for kind, obj, before, after in changes:
        if kind == "created":
            after = _values(obj)
        table = sa.inspect(obj).mapper.local_table.name
        ids = sa.inspect(obj).identity or (None,)
        audit.record(
            session,
            f"{table}.{kind}_by_staff",
            actor_id=actor.get("id"),
            actor_login=actor.get("login"),
            coop_id=_coop_id_of(obj),
            entity=table,
            entity_id=ids[0] if isinstance(ids[0], int) else None,
            before=before,
            after=after,
            ip=actor.get("ip", ""),
        )


@contextmanager
def audited_save(session: Session):
    """Audit every row a back-office save creates, changes or deletes (see the module docstring)."""
    session.info[_AUDIT_KEY] = []
    session.info[_AUDIT_KEY + "_actor"] = {"id": current_user.id, "login": current_user.login, "ip": client_ip()}
    try:
        yield
    finally:
        session.info.pop(_AUDIT_KEY, None)
        session.info.pop(_AUDIT_KEY + "_actor", None)


class SingleLineAdminForm(BaseForm):
    """Back-office form base: one-line text fields refuse line breaks and control characters."""

    class Meta(SingleLineMeta):
        pass


class StaffModelView(StaffAccessMixin, ModelView):
    """Base of every model view: paginated, small page sizes, French dates, every save audited."""

    page_size = 50
    can_set_page_size = True
    page_size_options = (20, 50, 100)
    can_view_details = True
    details_modal = False
    edit_modal = False
    create_modal = False
    form_base_class = SingleLineAdminForm

    MAX_PAGE = 100_000  # page × page size stays far inside the database's integers

    def _get_list_extra_args(self):
        """The list's query string, with page and sort numbers bounded: `?page=10**30` is a 404, not a
        database error (issue 12 §3)."""
        args = super()._get_list_extra_args()
        for value in (args.page, args.page_size, args.sort):
            if value is not None and not 0 <= value <= self.MAX_PAGE:
                abort(404)
        return args

    def create_model(self, form):
        with audited_save(db.session):
            return super().create_model(form)

    def update_model(self, form, model):
        with audited_save(db.session):
            return super().update_model(form, model)

    def delete_model(self, model):
        with audited_save(db.session):
            return super().delete_model(model)

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, DomainError):  # a business refusal from on_model_change: its French message
            flash(str(exc), "error")
            return True
        return super().handle_view_exception(exc)


def is_administrator() -> bool:
    return current_user.is_authenticated and current_user.role == "admin"


class AdminWriteMixin:
    """Administrators change these settings; other staff see them read-only. Subclasses say what an
    administrator may do with `admin_can_create` / `admin_can_edit` / `admin_can_delete`."""

    admin_can_create = True
    admin_can_edit = True
    admin_can_delete = True

    @property
    def can_create(self) -> bool:
        return self.admin_can_create and is_administrator()

    @property
    def can_edit(self) -> bool:
        return self.admin_can_edit and is_administrator()

    @property
    def can_delete(self) -> bool:
        return self.admin_can_delete and is_administrator()

    @can_create.setter
    def can_create(self, value) -> None:  # Flask-Admin assigns these at start-up; the role decides
        pass

    @can_edit.setter
    def can_edit(self, value) -> None:
        pass

    @can_delete.setter
    def can_delete(self, value) -> None:
        pass


class DashboardView(StaffAccessMixin, AdminIndexView):
    """The back-office home: the campaign of the current and the previous school year."""

    @expose("/")
    def index(self):
        current = school_year_start(clock.today())
        today = clock.today()
        years = [(y, f"{y}-{y + 1}", campaign.dashboard(db.session, y, today)) for y in (current, current - 1)]
        counts = {
            "coops_active": db.session.scalar(sa.select(sa.func.count()).where(Coop.is_active)),
            "never_logged": db.session.scalar(
                sa.select(sa.func.count()).where(User.role == "coop", User.last_login_at.is_(None))
            ),
            "mail_pending": db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.status == "pending")),
            "mail_failed": db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.status == "failed")),
        }
        return self.render("admin/dashboard.html", counts=counts, years=years, steps=campaign.STEPS)
