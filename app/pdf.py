"""HTML to PDF with xhtml2pdf, confined to the application's own static files.

The HTML comes from Jinja templates in ``templates/pdf/`` (autoescaped: user text is always
text, never markup). Resources are fetched under ``ResourceAccessPolicy.server``: local reads
only inside `static_dir`, no network at all, and limits on time, size and nesting (SECURITY.md
§2.4; a ``link_callback`` would not be a security boundary).

Every character is drawn: the documents use Bitstream Vera (``font-family: Vera``, regular, bold,
italic), the TrueType fonts shipped inside the reportlab package (a pinned dependency, so nothing
depends on the fonts of the machine). Unlike Helvetica it has the minus sign (U+2212), the euro
sign, œ, the typographic apostrophe and the no-break space. A character no font of the document
can draw makes xhtml2pdf log a warning: `render_pdf` turns it into a `MissingGlyphWarning`
(tests run with warnings as errors, so such a PDF fails them).

Amounts never break across lines: French typography puts a narrow no-break space (U+202F) inside
amounts, which xhtml2pdf's line breaking treats as a space, and Vera has no glyph for it; a PDF
gets the ordinary no-break space (U+00A0) instead, which it never breaks on.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from pathlib import Path

import reportlab
import segno
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy
from xhtml2pdf.default import DEFAULT_FONT

FONT = "Vera"
_FONT_FILES = {(0, 0): "Vera", (1, 0): "VeraBd", (0, 1): "VeraIt", (1, 1): "VeraBI"}  # (bold, italic)
_NARROW_NO_BREAK_SPACE, _NO_BREAK_SPACE = "\u202f", "\u00a0"
_XHTML2PDF_LOGGERS = ("xhtml2pdf", "xhtml2pdf.context")


class PdfError(RuntimeError):
    """The document could not be rendered."""


class MissingGlyphWarning(UserWarning):
    """A character of the document has no glyph in its fonts: it would print blank or as a box."""


def _register_fonts() -> None:
    """Make the Vera family known to reportlab and to xhtml2pdf (once per process)."""
    folder = Path(reportlab.__file__).parent / "fonts"
    for (bold, italic), name in _FONT_FILES.items():
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(folder / f"{name}.ttf")))
        addMapping(FONT, bold, italic, name)
    DEFAULT_FONT[FONT.lower()] = FONT


_register_fonts()


class _GlyphWarnings(logging.Handler):
    """Collects xhtml2pdf's missing-glyph warnings of the rendering running in this thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread == self.thread and "glyph" in message:
            self.messages.append(message)


def render_pdf(html: str, static_dir: str | Path) -> bytes:
    """Render `html` to PDF bytes; resources may only come from `static_dir`. Raises PdfError; warns
    MissingGlyphWarning for a character its fonts cannot draw."""
    policy = ResourceAccessPolicy.server(base_dir=Path(static_dir), allow_remote=False)
    html = html.replace(_NARROW_NO_BREAK_SPACE, _NO_BREAK_SPACE)
    out = io.BytesIO()
    collector = _GlyphWarnings()
    loggers = [logging.getLogger(name) for name in _XHTML2PDF_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        result = pisa.CreatePDF(html, dest=out, encoding="utf-8", resource_policy=policy)
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
    for message in dict.fromkeys(collector.messages):
        warnings.warn(message, MissingGlyphWarning, stacklevel=2)
    if result.err:
        raise PdfError(f"xhtml2pdf reported {result.err} error(s)")
    return out.getvalue()


def qr_data_uri(text: str) -> str:
    """A QR code of `text` as a PNG data URI, drawn locally (segno), for an <img> of a PDF."""
    return segno.make(text, error="m").png_data_uri(scale=4, border=2)
