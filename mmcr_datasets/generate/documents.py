"""Interleaved input documents (OmniCorpus style) and their de-duplication.

A document is one row with two position-aligned lists: ``images`` and ``texts``. At each
position exactly one of them is set (the other is ``null``), so the row reads like a web page:
paragraph, picture, paragraph, ... Rows come from JSON Lines or parquet files (a file or a
folder of them). Besides the two lists a row may carry ``id`` (or ``doc_id``), ``metadata``
(a dict, or a list aligned with the positions as OmniCorpus ships it) and ``url``/``title``.

An image entry may be

* a path, relative to the documents file's folder (or ``image_root``) or absolute;
* ``file://`` URLs and ``data:image/...;base64,`` URLs;
* raw bytes (a parquet ``binary`` column) or a ``{"bytes": ..., "path": ...}`` struct (the
  layout of a ``datasets.Image`` column); in JSON the bytes may be a base64 string.

Remote ``http(s)`` URLs are not fetched: the pipeline never touches the network except for the
LLM endpoint, so such images are skipped with the reason ``remote_image``.

De-duplication is by content hash: a document whose texts and image bytes equal an earlier
document's is dropped, and an image whose bytes were already used by an earlier document is not
used again (:class:`Deduplicator`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union
from urllib.parse import unquote, urlparse

from ..errors import ReaderError

logger = logging.getLogger(__name__)

DOC_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


@dataclass
class DocImage:
    """One image of a document: where it sits, its bytes (loaded lazily) or why it is unusable."""

    position: int
    data: Optional[bytes] = None
    origin: str = ""  # path / URL / "bytes", for provenance and error messages
    problem: Optional[str] = None  # a short reason code when the image cannot be used

    @property
    def sha256(self) -> str:
        if self.data is None:
            raise ValueError(f"image at position {self.position} has no data")
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Document:
    """One interleaved document after reading: aligned ``texts`` and ``images`` by position."""

    doc_id: str
    texts: list  # list[Optional[str]], one per position
    images: list  # list[Optional[DocImage]], one per position
    metadata: dict = field(default_factory=dict)
    source: str = ""  # file:line or file:row

    @property
    def text(self) -> str:
        """All text of the document joined by blank lines."""
        return "\n\n".join(t for t in self.texts if t)

    def content_hash(self) -> str:
        """A hash of the texts and image bytes, in order (metadata and id excluded)."""
        h = hashlib.sha256()
        for t, img in zip(self.texts, self.images):
            if t:
                h.update(b"T" + " ".join(t.split()).encode("utf-8") + b"\0")
            elif img is not None and img.data is not None:
                h.update(b"I" + img.sha256.encode() + b"\0")
            elif img is not None:
                h.update(b"U" + img.origin.encode("utf-8", "replace") + b"\0")
        return h.hexdigest()


def list_document_files(path: Union[str, Path]) -> list[Path]:
    """A documents file, or every ``.jsonl``/``.json``/``.parquet`` file under a folder, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOC_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise ReaderError(f"no .jsonl, .json or .parquet document files under {path}")
        return files
    raise ReaderError(f"documents input {path} does not exist")


def _iter_rows(file: Path, *, skip_bad: bool = False, bad: Optional[list] = None) -> Iterator[tuple[str, dict]]:
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(file)
        row = 0
        for batch in pf.iter_batches(batch_size=256):
            for rec in batch.to_pylist():
                yield f"{file}:row{row}", rec
                row += 1
        return
    if suffix == ".json":
        with open(file, encoding="utf-8") as fh:
            head = fh.read(1)
            while head and head.isspace():
                head = fh.read(1)
        if head == "[":
            data = json.loads(file.read_text(encoding="utf-8"))
            for i, rec in enumerate(data):
                yield f"{file}:{i}", rec
            return
    with open(file, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                message = f"{file}:{lineno}: not valid JSON: {exc}"
                if not skip_bad:
                    raise ReaderError(message) from None
                logger.warning("skipped a document: %s", message)
                if bad is not None:
                    bad.append((f"{file}:{lineno}", message))
                continue
            yield f"{file}:{lineno}", row


def _decode_data_url(url: str) -> Optional[bytes]:
    head, _, payload = url.partition(",")
    if ";base64" not in head:
        return None
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def _load_image(entry, position: int, base: Path) -> Optional[DocImage]:
    """Turn one ``images`` entry into a :class:`DocImage` (``None`` for a text position)."""
    if entry is None:
        return None
    if isinstance(entry, dict):
        data, path = entry.get("bytes"), entry.get("path") or entry.get("url")
        if isinstance(data, str):  # bytes of a JSON document, base64-encoded
            try:
                return DocImage(position, base64.b64decode(data, validate=True), origin="base64")
            except (binascii.Error, ValueError):
                return DocImage(position, origin="{bytes}", problem="bad_base64")
        if data is not None:
            entry = data
        elif path:
            entry = path
        else:
            return DocImage(position, origin="{}", problem="no_image_data")
    if isinstance(entry, (bytes, bytearray, memoryview)):
        return DocImage(position, bytes(entry), origin="bytes")
    if not isinstance(entry, str):
        return DocImage(position, origin=repr(entry)[:80], problem="bad_image_entry")
    ref = entry.strip()
    if ref.startswith("data:"):
        data = _decode_data_url(ref)
        return DocImage(position, data, origin="data-url", problem=None if data else "bad_data_url")
    scheme = urlparse(ref).scheme.lower()
    if scheme in ("http", "https", "ftp", "s3", "gs"):
        return DocImage(position, origin=ref, problem="remote_image")
    if scheme == "file":
        ref = unquote(urlparse(ref).path)
    elif len(ref) > 1024 and _BASE64.fullmatch(ref[:4096]):
        try:  # a bare base64 string (bytes in a JSON document)
            return DocImage(position, base64.b64decode(ref, validate=True), origin="base64")
        except (binascii.Error, ValueError):
            pass
    path = Path(ref)
    if not path.is_absolute():
        path = base / path
    try:
        return DocImage(position, path.read_bytes(), origin=ref)
    except OSError:
        return DocImage(position, origin=ref, problem="image_not_found")


def document_from_row(row: dict, source: str, base: Path) -> Document:
    """Build a :class:`Document` from one raw row; raises :class:`ReaderError` on a broken row."""
    if not isinstance(row, dict):
        raise ReaderError(f"{source}: a document must be a JSON object, got {type(row).__name__}")
    images, texts = row.get("images"), row.get("texts")
    if not isinstance(images, list) or not isinstance(texts, list):
        raise ReaderError(f"{source}: a document needs list fields 'images' and 'texts'")
    if len(images) != len(texts):
        raise ReaderError(f"{source}: 'images' has {len(images)} entries but 'texts' has {len(texts)}; "
                          "they must be aligned by position")
    meta = row.get("metadata")
    if isinstance(meta, str):  # parquet files often carry metadata as a JSON string
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = {"metadata": meta}
    metadata = dict(meta) if isinstance(meta, dict) else {}
    if isinstance(meta, list):
        metadata["positions"] = meta
    for key in ("url", "title", "lang", "language"):
        if key in row and key not in metadata:
            metadata[key] = row[key]
    out_texts, out_images = [], []
    for pos, (img, txt) in enumerate(zip(images, texts)):
        out_texts.append(txt if isinstance(txt, str) and txt.strip() else None)
        out_images.append(_load_image(img, pos, base) if txt is None or img is not None else None)
    doc = Document("", out_texts, out_images, metadata, source)
    rid = row.get("id", row.get("doc_id", metadata.get("id")))
    doc.doc_id = str(rid) if rid is not None else "doc-" + doc.content_hash()[:16]
    return doc


ON_BAD_DOCUMENT = ("raise", "skip")


def read_documents(path: Union[str, Path, Iterable[Union[str, Path]]], *,
                   image_root: Optional[Union[str, Path]] = None, on_bad_document: str = "raise",
                   bad: Optional[list] = None) -> Iterator[Document]:
    """Yield every document of a file, folder or list of files, in order.

    ``on_bad_document``: ``raise`` stops at the first row that is not valid JSON or not a
    document; ``skip`` logs it, appends ``(source, reason)`` to ``bad`` and goes on.
    """
    if on_bad_document not in ON_BAD_DOCUMENT:
        raise ValueError(f"on_bad_document must be one of {ON_BAD_DOCUMENT}, got {on_bad_document!r}")
    files = list_document_files(path) if isinstance(path, (str, Path)) else [Path(p) for p in path]
    for file in files:
        base = Path(image_root) if image_root is not None else file.parent
        for source, row in _iter_rows(file, skip_bad=on_bad_document == "skip", bad=bad):
            try:
                yield document_from_row(row, source, base)
            except ReaderError as exc:
                if on_bad_document == "raise":
                    raise
                logger.warning("skipped a document: %s", exc)
                if bad is not None:
                    bad.append((source, str(exc)))


class Deduplicator:
    """Remembers content hashes of documents and images seen so far in one run."""

    def __init__(self):
        self.docs: set[str] = set()
        self.images: set[str] = set()
        self.dropped_docs = 0
        self.dropped_images = 0

    def new_document(self, doc: Document) -> bool:
        """True the first time a document's content is seen."""
        key = doc.content_hash()
        if key in self.docs:
            self.dropped_docs += 1
            return False
        self.docs.add(key)
        return True

    def claim_image(self, digest: str) -> bool:
        """True the first time an image's bytes are seen; later copies are not used again."""
        if digest in self.images:
            self.dropped_images += 1
            return False
        self.images.add(digest)
        return True
