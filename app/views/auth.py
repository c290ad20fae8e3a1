"""Login (with the staff second factor), logout, password change and reset.

A coop is logged in as soon as its password is right. A staff member is not: the password step
leaves only a short-lived « pending login » in the session (user id, session version, when), and
Flask-Login's session opens after the TOTP code (`second_factor`) or, the first time, after the
authenticator app is enrolled (`enroll_second_factor`). So a stolen staff password alone opens
no back-office page. The step is remembered for the session only (no remember-me cookie).

Every session also has an absolute lifetime (`SESSION_ABSOLUTE_LIFETIME`, 12 hours), on top of the
30-minute idle timeout, checked by `end_old_sessions` before each request.
"""

from __future__ import annotations

import time
from datetime import timedelta

import segno
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app import audit, clock
from app import auth as auth_rules
from app.extensions import db, limiter
from app.formats import fr_datetime
from app.models import User
from app.web import notifications, uow
from app.web.common import auth_policy
from app.web.netutil import client_ip
from app.web.security import access, safe_next_url
from forms.auth import (
    ChangePasswordForm,
    EnrollSecondFactorForm,
    LoginForm,
    ResetPasswordForm,
    ResetRequestForm,
    SecondFactorForm,
)

bp = Blueprint("auth", __name__)

PENDING_LOGIN_SECONDS = 300  # time to type the code after the password
DEFAULT_SESSION_LIFETIME = timedelta(hours=12)
DEFAULT_RESET_REQUEST_SECONDS = 0.4
# Replaced in tests to observe the padding without waiting.
sleep = time.sleep


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _home_for(user) -> str:
    return url_for("admin.index") if user.is_staff else url_for("coop.index")


def _locked_message(until) -> str:
    return (
        "Trop de tentatives échouées pour cet identifiant depuis cette adresse. Par sécurité, la connexion "
        f"est suspendue jusqu'à {fr_datetime(until, 'HH:mm')}. Vous pouvez aussi demander un nouveau mot de passe."
    )


def _open_session(user: User, next_url: str):
    """Flask-Login's session, started from an empty one (no fixation); then the first page."""
    session.clear()
    login_user(user)
    session.permanent = True
    session["seen"] = session["login_at"] = clock.timestamp()
    if user.must_change_password:
        flash("Bienvenue ! Choisissez maintenant votre mot de passe personnel.", "info")
        return redirect(url_for("auth.change_password"))
    return redirect(safe_next_url(next_url, _home_for(user)))


def _pending_user() -> User | None:
    """The staff member whose password was right a moment ago in this browser, or None."""
    pending = session.get("pending_login")
    if not pending or clock.timestamp() - pending.get("at", 0) > PENDING_LOGIN_SECONDS:
        return None
    user = db.session.get(User, pending.get("id"))
    if user is None or not user.is_active or not user.is_staff or user.session_version != pending.get("v"):
        return None
    return user


@bp.before_app_request
def end_old_sessions():
    """A session lasts at most SESSION_ABSOLUTE_LIFETIME after the login, however active it is."""
    if "_user_id" not in session or (request.endpoint or "").endswith("static"):
        return None
    lifetime = current_app.config.get("SESSION_ABSOLUTE_LIFETIME", DEFAULT_SESSION_LIFETIME)
    started = session.get("login_at")
    if started is not None and clock.timestamp() - float(started) <= lifetime.total_seconds():
        return None
    logout_user()
    session.clear()
    hours = int(lifetime.total_seconds() // 3600)
    flash(f"Par sécurité, une session dure au plus {hours} heures : reconnectez-vous.", "warning")
    return redirect(url_for("auth.login"))


@bp.route("/connexion", methods=["GET", "POST"])
@access("anonymous")
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        # The password is checked (argon2, slow) before the unit of work takes the write lock; a refused
        # login is not an error for the unit of work: its audit row (which the throttling counts) is
        # committed like a success's.
        now = clock.now()
        check = auth_rules.check_login(
            db.session, form.login.data, form.password.data, ip=client_ip(), now=now, policy=auth_policy()
        )
        run = uow.run(lambda: auth_rules.record_login(db.session, check, ip=client_ip(), now=now))
        if not run.ok:
            return render_template("auth/login.html", form=form)
        outcome = run.value
        if outcome.user is not None and outcome.user.is_staff:
            user = outcome.user
            session.clear()
            session["pending_login"] = {
                "id": user.id,
                "v": user.session_version,
                "at": clock.timestamp(),
                "next": safe_next_url(form.next.data, ""),
            }
            return redirect(url_for("auth.second_factor" if user.has_second_factor else "auth.enroll_second_factor"))
        if outcome.user is not None:
            return _open_session(outcome.user, form.next.data)
        if outcome.error == "locked":
            form.password.errors.append(_locked_message(outcome.locked_until))
        elif outcome.error == "disabled":
            form.password.errors.append("Ce compte est désactivé. Contactez l'OCCE 85.")
        else:
            form.password.errors.append("Identifiant ou mot de passe incorrect.")
    return render_template("auth/login.html", form=form)


@bp.route("/connexion/code", methods=["GET", "POST"])
@access("anonymous")
@limiter.limit(_login_limit, methods=["POST"])
def second_factor():
    user = _pending_user()
    if user is None:
        session.pop("pending_login", None)
        flash("Saisissez d'abord votre identifiant et votre mot de passe.", "info")
        return redirect(url_for("auth.login"))
    if not user.has_second_factor:
        return redirect(url_for("auth.enroll_second_factor"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        run = uow.run(
            lambda: auth_rules.check_second_factor(
                db.session, user, form.code.data, now=clock.now(), policy=auth_policy(), ip=client_ip()
            )
        )
        if run.ok and run.value.user is not None:
            return _open_session(user, session.get("pending_login", {}).get("next", ""))
        if run.ok and run.value.error == "locked":
            form.code.errors.append(_locked_message(run.value.locked_until))
        elif run.ok:
            form.code.errors.append(
                "Code incorrect ou déjà utilisé. Saisissez le code actuellement affiché (il change toutes les "
                "30 secondes) ou un code de secours."
            )
    return render_template("auth/second_factor.html", form=form, user=user)


@bp.route("/connexion/code/activation", methods=["GET", "POST"])
@access("anonymous")
@limiter.limit(_login_limit, methods=["POST"])
def enroll_second_factor():
    user = _pending_user()
    if user is None:
        session.pop("pending_login", None)
        flash("Saisissez d'abord votre identifiant et votre mot de passe.", "info")
        return redirect(url_for("auth.login"))
    if user.has_second_factor:
        return redirect(url_for("auth.second_factor"))
    # The secret waits in this (signed, HttpOnly) session until a code proves the phone holds it.
    secret = session.get("totp_secret_pending") or auth_rules.new_totp_secret()
    session["totp_secret_pending"] = secret
    form = EnrollSecondFactorForm()
    if form.validate_on_submit():
        policy = auth_policy()
        run = uow.run(
            lambda: auth_rules.enroll_second_factor(
                db.session,
                user,
                secret,
                form.code.data,
                now=clock.now(),
                ip=client_ip(),
                hash_params=policy.hash_params,
            ),
            form=form,
            fields={"": "code"},
        )
        if run.ok:
            next_url = session.get("pending_login", {}).get("next", "")
            after = _open_session(user, next_url)
            # Shown once, on this answer only (never stored in clear, never in a redirect).
            return render_template("auth/recovery_codes.html", codes=run.value, continue_url=after.location)
    uri = auth_rules.totp_uri(user, secret)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template("auth/enroll_second_factor.html", form=form, qr=qr, secret=grouped, user=user)


@bp.route("/deconnexion", methods=["POST"])
@access("authenticated")
def logout():
    user = current_user._get_current_object()

    def end_sessions():
        auth_rules.end_sessions(user)
        audit.record(db.session, "logout", actor=user, ip=client_ip())

    uow.run(end_sessions)  # a failure is flashed; the browser's session ends anyway
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté. À bientôt !", "success")
    return redirect(url_for("auth.login"))


@bp.route("/mot-de-passe", methods=["GET", "POST"])
@access("authenticated")
@limiter.limit(_login_limit, methods=["POST"])
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        # The current password first, in its own transaction: a wrong one is a login failure whose
        # audit row must be committed (throttling counts it) although nothing else changes.
        check = uow.run(
            lambda: auth_rules.check_current_password(
                db.session, user, form.current_password.data, now=clock.now(), policy=auth_policy(), ip=client_ip()
            )
        )
        if check.ok and check.value.error == "locked":
            form.current_password.errors.append(_locked_message(check.value.locked_until))
        elif check.ok and check.value.error:
            form.current_password.errors.append("Le mot de passe actuel est incorrect.")
        elif check.ok:
            outcome = uow.run(
                lambda: auth_rules.change_password(
                    db.session,
                    user,
                    form.current_password.data,
                    form.new_password.data,
                    now=clock.now(),
                    policy=auth_policy(),
                    ip=client_ip(),
                ),
                form=form,
                fields={"": "new_password"},
            )
            if outcome.ok:
                # Other sessions ended with the version bump; this one continues with the new id.
                login_user(user)
                flash("Votre mot de passe a été modifié. Notez-le dans votre mémento.", "success")
                return redirect(_home_for(user))
    return render_template("auth/change_password.html", form=form)


@bp.route("/mot-de-passe/oubli", methods=["GET", "POST"])
@access("anonymous")
@limiter.limit("10 per hour", methods=["POST"])
def forgot_password():
    form = ResetRequestForm()
    if form.validate_on_submit():
        # The answer takes the same time whether the login exists or not: the work for a known login
        # (token, mail rendered and queued) is padded to a fixed floor, so timing tells nothing either.
        started = time.monotonic()

        def request_reset():
            user = auth_rules.find_user_for_reset(db.session, form.identifier.data)
            if user is not None:
                raw = auth_rules.create_reset_token(
                    db.session, user, now=clock.now(), policy=auth_policy(), ip=client_ip()
                )
                notifications.password_reset(db.session, user, url_for("auth.reset_password", token=raw))
            else:
                audit.record(
                    db.session, "password.reset_unknown", actor_login=form.identifier.data[:64], ip=client_ip()
                )

        ok = uow.run(request_reset).ok
        floor = current_app.config.get("RESET_REQUEST_SECONDS", DEFAULT_RESET_REQUEST_SECONDS)
        sleep(max(0.0, floor - (time.monotonic() - started)))
        if not ok:
            return render_template("auth/forgot_password.html", form=form)
        # Same answer whether the login exists or not (no enumeration).
        flash(
            "Si cet identifiant existe, un e-mail contenant un lien vient d'être envoyé à l'adresse "
            "enregistrée. Le lien est valable une heure et ne sert qu'une fois.",
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/mot-de-passe/reinitialiser/<token>", methods=["GET", "POST"])
@access("anonymous")
@limiter.limit("20 per hour", methods=["POST"])
def reset_password(token: str):
    valid = auth_rules.user_for_reset_token(db.session, token, now=clock.now()) is not None
    form = ResetPasswordForm()
    if valid and form.validate_on_submit():
        outcome = uow.run(
            lambda: auth_rules.reset_password(
                db.session, token, form.new_password.data, now=clock.now(), policy=auth_policy(), ip=client_ip()
            ),
            form=form,
            fields={"": "new_password"},
        )
        if outcome.ok:
            logout_user()
            session.clear()
            flash("Votre mot de passe a été enregistré. Connectez-vous avec ce nouveau mot de passe.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, valid=valid)
