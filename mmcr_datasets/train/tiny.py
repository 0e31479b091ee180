"""Tiny randomly initialised VLMs that match the tiny offline processors, for tests and examples.

:mod:`mmcr_datasets.testing.tiny_models` builds the processors (tokenizer + PIL image processor);
this module adds the models: each family's own transformers architecture from a small config
(hidden size 64, two layers, a two-layer vision encoder) whose vision geometry agrees with the
processor, so placeholder expansion, pixel inputs and the loss are all real. Nothing is
downloaded; a model builds in well under a second on a CPU.

>>> model, processor = tiny_model_and_processor("qwen2_vl")
>>> save_tiny_model("llava", "out/tiny-llava")   # a folder ``mmcr train`` can use as ``model.name_or_path``
"""

from __future__ import annotations

from pathlib import Path

from ..errors import require

#: tiny families with a model builder, and the formatter of each
FORMATTERS = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_vl", "llava": "llava_v1", "idefics3": "idefics3",
              "smolvlm": "smolvlm"}

HIDDEN, LAYERS, HEADS, INTERMEDIATE = 64, 2, 4, 128
#: weight scale of the language model. Larger than the real models' 0.02 so that a LoRA adapter on a
#: width-64 model can move the logits far enough to learn within a few dozen steps: the logits are
#: bounded by |normed hidden| x |lm_head row| = 8 x (0.02 x 8) ~ 1.3 at 0.02, which caps the loss
#: near ln(vocab) when only adapters train.
INIT_RANGE = 0.1


def _text_kwargs(tok) -> dict:
    """Language-model settings shared by every family (a tiny Llama/Qwen2 decoder)."""
    return dict(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=2,
                max_position_embeddings=8192, pad_token_id=tok.pad_token_id, initializer_range=INIT_RANGE,
                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def _vision_kwargs() -> dict:
    return dict(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS)


def tiny_config(family: str, processor):
    """The transformers config of a tiny ``family`` model that fits ``processor``."""
    transformers = require("transformers", feature="tiny training models", extra="train")
    from ..testing import tiny_models as tm

    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids
    if family in ("qwen2_vl", "qwen2_5_vl"):
        text = dict(_text_kwargs(tok), rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "mrope_section": [2, 3, 3]})
        if family == "qwen2_vl":
            vision = dict(depth=LAYERS, embed_dim=HIDDEN, hidden_size=HIDDEN, num_heads=HEADS, mlp_ratio=2,
                          patch_size=tm.QWEN_PATCH, spatial_merge_size=tm.QWEN_MERGE, temporal_patch_size=2)
            cls = transformers.Qwen2VLConfig
        else:
            vision = dict(depth=LAYERS, hidden_size=HIDDEN, out_hidden_size=HIDDEN, num_heads=HEADS,
                          intermediate_size=INTERMEDIATE, patch_size=tm.QWEN_PATCH,
                          spatial_merge_size=tm.QWEN_MERGE, temporal_patch_size=2, window_size=56,
                          fullatt_block_indexes=[1])
            cls = transformers.Qwen2_5_VLConfig
        return cls(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                   video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                   vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False)
    if family == "llava":
        return transformers.LlavaConfig(
            vision_config=transformers.CLIPVisionConfig(image_size=tm.LLAVA_IMAGE, patch_size=tm.LLAVA_PATCH,
                                                        **_vision_kwargs()),
            text_config=transformers.LlamaConfig(**_text_kwargs(tok)),
            image_token_id=ids("<image>"), vision_feature_select_strategy="default", vision_feature_layer=-1,
            tie_word_embeddings=False)
    if family in ("idefics3", "smolvlm"):
        vision_cls = transformers.Idefics3VisionConfig if family == "idefics3" else transformers.SmolVLMVisionConfig
        cls = transformers.Idefics3Config if family == "idefics3" else transformers.SmolVLMConfig
        return cls(vision_config=vision_cls(image_size=tm.IDEFICS_IMAGE, patch_size=tm.IDEFICS_PATCH,
                                            **_vision_kwargs()),
                   text_config=transformers.LlamaConfig(**_text_kwargs(tok)), scale_factor=tm.IDEFICS_SCALE,
                   image_token_id=ids("<image>"), pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    raise ValueError(f"no tiny model for family {family!r}; known: {sorted(FORMATTERS)}")


def tiny_model(family: str, processor=None, *, seed: int = 0):
    """A randomly initialised tiny model of ``family`` (float32, on the CPU)."""
    torch = require("torch", feature="tiny training models", extra="train")
    transformers = require("transformers", feature="tiny training models", extra="train")
    from ..testing.tiny_models import tiny_processor

    processor = processor if processor is not None else tiny_processor(family)
    config = tiny_config(family, processor)
    torch.manual_seed(seed)
    model = transformers.AutoModelForImageTextToText.from_config(config)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return model.eval()


def tiny_model_and_processor(family: str, *, seed: int = 0):
    """``(model, processor)`` for a tiny ``family``."""
    from ..testing.tiny_models import tiny_processor

    processor = tiny_processor(family)
    return tiny_model(family, processor, seed=seed), processor


def save_tiny_model(family: str, path, *, seed: int = 0) -> Path:
    """Write a tiny model and its processor to ``path`` (``save_pretrained`` layout) and return it.

    The folder also records the family in ``mmcr_tiny.json`` so :func:`~mmcr_datasets.train.model.load_processor`
    can rebuild the image-only processor (the stock Qwen2-VL/SmolVLM processors need torchvision).
    """
    import json

    path = Path(path)
    model, processor = tiny_model_and_processor(family, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.tokenizer.save_pretrained(path)
    (path / "mmcr_tiny.json").write_text(json.dumps({"family": family, "formatter": FORMATTERS[family]}) + "\n")
    return path
