"""Logging: one line per request, a short request id on every line, tracebacks, JSON on demand.

Each request gets an 8-character id (`g.request_id`), sent back in the `X-Request-Id` header and
shown on error pages, so that a user's « référence 3f9a0c1e » leads the operator to the log line
and to the traceback of that request. Lines go to standard error (gunicorn and systemd keep them):

    2026-11-29 18:05:12 INFO app.request [3f9a0c1e] POST /coop/cahier/2025/nouvelle 302 41ms user=7

`LOG_FORMAT=json` writes one JSON object per line instead (for a log collector); `LOG_LEVEL` sets
the level (INFO by default, WARNING in tests). The user is the id stored in the session cookie:
logging never loads the user from the database.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time

from flask import Flask, g, has_request_context, request, session
from flask.logging import default_handler

log = logging.getLogger("app.request")
_FIELDS = ("method", "path", "status", "duration_ms", "user_id")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        data.update({name: getattr(record, name) for name in _FIELDS if hasattr(record, name)})
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def _handler(fmt: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    handler._coop85 = True  # type: ignore[attr-defined]  # marks ours: configured once per process
    return handler


def configure(app: Flask) -> None:
    """Send the app's loggers (`app.*`, `admin.*`) to standard error with the request id."""
    level = app.config.get("LOG_LEVEL") or ("WARNING" if app.testing else "INFO")
    for name in ("app", "admin"):
        logger = logging.getLogger(name)
        logger.removeHandler(default_handler)
        if not any(getattr(h, "_coop85", False) for h in logger.handlers):
            logger.addHandler(_handler(app.config.get("LOG_FORMAT", "text")))
        logger.setLevel(level)
        logger.propagate = False


def register(app: Flask) -> None:
    configure(app)

    @app.before_request
    def start_request() -> None:
        g.request_id = secrets.token_hex(4)
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        request_id = g.get("request_id")
        if request_id is None:  # a request that failed before our before_request
            return response
        response.headers["X-Request-Id"] = request_id
        duration = round((time.perf_counter() - g.request_started) * 1000)
        user_id = (session.get("_user_id") or "-").partition(":")[0]
        log.info(
            "%s %s %s %dms user=%s",
            request.method,
            request.path,
            response.status_code,
            duration,
            user_id,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration,
                "user_id": user_id,
            },
        )
        return response
