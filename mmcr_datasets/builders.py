"""``datasets.GeneratorBasedBuilder`` subclasses that prepare MMCR from raw release files.

``datasets`` 4+ runs no loading scripts, so these builders are used by instantiating them
(:func:`mmcr_datasets.load` does it for a raw folder)::

    builder = MMCR310k(config_name="multi_image", data_dir="release/", image_root="release/images")
    builder.download_and_prepare(num_proc=4)
    ds = builder.as_dataset(split="train")

Every record goes through the same reading and checks as ``mmcr build``; images are embedded
as bytes. ``on_invalid``: ``raise`` (default) stops at the first invalid record; ``warn`` and
``skip`` keep every valid record and write the rejected ones to ``rejects`` (default: a
``rejects.jsonl`` beside the prepared cache).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import datasets

from .errors import InvalidRecordError
from .features import SCHEMA_VERSION, mmcr_features
from .ingest import IngestOptions, find_duplicate_positions, iter_checked, to_arrow_row
from .taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

_CITATION = "@article{yan2025mmcr, title={MMCR: Advancing Visual Language Model in Multimodal Multi-Turn Contextual Reasoning}, journal={arXiv preprint arXiv:2503.18533}, year={2025}}"


@dataclass
class MMCRConfig(datasets.BuilderConfig):
    """Where the raw data is and how to judge it."""

    format: Optional[str] = None  # llava | mmdu | sharegpt | messages; detected when None
    image_root: Optional[str] = None  # default: the folder of each input file
    taxonomy: Optional[str] = None  # path of a taxonomy file; None = packaged default
    on_invalid: str = "raise"
    rejects: Optional[str] = None
    dialogue_type: Optional[str] = None  # single_image | multi_image | None (all)
    shards_per_file: int = 8  # input files are divided into this many slices for num_proc


class _MMCRBuilder(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = MMCRConfig
    _NAME = "310k"
    _SPLIT = datasets.Split.TRAIN

    def _info(self):
        return datasets.DatasetInfo(
            description=f"MMCR-{self._NAME} prepared by mmcr-datasets (schema {SCHEMA_VERSION})",
            features=mmcr_features(self.config.taxonomy),
            citation=_CITATION,
            homepage="https://arxiv.org/abs/2503.18533",
        )

    def _inputs(self):
        if self.config.data_files:
            files = []
            for split_files in self.config.data_files.values():
                files.extend(str(f) for f in split_files)
            return sorted(set(files))
        if not self.config.data_dir:
            raise ValueError(f"{type(self).__name__} needs data_dir= (a raw file or folder) or data_files=")
        from .readers import list_input_files

        return [str(p) for p in list_input_files(self.config.data_dir)]

    def _split_generators(self, dl_manager):
        inputs = self._inputs()
        total, dupes = find_duplicate_positions(inputs, self.config.format)
        n = max(1, min(self.config.shards_per_file * len(inputs), total))
        bounds = [round(i * total / n) for i in range(n + 1)]
        slices = [(bounds[i], bounds[i + 1]) for i in range(n)]
        return [datasets.SplitGenerator(name=self._SPLIT, gen_kwargs={
            "slices": slices, "inputs": tuple(inputs), "duplicates": json.dumps({str(k): v for k, v in dupes.items()})})]

    def _generate_examples(self, slices, inputs, duplicates):
        cfg = self.config
        opts = IngestOptions.make(name=self._NAME, taxonomy=cfg.taxonomy, image_root=cfg.image_root)
        dupes = {int(k): v for k, v in json.loads(duplicates).items()}
        rejects = []
        for start, end in slices:
            checked_iter = iter_checked(list(inputs), cfg.format, opts, select=lambda p, s=start, e=end: s <= p < e,
                                        duplicate_positions={p: s for p, s in dupes.items() if start <= p < end})
            for checked in checked_iter:
                if not checked.ok:
                    if cfg.on_invalid == "raise":
                        raise InvalidRecordError(checked.issues)
                    if cfg.on_invalid == "warn":
                        logger.warning("rejected: %s", "; ".join(i.format() for i in checked.issues))
                    rejects.append(checked.reject_entry())
                    continue
                row = to_arrow_row(checked, opts.taxonomy)
                if cfg.dialogue_type and row["dialogue_type"] != ("single_image", "multi_image").index(cfg.dialogue_type):
                    continue
                yield checked.item.position, row
        if rejects:
            self._write_rejects(rejects, slices[0][0])

    def _write_rejects(self, rejects, tag) -> None:
        target = Path(self.config.rejects) if self.config.rejects else Path(self._cache_dir_root) / (
            f"mmcr_{self._NAME}_{self.config.name}.rejects.jsonl")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Slices may be prepared by several processes; each appends whole lines under a lock-free
        # O_APPEND write, so lines never interleave.
        with open(target, "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rejects))
        logger.warning("%d invalid record(s) skipped; see %s", len(rejects), target)


class MMCR310k(_MMCRBuilder):
    """MMCR-310k: configs ``all`` (default), ``single_image``, ``multi_image``; split ``train``."""

    _NAME = "310k"
    BUILDER_CONFIGS = [
        MMCRConfig(name="all", description="single- and multi-image dialogues"),
        MMCRConfig(name="single_image", description="one image, 4 turns", dialogue_type="single_image"),
        MMCRConfig(name="multi_image", description="2-4 images, 8 turns", dialogue_type="multi_image"),
    ]
    DEFAULT_CONFIG_NAME = "all"


class MMCRBench(_MMCRBuilder):
    """MMCR-Bench: one config, split ``test``; every record must carry domain and sub-topic."""

    _NAME = "bench"
    _SPLIT = datasets.Split.TEST
    BUILDER_CONFIGS = [MMCRConfig(name="default", description="the benchmark")]
    DEFAULT_CONFIG_NAME = "default"


def builder_for(name: str, *, config: Optional[str] = None, data_dir=None, format=None, image_root=None,
                taxonomy=None, on_invalid: str = "raise", cache_dir=None, rejects=None) -> _MMCRBuilder:
    cls = MMCRBench if name == "bench" else MMCR310k
    tax = None if taxonomy is None else str(taxonomy)
    load_taxonomy(tax)  # fail early on a bad taxonomy file
    return cls(config_name=config or cls.DEFAULT_CONFIG_NAME, data_dir=str(data_dir) if data_dir else None,
               format=format, image_root=str(image_root) if image_root else None, taxonomy=tax,
               on_invalid=on_invalid, cache_dir=cache_dir, rejects=rejects)
