"""French error pages that cannot fail, and what the operator sees of each error.

Every error page is rendered from `templates/errors/error.html`, a layout of its own that reads
nothing from the database (not even the logged-in user): the session is rolled back first, so a
broken or unreachable database still gets a French page. Each page shows the request id that the
log line of the same request (and its traceback) carries (`app/web/logs.py`).

A database that stays busy (SQLite lock, PostgreSQL lock or statement timeout) or cannot be reached
answers 503 with `Retry-After`: nothing was written (the unit of work rolled back).
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, current_app, g, request, session, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app import documents
from app.extensions import db

log = logging.getLogger("coop85.errors")

RETRY_AFTER_SECONDS = 10
MESSAGES = {
    400: ("Requête incorrecte", "La demande n'a pas pu être comprise."),
    403: ("Accès refusé", "Vous n'avez pas accès à cette page avec ce compte."),
    404: ("Page introuvable", "Cette page n'existe pas ou n'est pas accessible avec ce compte."),
    405: ("Action impossible", "Cette action n'est pas possible sur cette page."),
    413: ("Fichier trop volumineux", "Le fichier envoyé dépasse la taille autorisée."),
    429: ("Trop de tentatives", "Trop de demandes en peu de temps. Patientez quelques minutes puis réessayez."),
    500: (
        "Erreur du serveur",
        "Une erreur inattendue s'est produite. Rien n'a été enregistré. "
        "Réessayez dans quelques minutes ; si cela persiste, contactez l'OCCE 85 en donnant le code ci-dessous.",
    ),
    503: (
        "Portail très occupé",
        "Le portail est très occupé : rien n'a été enregistré, réessayez dans un instant.",
    ),
}
# A refused form (CSRF): the session expired while the form was open (no user left in the session), or
# the form was opened before a new login / in a tab of an older session. Nothing was recorded either way.
CSRF_EXPIRED = (
    "Session expirée",
    "Votre session a expiré : après {minutes} minutes sans activité, il faut se reconnecter. "
    "Ce formulaire n'a donc pas été enregistré.",
    "reconnectez-vous, vous retrouverez le formulaire rempli ; vérifiez-le puis validez-le.",
    "Se reconnecter et reprendre le formulaire",
)
CSRF_STALE = (
    "Formulaire périmé",
    "Ce formulaire a été ouvert avant votre dernière connexion (ou dans un autre onglet) : par sécurité, "
    "il n'a pas été enregistré.",
    "revenez au formulaire, il sera rempli de nouveau ; vérifiez-le puis validez-le.",
    "Revenir au formulaire",
)


def _form_page() -> str:
    """The page the refused form was on (same-site Referer), else the address it was sent to."""
    from urllib.parse import urlsplit

    from app.web.security import safe_next_url

    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        page = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    else:
        page = request.full_path.rstrip("?")
    return safe_next_url(page, url_for("coop.index"))


def render_csrf_error():
    """The refused-form page: what happened, nothing recorded, and the way back to the same form."""
    _rollback()
    # Flask-WTF refuses the form before the access check that draws the page's CSP nonce.
    if not g.get("csp_nonce"):
        g.csp_nonce = secrets.token_urlsafe(16)
    logged_in = bool(session.get("_user_id"))
    title, text, kept, back_label = CSRF_STALE if logged_in else CSRF_EXPIRED
    page = _form_page()
    back_url = page if logged_in else url_for("auth.login", next=page)
    template = current_app.jinja_env.get_template("errors/csrf.html")
    html = template.render(
        code=400,
        title=title,
        text=text.format(minutes=int(current_app.config["IDLE_TIMEOUT"].total_seconds() // 60)),
        kept=kept,
        back_url=back_url,
        back_label=back_label,
        nonce=g.get("csp_nonce", ""),
        request_id=g.get("request_id", ""),
    )
    return html, 400


def _rollback() -> None:
    try:
        db.session.rollback()
        documents.discard_written_files(db.session)
    except Exception:  # a dead connection cannot even roll back; the page must still render
        log.warning("rollback failed while rendering an error page", exc_info=True)


def render_error(code: int, message: str | None = None):
    """The French page for `code`, rendered on a clean session without touching the database."""
    _rollback()
    title, text = MESSAGES[code]
    # Straight from the Jinja environment: Flask's context processors are skipped, Flask-Login's
    # among them, which would load the user from the database.
    template = current_app.jinja_env.get_template("errors/error.html")
    html = template.render(code=code, title=title, text=message or text, request_id=g.get("request_id", ""))
    response = (html, code, {"Retry-After": str(RETRY_AFTER_SECONDS)} if code == 503 else {})
    return response


def is_database_unavailable(exc: BaseException) -> bool:
    """A busy, timed-out or unreachable database (as opposed to a bug in a query)."""
    if isinstance(exc, PoolTimeoutError | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def register(app: Flask) -> None:
    for code in MESSAGES:
        if code not in (500, 503):
            app.register_error_handler(code, lambda exc, code=code: render_error(code))

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_csrf_error()

    @app.errorhandler(503)
    def unavailable(exc):
        return render_error(503)

    @app.errorhandler(500)
    def server_error(exc):
        # Flask logged the traceback already (with the request id, see app/web/logs.py).
        return render_error(500)

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeoutError)
    def database_error(exc):
        if is_database_unavailable(exc):
            log.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
            return render_error(503)
        app.log_exception(exc)  # keeps the traceback in the log
        return render_error(500)
