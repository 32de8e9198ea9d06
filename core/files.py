"""Uploaded files, one service for every upload (issue 13): an upload is judged by its content
and a size limit, stored under a random name in its own folder (its kind in core/storage.py: a
folder under UPLOAD_FOLDER, or rows of stored_file on the database backend), and served
only through a row the viewer may see, under a sanitised name (issue 12, class 9).

A file's type is judged by its content, never its name: magic bytes pick the candidate type,
then it must parse — magic bytes alone let a PNG signature in front of an HTML page through,
so Pillow decodes every frame of an image and pypdf must find a page in a PDF. The service
knows no ticket or application: each use declares a `FileStore` (folder, accepted types,
config key of its limit) and turns an `UploadRefused` into its own message.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import unicodedata
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.storage import send_stored, storage, storage_key

#: Pillow's format name for each image MIME type we accept.
IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
PDF = "application/pdf"
#: The longest download name offered (characters, extension included).
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\/:*?<>|;]+')


class UploadRefused(Exception):
    """An upload the store does not keep; `reason` is EMPTY, TOO_LARGE or WRONG_TYPE, or for
    a store with a PDF profile ENCRYPTED, ACTIVE_CONTENT or TOO_MANY_PAGES."""

    EMPTY, TOO_LARGE, WRONG_TYPE = "empty", "too_large", "wrong_type"
    ENCRYPTED, ACTIVE_CONTENT, TOO_MANY_PAGES = "encrypted", "active_content", "too_many_pages"

    def __init__(self, reason: str, limit: int):
        self.reason = reason
        self.limit = limit
        super().__init__(reason)

    @property
    def limit_mb(self) -> int:
        """The size limit in whole MB, as the messages state it."""
        return self.limit // (1024 * 1024)


def image_decodes(data: bytes, mime: str) -> bool:
    """True only if `data` is an image of type `mime` whose every frame decodes."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    expected = IMAGE_FORMATS.get(mime)
    if expected is None:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of damage it then refuses or repairs
            with Image.open(io.BytesIO(data)) as image:
                if image.format != expected:
                    return False
                for frame in ImageSequence.Iterator(image):
                    frame.load()
        return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError, MemoryError):  # fmt: skip
        return False


#: Extensions that name the same type as the stored file's.
_SAME_TYPE = {"jpg": ("jpg", "jpeg"), "tif": ("tif", "tiff"), "pdf": ("pdf",), "png": ("png",)}


def safe_download_name(
    name: str | None, fallback: str = "download", extension: str | None = None
) -> str:
    """A file name fit for Content-Disposition: no path parts, control characters, quotes,
    separators or CR/LF; at most MAX_NAME_CHARS characters, extension kept. Chinese and
    other non-ASCII letters stay (Flask sends them as RFC 5987 filename*). With
    `extension` (the stored file's real type, e.g. "png"), a name that claims another type
    gets that extension instead."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]  # no directories, either convention
    text = _UNSAFE.sub("_", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    text = re.sub(r"\s+", " ", text).strip(" ")
    stem, ext = os.path.splitext(text)
    if not ext and stem.startswith("."):  # ".pdf": only an extension
        stem, ext = "", stem
    stem = stem.strip(" ._")  # no hidden files, no names of dots
    ext = ext if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", ext or "") else ""
    if extension and ext[1:].lower() not in _SAME_TYPE.get(extension, (extension,)):
        ext = f".{extension}"
    if not stem:
        stem = fallback
    stem = stem[: MAX_NAME_CHARS - len(ext)].rstrip(" ._") or fallback
    return stem + ext


def _pdf_parses(data: bytes) -> bool:
    """True only for the %PDF- signature followed by at least one page pypdf can read."""
    if not data.startswith(b"%PDF-"):
        return False
    try:
        from pypdf import PdfReader

        return len(PdfReader(io.BytesIO(data)).pages) > 0
    except Exception:  # any parse failure means "not a PDF we accept"
        return False


def sha256(data: bytes) -> str:
    """The hex SHA-256 of a stored file, kept beside its row."""
    return hashlib.sha256(data).hexdigest()


#: PDF keys that run something when the document is opened or used: scripts, actions on
#: open or on events, launching programs, embedded files and media.
ACTIVE_PDF_KEYS = frozenset(
    {"/JS", "/JavaScript", "/OpenAction", "/AA", "/Launch", "/EmbeddedFiles", "/EmbeddedFile",
     "/RichMedia", "/XFA"}
)  # fmt: skip
#: The most PDF objects walked looking for active content; a bigger document is refused
#: rather than walked without bound.
MAX_PDF_OBJECTS = 200_000


def _has_active_content(reader) -> bool:
    """True if any object reachable from the document's trailer holds an ACTIVE_PDF_KEYS key
    or is an action of type /JavaScript or /Launch (compressed object streams included)."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    stack = [reader.trailer]
    seen: set[tuple[int, int]] = set()
    walked = 0
    while stack:
        obj = stack.pop()
        walked += 1
        if walked > MAX_PDF_OBJECTS:
            return True
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):  # streams are dictionaries too
            if ACTIVE_PDF_KEYS & set(obj.keys()):
                return True
            if obj.get("/S") in (NameObject("/JavaScript"), NameObject("/Launch")):
                return True
            stack.extend(obj.values())
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)
    return False


def check_pdf_profile(data: bytes, max_pages: int) -> None:
    """A PDF fit to keep and hand to others: not encrypted, no active content, at most
    `max_pages` pages; else UploadRefused (ENCRYPTED, ACTIVE_CONTENT, TOO_MANY_PAGES,
    WRONG_TYPE if it does not parse)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UploadRefused(UploadRefused.ENCRYPTED, 0)
        pages = len(reader.pages)
        if pages > max_pages:
            raise UploadRefused(UploadRefused.TOO_MANY_PAGES, max_pages)
        active = _has_active_content(reader)
    except UploadRefused:
        raise
    except Exception:  # any parse failure means "not a PDF we accept"
        raise UploadRefused(UploadRefused.WRONG_TYPE, 0) from None
    if active:
        raise UploadRefused(UploadRefused.ACTIVE_CONTENT, 0)


def pdf_pages(data: bytes) -> int:
    """The page count of a PDF that passed the checks."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def content_type(data: bytes) -> str | None:
    """The MIME type `data` really is (a PDF or an image of IMAGE_FORMATS that parses), else None."""
    import filetype

    kind = filetype.guess(data)
    mime = kind.mime if kind is not None else None
    if mime == PDF:
        return mime if _pdf_parses(data) else None
    if mime in IMAGE_FORMATS:
        return mime if image_decodes(data, mime) else None
    return None


@dataclass(frozen=True)
class FileStore:
    """One kind of upload: its folder (storage kind), accepted types, size-limit key."""

    #: The folder under UPLOAD_FOLDER ("" for FAB's own file columns, stored at its top).
    folder: str
    #: Accepted MIME type -> extension of the stored name (and of the download name).
    types: Mapping[str, str]
    #: The config key of the largest accepted size in bytes.
    max_bytes_key: str
    #: The download name when the row's own name sanitises to nothing.
    fallback: str = "download"
    #: The PDF profile: with the config key of a page limit, a PDF must also be unencrypted
    #: and free of scripts and actions (check_pdf_profile). None: any parseable PDF.
    max_pages_key: str | None = None

    def limit(self) -> int:
        """The size limit in bytes, read from the config at each use (tests change it)."""
        from flask import current_app

        return int(current_app.config[self.max_bytes_key])

    def read(self, upload: Any) -> bytes | None:
        """The bytes of a submitted file, at most limit + 1 of them; None if no file was chosen.

        Reading one byte past the limit tells "too large" without holding a huge file."""
        if upload is None or not getattr(upload, "filename", ""):
            return None
        return upload.read(self.limit() + 1)

    def check(self, data: bytes) -> str:
        """The MIME type of an acceptable upload, judged by content and size; else UploadRefused."""
        limit = self.limit()
        if not data:
            raise UploadRefused(UploadRefused.EMPTY, limit)
        if len(data) > limit:
            raise UploadRefused(UploadRefused.TOO_LARGE, limit)
        if self.max_pages_key and PDF in self.types and data.startswith(b"%PDF-"):
            # Before content_type: an encrypted PDF must be named as such, not "not a PDF".
            from flask import current_app

            check_pdf_profile(data, int(current_app.config[self.max_pages_key]))
        mime = content_type(data)
        if mime not in self.types:
            raise UploadRefused(UploadRefused.WRONG_TYPE, limit)
        return mime

    def directory(self) -> Path:
        """The folder this store's files live in on the local backend."""
        from flask import current_app

        return Path(current_app.config["UPLOAD_FOLDER"]) / self.folder

    def key(self, stored: str | None) -> str | None:
        """The storage key of a stored name (core/storage.py), None for an empty or odd name."""
        if not stored or "/" in stored or "\\" in stored or stored in (".", ".."):
            return None
        return storage_key(self.folder, stored)

    def save(self, data: bytes, mime: str) -> str:
        """Store checked `data` under a fresh random name (hex uuid + type's extension); the name.

        On the database backend the file is written in the caller's transaction."""
        stored = f"{uuid.uuid4().hex}.{self.types[mime]}"
        storage().put(self.folder, data, stored, mime)
        return stored

    def discard(self, stored_names: Iterable[str]) -> None:
        """Remove files saved for a write that was rolled back (or replaced)."""
        backend = storage()
        for stored in stored_names:
            key = self.key(stored)
            if key is not None:
                backend.delete(key)

    def read_stored(self, stored: str | None) -> bytes | None:
        """The bytes of a stored name, None if there is no such file."""
        key = self.key(stored)
        return storage().read(key) if key is not None else None

    def path(self, stored: str | None) -> Path | None:
        """On the local backend, the file of a stored name, or None if the name is empty or
        leads out of the folder."""
        if not stored:
            return None
        folder = os.path.realpath(self.directory())
        path = os.path.realpath(os.path.join(folder, stored))
        return Path(path) if path.startswith(folder + os.sep) else None

    def send(
        self,
        row: Any,
        stored: Callable[[Any], str | None],
        name: Callable[[Any], str | None],
        mimetype: Callable[[Any], str | None] | None = None,
        as_attachment: bool = True,
    ):
        """Serve the file of `row` — a row read through the scoped datamodel, None when out of
        scope or missing — under a safe name; 404 for no row or no stored file."""
        from flask import abort

        if row is None:
            abort(404)
        key = self.key(stored(row))
        if key is None:
            abort(404)
        if mimetype is not None:
            mime = mimetype(row)
        else:  # a store of one type serves that type; otherwise Flask guesses from the name
            mime = next(iter(self.types)) if len(self.types) == 1 else None
        download = safe_download_name(name(row), self.fallback, self.types.get(mime or ""))
        return send_stored(key, download, mimetype=mime, as_attachment=as_attachment)
