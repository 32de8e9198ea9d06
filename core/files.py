"""Uploaded files: images are accepted only when they decode completely, and the name a
download is offered under is sanitised (issue 12, class 9).

A file's type is judged by its content (domain/cessation/corrections.py check_attachment uses its magic
bytes); magic bytes alone let a PNG signature in front of an HTML page through. Pillow
decodes every frame, so only a real picture is stored. PDFs are parsed by pypdf where they
are checked (domain/cessation/corrections.py, views/accounts/applications.py).
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import warnings

#: Pillow's format name for each image MIME type we accept.
IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
#: The longest download name offered (characters, extension included).
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\/:*?<>|;]+')


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
