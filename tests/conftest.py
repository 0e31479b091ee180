"""Shared test setup: offline, caches in a temp dir, factories for tiny real data."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

# Offline and isolated before anything imports datasets / huggingface_hub.
_CACHE = Path(os.environ.get("MMCR_TEST_CACHE") or (Path(__file__).resolve().parent / ".." / ".pytest_cache" / "hf"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", str(_CACHE.resolve()))
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from factories import make_jpeg, make_png, write_json  # noqa: E402

SAMPLE = REPO / "mmcr_datasets" / "sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The bundled sample built once per session with the real CLI: DIR/mmcr/310k and DIR/mmcr/bench."""
    from mmcr_datasets.cli import main

    out = tmp_path_factory.mktemp("demo")
    assert main(["-q", "demo", "--out", str(out)]) == 0
    return out


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """A fresh datasets cache for tests that must not reuse prepared data."""
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    return cache


@pytest.fixture
def images(tmp_path) -> Path:
    """An image root with a few real JPEG/PNG files."""
    root = tmp_path / "images"
    root.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        (root / name).write_bytes(make_jpeg(seed=hash(name) % 1000))
    (root / "e.png").write_bytes(make_png())
    return root
