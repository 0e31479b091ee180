"""Fixtures for the eval tests: the bench sample as a Hub folder, loopback servers, a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "mmcr_datasets" / "sample"



@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory) -> Path:
    """The bundled bench sample built into a Hub-layout folder (what ``load_dataset`` reads)."""
    from mmcr_datasets.export import build_hub_folder

    out = tmp_path_factory.mktemp("mmcr") / "bench"
    build_hub_folder(SAMPLE / "bench" / "test.json", out, name="bench", image_root=SAMPLE / "images")
    return out


@pytest.fixture
def fast_retry():
    """Tiny backoff and timeouts so retried faults cost milliseconds."""
    from mmcr_datasets.eval.client import RetryPolicy

    return RetryPolicy(max_retries=4, timeout=0.25, backoff_base=0.005, backoff_max=0.02, max_retry_after=0.05)


@pytest.fixture
def judge_server():
    from mmcr_datasets.testing.openai_server import OpenAIServer, judge_reply

    with OpenAIServer(reply=judge_reply) as server:
        yield server


@pytest.fixture
def model_server():
    from mmcr_datasets.testing.openai_server import OpenAIServer, echo_reply

    with OpenAIServer(reply=echo_reply) as server:
        yield server


def _own_tiny_qwen2_vl():
    """A randomly initialised Qwen2-VL (hidden 64, 2 layers) on the shared tiny processor."""
    import torch
    import transformers

    from mmcr_datasets.testing.tiny_models import tiny_processor

    processor = tiny_processor("qwen2_vl")
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in
           ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|endoftext|>", "<|im_end|>")}
    config = transformers.Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, bos_token_id=None,
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    model = transformers.Qwen2VLForConditionalGeneration(config).eval()
    return model, processor


@pytest.fixture(scope="session")
def tiny_qwen2_vl():
    """(model, processor): the shared tiny model when ``tiny_models`` provides one, else our own."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mmcr_datasets.testing import tiny_models

    if hasattr(tiny_models, "tiny_model"):
        return tiny_models.tiny_model("qwen2_vl"), tiny_models.tiny_processor("qwen2_vl")
    return _own_tiny_qwen2_vl()
