"""From documents to generation tasks: image filters, image groups and their text context.

A task is one dialogue to generate: either one image (a single-image dialogue of 4 turns) or 2
to 4 images that sit near each other in one document (a multi-image dialogue of 8 turns). The
text around the images in the document is kept as context, because the dialogue should be about
what the document is about, not only about what is visible.

Images are filtered on their header (no pixel decode): too small, too large, too elongated, or
unreadable images are skipped with a reason. An image whose bytes were already used is not used
again (see :class:`~.documents.Deduplicator`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from ..images import ImageLimits, ImageProblem, file_extension, probe_image
from .documents import Deduplicator, Document


@dataclass(frozen=True)
class ImageFilter:
    """Which images may go into a dialogue. Sizes are in pixels, checked from the header."""

    min_side: int = 128
    max_aspect: float = 3.0
    max_pixels: int = 40_000_000
    formats: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP")

    def reason(self, data: bytes) -> Optional[str]:
        """``None`` when the image passes, else a short reason code."""
        try:
            info = probe_image(data, ImageLimits(max_pixels=self.max_pixels, min_side=1))
        except ImageProblem as exc:
            return {"MMCR054": "too_large", "MMCR053": "truncated_image"}.get(exc.code, "unreadable_image")
        if info.format not in self.formats:
            return "unsupported_format"
        if min(info.width, info.height) < self.min_side:
            return "too_small"
        if max(info.width, info.height) / min(info.width, info.height) > self.max_aspect:
            return "bad_aspect"
        return None


@dataclass(frozen=True)
class TaskImage:
    sha256: str
    ext: str  # jpg / png / gif / webp
    data: bytes = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """Content-addressed file name used in the output (``images/ab/abcd....jpg``)."""
        return f"images/{self.sha256[:2]}/{self.sha256}.{self.ext}"


@dataclass(frozen=True)
class Task:
    """One dialogue to generate."""

    doc_id: str
    source: str  # where the document came from (file:line)
    group: int  # the group's number inside its document
    images: tuple[TaskImage, ...]
    context: str  # document text around the images
    title: str = ""

    @property
    def dialogue_type(self) -> str:
        return "single_image" if len(self.images) == 1 else "multi_image"

    @property
    def num_turns(self) -> int:
        return 4 if len(self.images) == 1 else 8

    @property
    def key(self) -> str:
        """Identity of the inputs: document, images and context (not the model or prompt)."""
        h = hashlib.sha256()
        h.update(self.doc_id.encode("utf-8") + b"\0")
        for img in self.images:
            h.update(img.sha256.encode() + b"\0")
        h.update(self.context.encode("utf-8"))
        return h.hexdigest()


def context_for(doc: Document, positions: list[int], max_chars: int) -> str:
    """The text nearest to ``positions``: texts between the first and last image, then outward.

    Texts are taken in document order; when they do not fit ``max_chars`` the ones farthest from
    the images are left out first, so the caption-like paragraphs next to a picture survive.
    """
    first, last = min(positions), max(positions)
    candidates = [(p, t) for p, t in enumerate(doc.texts) if t]
    if not candidates:
        return ""

    def distance(p: int) -> int:
        if first <= p <= last:
            return 0
        return first - p if p < first else p - last

    chosen, used = set(), 0
    for p, t in sorted(candidates, key=lambda pt: (distance(pt[0]), pt[0])):
        cost = len(t) + 2
        if used + cost > max_chars:
            if not chosen:  # always keep a piece of the nearest text
                chosen.add(p)
                used = max_chars
            continue
        chosen.add(p)
        used += cost
    parts = []
    for p, t in candidates:
        if p in chosen:
            parts.append(t if len(t) <= max_chars else t[:max_chars].rsplit(" ", 1)[0] + " ...")
    return "\n\n".join(parts)


def _chunk(items: list, max_size: int) -> list[list]:
    """Split into groups of 2..max_size, as even as possible (5 -> 3 + 2, never a lone item)."""
    n = len(items)
    if n < 2:
        return []
    k = -(-n // max_size)  # number of groups
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    out, start = [], 0
    for s in sizes:
        out.append(items[start:start + s])
        start += s
    return out


@dataclass
class SelectionStats:
    documents: int = 0
    duplicate_documents: int = 0
    duplicate_images: int = 0
    skipped_images: dict = field(default_factory=dict)
    single_tasks: int = 0
    multi_tasks: int = 0

    def skip(self, reason: str) -> None:
        self.skipped_images[reason] = self.skipped_images.get(reason, 0) + 1

    def to_dict(self) -> dict:
        return {"documents": self.documents, "duplicate_documents": self.duplicate_documents,
                "duplicate_images": self.duplicate_images, "skipped_images": dict(self.skipped_images),
                "single_image_tasks": self.single_tasks, "multi_image_tasks": self.multi_tasks}


@dataclass(frozen=True)
class SelectionOptions:
    image_filter: ImageFilter = ImageFilter()
    multi_image_share: float = 100 / 310  # MMCR-310k: 100k of 310k dialogues are multi-image
    max_images: int = 4
    max_tasks_per_doc: int = 4
    context_chars: int = 1500


def select_tasks(docs: Iterable[Document], options: SelectionOptions = SelectionOptions(),
                 stats: Optional[SelectionStats] = None) -> Iterator[Task]:
    """Yield tasks in a deterministic order (the order of the documents).

    A document with at least two usable images becomes multi-image groups while the share of
    multi-image tasks so far is below ``multi_image_share``; otherwise each usable image becomes
    a single-image task. At most ``max_tasks_per_doc`` tasks come from one document.
    """
    stats = stats if stats is not None else SelectionStats()
    dedup = Deduplicator()
    for doc in docs:
        stats.documents += 1
        if not dedup.new_document(doc):
            stats.duplicate_documents += 1
            continue
        usable: list[tuple[int, TaskImage]] = []
        seen_here: set = set()
        for img in doc.images:
            if img is None:
                continue
            if img.problem or img.data is None:
                stats.skip(img.problem or "no_image_data")
                continue
            reason = options.image_filter.reason(img.data)
            if reason:
                stats.skip(reason)
                continue
            digest = img.sha256
            if digest in dedup.images or digest in seen_here:
                stats.duplicate_images += 1
                continue
            seen_here.add(digest)
            usable.append((img.position, TaskImage(digest, file_extension(img.data), img.data)))
        if not usable:
            continue
        total = stats.single_tasks + stats.multi_tasks
        want_multi = len(usable) >= 2 and stats.multi_tasks < options.multi_image_share * (total + 1)
        groups = _chunk(usable, options.max_images) if want_multi else [[u] for u in usable]
        title = str(doc.metadata.get("title") or "")
        for g, group in enumerate(groups[:options.max_tasks_per_doc]):
            for _, img in group:  # only images that go into a dialogue are used up
                dedup.claim_image(img.sha256)
            positions = [p for p, _ in group]
            if len(group) == 1:
                stats.single_tasks += 1
            else:
                stats.multi_tasks += 1
            yield Task(doc.doc_id, doc.source, g, tuple(img for _, img in group),
                       context_for(doc, positions, options.context_chars), title)
