"""The PDF work of a change of mandataire: uploads turned into PDF pages, the identity document on one
page, page counts, the cover page of the bank dossier and the merge of its parts.

Functions on bytes (pypdf, img2pdf, Pillow; HTML to PDF through `app.pdf`): no session, no Flask.
Which documents make a dossier, in which order and who may change them is `app.mandates`'s business.
The cover page is HTML rendered by the caller (`render_html(context) -> str`, a Jinja template in the
web layer): the page numbers it lists depend on its own length, known only once rendered, so it is
rendered again until that length is stable (`render_cover`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.documents import check_upload, document_path
from app.errors import DomainError
from app.models import Document
from app.pdf import render_pdf

A4 = (595.28, 841.89)  # points
# A part of a merged PDF and the pages it takes there: (label, first page, last page).
PartRange = tuple[str, int, int]
HtmlRenderer = Callable[[dict[str, Any]], str]


def pdf_page_count(content: bytes) -> int:
    """Pages of a PDF."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(content)).pages)


def page_count(upload_dir: str, document: Document) -> int:
    """Pages of a stored PDF document."""
    return pdf_page_count(document_path(upload_dir, document).read_bytes())


def _pdf_pages(content: bytes) -> list:
    """The pages of a PDF, drawn upright (a scan saved « rotated » has its rotation moved into its content)."""
    from pypdf import PdfWriter

    pages = list(PdfWriter(clone_from=io.BytesIO(content)).pages)
    for page in pages:
        if page.rotation:
            page.transfer_rotation_to_content()
    return pages


def two_pages_on_one(first, second) -> bytes:
    """One A4 portrait page with `first` in the top half and `second` in the bottom half (pypdf pages)."""
    from pypdf import PdfWriter, Transformation

    writer = PdfWriter()
    sheet = writer.add_blank_page(*A4)
    margin = 28.0
    slot_w, slot_h = A4[0] - 2 * margin, (A4[1] - 3 * margin) / 2
    for index, page in enumerate((first, second)):
        box = page.mediabox
        width, height = float(box.width), float(box.height)
        scale = min(slot_w / width, slot_h / height)
        bottom = margin + (1 - index) * (slot_h + margin)
        x = margin + (slot_w - width * scale) / 2 - float(box.left) * scale
        y = bottom + (slot_h - height * scale) / 2 - float(box.bottom) * scale
        sheet.merge_transformed_page(page, Transformation().scale(scale).translate(x, y))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _images_on_one(first: bytes, second: bytes) -> bytes:
    """Two re-encoded photos (JPEG), the front above the back, on white: one JPEG."""
    from PIL import Image

    with Image.open(io.BytesIO(first)) as top, Image.open(io.BytesIO(second)) as below:
        width = max(top.width, below.width)
        gap = max(width // 20, 10)
        sheet = Image.new("RGB", (width, top.height + gap + below.height), (255, 255, 255))
        sheet.paste(top.convert("RGB"), ((width - top.width) // 2, 0))
        sheet.paste(below.convert("RGB"), ((width - below.width) // 2, top.height + gap))
        out = io.BytesIO()
        sheet.save(out, format="JPEG", quality=85)
    return out.getvalue()


def identity_on_one_page(files: Sequence[tuple[str, bytes]], *, max_bytes: int) -> tuple[bytes, bool]:
    """The identity document as one page: (content, already_pdf).

    One file: a photo or a PDF of one page (both sides on it), or a PDF of two pages (front, back),
    put together on one page. Two files: the front and the back; two photos are assembled into one
    picture, anything else page by page. Every file is checked by content first (at most `max_bytes`).
    Raises DomainError (field ``identity``) when the result would take more than one page.
    """
    files = [(name, content) for name, content in files if content]
    if not files:
        raise DomainError("Choisissez la photo ou le scan de la pièce d'identité.", field="identity")
    checked = [check_upload(content, max_bytes=max_bytes) for _, content in files]
    if len(checked) == 1 and checked[0].content_type == "image/jpeg":
        return checked[0].content, False
    if len(checked) == 2 and all(c.content_type == "image/jpeg" for c in checked):
        return _images_on_one(checked[0].content, checked[1].content), False
    pages = []
    for item in checked:
        if item.content_type == "application/pdf":
            pages.extend(_pdf_pages(item.content))
        else:
            pages.extend(_pdf_pages(photo_as_pdf(item.content)))
    if len(pages) > 2:
        raise DomainError(
            f"La pièce d'identité doit tenir sur une page, recto et verso (ce fichier a {len(pages)} "
            "pages) : envoyez la page du recto et celle du verso seulement.",
            field="identity",
        )
    if len(pages) == 1:
        return checked[0].content, True
    return two_pages_on_one(pages[0], pages[1]), True


def photo_as_pdf(jpeg: bytes) -> bytes:
    """A checked, re-encoded photo (JPEG) as a one-page A4 PDF, fitted inside a 1 cm margin (img2pdf)."""
    import img2pdf

    a4 = (img2pdf.mm_to_pt(210), img2pdf.mm_to_pt(297))
    layout = img2pdf.get_layout_fun(a4, border=(img2pdf.mm_to_pt(10), img2pdf.mm_to_pt(10)), fit=img2pdf.FitMode.into)
    return img2pdf.convert(jpeg, layout_fun=layout)


def as_pdf(content: bytes, *, max_bytes: int) -> bytes:
    """An upload checked by content (`app.documents.check_upload`): a PDF as it is, a photo as a PDF page.

    Raises DomainError (field ``file``) for anything else, a dangerous PDF or an unreadable image.
    """
    checked = check_upload(content, max_bytes=max_bytes)
    return checked.content if checked.content_type == "application/pdf" else photo_as_pdf(checked.content)


def merge_pdfs(parts: Sequence[bytes], *, title: str = "") -> bytes:
    """Concatenate PDFs, in order, into one (pypdf)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part)))
    if title:
        writer.add_metadata({"/Title": title, "/Producer": "Portail Coop 85 (OCCE 85)"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def page_ranges(parts: Sequence[tuple[str, int]], *, first: int) -> list[PartRange]:
    """The pages each part takes once put one after the other from page `first`: (label, first, last)."""
    ranges, page = [], first
    for label, count in parts:
        ranges.append((label, page, page + count - 1))
        page += count
    return ranges


def render_cover(
    render_html: HtmlRenderer,
    context: Mapping[str, Any],
    parts: Sequence[tuple[str, int]],
    *,
    static_dir: str | Path,
    rounds: int = 3,
) -> bytes:
    """The cover of a merged PDF, listing the page range of each part (`parts`: label and page count).

    The ranges start after the cover, whose length is only known once rendered: the HTML is rendered
    with `context` plus ``parts`` (the ranges) and rendered again while the cover's length changes (at
    most `rounds` times). Raises `app.pdf.PdfError` when the HTML cannot be rendered.
    """
    cover_pages, pdf = 1, b""
    for _ in range(rounds):
        html = render_html({**context, "parts": page_ranges(parts, first=cover_pages + 1)})
        pdf = render_pdf(html, static_dir)
        rendered = pdf_page_count(pdf)
        if rendered == cover_pages:
            break
        cover_pages = rendered
    return pdf
