"""Login, logout, password change and reset."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app import audit, clock
from app import auth as auth_rules
from app.extensions import db, limiter
from app.formats import fr_datetime
from app.web import notifications, uow
from app.web.common import auth_policy
from app.web.netutil import client_ip
from app.web.security import access, safe_next_url
from forms.auth import ChangePasswordForm, LoginForm, ResetPasswordForm, ResetRequestForm

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _home_for(user) -> str:
    return url_for("admin.index") if user.is_staff else url_for("coop.index")


@bp.route("/connexion", methods=["GET", "POST"])
@access("anonymous")
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        # A refused login is not an error for the unit of work: `authenticate` returns the refusal,
        # so its audit row (which the throttling counts) is committed like a success's.
        run = uow.run(
            lambda: auth_rules.authenticate(
                db.session, form.login.data, form.password.data, ip=client_ip(), now=clock.now(), policy=auth_policy()
            )
        )
        if not run.ok:
            return render_template("auth/login.html", form=form)
        outcome = run.value
        if outcome.user is not None:
            session.clear()  # no session fixation: start from an empty session
            login_user(outcome.user)
            session.permanent = True
            session["seen"] = clock.timestamp()
            if outcome.user.must_change_password:
                flash("Bienvenue ! Choisissez maintenant votre mot de passe personnel.", "info")
                return redirect(url_for("auth.change_password"))
            return redirect(safe_next_url(form.next.data, _home_for(outcome.user)))
        if outcome.error == "locked":
            form.password.errors.append(
                "Trop de tentatives échouées pour cet identifiant. Par sécurité, la connexion est bloquée "
                f"jusqu'à {fr_datetime(outcome.locked_until, 'HH:mm')}. Vous pouvez aussi demander "
                "un nouveau mot de passe."
            )
        elif outcome.error == "disabled":
            form.password.errors.append("Ce compte est désactivé. Contactez l'OCCE 85.")
        else:
            form.password.errors.append("Identifiant ou mot de passe incorrect.")
    return render_template("auth/login.html", form=form)


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
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
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

        if not uow.run(request_reset).ok:
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
