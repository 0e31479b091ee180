"""Supervised fine-tuning of vision-language models on MMCR data (the ``[train]`` extra).

>>> from mmcr_datasets.train import load_config, train
>>> result = train(load_config("train.yaml"))          # or: mmcr train --config train.yaml

Pieces, usable on their own:

* :class:`~mmcr_datasets.train.collator.MMCRCollator` -- rows -> model inputs with assistant-only
  labels, for the transformers ``Trainer`` or TRL's ``SFTTrainer``;
* :class:`~mmcr_datasets.train.config.TrainConfig` / :func:`load_config` -- the YAML configuration;
* :func:`~mmcr_datasets.train.data.build_datasets` -- sources, mixture, balanced subset, held-out
  split, per-process streams;
* :func:`~mmcr_datasets.train.trainer.load_finetuned` / :func:`generate_reply` -- use the result;
* :mod:`~mmcr_datasets.train.tiny` -- tiny random models for tests and examples.

Importing this package is light; torch and transformers load when a name that needs them is
used, and a missing extra raises :class:`~mmcr_datasets.errors.MissingExtraError` naming
``pip install 'mmcr-datasets[train]'``.
"""

from __future__ import annotations

_LAZY = {
    "MMCRCollator": "collator", "CollatorStats": "collator", "BatchTooLongError": "collator",
    "truncate_turns": "collator",
    "TrainConfig": "config", "ConfigError": "config", "load_config": "config", "DataSource": "config",
    "build_datasets": "data",
    "train": "trainer", "build_trainer": "trainer", "TrainResult": "trainer", "load_finetuned": "trainer",
    "generate_reply": "trainer",
    "load_model": "model", "load_processor": "model", "resolve_formatter": "model",
    "tiny_model": "tiny", "save_tiny_model": "tiny", "tiny_model_and_processor": "tiny",
}

__all__ = sorted(_LAZY)


from .._lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
