"""The unit of work: where every request's transaction starts and ends.

One request is one transaction. Views, back-office actions and their helpers never write
`commit()` or `rollback()`; they hand the domain call to `run()`:

    outcome = uow.run(lambda: books.record_entry(db.session, ledger, data, by=current_user),
                      form=form, fields={"box7": "splits"})
    if outcome.ok:
        flash(f"Opération {outcome.value.piece} enregistrée.", "success")  # no query after commit
        return redirect(...)
    return render_template(...)                                         # errors are on the form

`run()` calls the action, commits once, and:

- on `ValidationErrors` / `DomainError`, rolls back and puts each message on the form field it
  names (through `fields`, a map from the domain's names to the form's), or on the form itself, or
  flashes it when there is no form;
- on `StaleDataError` (a version check failed) or an `IntegrityError` (a unique key lost a race),
  rolls back and shows one French "modifiée entre-temps" message (or calls `on_conflict`);
- on anything else, rolls back and re-raises: the error page renders on a clean session.

Mail is queued inside the action (`app.web.notifications`), so it is committed with the change
it reports, or not at all. The session does not expire objects on commit (`expire_on_commit` is
off in `app.extensions`): a view may read what the action returned to build its message without
starting another transaction. Files a change made obsolete are removed by `after_commit`
callbacks, which only run once the commit succeeded.

GET requests never commit; the audit of a refused access or of a download, which must be written
even on a GET, goes through `record_aside()`: a short transaction of its own, with a short lock
timeout, whose failure is logged and never fails the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from flask import current_app, flash, g
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from app import audit, documents
from app.errors import DomainError, ValidationErrors
from app.extensions import db

T = TypeVar("T")
log = logging.getLogger(__name__)

CONFLICT_MESSAGE = (
    "Ces données ont été modifiées entre-temps (dans un autre onglet ou par l'OCCE 85) : "
    "rien n'a été enregistré. Vérifiez la page rechargée puis recommencez."
)


@dataclass
class Outcome(Generic[T]):
    """What `run()` did: `ok` with the action's `value`, or the `errors` shown to the user."""

    ok: bool
    value: T | None = None
    errors: list[str] = field(default_factory=list)
    conflict: bool = False
    on_field: bool = False  # at least one message sits on a form field: re-render the form


def run(
    action: Callable[[], T],
    *,
    form: Any = None,
    fields: Mapping[str, str] | None = None,
    on_conflict: Callable[[Exception], str | tuple[str, str] | None] | None = None,
    after_commit: Callable[[T], None] | None = None,
    flash_category: str = "danger",
    flash_unplaced: bool = False,
) -> Outcome[T]:
    """Run `action`, commit once; on a refusal roll back and report it (see the module docstring).

    `on_conflict(exc)` may return a message to show instead of the standard one, a `(field, message)`
    pair to put it on a form field, or None to use the standard message.
    `after_commit(value)` runs only after a successful commit (file removal, cache clean-up).
    `flash_unplaced`: a message that names no field of `form` is flashed (for a redirect) instead of
    being put on the form; `Outcome.on_field` then says whether the form has anything to show.
    """
    shown = _Shown(form, fields, flash_unplaced)
    session = db.session
    try:
        begin_write(session)
        value = action()
        session.commit()
        documents.forget_written_files(session)
    except ValidationErrors as exc:
        _roll_back(session)
        messages = [message for messages in exc.errors.values() for message in messages] or [exc.message]
        for name, errors in exc.errors.items():
            for message in errors:
                shown(str(name), message, flash_category)
        return Outcome(False, errors=messages, on_field=shown.on_field)
    except DomainError as exc:
        _roll_back(session)
        shown(exc.field, exc.message, flash_category)
        return Outcome(False, errors=[exc.message], on_field=shown.on_field)
    except (StaleDataError, ObjectDeletedError, IntegrityError) as exc:
        _roll_back(session)
        answer = (on_conflict(exc) if on_conflict else None) or CONFLICT_MESSAGE
        name, message = answer if isinstance(answer, tuple) else (None, answer)
        shown(name, message, "warning")
        return Outcome(False, errors=[message], conflict=True, on_field=shown.on_field)
    except BaseException:
        _roll_back(session)
        raise
    if after_commit is not None:
        after_commit(value)
    return Outcome(True, value)


def _roll_back(session: Session) -> None:
    session.rollback()
    documents.discard_written_files(session)  # files written for rows that will never exist


def begin_write(session: Session | scoped_session) -> None:
    """From here on this request writes: end the read transaction and take the write lock at the
    next query (SQLite `BEGIN IMMEDIATE`); objects read so far are expired, so the action reads them
    again inside the write transaction (no decision on a stale value)."""
    g.write_unit = True
    session = session() if isinstance(session, scoped_session) else session
    if session.in_transaction() and not (session.new or session.dirty or session.deleted):
        session.commit()  # nothing pending: only ends the read transaction
        session.expire_all()


@dataclass
class _Shown:
    """Puts each refusal where the user will read it: the form field it names (through `fields`),
    the form itself, or a flash message (no form, or `flash_unplaced`)."""

    form: Any
    fields: Mapping[str, str] | None
    flash_unplaced: bool
    on_field: bool = False

    def __call__(self, name: str | None, message: str, category: str) -> None:
        target = (self.fields or {}).get(name or "", name or "")
        form_field = getattr(self.form, target, None) if self.form is not None and target else None
        if form_field is not None and isinstance(getattr(form_field, "errors", None), list | tuple):
            form_field.errors = [*form_field.errors, message]
            self.on_field = True
        elif self.form is None or self.flash_unplaced:
            flash(message, category)
        else:
            self.form.form_errors.append(message)
            self.on_field = True


def record_aside(action: str, **event: Any) -> None:
    """Write one audit event in a short transaction of its own, without failing the request.

    Used on GET requests (a refused cross-coop access, a document download): the event must be
    kept, but a busy or unreachable database must not turn the page into an error, nor hold it up
    for long. The request's own session is left untouched; the acting user is `actor_id`,
    `actor_login` and `coop_id` (plain values, read before any rollback expired the user).
    """
    engine = db.engine
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            if sqlite:  # a connection setting: set outside the session's transaction, restored below
                connection.exec_driver_sql("PRAGMA busy_timeout=500")
                connection.commit()
            try:
                with Session(bind=connection) as aside:
                    if not sqlite:
                        aside.execute(sa.text("SET LOCAL lock_timeout = '500ms'"))
                        aside.execute(sa.text("SET LOCAL statement_timeout = '2s'"))
                    audit.record(aside, action, **event)
                    aside.commit()
            finally:
                if sqlite:
                    connection.rollback()
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={current_app.config['SQLITE_BUSY_TIMEOUT_MS']}")
                    connection.commit()
    except (OperationalError, IntegrityError):
        log.warning("audit event %s not written (database busy or unreachable)", action, exc_info=True)
