"""Loading the base model and processor, choosing the formatter, freezing parts, adding LoRA.

The parts of a VLM are found by name, which covers the transformers layouts of the common
families: the vision tower (``visual``, ``vision_tower``, ``vision_model``), the projector
(``merger`` inside Qwen's ``visual``, ``multi_modal_projector``, ``connector``) and the language
model (``language_model``, ``text_model``). A model whose parts cannot be found is refused when
freezing is asked for, rather than silently training everything.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from ..errors import MMCRError, require

torch = require("torch", feature="mmcr train", extra="train")
transformers = require("transformers", feature="mmcr train", extra="train")

logger = logging.getLogger(__name__)

__all__ = ["FORMATTER_BY_MODEL_TYPE", "load_model", "load_processor", "resolve_formatter", "model_parts",
           "freeze_parts", "apply_lora", "count_parameters"]

#: transformers ``model_type`` -> formatter id
FORMATTER_BY_MODEL_TYPE = {
    "qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_vl", "qwen3_vl": "qwen3_vl", "llava": "llava_v1",
    "llava_next": "llava_next", "llava_onevision": "llava_onevision", "idefics3": "idefics3",
    "smolvlm": "smolvlm", "mllama": "mllama", "gemma3": "gemma3", "phi3_v": "phi3_v",
    "internvl": "internvl2_5", "internvl_chat": "internvl2_5", "ovis": "ovis2",
}

_VISION = ("visual", "vision_tower", "vision_model")
_PROJECTOR = ("multi_modal_projector", "connector", "merger", "mm_projector")
_LANGUAGE = ("language_model", "text_model")
_LORA_LEAVES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _tiny_family(path) -> Optional[str]:
    marker = Path(str(path)) / "mmcr_tiny.json"
    if marker.is_file():
        return json.loads(marker.read_text())["family"]
    return None


def load_processor(name_or_path: str, *, trust_remote_code: bool = False):
    """The processor of a model folder or Hub id (tiny test models get their image-only processor)."""
    family = _tiny_family(name_or_path)
    if family:
        from ..testing.tiny_models import tiny_processor

        return tiny_processor(family)
    try:
        return transformers.AutoProcessor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (ImportError, AttributeError, ValueError) as exc:
        raise MMCRError(
            f"cannot load the processor of {name_or_path!r}: {exc}. Some processors (Qwen2-VL, SmolVLM) also build "
            "a video processor that needs torchvision; install a torchvision matching your torch, or point "
            "model.processor at a folder holding an image-only processor."
        ) from exc


def resolve_formatter(model_or_config, explicit: Optional[str] = None) -> str:
    """The formatter id: ``explicit`` if given, else derived from the model's ``model_type``."""
    from ..formatters import get_formatter

    if explicit:
        get_formatter(explicit)  # raises with the list of known names
        return explicit
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in FORMATTER_BY_MODEL_TYPE:
        raise MMCRError(f"no formatter is known for model_type {model_type!r}; set model.formatter in the config "
                        f"(known model types: {', '.join(sorted(FORMATTER_BY_MODEL_TYPE))})")
    return FORMATTER_BY_MODEL_TYPE[model_type]


def _dtype(name: str):
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise MMCRError(f"model.dtype must be auto, float32, bfloat16 or float16, not {name!r}") from None


def load_model(name_or_path: str, *, dtype: str = "auto", attn_implementation: Optional[str] = None,
               trust_remote_code: bool = False):
    """``AutoModelForImageTextToText.from_pretrained`` with the configured dtype."""
    kwargs = {"dtype": _dtype(dtype), "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    return transformers.AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)


def model_parts(model) -> dict[str, list[str]]:
    """Names of the vision tower, projector and language-model modules of ``model``."""
    parts = {"vision": [], "projector": [], "language": []}
    for name, _ in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in _PROJECTOR and not any(name.startswith(p + ".") for p in parts["projector"]):
            parts["projector"].append(name)
        elif leaf in _VISION and not any(name.startswith(p + ".") for p in parts["vision"]):
            parts["vision"].append(name)
        elif leaf in _LANGUAGE and not any(name.startswith(p + ".") for p in parts["language"]):
            parts["language"].append(name)
    return parts


def _in(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze_parts(model, *, vision: bool, projector: bool) -> None:
    """Set ``requires_grad=False`` on the vision tower and/or projector (the projector of Qwen
    models lives inside the vision tower and follows ``projector``, not ``vision``)."""
    parts = model_parts(model)
    if (vision and not parts["vision"]) or (projector and not parts["projector"]):
        raise MMCRError(f"cannot find the vision tower/projector of {type(model).__name__} by name (found {parts}); "
                        "set finetune.freeze_vision_tower/freeze_projector to false or freeze it yourself")
    for name, param in model.named_parameters():
        in_proj = _in(name, parts["projector"])
        if in_proj:
            if projector:
                param.requires_grad_(False)
        elif vision and _in(name, parts["vision"]):
            param.requires_grad_(False)


def lora_targets(model, spec) -> list[str] | str:
    """peft ``target_modules`` from the config value (see :class:`~mmcr_datasets.train.config.LoraSettings`)."""
    if spec != "language_model":
        return spec
    language = model_parts(model)["language"]
    if not language:
        raise MMCRError(f"cannot find the language model of {type(model).__name__}; set finetune.lora.target_modules")
    names = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in _LORA_LEAVES and _in(n, language)]
    if not names:
        raise MMCRError("no attention/MLP projection found in the language model; set finetune.lora.target_modules")
    return names


def apply_lora(model, lora, *, train_projector: bool, train_vision: bool = False):
    """Wrap ``model`` with a peft LoRA adapter. The projector (and the vision tower, when it is not
    frozen) train in full alongside the adapter and are saved with it (peft ``modules_to_save``)."""
    peft = require("peft", feature="LoRA fine-tuning", extra="train")
    parts = model_parts(model)
    modules_to_save = []
    if train_projector:
        modules_to_save += [p.rsplit(".", 1)[-1] for p in parts["projector"]
                            if not (train_vision and _in(p, parts["vision"]))]
    if train_vision:
        modules_to_save += [p.rsplit(".", 1)[-1] for p in parts["vision"]]
    modules_to_save = sorted(set(modules_to_save)) or None
    config = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias=lora.bias,
                             target_modules=lora_targets(model, lora.target_modules),
                             modules_to_save=modules_to_save, task_type="CAUSAL_LM")
    return peft.get_peft_model(model, config)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total

