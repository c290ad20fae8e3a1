"""Uploaded documents: checked by content, stored outside the web root, served only through views.

Accepted: PDF, JPEG, PNG, recognised by their first bytes (never by name or declared type).
PDFs may only move within themselves: any action other than going to one of their own pages (an
address, another file, a program, a script), embedded files, multimedia, XFA forms, and incremental
updates that add objects nothing refers to are refused. Images are decoded
and re-encoded (EXIF and anything hidden dropped; decompression bombs refused); phone photos
are downscaled and, where asked, turned into a one-page PDF (img2pdf). The file is written under
a random key with mode 0600 before the row is committed; a row never points to a missing file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.models import Document, User

log = logging.getLogger(__name__)

# Decoding memory is what bounds an image, not its file size (a 131 KB PNG can hold 40 megapixels).
# JPEG is decoded in draft mode, already reduced by up to 8 on each side, so a large phone photo
# costs little; PNG has no such mode and is decoded whole (4 bytes a pixel, plus a copy or two).
MAX_PIXELS = 64_000_000  # JPEG: a 50-megapixel phone photo is accepted
MAX_PNG_PIXELS = 12_000_000  # PNG: an A4 page scanned at 300 dpi is 8.7 megapixels
MAX_SIDE = 2400  # photos are downscaled to this many pixels on their longest side
DEFAULT_QUOTA_BYTES = 500 * 1024 * 1024  # per coop, all its documents together (UPLOAD_QUOTA_BYTES)
DISK_FULL = (
    "Le fichier n'a pas pu être enregistré : le serveur manque de place. Rien n'a été enregistré ; "
    "réessayez plus tard ou prévenez l'OCCE 85."
)
_PDF_OBJECT_BUDGET = 500_000  # objects and array items looked at; a scanned invoice has a few hundred


@dataclass(frozen=True)
class CheckedFile:
    content: bytes
    content_type: str
    extension: str


def sniff(content: bytes) -> str | None:
    """The type given by the first bytes: application/pdf, image/jpeg, image/png, or None."""
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


_PDF_ADVICE = "Imprimez-le en PDF (« Imprimer » puis « Enregistrer au format PDF ») et envoyez cette copie."
PDF_ACTIVE = "Ce PDF contient du code ou des fichiers intégrés : il est refusé par sécurité. " + _PDF_ADVICE
PDF_ACTION = (
    "Ce PDF contient un lien ou une action automatique (ouverture d'une adresse, d'un autre fichier "
    "ou d'un programme) : il est refusé par sécurité. " + _PDF_ADVICE
)
PDF_HIDDEN = (
    "Ce PDF a été modifié après sa création et contient des éléments cachés : il est refusé par sécurité. "
    + _PDF_ADVICE
)
# Names refused wherever they appear, as a key or as a value (pypdf decodes /J#61vaScript).
_PDF_ACTIVE_NAMES = frozenset(
    {"/JavaScript", "/JS", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/XFA", "/SubmitForm", "/ImportData"}
)
_PDF_ACTION_NAMES = frozenset({"/Launch", "/URI", "/GoToR", "/GoToE", "/GoToDp"})
# The /S of an action dictionary (ISO 32000-2, 12.6.4). Only /GoTo to a place in the same file is allowed;
# other dictionaries also have an /S (structure elements, page labels, soft masks), never with these values.
_PDF_ACTION_TYPES = frozenset(
    {
        "/GoTo", "/GoToR", "/GoToE", "/GoToDp", "/Launch", "/Thread", "/URI", "/Sound", "/Movie", "/Hide",
        "/Named", "/SubmitForm", "/ResetForm", "/ImportData", "/JavaScript", "/SetOCGState", "/Rendition",
        "/Trans", "/GoTo3DView", "/RichMediaExecute",
    }
)  # fmt: skip
_PDF_MAX_ADDED_ORPHANS = 1_000  # more unreferenced objects than this in an update: refused unread


def _check_pdf(content: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        pages = len(reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, OSError):
        raise DomainError(
            "Ce PDF est illisible ou abîmé : enregistrez-le à nouveau et recommencez.", field="file"
        ) from None
    if pages == 0:
        raise DomainError("Ce PDF ne contient aucune page.", field="file")
    # Every object reachable from the trailer is looked at, compressed object streams included (pypdf
    # decodes them and hex-escaped names such as /J#61vaScript). A scan of the raw bytes would miss
    # those, and would refuse honest scans whose image data happens to contain "/JS".
    refusal, reachable = _walk_pdf(reader)
    if refusal is None and _has_hidden_update(content, reader, reachable):
        refusal = PDF_HIDDEN
    if refusal is not None:
        raise DomainError(refusal, field="file")


def _is_goto_in_document(action) -> bool:
    """True for a /GoTo action whose destination is a page or a named place of this same file."""
    from pypdf.generic import ArrayObject, ByteStringObject, DictionaryObject, NameObject, TextStringObject

    if not isinstance(action, DictionaryObject) or action.get("/S") != "/GoTo" or "/F" in action:
        return False
    destination = action.get("/D")
    if destination is not None:
        destination = destination.get_object()
    return isinstance(destination, (ArrayObject, NameObject, TextStringObject, ByteStringObject))


def _walk_pdf(reader) -> tuple[str | None, set[int]]:
    """Look at every object reachable from the trailer: (French refusal or None, object numbers reached).

    An allowlist for actions: the document may open on, or link to, a place in itself (a destination
    array or a /GoTo); any other action (address, other file, program, script, form submission,
    named or multimedia action) is refused, wherever it sits (/OpenAction, /AA, links, outlines).
    """
    from pypdf.errors import PdfReadError
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    seen: set[tuple[int, int]] = set()
    stack: list = [reader.trailer]
    budget = _PDF_OBJECT_BUDGET
    try:
        while stack:
            budget -= 1
            if budget < 0:
                return PDF_ACTIVE, set()  # too intricate to check: refused rather than trusted
            item = stack.pop()
            if isinstance(item, IndirectObject):
                key = (item.idnum, item.generation)
                if key in seen:
                    continue
                seen.add(key)
                item = item.get_object()
            if isinstance(item, DictionaryObject):  # streams included (their data is never decoded here)
                kind = item.get("/S")
                if kind in _PDF_ACTION_TYPES and not _is_goto_in_document(item):
                    return _refusal_for(item), set()
                for name, value in item.items():
                    if name in _PDF_ACTIVE_NAMES:
                        return PDF_ACTIVE, set()
                    if name in _PDF_ACTION_NAMES:
                        return PDF_ACTION, set()
                    if name == "/OpenAction" and not _is_plain_destination(value):
                        return _refusal_for(value), set()
                    if name == "/AA" and not _are_plain_destinations(value):
                        return _refusal_for(value), set()
                    stack.append(value)
            elif isinstance(item, ArrayObject):
                stack.extend(item)
            elif isinstance(item, NameObject):
                if item in _PDF_ACTIVE_NAMES:
                    return PDF_ACTIVE, set()
                if item in _PDF_ACTION_NAMES:
                    return PDF_ACTION, set()
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError):
        return PDF_ACTIVE, set()
    return None, {number for number, _generation in seen}


def _refusal_for(action) -> str:
    """The message for a refused action: a script or a form submission is « code », the rest an action."""
    from pypdf.generic import DictionaryObject

    action = action.get_object()
    if isinstance(action, DictionaryObject):
        kinds = [action.get("/S")] + [
            trigger.get_object().get("/S")
            for trigger in action.values()
            if isinstance(trigger.get_object(), DictionaryObject)
        ]
        if any(kind in _PDF_ACTIVE_NAMES for kind in kinds):
            return PDF_ACTIVE
    return PDF_ACTION


def _is_plain_destination(value) -> bool:
    """An /OpenAction that only opens the document at one of its own pages."""
    from pypdf.generic import ArrayObject

    value = value.get_object()
    return isinstance(value, ArrayObject) or _is_goto_in_document(value)


def _are_plain_destinations(value) -> bool:
    """An /AA (additional actions) dictionary whose every trigger is a /GoTo within the document."""
    from pypdf.generic import DictionaryObject

    value = value.get_object()
    return isinstance(value, DictionaryObject) and all(
        _is_goto_in_document(action.get_object()) for action in value.values()
    )


def _objects_in_use(reader) -> set[int]:
    """Object numbers the cross-reference sections of `reader` mark as in use."""
    numbers = set(reader.xref_objStm)
    for generation, entries in reader.xref.items():
        free = reader.xref_free_entry.get(generation, {})
        numbers.update(number for number in entries if not free.get(number))
    return numbers


def _has_hidden_update(content: bytes, reader, reachable: set[int]) -> bool:
    """True if an incremental update (a later cross-reference section) adds objects nothing refers to.

    Such objects are invisible to a reader of the file but can be put to use by another update (the
    "shadow" attacks on PDFs) or found by tools that read every object. The first section of a
    linearized file ends with ``startxref 0`` and is not an update. Cross-reference and object
    streams are referred to by offset, never by reference, and are left aside.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError
    from pypdf.generic import DictionaryObject

    ends = [m.end() for m in re.finditer(rb"startxref\s+(\d+)\s+%%EOF", content) if int(m.group(1)) > 0]
    if len(ends) < 2:
        return False
    try:
        first = _objects_in_use(PdfReader(io.BytesIO(content[: ends[0]]), strict=False))
        added = _objects_in_use(reader) - first - reachable
        if len(added) > _PDF_MAX_ADDED_ORPHANS:
            return True
        for number in added:
            found = reader.get_object(number)
            if isinstance(found, DictionaryObject) and found.get("/Type") in ("/XRef", "/ObjStm"):
                continue
            if found is None:
                continue  # declared in a table but absent: nothing to hide
            return True
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError):
        return True
    return False


def _reencode_image(content: bytes, *, as_pdf: bool) -> CheckedFile:
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(content)) as image:
            limit = MAX_PNG_PIXELS if image.format == "PNG" else MAX_PIXELS
            if image.width * image.height > limit:  # Pillow only warns below twice its limit
                raise Image.DecompressionBombError(f"{image.width} x {image.height} pixels")
            if image.format == "JPEG":
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4 or 1/8 scale
            image.load()
            image = ImageOps.exif_transpose(image)  # phone photos: keep them upright, then drop EXIF
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                # JPEG has no transparency: put the picture on white paper, or a transparent
                # background turns black (and so does black text on it)
                rgba = image.convert("RGBA")
                image = Image.new("RGB", rgba.size, (255, 255, 255))
                image.paste(rgba, mask=rgba.getchannel("A"))
            elif image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=85, optimize=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DomainError(
            "Cette image est beaucoup trop grande (trop de pixels) : réduisez-la ou envoyez une photo "
            "prise avec un réglage plus petit.",
            field="file",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DomainError("Cette image est illisible ou abîmée.", field="file") from None
    jpeg = out.getvalue()
    if as_pdf:
        import img2pdf

        a4 = (img2pdf.mm_to_pt(210), img2pdf.mm_to_pt(297))
        layout = img2pdf.get_layout_fun(a4, fit=img2pdf.FitMode.into)
        return CheckedFile(img2pdf.convert(jpeg, layout_fun=layout), "application/pdf", ".pdf")
    return CheckedFile(jpeg, "image/jpeg", ".jpg")


def check_upload(content: bytes, *, max_bytes: int, photos_as_pdf: bool = False) -> CheckedFile:
    """Validate an upload by content; return what to store. Raises DomainError (field ``file``) in French."""
    if not content:
        raise DomainError("Le fichier est vide.", field="file")
    if len(content) > max_bytes:
        raise DomainError(f"Le fichier dépasse {max_bytes // (1024 * 1024)} Mo.", field="file")
    kind = sniff(content)
    if kind is None:
        raise DomainError(
            "Seuls les fichiers PDF, JPEG et PNG sont acceptés (le contenu de ce fichier n'en est pas un).",
            field="file",
        )
    if kind == "application/pdf":
        _check_pdf(content)
        return CheckedFile(content, kind, ".pdf")
    return _reencode_image(content, as_pdf=photos_as_pdf)


def _safe_name(name: str, extension: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip().replace("\x00", "")
    stem = base.rsplit(".", 1)[0][:120] or "document"
    return stem + extension


def store_document(
    session: Session,
    *,
    upload_dir: str,
    coop_id: int,
    kind: str,
    filename: str,
    content: bytes,
    max_bytes: int,
    by: User | None,
    entry_id: int | None = None,
    photos_as_pdf: bool = False,
    ip: str = "",
    quota_bytes: int | None = DEFAULT_QUOTA_BYTES,
) -> Document:
    """Check, write (mode 0600, random name) and record a document; the caller commits.

    The coop's documents together may not exceed `quota_bytes` (None: no quota). The file is
    written under a temporary name and renamed once complete; it is listed in
    `session.info["written_files"]` so that the unit of work removes it if the transaction does not
    commit. A full disk leaves nothing behind and raises a French DomainError.
    """
    checked = check_upload(content, max_bytes=max_bytes, photos_as_pdf=photos_as_pdf)
    if quota_bytes is not None:
        used = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Document.size), 0)).where(Document.coop_id == coop_id)
        )
        if used + len(checked.content) > quota_bytes:
            raise DomainError(
                f"L'espace de la coopérative est plein ({quota_bytes // (1024 * 1024)} Mo de justificatifs) : "
                "supprimez des fichiers inutiles ou demandez plus d'espace à l'OCCE 85.",
                field="file",
            )
    key = secrets.token_hex(16)
    write_for_transaction(session, upload_dir, key, checked.content)
    document = Document(
        coop_id=coop_id,
        entry_id=entry_id,
        kind=kind,
        original_name=_safe_name(filename, checked.extension),
        content_type=checked.content_type,
        size=len(checked.content),
        sha256=hashlib.sha256(checked.content).hexdigest(),
        storage_key=key,
        uploaded_by_id=by.id if by else None,
    )
    session.add(document)
    session.flush()
    audit.record(
        session,
        "document.uploaded",
        actor=by,
        coop_id=coop_id,
        entity="document",
        entity_id=document.id,
        after={"kind": kind, "name": document.original_name, "size": document.size},
        ip=ip,
    )
    return document


def safe_display_name(name: str | None) -> str:
    """A file name as the user chose it, without its folders, short enough to quote in a message."""
    return os.path.basename((name or "").replace("\\", "/")).strip().replace("\x00", "")[:120] or "fichier"


def remove_document(session: Session, document: Document, *, by: User | None, ip: str = "") -> None:
    """Delete a document's row, audited as document.removed; the caller removes the file after commit."""
    audit.record(
        session,
        "document.removed",
        actor=by,
        coop_id=document.coop_id,
        entity="document",
        entity_id=document.id,
        before={
            "kind": document.kind,
            "name": document.original_name,
            "size": document.size,
            "entry": document.entry_id,
        },
        ip=ip,
    )
    session.delete(document)
    session.flush()


def write_file(upload_dir: str, key: str, content: bytes) -> Path:
    """Write `content` as `upload_dir/key` (mode 0600), all or nothing: a temporary name first,
    renamed when complete; on any failure (disk full included) nothing is left behind."""
    directory = Path(upload_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / key
    partial = directory / f"{key}.part"
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        log.error("upload not written (%s): %s", key, exc)
        raise DomainError(DISK_FULL, field="file") from None
    return path


def write_for_transaction(session: Session, upload_dir: str, key: str, content: bytes) -> Path:
    """`write_file`, and remember the file so that the unit of work removes it if the transaction
    does not commit (a file never outlives the row that was to point to it)."""
    path = write_file(upload_dir, key, content)
    session.info.setdefault("written_files", []).append(str(path))
    return path


def discard_written_files(session: Session) -> None:
    """Remove the files written during a transaction that did not commit (called by the unit of work)."""
    for name in session.info.pop("written_files", []):
        with contextlib.suppress(OSError):
            Path(name).unlink()


def forget_written_files(session: Session) -> None:
    """The transaction committed: its files are now referenced by their rows."""
    session.info.pop("written_files", None)


def document_path(upload_dir: str, document: Document) -> Path:
    """Where the file of `document` lives (the key is ours, never user input)."""
    return Path(upload_dir) / document.storage_key


def remove_file(upload_dir: str, storage_key: str) -> None:
    """Delete a stored file after the row that pointed to it is gone (called after commit)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(upload_dir) / storage_key).unlink()
