"""Training and evaluation data from a :class:`~mmcr_datasets.train.config.DataSettings`.

* Each source is read with ``datasets.load_dataset`` (a Hub id or a Hub-layout folder) or, for a
  raw release folder (``data_dir``), with :func:`mmcr_datasets.load`.
* Several sources are mixed with ``datasets.interleave_datasets`` in proportion to their weights
  (sampling with the configured seed, until every source has been seen once: ``all_exhausted``).
* ``subset_size`` cuts a balanced subset with :func:`mmcr_datasets.sampling.stratified_subset`.
* A held-out evaluation set comes from ``eval`` sources or is split off the training data.
* Streaming: each source is divided between processes with
  ``datasets.distributed.split_dataset_by_node`` *before* mixing, so each process reads its own
  shards (when a source has fewer shards than processes, ``datasets`` falls back to giving each
  process every ``world_size``-th row, which still keeps the data disjoint).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import MMCRError
from .config import DataSettings, DataSource

logger = logging.getLogger(__name__)

__all__ = ["TrainData", "load_source", "build_datasets", "KEEP_COLUMNS"]

#: columns the collator needs (the rest are dropped before mixing so schemas line up)
KEEP_COLUMNS = ("id", "messages", "images", "domain", "dialogue_type")


@dataclass
class TrainData:
    """The datasets a run uses. ``split_by_node``: the train set is already divided per process."""

    train: Any
    eval: Any = None
    split_by_node: bool = False
    notes: tuple = ()


def load_source(src: DataSource, *, streaming: bool):
    """One source as a ``datasets.Dataset`` (or ``IterableDataset`` when streaming)."""
    import datasets

    if src.data_dir:
        from ..hub import load

        return load(src.path or "mmcr/310k", src.config, split=src.split, data_dir=src.data_dir, streaming=streaming,
                    format=src.format, image_root=src.image_root)
    try:
        return datasets.load_dataset(src.path, src.config, split=src.split, streaming=streaming)
    except (FileNotFoundError, ValueError) as exc:
        raise MMCRError(f"cannot load training data {src.path!r} (config={src.config!r}, split={src.split!r}): "
                        f"{exc}") from exc


def _trim(ds):
    cols = getattr(ds, "column_names", None)
    if cols:
        drop = [c for c in cols if c not in KEEP_COLUMNS]
        if drop:
            ds = ds.remove_columns(drop)
    return ds


def _in_fraction(row_id, fraction: float, seed: int) -> bool:
    """A stable pseudo-random choice of about ``fraction`` of all ids (independent of order and shards)."""
    digest = hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2 ** 64


def _take_eval(ds, settings: DataSettings, streaming: bool):
    """Split ``ds`` into (train, eval) by ``eval_size``/``eval_fraction``; (ds, None) when neither is set.

    Streams are split by ``id``, not by position, so the held-out rows stay out of training on
    every process however the shards are later divided: ``eval_size`` takes the first rows of the
    stream and filters their ids out of the training stream; ``eval_fraction`` keeps the rows whose
    seeded id hash falls below the fraction.
    """
    size, frac = settings.eval_size, settings.eval_fraction
    if not size and not frac:
        return ds, None
    if streaming:
        if size:
            held = {r["id"] for r in ds.select_columns(["id"]).take(size)}
            return ds.filter(lambda r: r["id"] not in held), ds.filter(lambda r: r["id"] in held)
        seed = settings.seed
        return (ds.filter(lambda r: not _in_fraction(r["id"], frac, seed)),
                ds.filter(lambda r: _in_fraction(r["id"], frac, seed)))
    n = len(ds)
    k = size if size else max(1, int(round(n * frac)))
    if k >= n:
        raise MMCRError(f"cannot hold out {k} of {n} training rows for evaluation")
    parts = ds.train_test_split(test_size=k, seed=settings.seed, shuffle=True)
    return parts["train"], parts["test"]


def _balanced(ds, settings: DataSettings):
    try:
        from ..sampling import stratified_subset
    except ImportError as exc:  # pragma: no cover - sampling ships with the core
        raise MMCRError(f"data.subset_size needs mmcr_datasets.sampling: {exc}") from exc
    subset = stratified_subset(ds, settings.subset_size, by=tuple(settings.subset_by), seed=settings.seed)
    logger.info("balanced subset: %d of %d rows over %s", len(subset), len(ds), "/".join(settings.subset_by))
    return subset.dataset, subset.report


def build_datasets(settings: DataSettings, *, rank: int = 0, world_size: int = 1) -> TrainData:
    """Load, balance, split and mix the configured data for process ``rank`` of ``world_size``."""
    import datasets

    streaming = settings.streaming
    notes = []
    sources = [_trim(load_source(s, streaming=streaming)) for s in settings.train]
    weights = [float(s.weight) for s in settings.train]

    eval_ds = None
    if settings.eval:
        evals = [_trim(load_source(s, streaming=False)) for s in settings.eval]
        eval_ds = evals[0] if len(evals) == 1 else datasets.concatenate_datasets(evals)
    elif settings.eval_size or settings.eval_fraction:
        # hold out of the first source, before any subset or mixing, so eval rows never train
        sources[0], eval_ds = _take_eval(sources[0], settings, streaming)

    if settings.subset_size:
        base = sources[0] if len(sources) == 1 else datasets.concatenate_datasets(sources)
        balanced, report = _balanced(base, settings)
        notes.append(report.to_text() if hasattr(report, "to_text") else str(report))
        sources, weights = [balanced], [1.0]

    split = False
    if streaming:
        from datasets.distributed import split_dataset_by_node

        if world_size > 1:
            sources = [split_dataset_by_node(s, rank=rank, world_size=world_size) for s in sources]
            split = True
        if settings.shuffle_buffer:
            sources = [s.shuffle(seed=settings.seed, buffer_size=settings.shuffle_buffer) for s in sources]

    if len(sources) == 1:
        train = sources[0]
    else:
        total = sum(weights)
        train = datasets.interleave_datasets(sources, probabilities=[w / total for w in weights], seed=settings.seed,
                                             stopping_strategy="all_exhausted")
        notes.append("mixture: " + ", ".join(f"{s.path} {w / total:.2f}" for s, w in zip(settings.train, weights)))
    return TrainData(train=train, eval=eval_ds, split_by_node=split, notes=tuple(notes))
