"""Authentication rules: login with throttling, password change and reset, ending sessions.

Throttling is derived from the audit trail: after `max_failures` failed attempts on one login
within `window`, every attempt (even with the right password) is refused until `lock` has passed
since the last failure. Refused attempts are audited as ``login.throttled`` and do not extend the
lock, so an attacker cannot keep a teacher out for longer than `lock` after they stop. Unknown
logins are throttled the same way, so the answer never tells whether a login exists.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.identity import check_email
from app.models import AuditEvent, PasswordResetToken, User
from app.passwords import hash_password, needs_rehash, password_problems, verify_password


@dataclass(frozen=True)
class AuthPolicy:
    """Settings of the login rules (from the app configuration)."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    reset_validity: timedelta = timedelta(hours=1)
    min_length: int = 12
    hash_params: dict | None = None


@dataclass(frozen=True)
class LoginOutcome:
    """`user` on success; otherwise `error` is ``invalid``, ``disabled`` or ``locked`` (with `locked_until`)."""

    user: User | None = None
    error: str | None = None
    locked_until: datetime | None = None


def normalize_login(login: str) -> str:
    """Logins are case-insensitive and trimmed: ` 085-001 ` and `085-001` are one login."""
    return login.strip().lower()[:64]


_DUMMY_HASH: dict[tuple, str] = {}


def _dummy_hash(params: dict | None) -> str:
    key = tuple(sorted((params or {}).items()))
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hash_password(secrets.token_hex(16), params)
    return _DUMMY_HASH[key]


def locked_until(session: Session, login: str, now: datetime, policy: AuthPolicy) -> datetime | None:
    """When `login` is locked at `now`, the end of the lock; otherwise None."""
    failures = session.scalars(
        sa.select(AuditEvent.created_at)
        .where(AuditEvent.action == "login.failed", AuditEvent.actor_login == login)
        .where(AuditEvent.created_at > now - policy.window - policy.lock)
        .order_by(AuditEvent.created_at.desc())
        .limit(policy.max_failures)
    ).all()
    if len(failures) < policy.max_failures:
        return None
    newest, oldest = failures[0], failures[-1]
    if newest - oldest <= policy.window and now < newest + policy.lock:
        return newest + policy.lock
    return None


def authenticate(
    session: Session, login: str, password: str, *, ip: str, now: datetime, policy: AuthPolicy
) -> LoginOutcome:
    """Check a login attempt and audit it (success, failure or throttled); flushes, never commits."""
    login = normalize_login(login)
    until = locked_until(session, login, now, policy)
    if until is not None:
        audit.record(session, "login.throttled", actor_login=login, ip=ip)
        return LoginOutcome(error="locked", locked_until=until)

    user = session.scalar(sa.select(User).where(User.login == login))
    # Verify against a dummy hash for unknown logins so both answers take the same time.
    stored = user.password_hash if user is not None else _dummy_hash(policy.hash_params)
    if not verify_password(stored, password, policy.hash_params) or user is None:
        audit.record(
            session,
            "login.failed",
            actor_login=login,
            ip=ip,
            entity="user",
            entity_id=user.id if user else None,
            coop_id=user.coop_id if user else None,
        )
        return LoginOutcome(error="invalid")
    if not user.is_active:
        audit.record(session, "login.disabled", actor=user, ip=ip)
        return LoginOutcome(error="disabled")

    if needs_rehash(user.password_hash, policy.hash_params):
        user.password_hash = hash_password(password, policy.hash_params)
    user.last_login_at = now
    audit.record(session, "login.success", actor=user, ip=ip, entity="user", entity_id=user.id)
    return LoginOutcome(user=user)


def end_sessions(user: User) -> None:
    """Invalidate every session of `user`, copied cookies included (the version is in the login id)."""
    user.session_version = (user.session_version or 1) + 1


# -- temporary passwords (new accounts, resets by staff) ------------------------------------------

_TEMP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from a letter
STAFF_ROLES = ("staff", "admin")


def temporary_password() -> str:
    """A random, easy-to-type temporary password such as ``k7pq-x3mz-a9rt`` (forced change at first login)."""
    groups = ["".join(secrets.choice(_TEMP_ALPHABET) for _ in range(4)) for _ in range(3)]
    return "-".join(groups)


def set_temporary_password(user: User, *, hash_params: dict | None = None) -> str:
    """Give `user` a new temporary password and return it in clear (shown once, never stored).

    The user must choose their own password at the next login; every session of an existing
    account ends. The one way the portal hands out a password: staff and coop accounts, created
    in the back office, by the CLI or by the coop import, and resets by staff.
    """
    password = temporary_password()
    user.password_hash = hash_password(password, hash_params)
    user.must_change_password = True
    if user.id is not None:
        end_sessions(user)
    return password


def create_staff(
    session: Session,
    login: str,
    *,
    email: str,
    full_name: str = "",
    role: str = "staff",
    by: User | None,
    ip: str = "",
    hash_params: dict | None = None,
) -> tuple[User, str]:
    """Create an OCCE 85 staff login with a temporary password; return the user and the password.

    Raises DomainError (field ``login`` or ``email``) when the login exists or the address is invalid.
    """
    login = normalize_login(login)
    if session.scalar(sa.select(User.id).where(User.login == login)) is not None:
        raise DomainError(f"L'identifiant {login} existe déjà.", field="login")
    try:
        email = check_email(email)
    except ValueError as exc:
        raise DomainError(str(exc), field="email") from None
    if role not in STAFF_ROLES:
        raise DomainError(f"Rôle inconnu : {role}.", field="role")
    user = User(login=login, role=role, email=email, full_name=full_name)
    password = set_temporary_password(user, hash_params=hash_params)
    session.add(user)
    session.flush()
    audit.record(session, "staff.created", actor=by, entity="user", entity_id=user.id, ip=ip)
    return user, password


def staff_account_saved(
    session: Session, user: User, *, is_created: bool, by: User | None, ip: str = "", hash_params: dict | None = None
) -> str | None:
    """Rules of a staff account saved in the back office; returns the temporary password of a new one.

    The login is normalised; a new account gets a temporary password; a disabled account loses
    every session at once. Audited as ``staff.created`` / ``staff.updated``.
    """
    user.login = normalize_login(user.login)
    password = set_temporary_password(user, hash_params=hash_params) if is_created else None
    if not is_created and not user.is_enabled:
        end_sessions(user)
    session.flush()
    audit.record(
        session,
        "staff.created" if is_created else "staff.updated",
        actor=by,
        entity="user",
        entity_id=user.id,
        after={"login": user.login, "role": user.role, "is_enabled": user.is_enabled},
        ip=ip,
    )
    return password


def _set_password(
    session: Session, user: User, new_password: str, *, now: datetime, policy: AuthPolicy, ip: str, action: str
) -> None:
    context = (user.coop.name, user.coop.school_name, user.coop.city) if user.coop else (user.full_name,)
    problems = password_problems(new_password, login=user.login, min_length=policy.min_length, context=context)
    if problems:
        raise DomainError(problems[0], field="new_password")
    if verify_password(user.password_hash, new_password, policy.hash_params):
        raise DomainError("Le nouveau mot de passe doit être différent de l'ancien.", field="new_password")
    user.password_hash = hash_password(new_password, policy.hash_params)
    user.must_change_password = False
    user.password_changed_at = now
    end_sessions(user)
    audit.record(session, action, actor=user, ip=ip, entity="user", entity_id=user.id)


def change_password(
    session: Session,
    user: User,
    current_password: str,
    new_password: str,
    *,
    now: datetime,
    policy: AuthPolicy,
    ip: str = "",
) -> None:
    """Replace the password after checking the current one and the policy; ends every other session.

    Raises DomainError on the field at fault (``current_password`` or ``new_password``).
    """
    if not verify_password(user.password_hash, current_password, policy.hash_params):
        raise DomainError("Le mot de passe actuel est incorrect.", field="current_password")
    _set_password(session, user, new_password, now=now, policy=policy, ip=ip, action="password.changed")


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def find_user_for_reset(session: Session, identifier: str) -> User | None:
    """The active user named by a login (or a staff e-mail) that has an address to mail to."""
    identifier = normalize_login(identifier)
    user = session.scalar(
        sa.select(User).where(sa.or_(User.login == identifier, sa.func.lower(User.email) == identifier))
    )
    if user is None or not user.is_active or not user.contact_email:
        return None
    return user


def create_reset_token(session: Session, user: User, *, now: datetime, policy: AuthPolicy, ip: str = "") -> str:
    """Create a single-use reset token valid `policy.reset_validity`; return the raw token (only its hash is kept)."""
    raw = secrets.token_urlsafe(32)
    session.add(
        PasswordResetToken(
            user=user, token_hash=_token_hash(raw), created_at=now, expires_at=now + policy.reset_validity
        )
    )
    audit.record(session, "password.reset_requested", actor=user, ip=ip, entity="user", entity_id=user.id)
    return raw


def user_for_reset_token(session: Session, raw: str, *, now: datetime) -> PasswordResetToken | None:
    """The unused, unexpired token matching `raw`, or None."""
    token = session.scalar(sa.select(PasswordResetToken).where(PasswordResetToken.token_hash == _token_hash(raw)))
    if token is None or token.used_at is not None or token.expires_at <= now:
        return None
    return token


def reset_password(
    session: Session, raw: str, new_password: str, *, now: datetime, policy: AuthPolicy, ip: str = ""
) -> User:
    """Set a new password through a reset token; the token (and every other of the user) is spent.

    Raises DomainError when the link is unknown, used or expired, or the password is refused.
    """
    token = user_for_reset_token(session, raw, now=now)
    if token is None:
        raise DomainError("Ce lien n'est plus valable : il a déjà servi ou a expiré. Demandez-en un nouveau.")
    user = token.user
    _set_password(session, user, new_password, now=now, policy=policy, ip=ip, action="password.reset")
    for other in user.reset_tokens:
        if other.used_at is None:
            other.used_at = now
    return user
