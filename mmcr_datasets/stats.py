"""Statistics of an MMCR dataset, computed column at a time and mergeable across shards.

:func:`compute_stats` reads the Arrow columns (a Hub-layout folder, one parquet file, a
``datasets.Dataset`` or a ``pyarrow.Table``) in batches and never decodes pixels: image format
and size come from the file header (:func:`mmcr_datasets.images.probe_image`).

Everything a :class:`DatasetStats` holds is an exact, order-free aggregate: integer histograms
(value -> count), label counters and, for the duplicate checks, the content hashes themselves.
So ``a.merge(b)`` of two shards describes exactly the same data as the stats of both shards
read together, and the summaries (means, percentiles, duplicate groups) are derived from the
merged state only when they are printed. That is what lets the work run per shard or per
process and still give the numbers of the whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)

STATS_FORMAT = "mmcr-stats/1"
UNLABELLED = "(unlabelled)"
DEFAULT_BATCH_ROWS = 4096

#: Placeholder strings of the raw formats. Left in the text of an Arrow row they mean a
#: conversion lost an image (or a literal token was never meant as one).
LITERAL_PLACEHOLDER_RE = r"<image>|<ImageHere>|<\|image\|>|<image_\d+>|\[IMG\]|<\|image_pad\|>"

#: A user message that points at an image by position or by a demonstrative ("the second
#: image", "both photos", "image 3"). A heuristic for how often dialogues refer across images.
IMAGE_REFERENCE_RE = (
    r"(?i)\b(the|this|that|these|those|both|each|all|other|previous|earlier|last|first|second|third|fourth|"
    r"1st|2nd|3rd|4th|two|three|four)\s+(images?|pictures?|photos?|photographs?|shots?|scenes?)\b"
    r"|\b(image|picture|photo)\s*#?[1-4]\b"
)

#: A user message that builds on earlier turns ("you mentioned", "as discussed", "earlier").
CONTEXT_REFERENCE_RE = (
    r"(?i)\b(you\s+(mentioned|said|noted|described|pointed\s+out|called|suggested)|as\s+(mentioned|discussed|noted)"
    r"|earlier|previous(ly)?|before|above|so\s+far|the\s+same|compared\s+(to|with)|that\s+one|the\s+other\s+one)\b"
)

#: Histograms of these quantities are kept exactly (value -> count).
DISTRIBUTIONS = {
    "turns": "turns per dialogue",
    "images": "images per dialogue",
    "image_first_turn": "turn in which an image is first referenced (1-based)",
    "image_parts_per_user_message": "image placeholders per user message",
    "user_words": "words per user message",
    "assistant_words": "words per assistant message",
    "user_chars": "characters per user message",
    "assistant_chars": "characters per assistant message",
    "dialogue_words": "words per dialogue (all messages)",
    "user_tokens": "tokens per user message",
    "assistant_tokens": "tokens per assistant message",
    "image_width": "image width (px)",
    "image_height": "image height (px)",
}

COUNTERS = (
    "messages", "user_messages", "assistant_messages", "system_messages", "later_user_messages",
    "user_messages_with_image", "image_parts", "text_parts", "messages_with_literal_placeholder",
    "literal_placeholders", "user_messages_with_image_reference", "later_user_messages_with_context_reference",
    "user_words", "assistant_words", "images", "image_bytes", "images_without_bytes",
)

_KEY_DTYPE = np.dtype([("hi", "<u8"), ("lo", "<u8")])


def _digest128_fallback(data) -> bytes:
    return hashlib.sha256(data).digest()[:16]


try:  # xxhash ships with `datasets`; 128-bit XXH3 is ten times faster than sha256 here
    import xxhash as _xxhash

    _digest128 = _xxhash.xxh3_128_digest
    DIGEST_NAME = "xxh3_128"
except ImportError:  # pragma: no cover
    _digest128 = _digest128_fallback
    DIGEST_NAME = "sha256/128"


def _hist(values) -> Counter:
    values = np.asarray(values)
    if values.size == 0:
        return Counter()
    vals, counts = np.unique(values.astype(np.int64, copy=False), return_counts=True)
    return Counter(dict(zip(vals.tolist(), counts.tolist())))


def _key_hex(key) -> str:
    return f"{int(key['hi']):016x}{int(key['lo']):016x}"


@dataclass(eq=False)
class DatasetStats:
    """Mergeable statistics of a set of MMCR dialogue rows.

    Read it through :meth:`to_dict` / :meth:`to_json` / :meth:`to_markdown` / :meth:`to_text`
    (and :meth:`plot`). Two stats are equal when their summaries are equal.
    """

    num_dialogues: int = 0
    by_config: Counter = field(default_factory=Counter)
    by_type: Counter = field(default_factory=Counter)
    by_domain: Counter = field(default_factory=Counter)
    by_subtopic: Counter = field(default_factory=Counter)
    by_domain_subtopic: Counter = field(default_factory=Counter)  # (domain, subtopic) -> n
    by_domain_type: Counter = field(default_factory=Counter)  # (domain, dialogue_type) -> n
    dists: dict = field(default_factory=dict)  # name -> Counter(int value -> count)
    totals: Counter = field(default_factory=Counter)  # COUNTERS
    image_formats: Counter = field(default_factory=Counter)
    image_problems: Counter = field(default_factory=Counter)
    image_first_turn_by_position: Counter = field(default_factory=Counter)  # (image ordinal, turn) -> n
    image_bytes_min: Optional[int] = None
    image_bytes_max: Optional[int] = None
    image_bytes_log2: Counter = field(default_factory=Counter)  # floor(log2(bytes)) -> n
    domain_order: list = field(default_factory=list)
    subtopic_order: list = field(default_factory=list)
    tokenizer_name: Optional[str] = None
    images_scanned: bool = True
    # exact duplicate detection: content keys and the dialogue ordinal they belong to
    _image_keys: list = field(default_factory=list, repr=False)
    _image_rows: list = field(default_factory=list, repr=False)
    _dialogue_keys: list = field(default_factory=list, repr=False)
    _ids: list = field(default_factory=list, repr=False)

    # -- merging --------------------------------------------------------------------------------
    def merge(self, other: "DatasetStats") -> "DatasetStats":
        """Return the stats of ``self``'s rows followed by ``other``'s rows (neither is changed)."""
        out = DatasetStats()
        out._absorb(self)
        out._absorb(other)
        return out

    __add__ = merge

    @classmethod
    def merge_all(cls, parts: Iterable["DatasetStats"]) -> "DatasetStats":
        out = cls()
        for p in parts:
            out._absorb(p)
        return out

    def _absorb(self, other: "DatasetStats") -> None:
        """Add ``other`` into ``self`` in place (its dialogue ordinals shift by our row count)."""
        offset = self.num_dialogues
        if self.num_dialogues == 0 and not self._ids:
            self.images_scanned = other.images_scanned
        else:
            self.images_scanned = self.images_scanned and other.images_scanned
        self.num_dialogues += other.num_dialogues
        for name in ("by_config", "by_type", "by_domain", "by_subtopic", "by_domain_subtopic", "by_domain_type",
                     "totals", "image_formats", "image_problems", "image_first_turn_by_position",
                     "image_bytes_log2"):
            getattr(self, name).update(getattr(other, name))
        for name, hist in other.dists.items():
            self.dists.setdefault(name, Counter()).update(hist)
        for attr, fn in (("image_bytes_min", min), ("image_bytes_max", max)):
            a, b = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, b if a is None else a if b is None else fn(a, b))
        for name in other.domain_order:
            if name not in self.domain_order:
                self.domain_order.append(name)
        for name in other.subtopic_order:
            if name not in self.subtopic_order:
                self.subtopic_order.append(name)
        if other.tokenizer_name and not self.tokenizer_name:
            self.tokenizer_name = other.tokenizer_name
        self._image_keys.extend(other._image_keys)
        self._image_rows.extend(rows + offset for rows in other._image_rows)
        self._dialogue_keys.extend(other._dialogue_keys)
        self._ids.extend(other._ids)

    def __eq__(self, other) -> bool:
        return isinstance(other, DatasetStats) and self.to_dict() == other.to_dict()

    # -- derived views --------------------------------------------------------------------------
    def distribution(self, name: str) -> dict:
        """Summary of one histogram: count, sum, mean, min, p50, p90, p99, max (nearest rank)."""
        return _summarise(self.dists.get(name, Counter()))

    def _all_ids(self) -> pa.Array:
        if not self._ids:
            return pa.array([], pa.string())
        return pa.concat_arrays([a.cast(pa.string()) for a in self._ids])

    def duplicates(self, *, max_groups: int = 10, max_ids: int = 5) -> dict:
        """Exact duplicate images (same bytes), dialogues (same messages and images) and ids."""
        import copy

        state = (self.num_dialogues, len(self._image_keys), len(self._dialogue_keys), len(self._ids), max_groups,
                 max_ids)
        cached = self.__dict__.get("_dup_cache")
        if cached is not None and cached[0] == state:
            return copy.deepcopy(cached[1])
        out = self._duplicates(max_groups, max_ids)
        self.__dict__["_dup_cache"] = (state, copy.deepcopy(out))
        return out

    def _duplicates(self, max_groups: int, max_ids: int) -> dict:
        ids = self._all_ids()
        out = {}
        if self.images_scanned:
            keys = np.concatenate(self._image_keys) if self._image_keys else np.zeros(0, _KEY_DTYPE)
            rows = np.concatenate(self._image_rows) if self._image_rows else np.zeros(0, np.int64)
            out["images"] = _dup_groups(keys, rows, ids, DIGEST_NAME, max_groups, max_ids)
        keys = np.concatenate(self._dialogue_keys) if self._dialogue_keys else np.zeros(0, _KEY_DTYPE)
        out["dialogues"] = _dup_groups(keys, np.arange(len(keys)), ids, "key", max_groups, max_ids)
        out["dialogues"]["compared"] = "messages and image bytes" if self.images_scanned else "messages only"
        vc = pc.value_counts(ids) if len(ids) else None
        repeated = []
        if vc is not None:
            counts = np.asarray(vc.field("counts"))
            values = vc.field("values").to_pylist()
            repeated = sorted((values[i], int(counts[i])) for i in np.flatnonzero(counts > 1))
        out["ids"] = {"distinct": len(vc) if vc is not None else 0,
                      "repeated": len(repeated),
                      "examples": [{"id": v, "count": c} for v, c in repeated[:max_groups]]}
        return out

    def density(self) -> dict:
        """Placeholder and reference density (per user message, per dialogue)."""
        t = self.totals
        users = t["user_messages"]
        later = t["later_user_messages"]

        def ratio(a, b):
            return round(a / b, 4) if b else None

        return {
            "image_placeholders_per_user_message": ratio(t["image_parts"], users),
            "image_placeholders_per_dialogue": ratio(t["image_parts"], self.num_dialogues),
            "share_of_user_messages_with_image": ratio(t["user_messages_with_image"], users),
            "share_of_user_messages_with_image_reference": ratio(t["user_messages_with_image_reference"], users),
            "share_of_later_user_messages_with_context_reference":
                ratio(t["later_user_messages_with_context_reference"], later),
            "literal_placeholders_in_text": t["literal_placeholders"],
            "messages_with_literal_placeholder": t["messages_with_literal_placeholder"],
        }

    def to_dict(self, *, histograms: bool = True) -> dict:
        """A JSON-ready summary. ``histograms=False`` leaves out the value -> count tables."""
        domains = _ordered(self.by_domain, self.domain_order)
        subtopics = _ordered(self.by_subtopic, self.subtopic_order)
        cross: dict = {}
        for d in domains:
            row = {s: self.by_domain_subtopic[(d, s)] for s in subtopics if self.by_domain_subtopic.get((d, s))}
            if row:
                cross[d] = row
        dtypes = sorted(self.by_type)
        dists = {}
        for name in DISTRIBUTIONS:
            if name.startswith("image_") and name not in ("image_first_turn", "image_parts_per_user_message"):
                continue
            if name in self.dists and sum(self.dists[name].values()):
                dists[name] = _summarise(self.dists[name], histograms=histograms)
        first_by_pos: dict = {}
        for (ordinal, turn), n in sorted(self.image_first_turn_by_position.items()):
            first_by_pos.setdefault(str(ordinal), {})[str(turn)] = n
        t = self.totals
        out = {
            "format": STATS_FORMAT,
            "num_dialogues": self.num_dialogues,
            "num_messages": t["messages"],
            "num_user_messages": t["user_messages"],
            "num_assistant_messages": t["assistant_messages"],
            "num_images": t["images"],
            "counts": {
                "config": dict(sorted(self.by_config.items())),
                "dialogue_type": {k: self.by_type[k] for k in dtypes},
                "domain": {d: self.by_domain[d] for d in domains},
                "subtopic": {s: self.by_subtopic[s] for s in subtopics},
                "domain_x_subtopic": cross,
                "domain_x_dialogue_type": {
                    d: {k: self.by_domain_type[(d, k)] for k in dtypes if self.by_domain_type.get((d, k))}
                    for d in domains
                },
            },
            "distributions": dists,
            "image_first_turn_by_image": first_by_pos,
            "words": {"user": t["user_words"], "assistant": t["assistant_words"]},
            "tokenizer": self.tokenizer_name,
            "density": self.density(),
            "images": self._image_summary(histograms),
            "duplicates": self.duplicates(),
        }
        return out

    def _image_summary(self, histograms: bool) -> dict:
        if not self.images_scanned:
            return {"scanned": False}
        t = self.totals
        return {
            "scanned": True,
            "count": t["images"],
            "formats": dict(sorted(self.image_formats.items())),
            "problems": dict(sorted(self.image_problems.items())),
            "without_bytes": t["images_without_bytes"],
            "bytes": {
                "total": t["image_bytes"],
                "mean": round(t["image_bytes"] / t["images"], 2) if t["images"] else None,
                "min": self.image_bytes_min,
                "max": self.image_bytes_max,
                "log2_histogram": {f"{1 << k}-{(1 << (k + 1)) - 1}": n for k, n in sorted(self.image_bytes_log2.items())}
                if histograms else None,
            },
            "width": _summarise(self.dists.get("image_width", Counter()), histograms=histograms),
            "height": _summarise(self.dists.get("image_height", Counter()), histograms=histograms),
        }

    def to_json(self, *, indent: Optional[int] = 2, histograms: bool = True) -> str:
        return json.dumps(self.to_dict(histograms=histograms), indent=indent, ensure_ascii=False)

    def to_markdown(self, *, plots: Optional[dict] = None, heading_level: int = 3) -> str:
        """Markdown tables (counts, cross tables, distributions, images, duplicates, density).

        ``plots`` maps plot names (from :meth:`plot`) to paths relative to the markdown file;
        they are embedded as images.
        """
        return _markdown(self, plots or {}, heading_level)

    def to_text(self) -> str:
        """A short plain-text summary for terminals."""
        d = self.to_dict(histograms=False)
        lines = [f"{d['num_dialogues']} dialogue(s), {d['num_messages']} message(s), {d['num_images']} image(s)"]
        for key in ("config", "dialogue_type", "domain"):
            vals = d["counts"][key]
            if vals:
                lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in vals.items()))
        lines.append(f"subtopics: {len(d['counts']['subtopic'])} distinct")
        for name, s in d["distributions"].items():
            lines.append(f"{DISTRIBUTIONS[name]}: mean {s['mean']}, p50 {s['p50']}, p90 {s['p90']}, "
                         f"min {s['min']}, max {s['max']}")
        img = d["images"]
        if img.get("scanned"):
            w, h = img["width"], img["height"]
            lines.append(f"images: {img['count']} ({', '.join(f'{k}={v}' for k, v in img['formats'].items())}), "
                         f"width p50 {w['p50']}, height p50 {h['p50']}, {img['bytes']['total']} bytes")
            if img["problems"]:
                lines.append("image problems: " + ", ".join(f"{k}={v}" for k, v in img["problems"].items()))
        dup = d["duplicates"]
        parts = [f"{k}: {v.get('duplicates', v.get('repeated'))}" for k, v in dup.items()]
        lines.append("duplicates: " + ", ".join(parts))
        dens = d["density"]
        lines.append("density: " + ", ".join(f"{k}={v}" for k, v in dens.items()))
        return "\n".join(lines)

    def plot(self, out_dir, *, prefix: str = "") -> dict:
        """Write PNG plots into ``out_dir``; return {name: path}. Needs the ``[plot]`` extra."""
        from .plots import plot_stats

        return plot_stats(self, out_dir, prefix=prefix)


def _ordered(counter: Counter, order: list) -> list:
    names = [n for n in order if counter.get(n)]
    rest = sorted(k for k in counter if k not in names and counter[k])
    return names + rest


def _summarise(hist: Counter, *, histograms: bool = True) -> dict:
    total = sum(hist.values())
    if not total:
        return {"count": 0}
    keys = sorted(hist)
    counts = np.array([hist[k] for k in keys], dtype=np.int64)
    cum = np.cumsum(counts)
    values = np.array(keys, dtype=np.int64)
    s = int((values * counts).sum())

    def pct(q: float) -> int:
        rank = max(1, int(np.ceil(q * total)))
        return int(values[np.searchsorted(cum, rank)])

    out = {"count": int(total), "sum": s, "mean": round(s / total, 4), "min": int(values[0]), "p50": pct(0.5),
           "p90": pct(0.9), "p99": pct(0.99), "max": int(values[-1])}
    if histograms:
        out["histogram"] = {str(k): int(hist[k]) for k in keys}
    return out


def _dup_groups(keys: np.ndarray, rows: np.ndarray, ids: pa.Array, algo: str, max_groups: int,
                max_ids: int) -> dict:
    """Group equal keys (sort, then compare neighbours); describe the largest groups."""
    n = len(keys)
    if n == 0:
        return {"total": 0, "distinct": 0, "duplicates": 0, "groups": 0, "examples": []}
    order = np.lexsort((keys["lo"], keys["hi"]))
    hi, lo = keys["hi"][order], keys["lo"][order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n))
    dup = np.flatnonzero(counts > 1)
    examples = []
    if len(dup):
        # largest groups first, ties by key, so the examples do not depend on the order of the data
        pick = dup[np.lexsort((lo[starts[dup]], hi[starts[dup]], -counts[dup]))][:max_groups]
        for g in pick.tolist():
            members = rows[order[starts[g]:starts[g] + counts[g]]]
            member_ids = sorted(set(ids.take(pa.array(members)).to_pylist())) if len(ids) else []
            examples.append({algo: _key_hex(keys[order[starts[g]]]), "count": int(counts[g]),
                             "dialogues": member_ids[:max_ids], "num_dialogues": len(member_ids)})
    return {"total": int(n), "distinct": int(len(starts)), "duplicates": int(n - len(starts)),
            "groups": int(len(dup)), "examples": examples}


# -- computing ----------------------------------------------------------------------------------
@dataclass
class _Source:
    """One stream of Arrow batches with the label names that decode its ClassLabel ids."""

    config: str
    batches: Callable[[], Iterator[pa.Table]]
    domain_names: list
    subtopic_names: list
    type_names: list


def compute_stats(data, *, images: bool = True, tokenizer=None, taxonomy=None, config: Optional[str] = None,
                  batch_rows: int = DEFAULT_BATCH_ROWS, num_proc: int = 1) -> DatasetStats:
    """Statistics of MMCR rows without decoding any image.

    ``data``: a Hub-layout folder, a parquet file (or a list of them), a ``datasets.Dataset``,
    a ``datasets.DatasetDict`` or a ``pyarrow.Table``. ``images=False`` skips the image column
    (no image statistics, duplicate dialogues compared on text only), which is much faster on
    big data. ``tokenizer``: a Hugging Face tokenizer, a ``tokenizers.Tokenizer`` or any callable
    ``str -> list`` to also count tokens per message. With ``num_proc > 1`` the parquet shards
    are read in parallel processes and their stats merged.
    """
    sources = _sources(data, taxonomy=taxonomy, config=config, images=images, batch_rows=batch_rows)
    if num_proc > 1 and tokenizer is None and all(isinstance(s.batches, _ShardBatches) for s in sources) \
            and len(sources) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(num_proc, len(sources))) as pool:
            parts = pool.map(_source_stats, [(s, images) for s in sources], chunksize=1)
        return DatasetStats.merge_all(parts)
    return _serial_stats(sources, images, tokenizer)


def _serial_stats(sources, images, tokenizer) -> DatasetStats:
    """One process: a reader thread decodes the next batch while this thread computes, and a
    helper thread takes the numpy text pass."""
    from concurrent.futures import ThreadPoolExecutor

    def produce():
        for source in sources:
            for table in source.batches():
                yield source, table

    parts = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmcr-stats") as helper:
        for source, table in _prefetch(produce()):
            parts.append(table_stats(table, config=source.config, domain_names=source.domain_names,
                                     subtopic_names=source.subtopic_names, type_names=source.type_names,
                                     images=images, tokenizer=tokenizer, executor=helper))
    out = DatasetStats.merge_all(parts) if parts else DatasetStats(images_scanned=images)
    for source in sources:
        if not out.domain_order:
            out.domain_order = list(source.domain_names)
            out.subtopic_order = list(source.subtopic_names)
    return out


def _prefetch(iterator, depth: int = 2):
    """Yield from ``iterator``, which a background thread keeps ``depth`` items ahead of."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", done))
        except BaseException as exc:  # hand the error to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=run, name="mmcr-stats-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()


def _source_stats(job, tokenizer=None) -> DatasetStats:
    source, images = job
    return _serial_stats([source], images, tokenizer)


class _ShardBatches:
    """Picklable batch iterator over one parquet file (for process pools)."""

    def __init__(self, path, columns, batch_rows):
        self.path, self.columns, self.batch_rows = str(path), columns, batch_rows

    def __call__(self) -> Iterator[pa.Table]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.path)
        cols = [c for c in self.columns if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=self.batch_rows, columns=cols):
            yield pa.Table.from_batches([batch])


_STAT_COLUMNS = ["id", "dialogue_type", "domain", "subtopic", "messages"]


def _label_names_from_schema(schema: pa.Schema, taxonomy) -> tuple[list, list, list]:
    from .records import DIALOGUE_TYPES

    names = {}
    raw = (schema.metadata or {}).get(b"huggingface")
    if raw:
        try:
            feats = json.loads(raw)["info"]["features"]
            for col in ("domain", "subtopic", "dialogue_type"):
                spec = feats.get(col) or {}
                if spec.get("_type") == "ClassLabel" and spec.get("names"):
                    names[col] = list(spec["names"])
        except (ValueError, KeyError, TypeError):
            pass
    if "domain" not in names or "subtopic" not in names:
        from .taxonomy import load_taxonomy

        tax = load_taxonomy(taxonomy)
        names.setdefault("domain", tax.domain_names)
        names.setdefault("subtopic", tax.subtopic_names)
    return names["domain"], names["subtopic"], names.get("dialogue_type", list(DIALOGUE_TYPES))


def _label_names_from_features(features, taxonomy) -> tuple[list, list, list]:
    from .records import DIALOGUE_TYPES
    from .taxonomy import load_taxonomy

    def names(col, fallback):
        f = features.get(col) if features is not None else None
        return list(f.names) if getattr(f, "names", None) else fallback

    tax = load_taxonomy(taxonomy)
    return (names("domain", tax.domain_names), names("subtopic", tax.subtopic_names),
            names("dialogue_type", list(DIALOGUE_TYPES)))


def _sources(data, *, taxonomy, config, images, batch_rows) -> list[_Source]:
    columns = _STAT_COLUMNS + (["images"] if images else [])
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.is_dir():
            shards = sorted(path.glob("*/*.parquet")) or sorted(path.glob("*.parquet"))
            if not shards:
                raise FileNotFoundError(f"no parquet shards under {path} (expected <config>/<split>-*.parquet)")
        elif path.is_file():
            if path.suffix != ".parquet":
                raise ValueError(f"{path} is not a parquet file; statistics read Hub folders and parquet shards. "
                                 f"Build raw records first: mmcr build {path} --out DIR")
            shards = [path]
        else:
            raise FileNotFoundError(f"{path} does not exist")
        return [_shard_source(p, columns, taxonomy, config, batch_rows) for p in shards]
    if isinstance(data, (list, tuple)) and all(isinstance(p, (str, Path)) for p in data):
        return [_shard_source(Path(p), columns, taxonomy, config, batch_rows) for p in data]
    if isinstance(data, pa.Table):
        dn, sn, tn = _label_names_from_schema(data.schema, taxonomy)
        def table_batches(t=data):
            for b in t.to_batches(max_chunksize=batch_rows):
                yield pa.Table.from_batches([b])

        return [_Source(config or "default", table_batches, dn, sn, tn)]
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        datasets = None
    if datasets is not None and isinstance(data, datasets.DatasetDict):
        return [s for split, ds in data.items()
                for s in _sources(ds, taxonomy=taxonomy, config=config or split, images=images,
                                  batch_rows=batch_rows)]
    if datasets is not None and isinstance(data, datasets.Dataset):
        dn, sn, tn = _label_names_from_features(data.features, taxonomy)
        keep = [c for c in columns if c in data.column_names]

        def batches(ds=data.select_columns(keep).with_format("arrow")):
            for t in ds.iter(batch_size=batch_rows):
                yield t

        return [_Source(config or "default", batches, dn, sn, tn)]
    raise TypeError(f"compute_stats takes a Hub folder, parquet file(s), a datasets.Dataset or a pyarrow.Table, "
                    f"not {type(data).__name__}")


def _shard_source(path: Path, columns, taxonomy, config, batch_rows) -> _Source:
    import pyarrow.parquet as pq

    dn, sn, tn = _label_names_from_schema(pq.read_schema(path), taxonomy)
    cfg = config or (path.parent.name if path.parent.name in ("single_image", "multi_image", "data") else "default")
    return _Source(cfg, _ShardBatches(path, columns, batch_rows), dn, sn, tn)


def _np(arr) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _flag(arr) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = pc.fill_null(arr, False)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _ints(arr, fill: int = 0) -> np.ndarray:
    if pa.types.is_null(arr.type):
        return np.full(len(arr), fill, dtype=np.int64)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = pc.fill_null(arr, fill)
    return np.asarray(arr.to_numpy(zero_copy_only=False)).astype(np.int64, copy=False)


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _labels(table, name, names, n) -> tuple[np.ndarray, list]:
    """Label codes per row and the names they index (the last name is ``UNLABELLED``)."""
    if name not in table.column_names:
        return np.zeros(n, dtype=np.int64), [UNLABELLED]
    col = _column(table, name)
    if pa.types.is_integer(col.type):
        ids = _ints(col, -1)
        ids = np.where((ids < 0) | (ids >= len(names)), len(names), ids)
        return ids, list(names) + [UNLABELLED]
    enc = pc.dictionary_encode(col)
    values = [UNLABELLED if v is None else v for v in enc.dictionary.to_pylist()] + [UNLABELLED]
    return _ints(enc.indices, len(values) - 1), values


def _count_codes(counter: Counter, codes: np.ndarray, names: list) -> None:
    counts = np.bincount(codes, minlength=len(names))
    for i in np.flatnonzero(counts).tolist():
        counter[names[i]] += int(counts[i])


def _count_pairs(counter: Counter, a: np.ndarray, a_names: list, b: np.ndarray, b_names: list) -> None:
    counts = np.bincount(a * len(b_names) + b, minlength=len(a_names) * len(b_names))
    for k in np.flatnonzero(counts).tolist():
        counter[(a_names[k // len(b_names)], b_names[k % len(b_names)])] += int(counts[k])


def table_stats(table: pa.Table, *, config: str = "default", domain_names: Sequence[str] = (),
                subtopic_names: Sequence[str] = (), type_names: Sequence[str] = ("single_image", "multi_image"),
                images: bool = True, tokenizer=None, executor=None) -> DatasetStats:
    """Stats of one Arrow table of MMCR rows (the unit that :func:`compute_stats` merges).

    ``executor`` (a ``concurrent.futures`` executor) lets the numpy text pass run in a helper
    thread while this one hashes images; numpy and hashlib release the GIL for that work.
    """
    n = table.num_rows
    st = DatasetStats(num_dialogues=n, images_scanned=images and "images" in table.column_names,
                      domain_order=list(domain_names), subtopic_order=list(subtopic_names))
    if n == 0:
        return st
    st.by_config[config] += n
    dtypes, type_labels = _labels(table, "dialogue_type", type_names, n)
    domains, domain_labels = _labels(table, "domain", domain_names, n)
    subtopics, subtopic_labels = _labels(table, "subtopic", subtopic_names, n)
    _count_codes(st.by_type, dtypes, type_labels)
    _count_codes(st.by_domain, domains, domain_labels)
    _count_codes(st.by_subtopic, subtopics, subtopic_labels)
    _count_pairs(st.by_domain_subtopic, domains, domain_labels, subtopics, subtopic_labels)
    _count_pairs(st.by_domain_type, domains, domain_labels, dtypes, type_labels)
    ids = _column(table, "id")
    st._ids.append(ids)

    # messages -> flat arrays over messages and over content parts
    messages = _column(table, "messages")
    msg_row = _np(pc.list_parent_indices(messages)).astype(np.int64)
    msgs = pc.list_flatten(messages)
    n_msgs = len(msgs)
    roles = pc.struct_field(msgs, "role")
    is_user = _flag(pc.equal(roles, "user"))
    is_asst = _flag(pc.equal(roles, "assistant"))
    is_sys = _flag(pc.equal(roles, "system"))
    content = pc.struct_field(msgs, "content")
    part_msg = _np(pc.list_parent_indices(content)).astype(np.int64)
    parts = pc.list_flatten(content)
    ptype = pc.struct_field(parts, "type")
    text = pc.struct_field(parts, "text")
    is_text = _flag(pc.equal(ptype, "text"))
    is_img = _flag(pc.equal(ptype, "image"))

    # turn index of each message: the number of user messages so far in its dialogue
    cum_user = np.cumsum(is_user)
    row_first = np.searchsorted(msg_row, np.arange(n), side="left")
    before = np.where(row_first > 0, cum_user[np.maximum(row_first - 1, 0)], 0)
    turn_of_msg = cum_user - before[msg_row] if n_msgs else np.zeros(0, np.int64)
    # a turn is a user message answered by the next message
    answered = np.zeros(n_msgs, dtype=bool)
    if n_msgs > 1:
        answered[:-1] = is_user[:-1] & is_asst[1:] & (msg_row[:-1] == msg_row[1:])
    turns = np.bincount(msg_row[answered], minlength=n)
    st.dists["turns"] = _hist(turns)

    # words per text part (as Python's str.split() counts them) run in a helper thread meanwhile
    tbuf = _StringBuffer(text)
    words_future = executor.submit(tbuf.word_counts) if executor is not None else None

    # placeholders, literal placeholders and references (regexes run only where they can match)
    img_per_msg = np.bincount(part_msg[is_img], minlength=n_msgs)
    st.dists["image_parts_per_user_message"] = _hist(img_per_msg[is_user])
    literal = np.zeros(len(parts), dtype=np.int64)
    cand = np.flatnonzero(is_text & tbuf.contains_any(b"<["))
    if len(cand):
        literal[cand] = _ints(pc.count_substring_regex(text.take(pa.array(cand)), LITERAL_PLACEHOLDER_RE))
    literal_per_msg = np.bincount(part_msg, weights=literal, minlength=n_msgs)
    user_parts = np.flatnonzero(is_text & is_user[part_msg])
    img_ref = np.zeros(n_msgs, dtype=bool)
    ctx_ref = np.zeros(n_msgs, dtype=bool)
    if len(user_parts):
        user_text = text.take(pa.array(user_parts))
        img_ref[part_msg[user_parts[_flag(pc.match_substring_regex(user_text, IMAGE_REFERENCE_RE))]]] = True
        ctx_ref[part_msg[user_parts[_flag(pc.match_substring_regex(user_text, CONTEXT_REFERENCE_RE))]]] = True
    later = is_user & (turn_of_msg >= 2)
    tot = st.totals
    tot["messages"] += n_msgs
    tot["user_messages"] += int(is_user.sum())
    tot["assistant_messages"] += int(is_asst.sum())
    tot["system_messages"] += int(is_sys.sum())
    tot["later_user_messages"] += int(later.sum())
    tot["user_messages_with_image"] += int((is_user & (img_per_msg > 0)).sum())
    tot["image_parts"] += int(is_img.sum())
    tot["text_parts"] += int(is_text.sum())
    tot["literal_placeholders"] += int(literal_per_msg.sum())
    tot["messages_with_literal_placeholder"] += int((literal_per_msg > 0).sum())
    tot["user_messages_with_image_reference"] += int((is_user & img_ref).sum())
    tot["later_user_messages_with_context_reference"] += int((later & ctx_ref).sum())

    # images per dialogue and the turn each image is first referenced in
    part_row = msg_row[part_msg]
    if "images" in table.column_names:
        img_col = _column(table, "images")
        st.dists["images"] = _hist(_ints(pc.list_value_length(img_col)))
    else:
        st.dists["images"] = _hist(np.bincount(part_row[is_img], minlength=n))
    index = _ints(pc.struct_field(parts, "index"), -1)
    sel = np.flatnonzero(is_img & (index >= 0))
    if len(sel):
        width = int(index[sel].max()) + 1
        key = part_row[sel] * width + index[sel]
        _, first = np.unique(key, return_index=True)  # first occurrence of each (row, image)
        first_parts = sel[first]
        first_turn = turn_of_msg[part_msg[first_parts]]
        st.dists["image_first_turn"] = _hist(first_turn)
        st.image_first_turn_by_position.update(zip((index[first_parts] + 1).tolist(), first_turn.tolist()))

    # content hashes, image headers
    img_digests = np.zeros((0, 16), dtype=np.uint8)
    img_rows = np.zeros(0, dtype=np.int64)
    if st.images_scanned:
        img_digests, img_rows = _image_stats(st, _column(table, "images"))
    if tokenizer is not None:
        _token_stats(st, content, parts, is_user, is_asst, tokenizer)
    role_codes = np.where(is_user, 0, np.where(is_asst, 1, np.where(is_sys, 2, 3))).astype(np.uint8)
    st._dialogue_keys.append(_dialogue_keys(n, msg_row, part_msg, role_codes, is_text, is_img, index, tbuf,
                                            img_digests, img_rows))

    # text lengths per message
    chars = _ints(pc.utf8_length(text)) * is_text
    words = (words_future.result() if words_future is not None else tbuf.word_counts()) * is_text
    msg_chars = np.bincount(part_msg, weights=chars, minlength=n_msgs).astype(np.int64)
    msg_words = np.bincount(part_msg, weights=words, minlength=n_msgs).astype(np.int64)
    st.dists["user_chars"] = _hist(msg_chars[is_user])
    st.dists["assistant_chars"] = _hist(msg_chars[is_asst])
    st.dists["user_words"] = _hist(msg_words[is_user])
    st.dists["assistant_words"] = _hist(msg_words[is_asst])
    st.dists["dialogue_words"] = _hist(np.bincount(msg_row, weights=msg_words, minlength=n).astype(np.int64))
    tot["user_words"] += int(msg_words[is_user].sum())
    tot["assistant_words"] += int(msg_words[is_asst].sum())
    return st


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)  # set bits per byte value


class _StringBuffer:
    """The UTF-8 bytes and offsets of a string array, as numpy views (no copies, no Python strings)."""

    # bytes that are whitespace on their own (str.isspace() for ASCII includes \x1c-\x1f)
    _ASCII_SPACE = np.zeros(256, dtype=bool)
    _ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True

    def __init__(self, arr: pa.Array):
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
            off_type = np.int64
        elif pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
            off_type = np.int32
        else:
            arr = arr.cast(pa.large_string())
            off_type = np.int64
        self.length = len(arr)
        bufs = arr.buffers()
        if self.length == 0 or bufs[2] is None:
            self.offsets = np.zeros(self.length + 1, dtype=np.int64)
            self.data = np.zeros(0, dtype=np.uint8)
            self.base = 0
            return
        offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset:arr.offset + self.length + 1].astype(np.int64)
        self.base = int(offsets[0])
        self.offsets = offsets - self.base
        self.data = np.frombuffer(bufs[2], dtype=np.uint8)[self.base:self.base + int(self.offsets[-1])]
        self.raw = bufs[2]

    def _per_string(self, flags: np.ndarray) -> np.ndarray:
        """Number of set bytes of ``flags`` inside each string."""
        pos = np.flatnonzero(flags)
        return np.searchsorted(pos, self.offsets[1:]) - np.searchsorted(pos, self.offsets[:-1])

    def space_mask(self) -> np.ndarray:
        """True for every byte of a character that Python's ``str.isspace()`` accepts."""
        d = self.data
        space = d <= 32
        if len(d) == 0:
            return space
        if d.min() < 32:  # control bytes: only \t \n \v \f \r and \x1c-\x1f are spaces
            low = np.flatnonzero(d < 32)
            space[low] = self._ASCII_SPACE[d[low]]
        if d.max() >= 0xC2:  # some multi-byte characters: check the few that are spaces
            lead = np.flatnonzero(d >= 0xC2)
            n = len(d)
            nxt = np.where(lead + 1 < n, d[np.minimum(lead + 1, n - 1)], 0)
            nxt2 = np.where(lead + 2 < n, d[np.minimum(lead + 2, n - 1)], 0)
            b0 = d[lead]
            two = (b0 == 0xC2) & ((nxt == 0x85) | (nxt == 0xA0))  # U+0085, U+00A0
            three = ((b0 == 0xE2) & (((nxt == 0x80) & (((nxt2 >= 0x80) & (nxt2 <= 0x8A)) | (nxt2 == 0xA8)
                                                       | (nxt2 == 0xA9) | (nxt2 == 0xAF)))
                                     | ((nxt == 0x81) & (nxt2 == 0x9F))))  # U+2000-200A, 2028, 2029, 202F, 205F
            three |= (b0 == 0xE3) & (nxt == 0x80) & (nxt2 == 0x80)  # U+3000
            three |= (b0 == 0xE1) & (nxt == 0x9A) & (nxt2 == 0x80)  # U+1680
            for k, mask in ((2, two), (3, three)):
                hit = lead[mask]
                for j in range(k):
                    space[hit + j] = True
        return space

    def word_counts(self) -> np.ndarray:
        """Words per string, exactly ``len(s.split())``.

        A word starts at byte ``j`` when byte ``j-1`` is a space and byte ``j`` is not (inside one
        string), or at a string's first byte when that is not a space. The start flags are packed
        into bits, so counting them per string is a prefix sum over bytes plus a popcount of the
        partial byte at each end.
        """
        if len(self.data) == 0:
            return np.zeros(self.length, dtype=np.int64)
        space = self.space_mask()
        flags = np.empty(len(space), dtype=bool)
        flags[0] = False
        np.greater(space[:-1], space[1:], out=flags[1:])
        packed = np.append(np.packbits(flags), np.uint8(0))
        prefix = np.concatenate([[0], np.cumsum(_POPCOUNT[packed], dtype=np.int64)])

        def before(x):  # number of flags at positions < x
            q, r = x >> 3, x & 7
            mask = ((0xFF00 >> r) & 0xFF).astype(np.uint8)
            return prefix[q] + _POPCOUNT[packed[q] & mask]

        starts, ends = self.offsets[:-1], self.offsets[1:]
        nonempty = ends > starts
        out = np.zeros(self.length, dtype=np.int64)
        s, e = starts[nonempty], ends[nonempty]
        out[nonempty] = before(e) - before(s + 1) + ~space[s]
        return out

    def contains_any(self, chars: bytes) -> np.ndarray:
        """Per string: does it contain any of these single bytes? (Fast when they are rare.)"""
        out = np.zeros(self.length, dtype=bool)
        if len(self.data) == 0:
            return out
        pos = np.concatenate([np.flatnonzero(self.data == c) for c in chars])
        if len(pos):
            out[np.searchsorted(self.offsets, pos, side="right") - 1] = True
        return out

    def view(self) -> memoryview:
        if len(self.data) == 0:
            return memoryview(b"")
        return memoryview(self.raw)[self.base:self.base + int(self.offsets[-1])]


_FORMATS = ("JPEG", "PNG", "GIF")
_JPEG_MAX_SEGMENTS = 64


def _headers(buf: "_StringBuffer") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Format code (index into ``_FORMATS``, -1 = not settled here), width, height of every image.

    The same reading as :func:`mmcr_datasets.images.probe_image`'s fast path (JPEG segment walk
    to the first SOF marker, PNG IHDR, GIF screen descriptor) plus its end-marker check, done
    for all images of a batch at once with numpy. Whatever it cannot settle (other formats,
    odd or damaged files) goes back to ``probe_image`` one by one.
    """
    d = buf.data
    n = buf.length
    fmt = np.full(n, -1, dtype=np.int64)
    w = np.zeros(n, dtype=np.int64)
    h = np.zeros(n, dtype=np.int64)
    if n == 0 or len(d) == 0:
        return fmt, w, h
    s = buf.offsets[:-1]
    e = buf.offsets[1:]
    size = e - s
    pad = np.concatenate([d, np.zeros(32, dtype=np.uint8)])  # reads past the end see zeros

    def at(pos):
        return pad[np.minimum(pos, len(d) + 31)].astype(np.int64)

    def be16(pos):
        return (at(pos) << 8) | at(pos + 1)

    def be32(pos):
        return (be16(pos) << 16) | be16(pos + 2)

    last2 = np.where(size >= 2, (at(e - 2) << 8) | at(e - 1), -1)
    # PNG: signature, IHDR, and IEND as the last chunk
    png = size >= 24
    for k, byte in enumerate(b"\x89PNG\r\n\x1a\nxxxxIHDR"):
        if k not in (8, 9, 10, 11):
            png &= at(s + k) == byte
    pw, ph = be32(s + 16), be32(s + 20)
    png_end = size >= 12
    for k, byte in enumerate(b"IEND\xaeB`\x82"):
        png_end &= at(e - 8 + k) == byte
    ok = png & (pw > 0) & (ph > 0) & png_end
    fmt[ok], w[ok], h[ok] = 1, pw[ok], ph[ok]
    # GIF: GIF87a / GIF89a, logical screen size, trailer byte ';'
    gif = (size >= 10) & (at(s) == 0x47) & (at(s + 1) == 0x49) & (at(s + 2) == 0x46) & (at(s + 3) == 0x38) \
        & ((at(s + 4) == 0x37) | (at(s + 4) == 0x39)) & (at(s + 5) == 0x61)
    gw, gh = at(s + 6) | (at(s + 7) << 8), at(s + 8) | (at(s + 9) << 8)
    ok = gif & (gw > 0) & (gh > 0) & (at(e - 1) == 0x3B)
    fmt[ok], w[ok], h[ok] = 2, gw[ok], gh[ok]
    # JPEG: walk the segments of every image in lockstep until its first SOF marker
    jpeg = (size >= 3) & (at(s) == 0xFF) & (at(s + 1) == 0xD8) & (at(s + 2) == 0xFF) & (last2 == 0xFFD9)
    idx = np.flatnonzero(jpeg)
    pos = s[idx] + 2
    end = e[idx]
    for _ in range(_JPEG_MAX_SEGMENTS):
        if len(idx) == 0:
            break
        live = (pos + 9 < end) & (at(pos) == 0xFF)
        idx, pos, end = idx[live], pos[live], end[live]
        marker = at(pos + 1)
        fill = marker == 0xFF
        alone = (marker == 0xD8) | (marker == 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))
        sof = (marker >= 0xC0) & (marker <= 0xCF) & (marker != 0xC4) & (marker != 0xC8) & (marker != 0xCC) \
            & ~fill & ~alone
        if sof.any():
            hit = idx[sof]
            jh, jw = be16(pos[sof] + 5), be16(pos[sof] + 7)
            good = (jw > 0) & (jh > 0)
            fmt[hit[good]], w[hit[good]], h[hit[good]] = 0, jw[good], jh[good]
        step = np.where(fill, 1, np.where(alone, 2, 2 + be16(pos + 2)))
        more = ~sof
        idx, pos, end = idx[more], (pos + step)[more], end[more]
    return fmt, w, h


def _image_stats(st: DatasetStats, img_col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Hash and header-read every image; return (16-byte digests, their dialogue rows)."""
    from .images import ImageLimits, ImageProblem, probe_image

    limits = ImageLimits(max_pixels=1 << 62, min_side=0)
    img_row = _np(pc.list_parent_indices(img_col)).astype(np.int64)
    flat = pc.list_flatten(img_col)
    blobs = pc.struct_field(flat, "bytes")
    n = len(blobs)
    st.totals["images"] += n
    present = ~_np(pc.is_null(blobs)).astype(bool) if n else np.zeros(0, dtype=bool)
    missing = int(n - present.sum())
    if missing:
        st.totals["images_without_bytes"] += missing
        st.image_problems["no_bytes"] += missing
    buf = _StringBuffer(blobs)
    fmt, w, h = _headers(buf)
    fmt[~present] = -2
    for i in np.flatnonzero(fmt == -1).tolist():  # not settled by the vector reader
        data = bytes(buf.view()[buf.offsets[i]:buf.offsets[i + 1]])
        try:
            info = probe_image(data, limits)
        except ImageProblem as exc:
            st.image_problems[exc.code] += 1
            st.image_formats["unreadable"] += 1
            fmt[i] = -3
            continue
        name = info.format
        st.image_formats[name] += 1
        w[i], h[i] = info.width, info.height
        fmt[i] = -4  # counted already
    for code, name in enumerate(_FORMATS):
        k = int((fmt == code).sum())
        if k:
            st.image_formats[name] += k
    sized = (fmt >= 0) | (fmt == -4)
    st.dists["image_width"] = _hist(w[sized])
    st.dists["image_height"] = _hist(h[sized])
    sizes = np.diff(buf.offsets)[present]
    if len(sizes):
        st.totals["image_bytes"] += int(sizes.sum())
        st.image_bytes_min, st.image_bytes_max = int(sizes.min()), int(sizes.max())
        st.image_bytes_log2.update(_hist(np.floor(np.log2(np.maximum(sizes, 1))).astype(np.int64)))
    view = buf.view()
    digest = _digest128
    starts = buf.offsets[:-1][present].tolist()
    ends = buf.offsets[1:][present].tolist()
    digests = b"".join([digest(view[a:b]) for a, b in zip(starts, ends)])
    raw = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16)
    rows = img_row[present]
    st._image_keys.append(_keys_from_array(raw))
    st._image_rows.append(rows)
    return raw, rows


def _keys_from_array(raw: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 digests -> structured (hi, lo) keys that sort and compare like the bytes."""
    out = np.empty(len(raw), dtype=_KEY_DTYPE)
    if len(raw):
        words = np.ascontiguousarray(raw).view(">u8").reshape(-1, 2)
        out["hi"], out["lo"] = words[:, 0], words[:, 1]
    return out


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03))


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _dialogue_keys(n, msg_row, part_msg, role_codes, is_text, is_img, index, tbuf: _StringBuffer, img_digests,
                   img_rows) -> np.ndarray:
    """One 16-byte key per dialogue, equal exactly when two dialogues have the same content.

    The key mixes a 128-bit digest of the dialogue's text bytes with a structure fingerprint, a
    128-bit fingerprint computed for all dialogues at once with numpy: every content part is
    hashed (splitmix64, two seeds) from its position in the dialogue, text length, type, image
    index, message ordinal, role and, for an image part, the digest of the image's bytes; the
    part hashes are summed per dialogue. So the per-dialogue Python work is one digest call.
    (Two dialogues equal in every part but differing in an image no part refers to, or in an
    empty message, get the same key; validation rejects both shapes.)
    """
    n_msgs = len(msg_row)
    msgs_per_row = np.bincount(msg_row, minlength=n)
    parts_per_msg = np.bincount(part_msg, minlength=n_msgs)
    msg_off = np.concatenate([[0], np.cumsum(msgs_per_row)])
    part_off = np.concatenate([[0], np.cumsum(parts_per_msg)])[msg_off]
    text_off = tbuf.offsets[part_off] if len(tbuf.offsets) > 1 else np.zeros(n + 1, np.int64)
    fp = np.zeros((n, 2), dtype=np.uint64)
    n_parts = len(part_msg)
    if n_parts:
        row = msg_row[part_msg]
        fields = [
            np.arange(n_parts, dtype=np.int64) - part_off[row],  # position of the part in its dialogue
            np.diff(tbuf.offsets),  # text length in bytes
            np.where(is_text, 0, np.where(is_img, 1, 2)) + 4 * role_codes[part_msg].astype(np.int64),
            index,
            (np.arange(n_msgs) - msg_off[msg_row])[part_msg],  # message ordinal
        ]
        if len(img_rows):
            per_row = np.bincount(img_rows, minlength=n)
            img_off = np.concatenate([[0], np.cumsum(per_row)])
            ok = is_img & (index >= 0) & (index < per_row[row])
            words = np.ascontiguousarray(img_digests).view("<u8").reshape(-1, 2)
            hi = np.zeros(n_parts, dtype=np.uint64)
            lo = np.zeros(n_parts, dtype=np.uint64)
            at = img_off[row[ok]] + index[ok]
            hi[ok], lo[ok] = words[at, 0], words[at, 1]
            fields += [hi, lo]
        fields = [f.astype(np.uint64) for f in fields]
        nonempty = part_off[1:] > part_off[:-1]
        for k, seed in enumerate(_SEEDS):
            acc = np.full(n_parts, seed, dtype=np.uint64)
            for f in fields:
                acc = _mix(acc ^ f)
            if nonempty.any():
                fp[nonempty, k] = np.add.reduceat(acc, part_off[:-1][nonempty])
    fp[:, 0] ^= msgs_per_row.astype(np.uint64)  # dialogues made only of empty messages still differ by count
    tview = tbuf.view()
    digest = _digest128
    to = text_off.tolist()
    text_digest = b"".join([digest(tview[a:b]) for a, b in zip(to[:-1], to[1:])])
    words = np.frombuffer(text_digest, dtype="<u8").reshape(-1, 2)
    # each word of the key is a bijective mix of text digest xor structure fingerprint
    key = np.empty(n, dtype=_KEY_DTYPE)
    key["hi"] = _mix(words[:, 0] ^ fp[:, 0])
    key["lo"] = _mix(words[:, 1] ^ fp[:, 1] ^ _SEEDS[1])
    return key


def _list_of(offsets_from: pa.Array, values: pa.Array) -> pa.Array:
    """A list array with the shape of ``offsets_from`` (a list array) over new ``values``."""
    lengths = _ints(pc.list_value_length(offsets_from))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _tokenizer_fn(tokenizer) -> tuple[Callable[[list], list], str]:
    """Normalise a tokenizer to ``list[str] -> list[int]`` (token counts) and a display name."""
    name = getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
        return (lambda texts: [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]), name
    if hasattr(tokenizer, "batch_encode_plus") or hasattr(tokenizer, "model_input_names"):  # transformers
        def count(texts):
            enc = tokenizer(texts, add_special_tokens=False)
            return [len(x) for x in enc["input_ids"]]
        return count, name
    if callable(tokenizer):
        return (lambda texts: [len(tokenizer(t)) for t in texts]), getattr(tokenizer, "__name__", name)
    raise TypeError("tokenizer must be a transformers tokenizer, a tokenizers.Tokenizer or a callable str -> list")


def _token_stats(st, content, parts, is_user, is_asst, tokenizer) -> None:
    count, name = _tokenizer_fn(tokenizer)
    text = pc.fill_null(pc.struct_field(parts, "text"), "")
    msg_text = pc.binary_join(_list_of(content, text), "").to_pylist()
    counts = np.asarray(count(msg_text) if msg_text else [], dtype=np.int64)
    if len(counts):
        st.dists["user_tokens"] = _hist(counts[is_user])
        st.dists["assistant_tokens"] = _hist(counts[is_asst])
    st.tokenizer_name = str(name)


# -- markdown ----------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _markdown(st: DatasetStats, plots: dict, level: int) -> str:
    d = st.to_dict(histograms=False)
    h = "#" * level
    n = d["num_dialogues"]
    c = d["counts"]
    out = [f"{h} Overview", "",
           _table(["dialogues", "messages", "user messages", "assistant messages", "images"],
                  [[n, d["num_messages"], d["num_user_messages"], d["num_assistant_messages"], d["num_images"]]]),
           ""]
    if len(c["config"]) > 1 or "default" not in c["config"]:
        out += [_table(["config", "dialogues", "share"], [[k, v, _pct(v, n)] for k, v in c["config"].items()]), ""]
    dtypes = list(c["dialogue_type"])
    out += [f"{h} Domains and dialogue types", "",
            _table(["domain"] + dtypes + ["total", "share"],
                   [[dom] + [c["domain_x_dialogue_type"].get(dom, {}).get(t, 0) for t in dtypes] + [v, _pct(v, n)]
                    for dom, v in c["domain"].items()]
                   + [["**total**"] + [c["dialogue_type"][t] for t in dtypes] + [n, "100.0%" if n else "-"]]),
            ""]
    if "domain" in plots:
        out += [f"![dialogues per domain and dialogue type]({plots['domain']})", ""]
    out += [f"{h} Sub-topics (domain x sub-topic)", ""]
    rows = []
    for dom, subs in c["domain_x_subtopic"].items():
        for sub, v in subs.items():
            rows.append([dom, sub, v, _pct(v, n)])
    out += [_table(["domain", "sub-topic", "dialogues", "share"], rows) if rows else "_no labels_", ""]
    if "subtopic" in plots:
        out += [f"![dialogues per domain and sub-topic]({plots['subtopic']})", ""]
    out += [f"{h} Distributions", "",
            _table(["quantity", "mean", "min", "p50", "p90", "p99", "max"],
                   [[DISTRIBUTIONS[k], v["mean"], v["min"], v["p50"], v["p90"], v["p99"], v["max"]]
                    for k, v in d["distributions"].items()]), ""]
    if d["tokenizer"]:
        out += [f"Tokens counted with `{d['tokenizer']}`.", ""]
    turns = st.dists.get("turns", Counter())
    imgs = st.dists.get("images", Counter())
    first = st.dists.get("image_first_turn", Counter())
    out += [_table(["turns", "dialogues"], sorted(turns.items())), "",
            _table(["images per dialogue", "dialogues"], sorted(imgs.items())), ""]
    if first:
        out += [_table(["turn of first reference", "images"], sorted(first.items())), ""]
    for name in ("lengths", "images_per_dialogue"):
        if name in plots:
            out += [f"![{name.replace('_', ' ')}]({plots[name]})", ""]
    img = d["images"]
    if img.get("scanned"):
        w, hh, b = img["width"], img["height"], img["bytes"]
        out += [f"{h} Images", "",
                _table(["images", "formats", "width p50 (min-max)", "height p50 (min-max)", "bytes mean",
                        "bytes total", "problems"],
                       [[img["count"], ", ".join(f"{k}: {v}" for k, v in img["formats"].items()) or "-",
                         f"{w.get('p50', '-')} ({w.get('min', '-')}-{w.get('max', '-')})",
                         f"{hh.get('p50', '-')} ({hh.get('min', '-')}-{hh.get('max', '-')})",
                         b["mean"], b["total"],
                         ", ".join(f"{k}: {v}" for k, v in img["problems"].items()) or "none"]]), ""]
        if "image_sizes" in plots:
            out += [f"![image sizes]({plots['image_sizes']})", ""]
    else:
        out += ["_Image sizes, formats and duplicate images were not computed here (the image column was not "
                "read); `mmcr stats PATH` or `mmcr card FOLDER` adds them._", ""]
    dup = d["duplicates"]
    rows = []
    for kind, v in dup.items():
        if kind == "ids":
            rows.append(["ids", v["distinct"], v["repeated"], ", ".join(e["id"] for e in v["examples"][:3]) or "-"])
        else:
            ex = "; ".join(", ".join(e["dialogues"][:3]) for e in v["examples"][:3]) or "-"
            rows.append([kind, v["distinct"], v["duplicates"], ex])
    out += [f"{h} Exact duplicates", "", _table(["what", "distinct", "duplicates", "examples"], rows), ""]
    dens = d["density"]
    out += [f"{h} Placeholders and references", "",
            _table(["measure", "value"], [[k.replace("_", " "), "-" if v is None else v] for k, v in dens.items()]),
            "",
            "Image and context references are counted with two regular expressions "
            "(`mmcr_datasets.stats.IMAGE_REFERENCE_RE`, `CONTEXT_REFERENCE_RE`): a rough, English-only signal.",
            ""]
    return "\n".join(out).rstrip() + "\n"


def load_stats_json(path) -> dict:
    """Read a stats JSON file written by ``mmcr stats --format json``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != STATS_FORMAT:
        raise ValueError(f"{path} is not an {STATS_FORMAT} file")
    return data
