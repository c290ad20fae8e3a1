"""A per-coop limit on uploads: one coop sending file after file cannot fill the disk or hold the
workers for everyone else.

Every POST carrying a file from a coop account counts against `UPLOAD_RATE_LIMIT` (default 60
files an hour per coop, whatever the address), through Flask-Limiter's storage (memory, or Redis
with several servers). Past it, the French 429 page says to wait; nothing is stored. The storage
quota of a coop (500 Mo) is checked by `app.documents.store_document`.
"""

from __future__ import annotations

from flask import Flask, abort, current_app, request
from flask_login import current_user
from limits import parse

from app.extensions import limiter


def limit_coop_uploads() -> None:
    """before_request: count the uploads of the logged-in coop; 429 past the limit."""
    if request.method != "POST" or not request.content_type or not request.content_type.startswith("multipart/"):
        return
    if not limiter.enabled or not current_user.is_authenticated or not current_user.is_coop:
        return
    if not any(upload.filename for upload in request.files.values()):
        return
    item = parse(current_app.config["UPLOAD_RATE_LIMIT"])
    if not limiter.limiter.hit(item, "coop-uploads", str(current_user.coop_id)):
        abort(429)


def register(app: Flask) -> None:
    app.before_request(limit_coop_uploads)
