"""Fixtures for the generation pipeline tests: test documents, a loopback LLM, a tiny CLIP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_helpers import DOCS, flaw_rule  # noqa: E402


@pytest.fixture
def docs_path() -> Path:
    return DOCS


@pytest.fixture
def llm_server():
    """A loopback OpenAI-compatible server answering generation requests (with the flaws in gen_helpers)."""
    for module in ("openai", "fastapi", "uvicorn"):
        pytest.importorskip(module)
    from mmcr_datasets.generate.fake_llm import flawed_by
    from mmcr_datasets.testing.openai_server import OpenAIServer

    with OpenAIServer(reply=flawed_by(flaw_rule)) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mmcr_datasets.testing.tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))
