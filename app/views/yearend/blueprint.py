"""The "yearend" blueprint, in a module of its own so that the route modules import it without a
circle through the package."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("yearend", __name__)
