"""Uploaded PDFs (issue 14 §6): only moves within the document are allowed; one file per refused case."""

from __future__ import annotations

import io
import re

import pytest

from app import documents
from app.errors import DomainError

MAX = 10 * 1024 * 1024


def raw_pdf(*, root: bytes = b"", page: bytes = b"", extra: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF written byte by byte: catalog 1, pages 2, page 3, then `extra` as objects 4, 5…"""
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R " + root + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] " + page + b" >>",
        *extra,
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    start = out.tell()
    out.write(f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode())
    out.write(b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets))
    out.write(f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\nstartxref\n{start}\n%%EOF\n".encode())
    return out.getvalue()


def with_update(base: bytes, objects: dict[int, bytes]) -> bytes:
    """`base` plus an incremental update (classic cross-reference table) defining `objects`."""
    previous = int(re.findall(rb"startxref\s+(\d+)", base)[-1])
    root = int(re.findall(rb"/Root (\d+) 0 R", base)[-1])
    out = io.BytesIO(base)
    out.seek(0, io.SEEK_END)
    offsets = {}
    for number, body in objects.items():
        offsets[number] = out.tell()
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    start = out.tell()
    out.write(b"xref\n0 1\n0000000000 65535 f \n")
    for number, offset in sorted(offsets.items()):
        out.write(f"{number} 1\n{offset:010d} 00000 n \n".encode())
    size = max(offsets) + 1
    out.write(f"trailer\n<< /Size {size} /Root {root} 0 R /Prev {previous} >>\nstartxref\n{start}\n%%EOF\n".encode())
    return out.getvalue()


def with_stream_update(base: bytes, objects: dict[int, bytes]) -> bytes:
    """`base` plus an incremental update whose cross-reference section is a stream (PDF 1.5)."""
    import struct

    previous = int(re.findall(rb"startxref\s+(\d+)", base)[-1])
    out = io.BytesIO(base)
    out.seek(0, io.SEEK_END)
    offsets = {}
    for number, body in objects.items():
        offsets[number] = out.tell()
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref_number = max(offsets) + 1
    offsets[xref_number] = out.tell()
    numbers = sorted(offsets)
    data = b"".join(struct.pack(">BIH", 1, offsets[n], 0) for n in numbers)
    index = " ".join(f"{n} 1" for n in numbers)
    out.write(
        f"{xref_number} 0 obj\n<< /Type /XRef /Size {xref_number + 1} /Index [{index}] /W [1 4 2] "
        f"/Root 1 0 R /Prev {previous} /Length {len(data)} >>\nstream\n".encode()
        + data
        + b"\nendstream\nendobj\n"
    )
    out.write(f"startxref\n{offsets[xref_number]}\n%%EOF\n".encode())
    return out.getvalue()


def reportlab_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, invariant=1)
    document.drawString(72, 720, "Facture Librairie des Dunes 45,60 EUR")
    document.showPage()
    document.save()
    return buffer.getvalue()


def scanned_pdf() -> bytes:
    """What a scanner or a phone app produces: one JPEG per page (img2pdf)."""
    import img2pdf
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1240, 1754), "white")
    ImageDraw.Draw(image).rectangle((100, 100, 1100, 180), fill="black")
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=80)
    return img2pdf.convert(jpeg.getvalue())


def pdf_with_attachment() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(reportlab_pdf())))
    writer.add_attachment("programme.exe", b"MZ\x90\x00")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


UNC = rb"(\\\\serveur.example\\partage\\facture.pdf)"  # \\serveur.example\partage\facture.pdf
LINK = b"/Annots [4 0 R]"


def link(action: bytes) -> bytes:
    return b"<< /Type /Annot /Subtype /Link /Rect [72 700 300 730] /Border [0 0 0] /A " + action + b" >>"


REFUSED = {
    "open-action-uri": raw_pdf(root=b"/OpenAction << /S /URI /URI (file://serveur.example/partage/x) >>"),
    "open-action-gotor-unc": raw_pdf(root=b"/OpenAction << /S /GoToR /F " + UNC + b" /D [0 /Fit] >>"),
    "open-action-named-print": raw_pdf(root=b"/OpenAction << /S /Named /N /Print >>"),
    "open-action-goto-with-file": raw_pdf(root=b"/OpenAction << /S /GoTo /F " + UNC + b" /D [3 0 R /Fit] >>"),
    "open-action-dictionary-without-type": raw_pdf(root=b"/OpenAction << /D [3 0 R /Fit] >>"),
    "page-aa-reset-form": raw_pdf(page=b"/AA << /O << /S /ResetForm >> >>"),
    "catalog-aa-gotor": raw_pdf(root=b"/AA << /WC << /S /GoToR /F " + UNC + b" /D [0 /Fit] >> >>"),
    "link-uri": raw_pdf(page=LINK, extra=(link(b"<< /S /URI /URI (https://www.example.org/facture) >>"),)),
    "link-gotor-unc": raw_pdf(page=LINK, extra=(link(b"<< /S /GoToR /F " + UNC + b" /D [0 /Fit] >>"),)),
    "link-gotoe": raw_pdf(page=LINK, extra=(link(b"<< /S /GoToE /T << /R /C /N (a.pdf) >> /D [0 /Fit] >>"),)),
    "link-launch": raw_pdf(page=LINK, extra=(link(b"<< /S /Launch /F (C:\\\\Windows\\\\calc.exe) >>"),)),
    "link-chained-uri": raw_pdf(
        page=LINK, extra=(link(b"<< /S /GoTo /D [3 0 R /Fit] /Next << /S /URI /URI (https://x.example) >> >>"),)
    ),
    "open-action-javascript-hex-escaped": raw_pdf(root=b"/OpenAction << /S /J#61vaScript /JS (app.alert\\(1\\)) >>"),
    "names-javascript": raw_pdf(root=b"/Names << /JavaScript 4 0 R >>", extra=(b"<< /Names [(a) 5 0 R] >>",)),
    "embedded-files": pdf_with_attachment(),
    "embedded-file-stream": raw_pdf(
        root=b"/Extra 4 0 R", extra=(b"<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream",)
    ),
    "rich-media": raw_pdf(
        page=LINK, extra=(b"<< /Type /Annot /Subtype /RichMedia /Rect [0 0 10 10] /RichMediaContent << >> >>",)
    ),
    "xfa-form": raw_pdf(
        root=b"/AcroForm << /Fields [] /XFA 4 0 R >>", extra=(b"<< /Length 0 >>\nstream\n\nendstream",)
    ),
    "update-adds-an-orphan": with_update(
        reportlab_pdf(), {90: b"<< /Type /Action /S /URI /URI (https://x.example) >>"}
    ),
    "update-adds-an-orphan-stream": with_update(raw_pdf(), {9: b"<< /Length 5 >>\nstream\nBT ET\nendstream"}),
    "xref-stream-update-adds-an-orphan": with_stream_update(raw_pdf(), {20: b"<< /Producer (cache) >>"}),
}

ACCEPTED = {
    "scan": scanned_pdf(),
    "reportlab-invoice": reportlab_pdf(),
    "outline-goto-and-open-at-page": raw_pdf(
        root=b"/Outlines 4 0 R /OpenAction [3 0 R /Fit] /PageMode /UseOutlines",
        extra=(
            b"<< /Type /Outlines /First 5 0 R /Last 5 0 R /Count 1 >>",
            b"<< /Title (Facture) /Parent 4 0 R /A << /S /GoTo /D [3 0 R /Fit] >> >>",
        ),
    ),
    "open-action-goto-named": raw_pdf(
        root=b"/OpenAction << /S /GoTo /D (debut) >> /Names << /Dests << /Names [(debut) [3 0 R /Fit]] >> >>"
    ),
    "page-aa-goto": raw_pdf(page=b"/AA << /O << /S /GoTo /D [3 0 R /Fit] >> >>"),
    "link-goto-page": raw_pdf(page=LINK, extra=(link(b"<< /S /GoTo /D [3 0 R /XYZ 0 842 0] >>"),)),
    "tagged-structure": raw_pdf(
        root=b"/StructTreeRoot 4 0 R /PageLabels << /Nums [0 << /S /D >>] >>",
        extra=(b"<< /Type /StructTreeRoot /K << /S /P /A << /O /Layout /Placement /Block >> >> >>",),
    ),
    "update-changes-a-referenced-object": with_update(
        raw_pdf(), {3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Rotate 90 >>"}
    ),
    "update-adds-referenced-objects": with_update(
        raw_pdf(), {1: b"<< /Type /Catalog /Pages 2 0 R /Metadata 8 0 R >>", 8: b"<< /Length 0 >>\nstream\n\nendstream"}
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_pdf_that_reaches_outside_itself_is_refused_in_french(name):
    with pytest.raises(DomainError) as refused:
        documents.check_upload(REFUSED[name], max_bytes=MAX)
    assert refused.value.field == "file"
    message = str(refused.value)
    assert message.startswith("Ce PDF ") and "refusé par sécurité" in message
    assert "« Enregistrer au format PDF »" in message


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_an_honest_pdf_is_accepted(name):
    checked = documents.check_upload(ACCEPTED[name], max_bytes=MAX)
    assert checked.content == ACCEPTED[name] and checked.content_type == "application/pdf"


def test_each_refusal_says_what_was_found():
    def message(content: bytes) -> str:
        with pytest.raises(DomainError) as refused:
            documents.check_upload(content, max_bytes=MAX)
        return str(refused.value)

    assert message(REFUSED["open-action-gotor-unc"]) == documents.PDF_ACTION
    assert message(REFUSED["embedded-files"]) == documents.PDF_ACTIVE
    assert message(REFUSED["update-adds-an-orphan"]) == documents.PDF_HIDDEN


def test_a_linearized_pdf_is_not_mistaken_for_an_update():
    import pikepdf

    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(reportlab_pdf())) as pdf:
        pdf.save(out, linearize=True)
    assert out.getvalue().count(b"%%EOF") == 2
    documents.check_upload(out.getvalue(), max_bytes=MAX)


def test_a_pdf_saved_with_object_streams_is_accepted():
    import pikepdf

    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(reportlab_pdf())) as pdf:
        pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    documents.check_upload(out.getvalue(), max_bytes=MAX)


def test_the_object_budget_still_bounds_the_walk(monkeypatch):
    monkeypatch.setattr(documents, "_PDF_OBJECT_BUDGET", 5)
    with pytest.raises(DomainError):
        documents.check_upload(reportlab_pdf(), max_bytes=MAX)
