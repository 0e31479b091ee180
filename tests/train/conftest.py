"""Fixtures for the [train] tests: the bundled sample as rows, tiny model folders, torch threads.

Everything is offline and CPU-only; tiny models (hidden 64, 2 layers) keep a training run to a few
seconds. Tests that need the extra skip cleanly when it is not installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _needs_train_extra():
    for mod in ("torch", "transformers", "peft", "trl", "accelerate"):
        pytest.importorskip(mod)


@pytest.fixture(scope="session")
def train_extra():
    _needs_train_extra()
    import torch

    # one thread: tiny models gain nothing from more, and on a loaded 2-core machine two OpenMP
    # threads spin against each other (measured: 48 s instead of 4 s for the same run)
    torch.set_num_threads(1)
    return True


@pytest.fixture(scope="session")
def sample_rows(demo_dir):
    """The bundled 310k sample as decoded dataset rows (images are PIL images)."""
    import datasets

    ds = datasets.load_dataset(str(demo_dir / "mmcr" / "310k"), split="train")
    return [ds[i] for i in range(len(ds))]


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, train_extra):
    """A saved tiny model folder per family (model + tokenizer + marker), built once."""
    from mmcr_datasets.train.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("tiny_models")
    return {fam: save_tiny_model(fam, root / fam) for fam in ("qwen2_vl", "llava", "idefics3")}
