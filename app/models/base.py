"""Shared model helpers."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC now: every datetime column stores UTC without a zone (SQLite keeps none)."""
    return datetime.now(UTC).replace(tzinfo=None)
