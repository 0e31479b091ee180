"""From raw records to checked, Arrow-ready rows: read, convert, validate, load image bytes.

This is the one path every builder, exporter and validator uses, so a record is judged the same
way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from .images import ImageInfo, ImageLimits, ImageProblem, probe_image, read_image_file
from .readers import RawItem, read_raw
from .records import DIALOGUE_TYPES
from .taxonomy import Taxonomy, TaxonomyLike, load_taxonomy
from .validation.checks import CheckContext, ValidationProfile, check_record, duplicate_id_issue
from .validation.issues import Issue, has_errors, make_issue


@dataclass
class CheckedRecord:
    item: RawItem
    issues: list[Issue] = field(default_factory=list)
    image_bytes: list = field(default_factory=list)
    image_infos: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.issues)

    @property
    def record(self) -> Optional[dict]:
        return self.item.record

    @property
    def record_id(self) -> Optional[str]:
        return self.item.record_id

    def reject_entry(self) -> dict:
        """What goes into a rejects file: the raw record as the user wrote it, and why."""
        return {
            "record_id": self.record_id,
            "source": self.item.source,
            "position": self.item.position,
            "codes": sorted({i.code for i in self.issues}),
            "issues": [i.to_dict() for i in self.issues],
            "raw": self.item.raw,
        }


@dataclass
class IngestOptions:
    taxonomy: Taxonomy
    profile: ValidationProfile = field(default_factory=ValidationProfile)
    limits: ImageLimits = field(default_factory=ImageLimits)
    image_root: Optional[Path] = None
    load_images: bool = True

    @classmethod
    def make(cls, *, name: str = "310k", taxonomy: TaxonomyLike = None, profile=None, limits=None,
             image_root=None, load_images=True) -> "IngestOptions":
        return cls(load_taxonomy(taxonomy), profile or ValidationProfile.for_dataset(name), limits or ImageLimits(),
                   Path(image_root) if image_root is not None else None, load_images)


def load_images(refs, image_root: Path, limits: ImageLimits) -> list:
    """For each image reference: ``(bytes, info, None)`` or ``(None, None, ImageProblem)``.

    Pure I/O plus a header read, so it runs in a prefetch thread while the main thread checks
    the records (file reads release the GIL)."""
    out = []
    if not isinstance(refs, list):
        return out
    for ref in refs:
        try:
            data = read_image_file(ref, image_root)
            out.append((data, probe_image(data, limits), None))
        except ImageProblem as exc:
            out.append((None, None, exc))
    return out


def check_item(item: RawItem, opts: IngestOptions, image_root: Path, loaded: Optional[list] = None) -> CheckedRecord:
    """All issues of one record; images are read (or taken from ``loaded``) and header-checked."""
    ctx = CheckContext(opts.taxonomy, opts.profile, item.source, item.pointer_map(), item.fmt.placeholder)
    out = CheckedRecord(item)
    rid = item.record_id
    for code, pointer, message in item.problems:
        out.issues.append(make_issue(code, message, record_id=rid, pointer=pointer, source=item.source))
    if item.record is None:
        return out
    out.issues.extend(check_record(item.record, ctx))
    if opts.load_images:
        if loaded is None:
            loaded = load_images(item.record.get("images"), image_root, opts.limits)
        for k, (data, info, problem) in enumerate(loaded):
            if problem is not None:
                out.issues.append(make_issue(problem.code, str(problem), record_id=rid,
                                             pointer=ctx.pointer_map(f"/images/{k}"), source=item.source))
            out.image_bytes.append(data)
            out.image_infos.append(info)
    return out


#: Records whose images are being read ahead by the prefetch threads.
PREFETCH_WINDOW = 64
PREFETCH_THREADS = 4


def _image_root_for(item: RawItem, opts: IngestOptions) -> Path:
    if opts.image_root is not None:
        return opts.image_root
    return Path(item.source.rsplit(":", 1)[0]).parent


def _prefetched(items: Iterator[RawItem], opts: IngestOptions):
    """Yield ``(item, loaded_images)`` in input order, reading images ahead in threads."""
    if not opts.load_images:
        for item in items:
            yield item, None
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    window: deque = deque()
    with ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="mmcr-images") as pool:
        for item in items:
            refs = item.record.get("images") if item.record is not None else None
            window.append((item, pool.submit(load_images, refs, _image_root_for(item, opts), opts.limits)))
            if len(window) >= PREFETCH_WINDOW:
                done, fut = window.popleft()
                yield done, fut.result()
        while window:
            done, fut = window.popleft()
            yield done, fut.result()


def iter_checked(
    inputs,
    format: Optional[str],
    opts: IngestOptions,
    *,
    select: Optional[Callable[[int], bool]] = None,
    duplicate_positions: Optional[dict] = None,
) -> Iterator[CheckedRecord]:
    """Read, convert and validate every record; duplicate ids are tracked across the input.

    With ``duplicate_positions`` (position -> first source), duplicates found by a previous pass
    are used instead, so that processes handling parts of the input agree.
    """
    seen: dict[str, str] = {}
    for item, loaded in _prefetched(read_raw(inputs, format, select=select), opts):
        checked = check_item(item, opts, _image_root_for(item, opts), loaded)
        rid = item.record_id
        if duplicate_positions is not None:
            if item.position in duplicate_positions:
                ctx = CheckContext(opts.taxonomy, opts.profile, item.source, item.pointer_map())
                checked.issues.append(duplicate_id_issue(rid, duplicate_positions[item.position], ctx))
        elif rid is not None:
            if rid in seen:
                ctx = CheckContext(opts.taxonomy, opts.profile, item.source, item.pointer_map())
                checked.issues.append(duplicate_id_issue(rid, seen[rid], ctx))
            else:
                seen[rid] = item.source
        yield checked


def find_duplicate_positions(inputs, format: Optional[str]) -> tuple[int, dict]:
    """One cheap pass over the JSON only (no conversion, no images): the record count and
    position -> first source of each duplicate id."""
    from .readers import list_input_files
    from .readers.jsonstream import iter_json_items

    files = list_input_files(inputs) if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    seen: dict[str, str] = {}
    dupes: dict[int, str] = {}
    n = 0
    for file in files:
        jsonl = True if file.suffix.lower() in (".jsonl", ".ndjson") else None
        for item in iter_json_items(file, jsonl=jsonl):
            pos = n
            n += 1
            value = item.value
            rid = value.get("id", item.key) if isinstance(value, dict) else None
            if not isinstance(rid, str):
                continue
            if rid in seen:
                dupes[pos] = seen[rid]
            else:
                seen[rid] = f"{file}:{item.line}"
    return n, dupes


def to_arrow_row(checked: CheckedRecord, taxonomy: Taxonomy) -> dict:
    """The Arrow row of a valid record (ClassLabel ids, image bytes embedded)."""
    rec = checked.record
    images = rec["images"]
    n_images = len(images)
    dtype = rec.get("dialogue_type") or ("single_image" if n_images == 1 else "multi_image")
    domain, sub = rec.get("domain"), rec.get("subtopic")
    messages = []
    for m in rec["messages"]:
        messages.append({
            "role": m["role"],
            "content": [
                {"type": "text", "text": p["text"], "index": None} if p["type"] == "text"
                else {"type": "image", "text": None, "index": p["index"]}
                for p in m["content"]
            ],
        })
    return {
        "id": rec["id"],
        "dialogue_type": DIALOGUE_TYPES.index(dtype),
        "domain": taxonomy.domain_id(domain) if domain is not None else -1,
        "subtopic": taxonomy.subtopic_id(sub) if sub is not None else -1,
        "images": [{"bytes": b, "path": p} for b, p in zip(checked.image_bytes, images)],
        "messages": messages,
        "num_images": n_images,
        "num_turns": sum(1 for m in rec["messages"] if m["role"] == "user"),
        "source": rec.get("source"),
        "clip_scores": [float(x) for x in rec.get("clip_scores") or []],
    }
