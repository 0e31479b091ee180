"""Balanced ("less is more") subsets: stratified, deterministic and nested.

The MMCR paper reports that a small subset balanced over task types and domains (about 5k
dialogues) beat larger unbalanced ones. :func:`stratified_subset` cuts such subsets of any size.

How rows are chosen, and why subsets nest
-----------------------------------------
1. Rows are grouped into strata by the ``by`` columns (default: domain x dialogue type).
2. Inside a stratum, rows are ranked by a seeded hash of their ``id`` (``blake2b(seed, id)``),
   so the ranking of a row does not depend on the order, the sharding or the other rows of the
   dataset.
3. Seats are handed out one at a time, each to the stratum with the highest Sainte-Lague
   quotient ``weight / (2 * taken + 1)`` among the strata that still have rows (ties go by a
   seeded hash of the stratum). Each seat takes the next row of that stratum's ranking.

This gives one global order of rows for a seed; the subset of size ``n`` is its first ``n``
rows. So a smaller subset is always contained in a larger one of the same seed (a divisor
method is house-monotone, unlike largest-remainder rounding), and a stratum that runs out of
rows simply stops receiving seats: its share goes to the others in proportion to their
weights. The :class:`SubsetReport` lists every such shortfall; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa

from .stats import UNLABELLED

LABEL_COLUMNS = ("domain", "subtopic", "dialogue_type")
KEY_SEPARATOR = "/"


@dataclass
class StratumReport:
    key: tuple
    available: int
    weight: float
    target: float  # ideal share of n before capacity limits
    achieved: int

    @property
    def name(self) -> str:
        return KEY_SEPARATOR.join(map(str, self.key))

    @property
    def shortfall(self) -> float:
        """Rows this stratum should have given but did not have (> 0 means redistributed)."""
        return max(0.0, self.target - self.achieved) if self.achieved == self.available else 0.0


@dataclass
class SubsetReport:
    """Achieved versus target distribution of a stratified subset."""

    n: int
    by: tuple
    seed: int
    total_rows: int
    strata: list = field(default_factory=list)  # StratumReport, sorted by key
    notes: list = field(default_factory=list)

    @property
    def redistributed(self) -> bool:
        return any(s.shortfall > 0 for s in self.strata)

    def to_dict(self) -> dict:
        return {
            "n": self.n, "by": list(self.by), "seed": self.seed, "total_rows": self.total_rows,
            "strata": [{"stratum": s.name, "key": list(s.key), "available": s.available, "weight": s.weight,
                        "target": round(s.target, 3), "achieved": s.achieved,
                        "target_share": round(s.target / self.n, 6) if self.n else None,
                        "achieved_share": round(s.achieved / self.n, 6) if self.n else None,
                        "shortfall": round(s.shortfall, 3)} for s in self.strata],
            "redistributed": self.redistributed,
            "notes": list(self.notes),
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [f"Stratified by {', '.join(f'`{b}`' for b in self.by)} with seed {self.seed}: "
                 f"{self.n} of {self.total_rows} rows.", "",
                 "| stratum | available | target | achieved | target share | achieved share |",
                 "|---|---|---|---|---|---|"]
        for s in self.strata:
            lines.append(f"| {s.name} | {s.available} | {s.target:.1f} | {s.achieved} | "
                         f"{100 * s.target / self.n:.2f}% | {100 * s.achieved / self.n:.2f}% |")
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        width = max([len(s.name) for s in self.strata] + [7])
        lines = [f"{self.n} of {self.total_rows} rows, stratified by {','.join(self.by)}, seed {self.seed}",
                 f"{'stratum':<{width}}  available   target  achieved"]
        for s in self.strata:
            lines.append(f"{s.name:<{width}}  {s.available:>9}  {s.target:>7.1f}  {s.achieved:>8}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class Subset:
    """The result of :func:`stratified_subset`.

    ``indices``: positions of the chosen rows in the source (sorted); ``order``: the same rows in
    the order they were chosen (its first ``k`` rows are the subset of size ``k``); ``dataset``:
    the chosen rows when the source was a ``datasets.Dataset`` or ``pyarrow.Table``.
    """

    indices: np.ndarray
    order: np.ndarray
    report: SubsetReport
    dataset: Any = None

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class _Labels:
    keys: list  # per row: tuple of strata values
    ids: list  # per row: id (or None)


def _normalise_by(by) -> tuple:
    if isinstance(by, str):
        by = [b.strip() for b in by.split(",") if b.strip()]
    by = tuple(by)
    if not by:
        raise ValueError("by must name at least one column, e.g. ('domain', 'dialogue_type')")
    return by


def _decode(col: pa.Array, names: Optional[list]) -> list:
    values = col.to_pylist()
    if names is not None and pa.types.is_integer(col.type):
        return [names[v] if v is not None and 0 <= v < len(names) else UNLABELLED for v in values]
    return [UNLABELLED if v is None else v for v in values]


def _class_names_from_schema(schema: pa.Schema) -> dict:
    raw = (schema.metadata or {}).get(b"huggingface")
    out = {}
    if raw:
        try:
            feats = json.loads(raw)["info"]["features"]
        except (ValueError, KeyError, TypeError):
            return out
        for col, spec in feats.items():
            if isinstance(spec, dict) and spec.get("_type") == "ClassLabel":
                out[col] = list(spec.get("names") or [])
    return out


def shard_paths(path) -> list:
    """The parquet files of a Hub folder (in the order every reader of this package uses) or one file."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    shards = sorted(path.glob("*/*.parquet")) or sorted(path.glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"no parquet shards under {path}")
    return shards


def _read_labels(data, by: tuple) -> _Labels:
    cols = list(dict.fromkeys(list(by) + ["id"]))
    if isinstance(data, (str, Path)):
        import pyarrow.parquet as pq

        keys: list = []
        ids: list = []
        for shard in shard_paths(data):
            schema = pq.read_schema(shard)
            missing = [b for b in by if b not in schema.names]
            if missing:
                raise ValueError(f"{shard} has no column(s) {missing}; columns: {schema.names}")
            names = _class_names_from_schema(schema)
            t = pq.read_table(shard, columns=[c for c in cols if c in schema.names])
            values = [_decode(t.column(b).combine_chunks(), names.get(b)) for b in by]
            keys.extend(zip(*values))
            ids.extend(t.column("id").to_pylist() if "id" in t.column_names else [None] * t.num_rows)
        return _Labels(keys, ids)
    if isinstance(data, pa.Table):
        names = _class_names_from_schema(data.schema)
        missing = [b for b in by if b not in data.column_names]
        if missing:
            raise ValueError(f"the table has no column(s) {missing}")
        values = [_decode(data.column(b).combine_chunks(), names.get(b)) for b in by]
        ids = data.column("id").to_pylist() if "id" in data.column_names else [None] * data.num_rows
        return _Labels(list(zip(*values)), ids)
    import datasets

    if isinstance(data, datasets.Dataset):
        missing = [b for b in by if b not in data.column_names]
        if missing:
            raise ValueError(f"the dataset has no column(s) {missing}; columns: {data.column_names}")
        t = data.select_columns([c for c in cols if c in data.column_names]).with_format("arrow")[:]
        values = []
        for b in by:
            feat = data.features[b]
            names = list(feat.names) if isinstance(feat, datasets.ClassLabel) else None
            values.append(_decode(t.column(b).combine_chunks(), names))
        ids = t.column("id").to_pylist() if "id" in t.column_names else [None] * len(t)
        return _Labels(list(zip(*values)), ids)
    raise TypeError(f"stratified_subset takes a Hub folder, a parquet file, a datasets.Dataset or a pyarrow.Table, "
                    f"not {type(data).__name__}")


def _priorities(ids: list, seed: int) -> np.ndarray:
    """A seeded 64-bit rank per row, from the row id (from the position where ids are missing)."""
    salt = f"mmcr-subset:{seed}:".encode()
    out = np.empty(len(ids), dtype=np.uint64)
    for i, rid in enumerate(ids):
        token = f"id:{rid}" if rid is not None else f"row:{i}"
        out[i] = int.from_bytes(hashlib.blake2b(salt + token.encode("utf-8"), digest_size=8).digest(), "big")
    return out


def _parse_ratios(ratios: Mapping, by: tuple, present: list) -> dict:
    """Map every present stratum key to its weight (0 when ``ratios`` leaves it out)."""
    weights: dict = {}
    for key, w in ratios.items():
        if isinstance(key, str):
            parts = tuple(key.split(KEY_SEPARATOR)) if len(by) > 1 else (key,)
        elif isinstance(key, tuple):
            parts = tuple(key)
        else:
            parts = (key,)
        if len(parts) != len(by):
            raise ValueError(f"ratio key {key!r} does not name one value per column of by={list(by)}")
        if not isinstance(w, (int, float)) or w < 0:
            raise ValueError(f"ratio for {key!r} must be a non-negative number, got {w!r}")
        weights[tuple(str(p) for p in parts)] = float(w)
    if not any(weights.values()):
        raise ValueError("ratios must give a positive weight to at least one stratum")
    return weights


def subset_order(data, *, by=("domain", "dialogue_type"), ratios: Optional[Mapping] = None, seed: int = 0,
                 limit: Optional[int] = None):
    """The seeded global order of rows (see the module docstring); returns (order, labels, strata info).

    Only the first ``limit`` rows of the order are computed when ``limit`` is given.
    """
    by = _normalise_by(by)
    labels = _read_labels(data, by)
    total = len(labels.keys)
    str_keys = [tuple(str(v) for v in k) for k in labels.keys]
    present = sorted(set(str_keys))
    index_of = {k: i for i, k in enumerate(present)}
    codes = np.fromiter((index_of[k] for k in str_keys), dtype=np.int64, count=total)
    prio = _priorities(labels.ids, seed)
    ranked = np.lexsort((np.arange(total), prio, codes))  # by stratum, then priority, then position
    counts = np.bincount(codes, minlength=len(present))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    if ratios is None:
        weights = {k: 1.0 for k in present}
        extra_keys: list = []
    else:
        parsed = _parse_ratios(ratios, by, present)
        weights = {k: parsed.get(k, 0.0) for k in present}
        extra_keys = sorted(k for k, w in parsed.items() if k not in index_of and w > 0)
    w = np.array([weights[k] for k in present], dtype=float)
    limit = total if limit is None else min(limit, total)
    taken = np.zeros(len(present), dtype=np.int64)
    # ties between strata (equal quotients) are broken by a seeded hash of the stratum, not by name
    salt = f"mmcr-strata:{seed}:".encode()
    tie = [hashlib.blake2b(salt + KEY_SEPARATOR.join(k).encode("utf-8"), digest_size=8).digest() for k in present]
    heap = [(-w[s], tie[s], s) for s in range(len(present)) if w[s] > 0 and counts[s] > 0]
    heapq.heapify(heap)
    order = np.empty(limit, dtype=np.int64)
    for i in range(limit):
        if not heap:
            order = order[:i]
            break
        _, _, s = heapq.heappop(heap)
        order[i] = ranked[starts[s] + taken[s]]
        taken[s] += 1
        if taken[s] < counts[s]:
            heapq.heappush(heap, (-w[s] / (2 * taken[s] + 1), tie[s], s))
    info = {"present": present, "counts": counts, "weights": w, "extra_keys": extra_keys, "codes": codes,
            "by": by, "total": total}
    return order, labels, info


def _report(n: int, seed: int, info: dict, chosen_codes: np.ndarray, ratios) -> SubsetReport:
    present, counts, w = info["present"], info["counts"], info["weights"]
    achieved = np.bincount(chosen_codes, minlength=len(present))
    # Ideal targets: n split by weight, including weighted strata absent from the data.
    extra = info["extra_keys"]
    parsed_extra = _parse_ratios(ratios, info["by"], present) if extra else {}
    wsum = float(w.sum()) + sum(parsed_extra[k] for k in extra)
    report = SubsetReport(n=n, by=info["by"], seed=seed, total_rows=info["total"])
    for s, key in enumerate(present):
        target = n * w[s] / wsum if wsum else 0.0
        report.strata.append(StratumReport(key, int(counts[s]), float(w[s]), target, int(achieved[s])))
    for key in extra:
        report.strata.append(StratumReport(key, 0, parsed_extra[key], n * parsed_extra[key] / wsum, 0))
    report.strata.sort(key=lambda s: s.key)
    moved = 0.0
    for s in report.strata:
        if s.shortfall > 0.5:
            moved += s.shortfall
            why = "is absent from the data" if s.available == 0 else f"has only {s.available} row(s)"
            report.notes.append(f"stratum {s.name} {why} for a target of {s.target:.1f}; all of them are taken "
                                f"and the remaining {s.shortfall:.1f} seat(s) went to the other strata by weight")
    zero = [s.name for s in report.strata if s.weight == 0 and s.available]
    if zero:
        report.notes.append(f"{len(zero)} stratum/strata present in the data have no ratio and are left out: "
                            + ", ".join(zero[:10]) + (" ..." if len(zero) > 10 else ""))
    unl = [s.name for s in report.strata if UNLABELLED in s.key and s.achieved]
    if unl:
        report.notes.append(f"rows without a label form their own stratum: {', '.join(unl)}")
    if moved:
        report.notes.append(f"in all {moved:.1f} seat(s) were redistributed")
    return report


def stratified_subset(dataset, n: int, by=("domain", "dialogue_type"), ratios: Optional[Mapping] = None,
                      seed: int = 0) -> Subset:
    """Choose ``n`` rows balanced over the strata of ``by``.

    ``dataset``: a Hub folder or parquet file (only the label and id columns are read), a
    ``datasets.Dataset`` or a ``pyarrow.Table``. By default every stratum present in the data gets
    the same share; ``ratios`` maps a stratum (a tuple of values, or ``"Science/single_image"``)
    to a weight, and strata it leaves out are excluded. When a stratum has fewer rows than its
    share, all of them are taken and the rest of its share is redistributed (see the report).
    The same ``seed`` gives the same rows, and nested subsets: the rows of a smaller ``n`` are
    among those of a larger one. Raises ``ValueError`` when ``n`` exceeds the rows that can be
    drawn.
    """
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    order, labels, info = subset_order(dataset, by=by, ratios=ratios, seed=seed, limit=int(n))
    if len(order) < n:
        eligible = int(sum(c for c, wt in zip(info["counts"], info["weights"]) if wt > 0))
        raise ValueError(f"cannot draw {n} rows: the data has {info['total']} row(s), {eligible} of them in strata "
                         f"with a positive weight; ask for at most {eligible}")
    report = _report(int(n), seed, info, info["codes"][order], ratios)
    indices = np.sort(order)
    subset = Subset(indices=indices, order=order, report=report)
    if isinstance(dataset, pa.Table):
        subset.dataset = dataset.take(pa.array(indices))
    elif not isinstance(dataset, (str, Path)):
        subset.dataset = dataset.select(indices.tolist())
    return subset


def nested_subsets(dataset, sizes: Sequence[int], by=("domain", "dialogue_type"), ratios: Optional[Mapping] = None,
                   seed: int = 0) -> dict:
    """Subsets of several sizes from one ranking; each is contained in every larger one."""
    sizes = sorted(set(int(s) for s in sizes))
    if not sizes:
        return {}
    order, labels, info = subset_order(dataset, by=by, ratios=ratios, seed=seed, limit=sizes[-1])
    if len(order) < sizes[-1]:
        raise ValueError(f"cannot draw {sizes[-1]} rows; at most {len(order)} can be drawn")
    out = {}
    for n in sizes:
        part = order[:n]
        subset = Subset(indices=np.sort(part), order=part, report=_report(n, seed, info, info["codes"][part], ratios))
        if isinstance(dataset, pa.Table):
            subset.dataset = dataset.take(pa.array(subset.indices))
        elif not isinstance(dataset, (str, Path)):
            subset.dataset = dataset.select(subset.indices.tolist())
        out[n] = subset
    return out


# -- writing a subset as a Hub folder ---------------------------------------------------------------
def iter_subset_rows(source, indices: np.ndarray, *, label_names: bool = True):
    """Rows of ``source`` (Hub folder or parquet file) at sorted global ``indices``, images undecoded.

    Only the row groups that hold a chosen row are read. With ``label_names`` the ClassLabel ids
    become names, so the rows can be re-encoded with any taxonomy that has those names.
    """
    import pyarrow.parquet as pq

    indices = np.asarray(indices, dtype=np.int64)
    base = 0
    for shard in shard_paths(source):
        pf = pq.ParquetFile(shard)
        names = _class_names_from_schema(pf.schema_arrow) if label_names else {}
        n_rows = pf.metadata.num_rows
        lo, hi = np.searchsorted(indices, [base, base + n_rows])
        local = indices[lo:hi] - base
        g_start = 0
        for g in range(pf.num_row_groups):
            g_rows = pf.metadata.row_group(g).num_rows
            a, b = np.searchsorted(local, [g_start, g_start + g_rows])
            if b > a:
                t = pf.read_row_group(g).take(pa.array(local[a:b] - g_start))
                for row in t.to_pylist():
                    for col, col_names in names.items():
                        v = row.get(col)
                        if isinstance(v, int):
                            row[col] = col_names[v] if 0 <= v < len(col_names) else None
                    yield row
            g_start += g_rows
        base += n_rows


def write_subset(source, subset: Subset, out, *, name: Optional[str] = None, taxonomy=None,
                 overwrite: bool = False, card_options: Optional[dict] = None) -> dict:
    """Write the rows of ``subset`` as a Hub-layout folder at ``out`` with its own card.

    ``source`` is what the subset was drawn from (Hub folder, parquet file or ``datasets.Dataset``).
    The card shows the subset report beside the usual statistics. Returns rows per config folder.
    """
    from .export import export_rows

    if isinstance(source, (str, Path)):
        from .hub import folder_name

        name = name or folder_name(source)
        rows = iter_subset_rows(source, subset.indices)
    else:
        rows = _dataset_rows(subset.dataset if subset.dataset is not None else source.select(subset.indices.tolist()))
        name = name or "310k"
    options = {"subset_report": subset.report} | dict(card_options or {})
    return export_rows(rows, out, name=name, taxonomy=taxonomy, overwrite=overwrite, card_options=options)


def _dataset_rows(ds):
    import datasets

    if isinstance(ds, pa.Table):
        names = _class_names_from_schema(ds.schema)
        for row in ds.to_pylist():
            for col, col_names in names.items():
                if isinstance(row.get(col), int):
                    row[col] = col_names[row[col]] if 0 <= row[col] < len(col_names) else None
            yield row
        return
    if "images" in ds.column_names:
        ds = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
    label_cols = {c: list(f.names) for c, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    for row in ds:
        for col, col_names in label_cols.items():
            v = row.get(col)
            if isinstance(v, int):
                row[col] = col_names[v] if 0 <= v < len(col_names) else None
        yield row
