"""Long listings of a PDF drawn with reportlab's platypus, appended to an xhtml2pdf document.

xhtml2pdf lays out every table cell through its HTML and CSS machinery: a thousand rows cost about
ten seconds. A report keeps its summary in the xhtml2pdf body (`app.pdf.render_pdf`) and draws its
long listings (every uncleared bank line of a CRF, its inventory register) here, as reportlab tables
of plain strings (a label too long for its column wraps): no markup, no CSS, the rows of a page
laid out once. `render_with_listings` renders both and appends the listing pages to the body's,
numbered after them.

The pages look like the body's (`templates/pdf/base.html`): A4, the same margins, Bitstream Vera
(registered by `app.pdf`), the same grid colours, the same footer with the page number. Amounts
never break: a plain-string cell is drawn on one line, and the narrow no-break space of
`app.formats` becomes the no-break space Vera can draw, as in the body. A character Vera cannot
draw warns `MissingGlyphWarning`, as xhtml2pdf's warning does for the body.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from app.pdf import FONT, MissingGlyphWarning, render_pdf

_BOLD = "VeraBd"
_NARROW_NO_BREAK_SPACE, _NO_BREAK_SPACE = "\u202f", "\u00a0"
_BLUE, _GRID, _HEAD, _TEXT, _GREY = (
    colors.HexColor(value) for value in ("#00567a", "#999999", "#e8f1f5", "#222222", "#666666")
)
# templates/pdf/base.html: @page margin 1.8cm 2cm 2.4cm 2cm, footer frame 1 cm above the bottom edge.
_LEFT = _RIGHT = 2 * cm
_TOP, _BOTTOM = 1.8 * cm, 2.4 * cm
_WIDTH = A4[0] - _LEFT - _RIGHT
_PAD_X = 4  # cell padding, left and right (pt)
_SIZE, _LEADING = 9, 11

_CELL = ParagraphStyle("cell", fontName=FONT, fontSize=_SIZE, leading=_LEADING, textColor=_TEXT)
_TITLE = ParagraphStyle(
    "title", fontName=_BOLD, fontSize=11.5, leading=14, textColor=_BLUE, spaceBefore=12, spaceAfter=4
)
_HEADING = ParagraphStyle("heading", fontName=_BOLD, fontSize=17, leading=21, textColor=_BLUE, spaceAfter=2)
_TEXT_STYLE = ParagraphStyle("text", fontName=FONT, fontSize=10, leading=13.5, textColor=_TEXT, spaceBefore=4)
_FOOTER = ParagraphStyle("footer", fontName=FONT, fontSize=8, leading=10, textColor=_GREY, alignment=1)


@dataclass(frozen=True)
class Column:
    """A column of a listing: its title, its share of the page width, amounts aligned right."""

    title: str
    width: float
    numeric: bool = False


@dataclass(frozen=True)
class Listing:
    """A titled table of plain-text rows, with an optional total row (label, amount) and note."""

    title: str
    columns: tuple[Column, ...]
    rows: Sequence[Sequence[str]]
    total: tuple[str, str] | None = None
    note: str = ""
    empty: str = "Aucune."


def _pdf_text(text: str) -> str:
    return text.replace(_NARROW_NO_BREAK_SPACE, _NO_BREAK_SPACE)


class _Glyphs:
    """Every character drawn, checked against Vera's glyphs once at the end."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, text: str) -> str:
        text = _pdf_text(text)
        self.seen.update(text)
        return text

    def check(self) -> None:
        mapped = pdfmetrics.getFont(FONT).face.charToGlyph
        missing = sorted(char for char in self.seen if ord(char) not in mapped and char not in "\n\r\t")
        if missing:
            warnings.warn(
                f"No glyph in {FONT} for {', '.join(repr(char) for char in missing)}", MissingGlyphWarning, stacklevel=3
            )


def _paragraph(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


_ROW = _LEADING + 3 + 2  # a row of one line: leading, top and bottom padding
_BASE_STYLE = (
    ("FONT", (0, 0), (-1, -1), FONT, _SIZE, _LEADING),
    ("FONT", (0, 0), (-1, 0), _BOLD, _SIZE, _LEADING),
    ("TEXTCOLOR", (0, 0), (-1, -1), _TEXT),
    ("BACKGROUND", (0, 0), (-1, 0), _HEAD),
    ("GRID", (0, 0), (-1, -1), 0.5, _GRID),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), _PAD_X),
    ("RIGHTPADDING", (0, 0), (-1, -1), _PAD_X),
    ("TOPPADDING", (0, 0), (-1, -1), 3),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
)


@dataclass(frozen=True)
class _Row:
    cells: list[object]
    height: float
    kind: str = "line"  # or "empty" (one cell across the table), "total" (label across all but the amount)


class _PagedTable(Flowable):
    """A table that fills each page with the rows that fit and carries the rest, its header repeated:
    the row heights are known in advance (`rowHeights`), so a split costs the rows of one page, where
    a reportlab table would measure and copy every remaining row at each page break."""

    def __init__(self, header: list[object], rows: Sequence[_Row], widths: list[float], style: list[tuple]):
        super().__init__()
        self.header, self.rows, self.widths, self.style = header, rows, widths, style
        self.hAlign = "LEFT"

    def _table(self, rows: Sequence[_Row]) -> Table:
        style = list(self.style)
        for index, row in enumerate(rows, start=1):
            if row.kind == "empty":
                style.append(("SPAN", (0, index), (-1, index)))
            elif row.kind == "total":
                style += [
                    ("SPAN", (0, index), (-2, index)),
                    ("FONT", (0, index), (-1, index), _BOLD, _SIZE, _LEADING),
                    ("BACKGROUND", (0, index), (-1, index), _HEAD),
                ]
        data = [self.header] + [row.cells for row in rows]
        heights = [_ROW] + [row.height for row in rows]
        return Table(data, colWidths=self.widths, rowHeights=heights, style=TableStyle(style), hAlign="LEFT")

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        self.width, self.height = sum(self.widths), _ROW + sum(row.height for row in self.rows)
        return self.width, self.height

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        room, fitting = available_height - _ROW, 0
        for row in self.rows:
            if row.height > room:
                break
            room -= row.height
            fitting += 1
        if fitting == 0:
            return []  # not even one row: the next page
        return [
            self._table(self.rows[:fitting]),
            _PagedTable(self.header, self.rows[fitting:], self.widths, self.style),
        ]

    def draw(self) -> None:
        table = self._table(self.rows)
        table.wrapOn(self.canv, self.width, self.height)
        table.drawOn(self.canv, 0, 0)


def _table(listing: Listing, glyph: _Glyphs) -> _PagedTable:
    widths = [column.width * _WIDTH for column in listing.columns]
    last = len(widths) - 1
    rows: list[_Row] = []
    for row in listing.rows:
        cells: list[object] = []
        height = _ROW
        for index, value in enumerate(row):
            value = glyph(value)
            room = widths[index] - 2 * _PAD_X
            # A plain string is drawn on one line; only a text wider than its column is wrapped.
            if not listing.columns[index].numeric and pdfmetrics.stringWidth(value, FONT, _SIZE) > room:
                paragraph = _paragraph(value, _CELL)
                height = max(height, paragraph.wrap(room, A4[1])[1] + 3 + 2)
                cells.append(paragraph)
            else:
                cells.append(value)
        rows.append(_Row(cells, height))
    if not listing.rows:
        rows.append(_Row([glyph(listing.empty)] + [""] * last, _ROW, "empty"))
    if listing.total is not None:
        label, amount = listing.total
        rows.append(_Row([glyph(label)] + [""] * (last - 1) + [glyph(amount)], _ROW, "total"))
    style = list(_BASE_STYLE)
    style += [("ALIGN", (i, 0), (i, -1), "RIGHT") for i, column in enumerate(listing.columns) if column.numeric]
    return _PagedTable([glyph(column.title) for column in listing.columns], rows, widths, style)


def render_listings(listings: Sequence[Listing], *, heading: str, subtitle: str, footer: str, first_page: int) -> bytes:
    """The listings as PDF pages: `heading` and `subtitle` on top of the first, `footer` and the page
    number (from `first_page`) at the bottom of each."""
    glyph = _Glyphs()
    story: list[object] = [_paragraph(glyph(heading), _HEADING), _paragraph(glyph(subtitle), _TEXT_STYLE)]
    for listing in listings:
        story += [CondPageBreak(4 * cm), _paragraph(glyph(listing.title), _TITLE), _table(listing, glyph)]
        if listing.note:
            story.append(_paragraph(glyph(listing.note), _TEXT_STYLE))
        story.append(Spacer(1, 4))
    footer = glyph(footer)
    glyph("0123456789 page·")
    glyph.check()

    def draw_footer(canvas, doc) -> None:
        canvas.saveState()
        text = Paragraph(f"{escape(footer)} · page {first_page + doc.page - 1}", _FOOTER)
        _, height = text.wrap(_WIDTH, 2 * cm)
        text.drawOn(canvas, _LEFT, 2 * cm + 2 - height)
        canvas.restoreState()

    out = io.BytesIO()
    frame = Frame(
        _LEFT, _BOTTOM, _WIDTH, A4[1] - _TOP - _BOTTOM, leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0
    )
    page = PageTemplate("annexe", frames=[frame], onPage=draw_footer)
    doc = BaseDocTemplate(out, pagesize=A4, pageTemplates=[page], title=heading, lang="fr")
    doc.build(story)
    return out.getvalue()


def render_with_listings(
    html: str, static_dir: str | Path, listings: Sequence[Listing], *, heading: str, subtitle: str, footer: str
) -> bytes:
    """The xhtml2pdf body of `html`, then `listings` on pages numbered after it, as one PDF."""
    body = render_pdf(html, static_dir)
    if not listings:
        return body
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(body)))
    annex = render_listings(
        listings, heading=heading, subtitle=subtitle, footer=footer, first_page=len(writer.pages) + 1
    )
    for page in PdfReader(io.BytesIO(annex)).pages:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
