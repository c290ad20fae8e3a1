"""Client address, as seen after ProxyFix (configured with PROXY_COUNT); URL converters."""

from __future__ import annotations

from flask import has_request_context, request
from werkzeug.routing import IntegerConverter

DB_INT_MAX = 2**63 - 1  # the largest id PostgreSQL (bigint) and SQLite can store


def client_ip() -> str:
    """Return the request's client address (never a client-supplied header unless ProxyFix trusts it)."""
    if not has_request_context():
        return "cli"
    return request.remote_addr or "unknown"


class DatabaseIdConverter(IntegerConverter):
    """`<int:…>` in every route: an integer the database can hold, else the URL does not match (404).

    Without the bound, an id above 2^63 reached the database driver and ended in a 500.
    """

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)
