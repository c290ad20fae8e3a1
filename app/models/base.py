"""Shared model helpers."""

from __future__ import annotations

from datetime import datetime

from app import clock


def utcnow() -> datetime:
    """Naive UTC now: every datetime column stores UTC without a zone (SQLite keeps none).

    The portal's one clock (`app.clock`), so that timestamps written by column defaults agree with
    the times the rules compare them with (a test that pins the clock pins both)."""
    return clock.now()
