"""Tiny, randomly initialised vision-language models and real processors, built fully offline.

Nothing here downloads anything: tokenizers are byte-level BPE models trained in a fraction of a
second on a few sentences plus the family's special tokens, image processors are transformers'
PIL back-ends (no torchvision), and models are built from tiny configs (hidden size 64, two
layers). They exist for tests, examples and CI: shapes, chat templates, placeholder expansion,
loss masks and training steps are real; the weights are random.

>>> processor = tiny_processor("qwen2_vl")
>>> model = tiny_model("qwen2_vl")        # needs torch

Families: ``qwen2_vl``, ``qwen2_5_vl``, ``llava``, ``idefics3``, ``smolvlm``. The Qwen2-VL and
SmolVLM stock processors require a video processor, which needs torchvision; the image-only
subclasses below drop it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

from ..errors import require

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava", "idefics3", "smolvlm")

#: a few sentences for the BPE merges; any text still tokenizes (byte-level fallback)
CORPUS = [
    "The cat sits on the mat and looks at the camera.",
    "What is shown in the first image? A rocket on a launch pad.",
    "Compare the two photos: the second one is brighter and has more texture.",
    "You are a helpful assistant. Answer the question about the picture.",
    "User: describe the image. Assistant: It is a photograph of a clock.",
    "USER: What kind of animal is this? ASSISTANT: It is a domestic cat.",
    "The yellow-green eyes have wide-open pupils, which usually means dim light.",
    "这是什么？ Qu'est-ce que c'est ? naïve café 🐱",
]

_QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
_LLAVA_SPECIAL = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
_IDEFICS_ROWS = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
_IDEFICS3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<fake_token_around_image>", "<image>",
                     "<end_of_utterance>", "<global-img>", "<pad>"] + _IDEFICS_ROWS
_SMOLVLM_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<fake_token_around_image>", "<image>",
                    "<end_of_utterance>", "<global-img>", "<pad>"] + _IDEFICS_ROWS


def train_tokenizer(special_tokens: list[str], *, corpus: Optional[list[str]] = None, vocab_size: int = 512,
                    **token_roles):
    """A byte-level BPE tokenizer trained on ``corpus`` with ``special_tokens`` kept whole, wrapped
    in transformers' fast tokenizer. ``token_roles`` name special tokens (``bos_token="<s>"``, ...)."""
    tokenizers = require("tokenizers", feature="tiny test tokenizers", extra="train")
    transformers = require("transformers", feature="tiny test tokenizers", extra="train")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus or CORPUS, trainer)
    roles = set(token_roles.values())
    extra = [t for t in special_tokens if t not in roles]
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=extra,
                                                clean_up_tokenization_spaces=False, **token_roles)


# -- tokenizers per family -----------------------------------------------------------------------

def tiny_tokenizer(family: str):
    """The tokenizer of a tiny model of ``family`` (special tokens as in the real checkpoints)."""
    if family in ("qwen2_vl", "qwen2_5_vl"):
        tok = train_tokenizer(_QWEN_SPECIAL, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    elif family == "llava":
        tok = train_tokenizer(_LLAVA_SPECIAL, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                              pad_token="<pad>")
    elif family == "idefics3":
        tok = train_tokenizer(_IDEFICS3_SPECIAL, bos_token="<|begin_of_text|>", eos_token="<end_of_utterance>",
                              pad_token="<pad>")
    elif family == "smolvlm":
        tok = train_tokenizer(_SMOLVLM_SPECIAL, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                              pad_token="<pad>")
    else:
        raise ValueError(f"unknown tiny family {family!r}; known: {FAMILIES}")
    return tok


# -- processors -------------------------------------------------------------------------------------

#: image geometry shared by the processors and models below
QWEN_PATCH, QWEN_MERGE = 14, 2
LLAVA_IMAGE, LLAVA_PATCH = 28, 14          # 2x2 = 4 image tokens
IDEFICS_IMAGE, IDEFICS_PATCH, IDEFICS_SCALE = 32, 8, 2   # (32/8)^2 / 2^2 = 4 tokens per tile


def _image_only(cls):
    """A subclass of a processor class without its video processor (which needs torchvision)."""

    class ImageOnly(cls):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                             chat_template=chat_template, **kwargs)

        @classmethod
        def get_attributes(klass):
            return [a for a in super().get_attributes() if a != "video_processor"]

    ImageOnly.__name__ = ImageOnly.__qualname__ = "ImageOnly" + cls.__name__
    return ImageOnly


def tiny_processor(family: str):
    """A real transformers processor for a tiny model of ``family`` (offline, no torchvision)."""
    transformers = require("transformers", feature="tiny test processors", extra="train")
    tok = tiny_tokenizer(family)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        ip = Qwen2VLImageProcessorPil(patch_size=QWEN_PATCH, merge_size=QWEN_MERGE, temporal_patch_size=2,
                                      min_pixels=28 * 28, max_pixels=56 * 56)
        base = (transformers.Qwen2VLProcessor if family == "qwen2_vl" else transformers.Qwen2_5_VLProcessor)
        return _image_only(base)(image_processor=ip, tokenizer=tok)
    if family == "llava":
        from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

        ip = LlavaImageProcessorPil(size={"shortest_edge": LLAVA_IMAGE},
                                    crop_size={"height": LLAVA_IMAGE, "width": LLAVA_IMAGE})
        # CLIP adds a CLS token that the "default" strategy drops again: 2x2 = 4 image tokens
        return transformers.LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=LLAVA_PATCH,
                                           vision_feature_select_strategy="default", num_additional_image_tokens=1)
    if family in ("idefics3", "smolvlm"):
        seq_len = (IDEFICS_IMAGE // IDEFICS_PATCH) ** 2 // IDEFICS_SCALE ** 2
        if family == "idefics3":
            from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil as IP

            cls = transformers.Idefics3Processor
        else:
            require("num2words", feature="the SmolVLM processor", extra="train")
            from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil as IP

            cls = _image_only(transformers.SmolVLMProcessor)
        ip = IP(size={"longest_edge": 2 * IDEFICS_IMAGE}, max_image_size={"longest_edge": IDEFICS_IMAGE},
                do_image_splitting=True)
        return cls(image_processor=ip, tokenizer=tok, image_seq_len=seq_len)
    raise ValueError(f"unknown tiny family {family!r}; known: {FAMILIES}")


@lru_cache(maxsize=None)
def cached_processor(family: str):
    """:func:`tiny_processor`, built once per process (processors are not mutated by calls)."""
    return tiny_processor(family)


# -- models -------------------------------------------------------------------------------------------

_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=2048)


def tiny_model_config(family: str, tokenizer=None):
    """The config of a tiny random model of ``family`` whose token ids match :func:`tiny_tokenizer`."""
    transformers = require("transformers", feature="tiny test models", extra="train")
    tok = tokenizer or tiny_tokenizer(family)
    vocab = len(tok)
    ids = tok.convert_tokens_to_ids
    if family in ("qwen2_vl", "qwen2_5_vl"):
        text = dict(_TEXT, vocab_size=vocab, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                               "mrope_section": [2, 3, 3]},
                    bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
        common = dict(text_config=text, image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                      vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
        if family == "qwen2_vl":
            vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, patch_size=QWEN_PATCH,
                          spatial_merge_size=QWEN_MERGE, temporal_patch_size=2)
            return transformers.Qwen2VLConfig(vision_config=vision, **common)
        vision = dict(depth=2, hidden_size=32, out_hidden_size=64, intermediate_size=64, num_heads=2,
                      patch_size=QWEN_PATCH, spatial_merge_size=QWEN_MERGE, temporal_patch_size=2,
                      window_size=56, fullatt_block_indexes=[1])
        return transformers.Qwen2_5_VLConfig(vision_config=vision, **common)
    if family == "llava":
        vision = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=LLAVA_IMAGE, patch_size=LLAVA_PATCH,
                                               projection_dim=32)
        text = transformers.LlamaConfig(vocab_size=vocab, bos_token_id=ids("<s>"), eos_token_id=ids("</s>"),
                                        pad_token_id=ids("<pad>"), **_TEXT)
        return transformers.LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                                        vision_feature_select_strategy="default", vision_feature_layer=-1,
                                        image_seq_length=(LLAVA_IMAGE // LLAVA_PATCH) ** 2)
    if family in ("idefics3", "smolvlm"):
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      image_size=IDEFICS_IMAGE, patch_size=IDEFICS_PATCH)
        text = dict(_TEXT, model_type="llama", vocab_size=vocab, pad_token_id=ids("<pad>"))
        cls = transformers.Idefics3Config if family == "idefics3" else transformers.SmolVLMConfig
        return cls(vision_config=vision, text_config=text, image_token_id=ids("<image>"), scale_factor=IDEFICS_SCALE)
    raise ValueError(f"unknown tiny family {family!r}; known: {FAMILIES}")


_MODEL_CLASSES = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
                  "llava": "LlavaForConditionalGeneration", "idefics3": "Idefics3ForConditionalGeneration",
                  "smolvlm": "SmolVLMForConditionalGeneration"}


def tiny_model(family: str, *, seed: int = 0, tokenizer=None):
    """A randomly initialised tiny model of ``family`` (CPU, float32), matching :func:`tiny_processor`."""
    torch = require("torch", feature="tiny test models", extra="train")
    transformers = require("transformers", feature="tiny test models", extra="train")
    config = tiny_model_config(family, tokenizer)
    torch.manual_seed(seed)
    model = getattr(transformers, _MODEL_CLASSES[family])(config)
    return model.eval()
