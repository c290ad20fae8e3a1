"""Serving uploaded documents (vouchers, identity documents, proofs, report documents, bank PDFs).

One place for both faces: the file is served by the portal only, with `nosniff` and a sandboxed
CSP, either shown in the page (`inline`, for staff reviewing a dossier) or as an attachment. The
view decides who may see the document; `send_document` records the consultation when asked (aside,
so that a GET never commits and a busy database never fails the download).
"""

from __future__ import annotations

from flask import Response, abort, current_app, send_file
from flask_login import current_user

from app import documents
from app.models import Document
from app.web import uow
from app.web.netutil import client_ip


def send_document(document: Document, *, inline: bool = False, audited: bool = True) -> Response:
    """The stored file of `document`, its consultation audited (who, which document, when; `audited=False`
    only for a file the viewer uploaded a moment ago); 404 (logged) when the file is missing from the store."""
    path = documents.document_path(current_app.config["UPLOAD_DIR"], document)
    if not path.is_file():
        current_app.logger.error(
            "document %s: file %s missing from the upload store", document.id, document.storage_key
        )
        abort(404)
    if audited:
        uow.record_aside(
            "document.viewed" if inline else "document.downloaded",
            actor_id=current_user.id,
            actor_login=current_user.login,
            coop_id=document.coop_id,
            entity="document",
            entity_id=document.id,
            after={"kind": document.kind},
            ip=client_ip(),
        )
    response = send_file(
        path, mimetype=document.content_type, as_attachment=not inline, download_name=document.original_name, max_age=0
    )
    # Shown by the browser, never as part of the app: a sandboxed, unique origin, no sniffing.
    response.headers["Content-Security-Policy"] = "sandbox" if inline else "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
