"""A tiny, randomly initialised CLIP checkpoint built offline, for tests of the alignment filter.

:func:`build_tiny_clip` writes a folder that ``transformers`` loads like any CLIP checkpoint
(``CLIPModel``, a fast tokenizer, a CLIP image-processor config), so the pipeline's
``--clip-model PATH`` code path runs unchanged. The scores are real image-text cosine
similarities of a random model: meaningless as quality, stable for a given seed.

Needs torch, transformers and tokenizers; nothing in the library imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

_SENTENCES = [
    "a photograph of an astronaut in a white suit next to a flag",
    "a rocket lifts off from the launch pad in a cloud of smoke",
    "a cat with striped fur looks at the camera",
    "a cup of coffee with latte art on a saucer",
    "cells under a microscope, stained tissue and a retina image",
    "old coins, a clock, a camera and a wall of bricks",
    "what does the first picture show, and how does it relate to the second image?",
]


def build_tiny_clip(out: Union[str, Path], *, seed: int = 0, image_size: int = 32) -> Path:
    """Write a tiny CLIP checkpoint to ``out`` and return the folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast
    from transformers.models import clip as _clip

    CLIPImageProcessor = getattr(_clip, "CLIPImageProcessorPil", None) or _clip.CLIPImageProcessor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|unk|>", "<|startoftext|>", "<|endoftext|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_SENTENCES, trainer)
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", unk_token="<|unk|>",
                                   bos_token="<|startoftext|>", eos_token="<|endoftext|>", model_max_length=32)
    fast.save_pretrained(out)

    config = CLIPConfig(
        text_config={"vocab_size": tok.get_vocab_size(), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 32,
                     "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": tok.token_to_id("<|pad|>")},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": image_size, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
                       ).save_pretrained(out)
    return out
