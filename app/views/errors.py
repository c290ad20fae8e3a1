"""French error pages (no traceback ever reaches a user)."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError

from app.extensions import db

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
        "Réessayez dans quelques minutes ; si cela persiste, contactez l'OCCE 85.",
    ),
}


def register(app: Flask) -> None:
    def render(code: int, message: str | None = None):
        # Whatever failed, the page renders on a clean session (nothing half-done is kept).
        db.session.rollback()
        title, text = MESSAGES[code]
        return render_template("errors/error.html", code=code, title=title, text=message or text), code

    for code in MESSAGES:
        app.register_error_handler(code, lambda exc, code=code: render(code))

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render(
            400,
            "Le formulaire a expiré ou a été ouvert dans un autre onglet. "
            "Rechargez la page et recommencez : rien n'a été enregistré.",
        )
