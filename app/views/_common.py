"""Helpers shared by the views: clock, auth policy, mail rendering."""

from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy.orm import Session

from app.auth import AuthPolicy
from app.mail import queue_email
from app.models import OutboxEmail, utcnow

now = utcnow


def auth_policy() -> AuthPolicy:
    config = current_app.config
    return AuthPolicy(
        max_failures=config["LOGIN_MAX_FAILURES"],
        window=config["LOGIN_FAILURE_WINDOW"],
        lock=config["LOGIN_LOCK_DURATION"],
        reset_validity=config["PASSWORD_RESET_VALIDITY"],
        min_length=config["PASSWORD_MIN_LENGTH"],
        hash_params=config["ARGON2_PARAMS"] or None,
    )


def queue_templated_email(session: Session, to: str, template: str, **context) -> OutboxEmail:
    """Render templates/mail/<template>.txt (first line `Subject: …`) and queue it in the outbox."""
    rendered = render_template(f"mail/{template}.txt", public_url=current_app.config["PUBLIC_URL"], **context)
    first, _, body = rendered.partition("\n")
    subject = first.removeprefix("Subject:").strip()
    return queue_email(session, to=to, subject=subject, text=body.lstrip("\n"))
