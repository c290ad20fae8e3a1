"""HTML to PDF with xhtml2pdf, confined to the application's own static files.

The HTML comes from Jinja templates in ``templates/pdf/`` (autoescaped: user text is always
text, never markup). Resources are fetched under ``ResourceAccessPolicy.server``: local reads
only inside `static_dir`, no network at all, and limits on time, size and nesting (SECURITY.md
§2.4; a ``link_callback`` would not be a security boundary).
"""

from __future__ import annotations

import io
from pathlib import Path

from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy


class PdfError(RuntimeError):
    """The document could not be rendered."""


def render_pdf(html: str, static_dir: str | Path) -> bytes:
    """Render `html` to PDF bytes; resources may only come from `static_dir`. Raises PdfError."""
    policy = ResourceAccessPolicy.server(base_dir=Path(static_dir), allow_remote=False)
    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, encoding="utf-8", resource_policy=policy)
    if result.err:
        raise PdfError(f"xhtml2pdf reported {result.err} error(s)")
    return out.getvalue()
