"""Authentication rules: login with throttling, staff second factor, password change and reset, ending sessions.

Throttling is derived from the audit trail. Every failed attempt (wrong password at login, wrong
second-factor code, wrong current password on the change page) is a failure of its login.
Failures are counted per login *and source address*: after `max_failures` within `window` that
address is refused until `lock` has passed since its last failure, so an attacker elsewhere never
locks a coop out of its school network. Over every address, a slower ceiling
(`global_max_failures` within `window`) only spaces attempts out (one per `global_delay`) and does
not apply to an address the login succeeded from recently (its usual network). Refused attempts
are audited as ``login.throttled`` and do not extend the lock. Unknown logins are throttled the
same way, so the answer never tells whether a login exists.

Staff accounts have a second factor (TOTP, RFC 6238, 30-second steps, one step of drift either
way, a code never accepted twice) and ten single-use recovery codes stored as argon2 hashes. The
web layer logs a staff member in only after that step (see app/views/auth.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.identity import check_email
from app.models import DEPARTMENT_CODE, AuditEvent, PasswordResetToken, User
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
    global_max_failures: int = 20
    global_delay: timedelta = timedelta(minutes=1)
    usual_network_days: int = 90


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


FAILURE_ACTIONS = ("login.failed", "second_factor.failed", "password.current_failed")


def _record(now: datetime, session: Session, action: str, **fields) -> AuditEvent:
    """An audit row stamped with `now`, the moment the rules were applied (not the model's own clock):
    the throttling compares these times with the `now` it is given, so both must come from one clock."""
    event = audit.record(session, action, **fields)
    event.created_at = now
    return event


def _failures(session: Session, login: str, since: datetime, *, ip: str | None = None, limit: int) -> list[datetime]:
    query = (
        sa.select(AuditEvent.created_at)
        .where(AuditEvent.action.in_(FAILURE_ACTIONS), AuditEvent.actor_login == login, AuditEvent.created_at > since)
        .order_by(AuditEvent.created_at.desc())
        .limit(limit)
    )
    if ip is not None:
        query = query.where(AuditEvent.ip == ip[:64])
    return list(session.scalars(query).all())


def _is_usual_network(session: Session, login: str, ip: str, now: datetime, policy: AuthPolicy) -> bool:
    """True when `login` succeeded from `ip` within `policy.usual_network_days`."""
    return (
        session.scalar(
            sa.select(AuditEvent.id)
            .where(AuditEvent.action == "login.success", AuditEvent.actor_login == login, AuditEvent.ip == ip[:64])
            .where(AuditEvent.created_at > now - timedelta(days=policy.usual_network_days))
            .limit(1)
        )
        is not None
    )


def locked_until(session: Session, login: str, now: datetime, policy: AuthPolicy, *, ip: str = "") -> datetime | None:
    """When attempts on `login` from `ip` are refused at `now`, the moment they are allowed again; otherwise None."""
    failures = _failures(session, login, now - policy.window - policy.lock, ip=ip, limit=policy.max_failures)
    if len(failures) >= policy.max_failures:
        newest, oldest = failures[0], failures[-1]
        if newest - oldest <= policy.window and now < newest + policy.lock:
            return newest + policy.lock
    everywhere = _failures(session, login, now - policy.window, limit=policy.global_max_failures)
    if (
        len(everywhere) >= policy.global_max_failures
        and now < everywhere[0] + policy.global_delay
        and not _is_usual_network(session, login, ip, now, policy)
    ):
        return everywhere[0] + policy.global_delay
    return None


def _refuse_if_throttled(session: Session, login: str, *, ip: str, now: datetime, policy: AuthPolicy):
    until = locked_until(session, login, now, policy, ip=ip)
    if until is not None:
        _record(now, session, "login.throttled", actor_login=login, ip=ip)
    return until


@dataclass(frozen=True)
class LoginCheck:
    """What the read half of a login attempt found (see `check_login`)."""

    login: str
    error: str | None = None  # invalid, disabled or locked; None: the password is right
    locked_until: datetime | None = None
    user_id: int | None = None
    checked_hash: str = ""  # the hash the password was verified against
    new_hash: str | None = None  # a hash with today's parameters, to store


def check_login(
    session: Session, login: str, password: str, *, ip: str, now: datetime, policy: AuthPolicy
) -> LoginCheck:
    """The read half of a login attempt: the throttling, then the password (argon2, the slow part).

    Writes nothing, so the web layer runs it before the unit of work takes the write lock (SQLite
    holds one writer at a time: a login must not hold it through the hashing)."""
    login = normalize_login(login)
    until = locked_until(session, login, now, policy, ip=ip)
    if until is not None:
        return LoginCheck(login, "locked", locked_until=until)
    user = session.scalar(sa.select(User).where(User.login == login))
    # Verify against a dummy hash for unknown logins so both answers take the same time.
    stored = user.password_hash if user is not None else _dummy_hash(policy.hash_params)
    if not verify_password(stored, password, policy.hash_params) or user is None:
        return LoginCheck(login, "invalid", user_id=user.id if user else None)
    if not user.is_active:
        return LoginCheck(login, "disabled", user_id=user.id)
    new_hash = hash_password(password, policy.hash_params) if needs_rehash(stored, policy.hash_params) else None
    return LoginCheck(login, user_id=user.id, checked_hash=stored, new_hash=new_hash)


def record_login(session: Session, check: LoginCheck, *, ip: str, now: datetime) -> LoginOutcome:
    """The write half: audit the attempt (success, failure or throttled: what the throttling counts),
    store a stronger hash, stamp the login. Flushes, never commits."""
    if check.error == "locked":
        _record(now, session, "login.throttled", actor_login=check.login, ip=ip)
        return LoginOutcome(error="locked", locked_until=check.locked_until)
    user = session.get(User, check.user_id) if check.user_id is not None else None
    if check.error is None and user is not None and user.password_hash != check.checked_hash:
        check = LoginCheck(check.login, "invalid", user_id=user.id)  # the password changed meanwhile
    if check.error == "invalid" or user is None:
        _record(
            now,
            session,
            "login.failed",
            actor_login=check.login,
            ip=ip,
            entity="user",
            entity_id=user.id if user else None,
            coop_id=user.coop_id if user else None,
        )
        return LoginOutcome(error="invalid")
    if check.error == "disabled":
        _record(now, session, "login.disabled", actor=user, ip=ip)
        return LoginOutcome(error="disabled")
    if check.new_hash:
        user.password_hash = check.new_hash
    if user.is_staff:
        # Half-way: the session opens only after the second factor (`check_second_factor`).
        _record(now, session, "login.password_ok", actor=user, ip=ip, entity="user", entity_id=user.id)
        return LoginOutcome(user=user)
    user.last_login_at = now
    _record(now, session, "login.success", actor=user, ip=ip, entity="user", entity_id=user.id)
    return LoginOutcome(user=user)


def authenticate(
    session: Session, login: str, password: str, *, ip: str, now: datetime, policy: AuthPolicy
) -> LoginOutcome:
    """Check a login attempt and audit it (both halves at once); flushes, never commits."""
    return record_login(session, check_login(session, login, password, ip=ip, now=now, policy=policy), ip=ip, now=now)


def end_sessions(user: User) -> None:
    """Invalidate every session of `user`, copied cookies included (the version is in the login id)."""
    user.session_version = (user.session_version or 1) + 1


# -- temporary passwords (new accounts, resets by staff) ------------------------------------------

_TEMP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from a letter
STAFF_ROLES = ("staff", "admin")
_COOP_LOGIN = re.compile(rf"\s*{DEPARTMENT_CODE}\s*[-_ ]?\s*\d+\s*", re.IGNORECASE)
_STAFF_LOGIN = re.compile(r"[a-z][a-z0-9._-]{2,63}")


def staff_login_problem(login: str) -> str | None:
    """Why `login` cannot be a staff login (French), or None: staff logins never look like a coop's."""
    login = normalize_login(login)
    # The letter O read as a zero: « O85-099 » looks like a coop login in the audit trail and the lists.
    if _COOP_LOGIN.fullmatch(login.replace("o", "0")) or login[:3].isdigit():
        return f"Un identifiant de la forme {DEPARTMENT_CODE}-NNN est réservé aux coopératives."
    if not _STAFF_LOGIN.fullmatch(login):
        return (
            "L'identifiant commence par une lettre et ne contient que des lettres sans accent, des chiffres, "
            "des points, tirets ou soulignés (3 à 64 caractères), par exemple prenom.nom."
        )
    return None


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
        user.reset_tokens.clear()  # a reset link mailed before dies with the old password
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
    problem = staff_login_problem(login)
    if problem:
        raise DomainError(problem, field="login")
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
    problem = staff_login_problem(user.login)
    if problem:
        raise DomainError(problem, field="login")
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


def password_context(user: User) -> tuple[str, ...]:
    """Words an attacker would try first for this account: its login, school name, commune, name."""
    if user.coop is not None:
        return (user.login, user.coop.name, user.coop.school_name, user.coop.city)
    return (user.login, user.full_name)


def _set_password(
    session: Session, user: User, new_password: str, *, now: datetime, policy: AuthPolicy, ip: str, action: str
) -> None:
    problems = password_problems(
        new_password, login=user.login, min_length=policy.min_length, context=password_context(user)
    )
    if problems:
        raise DomainError(problems[0], field="new_password")
    if verify_password(user.password_hash, new_password, policy.hash_params):
        raise DomainError("Le nouveau mot de passe doit être différent de l'ancien.", field="new_password")
    user.password_hash = hash_password(new_password, policy.hash_params)
    user.must_change_password = False
    user.password_changed_at = now
    for token in user.reset_tokens:  # every reset link mailed before dies with the old password
        if token.used_at is None:
            token.used_at = now
    end_sessions(user)
    _record(now, session, action, actor=user, ip=ip, entity="user", entity_id=user.id)


def check_current_password(
    session: Session, user: User, current_password: str, *, now: datetime, policy: AuthPolicy, ip: str = ""
) -> LoginOutcome:
    """Check the current password typed on the change page: a wrong one is a login failure (throttled,
    audited as ``password.current_failed``). Returns the refusal instead of raising, so that the
    caller commits the audit row the throttling counts."""
    until = _refuse_if_throttled(session, user.login, ip=ip, now=now, policy=policy)
    if until is not None:
        return LoginOutcome(error="locked", locked_until=until)
    if not verify_password(user.password_hash, current_password, policy.hash_params):
        _record(now, session, "password.current_failed", actor=user, ip=ip, entity="user", entity_id=user.id)
        return LoginOutcome(error="invalid")
    return LoginOutcome(user=user)


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
    """Replace the password after checking the current one and the policy; ends every other session
    and every pending reset link.

    Raises DomainError on the field at fault (``current_password`` or ``new_password``). The web
    layer calls `check_current_password` first, in its own transaction, so that failures count.
    """
    if not verify_password(user.password_hash, current_password, policy.hash_params):
        raise DomainError("Le mot de passe actuel est incorrect.", field="current_password")
    _set_password(session, user, new_password, now=now, policy=policy, ip=ip, action="password.changed")


# -- staff second factor ----------------------------------------------------------------------------

TOTP_ISSUER = "OCCE 85 Coop"
RECOVERY_CODE_COUNT = 10


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.login, issuer_name=TOTP_ISSUER)


def _step(now: datetime) -> int:
    return int(now.replace(tzinfo=UTC).timestamp()) // 30


def totp_code(secret: str, now: datetime) -> str:
    """The code an authenticator shows at `now` (naive UTC); for tests and the demo."""
    return pyotp.TOTP(secret).generate_otp(_step(now))


def _matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The 30-second step (now, one before or one after) whose code is `code` and was not used yet."""
    code = re.sub(r"\s+", "", code)
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = _step(now)
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            return step
    return None


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normal_recovery(code: str) -> str:
    return re.sub(r"[\s-]+", "", code.lower())


def enroll_second_factor(
    session: Session,
    user: User,
    secret: str,
    code: str,
    *,
    now: datetime,
    ip: str = "",
    hash_params: dict | None = None,
) -> list[str]:
    """Record `secret` as the staff member's second factor once `code` proves the app holds it.

    Returns the ten recovery codes in clear (shown once; only their hashes are kept). Raises
    DomainError on field ``code`` when the code does not match.
    """
    step = _matching_step(secret, code, now, None)
    if step is None:
        raise DomainError(
            "Ce code ne correspond pas. Vérifiez l'heure du téléphone et saisissez le code affiché "
            "(6 chiffres, il change toutes les 30 secondes).",
            field="code",
        )
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    user.totp_secret = secret
    user.totp_enrolled_at = now
    user.totp_last_step = step
    user.recovery_code_hashes = [hash_password(_normal_recovery(c), hash_params) for c in codes]
    _record(now, session, "second_factor.enrolled", actor=user, ip=ip, entity="user", entity_id=user.id)
    return codes


def check_second_factor(
    session: Session, user: User, code: str, *, now: datetime, policy: AuthPolicy, ip: str = ""
) -> LoginOutcome:
    """Check a TOTP code or a recovery code at login; a recovery code is spent. Failures count as login
    failures; success completes the login (``login.success``). Returns the outcome, never raises."""
    until = _refuse_if_throttled(session, user.login, ip=ip, now=now, policy=policy)
    if until is not None:
        return LoginOutcome(error="locked", locked_until=until)
    accepted = False
    if user.has_second_factor:
        step = _matching_step(user.totp_secret or "", code, now, user.totp_last_step)
        if step is not None:
            user.totp_last_step = step
            accepted = True
        elif len(_normal_recovery(code)) == 10:
            remaining = list(user.recovery_code_hashes or [])
            for stored in remaining:
                if verify_password(stored, _normal_recovery(code), policy.hash_params):
                    remaining.remove(stored)
                    user.recovery_code_hashes = remaining
                    _record(
                        now,
                        session,
                        "second_factor.recovery_used",
                        actor=user,
                        ip=ip,
                        entity="user",
                        entity_id=user.id,
                        after={"remaining": len(remaining)},
                    )
                    accepted = True
                    break
    if not accepted:
        _record(now, session, "second_factor.failed", actor=user, ip=ip, entity="user", entity_id=user.id)
        return LoginOutcome(error="invalid")
    user.last_login_at = now
    _record(now, session, "login.success", actor=user, ip=ip, entity="user", entity_id=user.id)
    return LoginOutcome(user=user)


def reset_second_factor(session: Session, user: User, *, by: User, ip: str = "") -> None:
    """An administrator removes another staff member's second factor (lost phone): they enrol again at
    their next login; every session of theirs ends. Raises DomainError for oneself or a non-staff login."""
    if by.role != "admin":
        raise DomainError("Seul un administrateur peut réinitialiser la double authentification.")
    if user.id == by.id:
        raise DomainError("Un autre administrateur doit réinitialiser votre double authentification.")
    if not user.is_staff:
        raise DomainError("Les coopératives n'ont pas de double authentification.")
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    user.recovery_code_hashes = None
    end_sessions(user)
    audit.record(session, "staff.second_factor_reset", actor=by, ip=ip, entity="user", entity_id=user.id)


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
    _record(now, session, "password.reset_requested", actor=user, ip=ip, entity="user", entity_id=user.id)
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
    return user
