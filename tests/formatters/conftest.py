"""Fixtures for the formatter, label and export tests (offline; no Hub access)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fmt_helpers import edge_rows, sample_rows  # noqa: E402


@pytest.fixture(scope="session")
def rows():
    return sample_rows()


@pytest.fixture(scope="session")
def edges():
    return edge_rows()


@pytest.fixture(scope="session")
def renderer():
    """The reference templates rendered like transformers; skips when ../shared is absent."""
    pytest.importorskip("jinja2")
    from mmcr_datasets.testing.reference_templates import ReferenceRenderer, reference_dir

    if reference_dir() is None:
        pytest.skip("reference chat templates (../shared/reference/chat_templates) are not available")
    return ReferenceRenderer()
