"""Image bytes for exports: the original encoded bytes when available, never a silent re-encode."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import MMCRError
from ..images import mime_type

class ExportImageError(MMCRError):
    """An image of a row cannot be turned into bytes for an export."""


def sniff_mime(data: bytes) -> str:
    """The MIME type of encoded image bytes, from their signature (``image/png`` if unknown)."""
    return mime_type(data, default="image/png")


def image_bytes(image: Any, image_root: Optional[Union[str, Path]] = None) -> bytes:
    """Encoded bytes of a row image: ``{"bytes", "path"}`` dict, ``ImageRef``, bytes, path or PIL image.

    Embedded bytes win; otherwise the file is read (relative paths under ``image_root``). A decoded
    PIL image is written back in its original format when PIL knows it (PNG otherwise).
    """
    data = path = None
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, dict):
        data, path = image.get("bytes"), image.get("path")
    elif isinstance(image, (str, Path)):
        path = image
    elif hasattr(image, "bytes") and hasattr(image, "path"):
        data, path = image.bytes, image.path
    elif hasattr(image, "save"):  # PIL
        fname = getattr(image, "filename", None)
        if fname and Path(fname).is_file():
            return Path(fname).read_bytes()
        buf = io.BytesIO()
        image.save(buf, format=getattr(image, "format", None) or "PNG")
        return buf.getvalue()
    else:
        raise ExportImageError(f"cannot export an image given as {type(image).__name__}")
    if data:
        return bytes(data)
    if path:
        p = Path(path)
        if not p.is_absolute() and image_root is not None:
            p = Path(image_root) / p
        if not p.is_file():
            raise ExportImageError(f"image file {p} not found; pass image_root= (CLI: --image-root)")
        return p.read_bytes()
    raise ExportImageError("an image has neither bytes nor a path")


def to_data_url(data: bytes) -> str:
    """``data:<mime>;base64,<...>`` for encoded image bytes."""
    return f"data:{sniff_mime(data)};base64," + base64.b64encode(data).decode("ascii")


def from_data_url(url: str) -> bytes:
    """The bytes of a base64 ``data:`` URL."""
    if not url.startswith("data:") or ";base64," not in url:
        raise ExportImageError(f"expected a base64 data URL, got {url[:40]!r}...")
    return base64.b64decode(url.split(";base64,", 1)[1])
