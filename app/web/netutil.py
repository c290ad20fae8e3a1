"""Client address, as seen after ProxyFix (configured with PROXY_COUNT)."""

from __future__ import annotations

from flask import has_request_context, request


def client_ip() -> str:
    """Return the request's client address (never a client-supplied header unless ProxyFix trusts it)."""
    if not has_request_context():
        return "cli"
    return request.remote_addr or "unknown"
