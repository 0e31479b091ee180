"""Image files: safe path resolution under an image root, and cheap header checks.

Building never decodes pixels (decoding every JPEG of MMCR-310k takes hours of CPU). It reads
the header to learn format and size, and checks the end marker to catch truncation. A full
decode is available with ``decode=True``.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: Pillow's own default bomb limit (about 89.5 megapixels).
DEFAULT_MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = 1
    decode: bool = False  # fully decode pixels (slow) instead of header + end-marker checks


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    num_bytes: int


_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}


def sniff_format(data: bytes) -> Optional[str]:
    """``JPEG``, ``PNG``, ``GIF``, ``WEBP`` or ``BMP`` from the file signature; ``None`` if unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    return None


def mime_type(data: bytes, default: str = "application/octet-stream") -> str:
    """The MIME type of encoded image bytes, from their signature."""
    return MIME_TYPES.get(sniff_format(data), default)


def file_extension(data: bytes, default: str = "bin") -> str:
    """A file extension (without the dot) for encoded image bytes, from their signature."""
    return EXTENSIONS.get(sniff_format(data), default)


class ImageProblem(Exception):
    """Raised by the helpers below; carries the validation code and a message."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def resolve_image_path(ref: str, root) -> str:
    """Return the file for ``ref`` under ``root`` or raise :class:`ImageProblem`.

    Refuses absolute paths, paths whose ``..`` components leave the root, and any path that
    passes through a symbolic link (the link could point anywhere). Nothing outside the root is
    ever opened. (String operations, not pathlib: this runs once per image of a build.)
    """
    if not isinstance(ref, str) or not ref:
        raise ImageProblem("MMCR051", f"image path {ref!r} is empty")
    if os.path.isabs(ref) or ref.startswith(("/", "\\")) or (len(ref) > 1 and ref[1] == ":"):
        raise ImageProblem("MMCR056", f"image path {ref!r} is absolute")
    norm = os.path.normpath(ref.replace("\\", "/"))
    if norm == ".." or norm.startswith("../") or norm.startswith(".." + os.sep):
        raise ImageProblem("MMCR055", f"image path {ref!r} leaves the image root")
    current = os.fspath(root)
    # Walk each component below the root: a symlink anywhere is refused.
    for part in norm.split(os.sep):
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            raise ImageProblem("MMCR051", f"image file {ref!r} not found under {root}") from None
        except OSError as exc:
            raise ImageProblem("MMCR051", f"image file {ref!r} cannot be accessed: {exc}") from None
        if _is_link(st):
            raise ImageProblem("MMCR057", f"image path {ref!r} goes through the symbolic link {current}")
    return current


def _is_link(st) -> bool:
    import stat

    return stat.S_ISLNK(st.st_mode)


def read_image_file(ref: str, root: Path) -> bytes:
    path = resolve_image_path(ref, root)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageProblem("MMCR051", f"image file {ref!r} cannot be opened: {exc}") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def probe_image(data: bytes, limits: ImageLimits = ImageLimits()) -> ImageInfo:
    """Format and size from the header; check the end marker; raise :class:`ImageProblem`."""
    info = _fast_header(data)
    if info is None or limits.decode:
        info = _pil_header(data, limits)
    if info.width * info.height > limits.max_pixels:
        raise ImageProblem(
            "MMCR054", f"{info.width}x{info.height} = {info.width * info.height} pixels exceeds max_pixels={limits.max_pixels}"
        )
    if min(info.width, info.height) < limits.min_side:
        raise ImageProblem("MMCR058", f"{info.width}x{info.height} is below min_side={limits.min_side}")
    if not _complete(info.format, data):
        raise ImageProblem("MMCR053", f"{info.format} data ends before its end marker ({len(data)} bytes)")
    if limits.decode:
        _pil_decode(data, limits)
    return info


def _fast_header(data: bytes) -> Optional[ImageInfo]:
    n = len(data)
    if data[:3] == b"\xff\xd8\xff":
        pos = 2
        while pos + 9 < n:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            seg_len = (data[pos + 2] << 8) | data[pos + 3]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
                if w == 0 or h == 0:
                    return None
                return ImageInfo("JPEG", w, h, n)
            pos += 2 + seg_len
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and n >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return ImageInfo("PNG", w, h, n) if w and h else None
    if data[:6] in (b"GIF87a", b"GIF89a") and n >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return ImageInfo("GIF", w, h, n) if w and h else None
    return None


def _pil_header(data: bytes, limits: ImageLimits) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                fmt = img.format or "UNKNOWN"
        except Image.DecompressionBombError as exc:
            raise ImageProblem("MMCR054", str(exc)) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error) as exc:
            raise ImageProblem("MMCR052", f"not a readable image: {exc}") from None
    return ImageInfo(fmt, w, h, len(data))


def _pil_decode(data: bytes, limits: ImageLimits) -> None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
        except OSError as exc:
            code = "MMCR053" if "truncated" in str(exc).lower() else "MMCR052"
            raise ImageProblem(code, f"decoding failed: {exc}") from None
        except Exception as exc:
            raise ImageProblem("MMCR052", f"decoding failed: {type(exc).__name__}: {exc}") from None


def _complete(fmt: str, data: bytes) -> bool:
    """True when the data ends with the format's end marker (trailing padding allowed)."""
    if fmt == "JPEG":
        tail = data[-1024:]
        return b"\xff\xd9" in tail
    if fmt == "PNG":
        return b"IEND\xaeB`\x82" in data[-64:]
    if fmt == "GIF":
        return data.rstrip(b"\x00")[-1:] == b";"
    if fmt == "WEBP":
        if data[:4] != b"RIFF" or len(data) < 12:
            return False
        return struct.unpack("<I", data[4:8])[0] + 8 <= len(data)
    return True
