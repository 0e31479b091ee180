"""Write the Hub layout: size-bounded parquet shards with HF features metadata, plus the card.

Writes are atomic: everything goes into a hidden temporary folder beside the target, and only a
complete folder (shards renamed to their final ``-of-NNNNN`` names and README written last) is
renamed into place. An interrupted export leaves at most a ``.<name>.tmp-*`` folder that no
loader treats as a dataset.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ExportError, InvalidRecordError
from .ingest import CheckedRecord, IngestOptions, find_duplicate_positions, iter_checked, to_arrow_row
from .taxonomy import Taxonomy

logger = logging.getLogger(__name__)

DEFAULT_MAX_SHARD_BYTES = 256 << 20
ROW_GROUP_BYTES = 32 << 20
ROW_GROUP_ROWS = 1000
ON_INVALID = ("raise", "warn", "skip")


def config_dir(name: str, dialogue_type_id: int) -> str:
    """Folder of a row in the Hub layout: bench rows go to ``data/``, 310k rows by dialogue type."""
    if name == "bench":
        return "data"
    return ("single_image", "multi_image")[dialogue_type_id]


def split_name(name: str) -> str:
    return "test" if name == "bench" else "train"


def _row_nbytes(row: dict) -> int:
    n = 256
    for img in row["images"]:
        n += len(img["bytes"] or b"")
    for m in row["messages"]:
        for p in m["content"]:
            n += len(p["text"] or "") + 16
    return n


class ShardWriter:
    """Rows of one config folder -> parquet files of at most ``max_shard_bytes`` (approximately)."""

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema, max_shard_bytes: int):
        self.folder, self.prefix, self.schema = folder, prefix, schema
        self.max_shard_bytes = max_shard_bytes
        self.files: list[Path] = []
        self.rows_per_file: list[int] = []
        self._writer: Optional[pq.ParquetWriter] = None
        self._pending: list[dict] = []
        self._pending_bytes = 0
        self._file_bytes = 0

    def add(self, row: dict) -> None:
        nbytes = _row_nbytes(row)
        if (self._file_bytes or self._pending) and \
                self._file_bytes + self._pending_bytes + nbytes > self.max_shard_bytes:
            self._flush()
            self._close_file()
        self._pending.append(row)
        self._pending_bytes += nbytes
        if len(self._pending) >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.prefix}-{len(self.files):05d}.parquet.partial"
            self._writer = pq.ParquetWriter(path, self.schema, compression="snappy", write_page_index=False)
            self.files.append(path)
            self.rows_per_file.append(0)
            self._file_bytes = 0
        table = pa.Table.from_pylist(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=len(self._pending))
        self.rows_per_file[-1] += len(self._pending)
        self._file_bytes += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._file_bytes = 0

    def close(self) -> None:
        self._flush()
        self._close_file()


@dataclass
class BlockResult:
    """What one process wrote: shard files per config folder, counts, rejects file."""

    files: dict = field(default_factory=dict)  # folder -> [partial paths]
    rows: dict = field(default_factory=dict)  # folder -> row count
    num_read: int = 0
    num_rejected: int = 0
    num_warnings: int = 0
    rejects_file: Optional[str] = None
    first_error: Optional[InvalidRecordError] = None
    codes: dict = field(default_factory=dict)


@dataclass
class BuildResult:
    out: Path
    name: str
    num_read: int
    num_written: int
    num_rejected: int
    rows: dict
    rejects_path: Optional[Path]
    codes: dict
    seconds: float

    def summary(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.rows.items()))
        text = (f"mmcr/{self.name}: {self.num_written} of {self.num_read} record(s) written to {self.out} ({parts})")
        if self.num_rejected:
            text += f"; {self.num_rejected} rejected -> {self.rejects_path}"
            text += " [" + ", ".join(f"{c}x{n}" for c, n in sorted(self.codes.items())) + "]"
        return text


def _write_block(tmp_root: Path, tag: str, checked_iter: Iterable[CheckedRecord], *, name: str, schema: pa.Schema,
                 taxonomy: Taxonomy, on_invalid: str, max_shard_bytes: int) -> BlockResult:
    result = BlockResult()
    writers: dict[str, ShardWriter] = {}
    rejects_path = tmp_root / f".rejects-{tag}.jsonl"
    rejects_fh = None
    try:
        for checked in checked_iter:
            result.num_read += 1
            for issue in checked.issues:
                result.codes[issue.code] = result.codes.get(issue.code, 0) + 1
            if not checked.ok:
                if on_invalid == "raise":
                    result.first_error = InvalidRecordError([i for i in checked.issues])
                    break
                if on_invalid == "warn":
                    logger.warning("rejected %s", "; ".join(i.format() for i in checked.issues if i.severity == "error"))
                if rejects_fh is None:
                    rejects_fh = open(rejects_path, "w", encoding="utf-8")
                rejects_fh.write(json.dumps(checked.reject_entry(), ensure_ascii=False, default=str) + "\n")
                result.num_rejected += 1
                continue
            if checked.issues:
                result.num_warnings += len(checked.issues)
            row = to_arrow_row(checked, taxonomy)
            folder = config_dir(name, row["dialogue_type"])
            if folder not in writers:
                writers[folder] = ShardWriter(tmp_root / folder, f"part-{tag}", schema, max_shard_bytes)
            writers[folder].add(row)
    finally:
        for w in writers.values():
            w.close()
        if rejects_fh is not None:
            rejects_fh.close()
            result.rejects_file = str(rejects_path)
    for folder, w in writers.items():
        result.files[folder] = [str(p) for p in w.files]
        result.rows[folder] = sum(w.rows_per_file)
    return result


def _worker(args) -> BlockResult:
    (inputs, fmt, opts, start, end, dupes, tmp_root, tag, name, schema, on_invalid, max_shard_bytes) = args
    checked = iter_checked(inputs, fmt, opts, select=lambda pos: start <= pos < end, duplicate_positions=dupes)
    return _write_block(Path(tmp_root), tag, checked, name=name, schema=schema, taxonomy=opts.taxonomy,
                        on_invalid=on_invalid, max_shard_bytes=max_shard_bytes)


def _tmp_folder(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the final folder gets normal permissions
    return tmp


def build_hub_folder(
    inputs,
    out,
    *,
    name: str = "310k",
    format: Optional[str] = None,
    image_root=None,
    taxonomy=None,
    profile=None,
    limits=None,
    on_invalid: str = "raise",
    rejects=None,
    num_proc: int = 1,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    overwrite: bool = False,
    card: bool = True,
    card_options: Optional[dict] = None,
) -> BuildResult:
    """Read raw MMCR data in any supported format and write a Hub-layout folder at ``out``.

    ``on_invalid``: ``raise`` stops at the first invalid record with an error naming it;
    ``warn`` and ``skip`` keep every valid record and write each invalid one, with its issues,
    to ``rejects`` (default ``<out>.rejects.jsonl``); ``warn`` also logs each one.
    """
    from .features import arrow_schema

    if name not in ("310k", "bench"):
        raise ValueError(f"name must be '310k' or 'bench', got {name!r}")
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    t0 = time.perf_counter()
    opts = IngestOptions.make(name=name, taxonomy=taxonomy, profile=profile, limits=limits, image_root=image_root)
    schema = arrow_schema(opts.taxonomy, name=name)
    tmp = _tmp_folder(out)
    try:
        if num_proc <= 1:
            blocks = [_write_block(tmp, "000", iter_checked(inputs, format, opts), name=name, schema=schema,
                                   taxonomy=opts.taxonomy, on_invalid=on_invalid, max_shard_bytes=max_shard_bytes)]
        else:
            blocks = _parallel_blocks(inputs, format, opts, tmp, name, schema, on_invalid, max_shard_bytes, num_proc)
        for block in blocks:
            if block.first_error is not None:
                raise block.first_error
        rows, files = _finalize_shards(tmp, name, blocks)
        result = BuildResult(out, name, sum(b.num_read for b in blocks), sum(rows.values()),
                             sum(b.num_rejected for b in blocks), rows, None, _merge_codes(blocks), 0.0)
        if result.num_written == 0:
            where = _finalize_rejects(blocks, out, rejects)  # the user needs them most in this case
            raise ExportError(
                f"no valid record to write ({result.num_read} read, {result.num_rejected} rejected); "
                "nothing was written" + (f"; see the rejects file {where}" if where else "")
            )
        if card:
            from .cards import write_card

            write_card(tmp, name, files=files, taxonomy=opts.taxonomy, **_card_defaults(card_options))
        result.rejects_path = _finalize_rejects(blocks, out, rejects)
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the per-block rejects files live in tmp and go with it
        raise
    result.seconds = time.perf_counter() - t0
    logger.debug(result.summary())
    return result


def _card_defaults(card_options: Optional[dict]) -> dict:
    """Cards written by a build leave out image statistics by default: they need every image
    read back, which would cost a large share of the build. ``mmcr card FOLDER`` adds them
    (``card_options={"image_stats": True}`` does it during the build)."""
    return {"image_stats": False, **(card_options or {})}


def _merge_codes(blocks) -> dict:
    codes: dict = {}
    for b in blocks:
        for c, n in b.codes.items():
            codes[c] = codes.get(c, 0) + n
    return codes


def _parallel_blocks(inputs, fmt, opts, tmp, name, schema, on_invalid, max_shard_bytes, num_proc):
    import multiprocessing as mp

    total, dupes = find_duplicate_positions(inputs, fmt)
    if total == 0:
        return []
    num_proc = min(num_proc, total)
    bounds = [round(i * total / num_proc) for i in range(num_proc + 1)]
    jobs = []
    for i in range(num_proc):
        start, end = bounds[i], bounds[i + 1]
        block_dupes = {p: s for p, s in dupes.items() if start <= p < end}
        jobs.append((inputs, fmt, opts, start, end, block_dupes, str(tmp), f"{i:03d}", name, schema, on_invalid,
                     max_shard_bytes))
    # The calling process takes the first block itself instead of waiting on num_proc workers:
    # one process less to start, and no idle parent.
    ctx = mp.get_context("spawn")
    with ctx.Pool(num_proc - 1) as pool:
        rest = pool.map_async(_worker, jobs[1:], chunksize=1)
        first = _worker(jobs[0])
        return [first] + rest.get()


def _finalize_shards(tmp: Path, name: str, blocks) -> tuple[dict, dict]:
    """Rename partial shards, in input order, to ``<split>-XXXXX-of-NNNNN.parquet``."""
    split = split_name(name)
    rows: dict = {}
    files: dict = {}
    folders = sorted({f for b in blocks for f in b.files})
    for folder in folders:
        partials = [Path(p) for b in blocks for p in b.files.get(folder, [])]
        n = len(partials)
        final = []
        for i, p in enumerate(partials):
            target = p.parent / f"{split}-{i:05d}-of-{n:05d}.parquet"
            os.replace(p, target)
            final.append(target)
        rows[folder] = sum(b.rows.get(folder, 0) for b in blocks)
        files[folder] = final
    return rows, files


def _finalize_rejects(blocks, out: Path, rejects) -> Optional[Path]:
    parts = [Path(b.rejects_file) for b in blocks if b.rejects_file]
    if not parts:
        return None
    target = Path(rejects) if rejects else out.parent / f"{out.name}.rejects.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_target = target.with_name(f".{target.name}.partial")
    with open(tmp_target, "wb") as dst:
        for p in parts:
            if p.exists():
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, dst)
                p.unlink()
    os.replace(tmp_target, target)
    return target


def _replace_folder(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def export_rows(rows: Iterable[dict], out, *, name: str = "310k", taxonomy=None, overwrite: bool = False,
                max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, card: bool = True,
                card_options: Optional[dict] = None) -> dict:
    """Write already-valid Arrow rows (``Dialogue.to_row(taxonomy)`` or dataset rows) as a Hub folder."""
    from .features import arrow_schema
    from .taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    schema = arrow_schema(tax, name=name)
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; pass overwrite=True to replace it")
    tmp = _tmp_folder(out)
    try:
        writers: dict[str, ShardWriter] = {}
        for row in rows:
            row = _normalise_row(row, tax)
            folder = config_dir(name, row["dialogue_type"])
            if folder not in writers:
                writers[folder] = ShardWriter(tmp / folder, "part-000", schema, max_shard_bytes)
            writers[folder].add(row)
        block = BlockResult()
        for folder, w in writers.items():
            w.close()
            block.files[folder] = [str(p) for p in w.files]
            block.rows[folder] = sum(w.rows_per_file)
        counts, files = _finalize_shards(tmp, name, [block])
        if not counts:
            raise ExportError("no rows to export")
        if card:
            from .cards import write_card

            write_card(tmp, name, files=files, taxonomy=tax, **_card_defaults(card_options))
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _normalise_row(row: dict, tax: Taxonomy) -> dict:
    """Accept rows with label names or ids, images as dicts/bytes/PIL; return an Arrow row."""
    from .records import DIALOGUE_TYPES, Dialogue

    if isinstance(row, Dialogue):
        d = row
    else:
        d = Dialogue.from_row(row, tax)
    out = d.to_row(tax)
    out["dialogue_type"] = DIALOGUE_TYPES.index(out["dialogue_type"])
    for img in out["images"]:
        if img["bytes"] is None:
            raise ExportError(f"record {d.id!r}: an image has no bytes; load images before exporting")
    return out
