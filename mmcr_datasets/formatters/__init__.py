"""Chat-template formatters: one dialogue -> the exact prompt string of a model family.

>>> from mmcr_datasets.formatters import format_dialogue, list_formatters
>>> out = format_dialogue(row, "qwen2_vl")
>>> out.text, out.images, out.assistant_spans

Formatting is plain Python string building: no Jinja, no transformers, no torch. For families
with an official chat template the output is byte-identical to that template rendered the way
transformers renders it; the tests check this against the original templates, and
``benchmarks/bench_format.py`` measures the speed against Jinja rendering.

Register your own family with :func:`register_formatter` (a :class:`Formatter` subclass or
instance). See :mod:`mmcr_datasets.formatters.base` for what ``assistant_spans`` cover and how
literal control tokens in text are handled (``literal_tokens="raise" | "keep" | "escape"``).
"""

from __future__ import annotations

from typing import Any, Optional, Union

from .base import (
    FormattedDialogue,
    Formatter,
    FormatterError,
    LiteralSpecialTokenError,
)
from .chatml import InternVL25Formatter, Ovis2Formatter, Ovis16Formatter
from .gemma import Gemma3Formatter
from .idefics import Idefics3Formatter, SmolVLMFormatter
from .llava import LlavaNextFormatter, LlavaOneVisionFormatter, LlavaV1Formatter
from .mllama import MllamaFormatter
from .phi3 import Phi3VFormatter
from .qwen import Qwen2VLFormatter, Qwen3VLFormatter

__all__ = [
    "FormattedDialogue", "Formatter", "FormatterError", "LiteralSpecialTokenError",
    "list_formatters", "get_formatter", "register_formatter", "format_dialogue",
]

_REGISTRY: dict[str, Formatter] = {}


def register_formatter(formatter: Union[Formatter, type], *, name: Optional[str] = None,
                       overwrite: bool = False) -> Formatter:
    """Add a formatter (a :class:`Formatter` subclass or instance) under ``name`` (default: its
    ``name`` attribute). Refuses to replace an existing one unless ``overwrite=True``. Returns what
    it was given (the class, or the instance), so it also works as a class decorator."""
    inst = formatter() if isinstance(formatter, type) else formatter
    if not isinstance(inst, Formatter):
        raise FormatterError(f"a formatter must subclass mmcr_datasets.formatters.Formatter, got {inst!r}")
    key = name or inst.name
    if not key:
        raise FormatterError("a formatter needs a name (set the class attribute `name` or pass name=)")
    if key in _REGISTRY and not overwrite:
        raise FormatterError(f"a formatter named {key!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[key] = inst
    return formatter if isinstance(formatter, type) else inst


def list_formatters() -> list[str]:
    """Names of every registered formatter, sorted."""
    return sorted(_REGISTRY)


def get_formatter(name: str) -> Formatter:
    """The formatter registered under ``name``; the error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FormatterError(f"unknown formatter {name!r}; known: {', '.join(list_formatters())}") from None


def format_dialogue(row: Any, name: str, *, add_generation_prompt: bool = False, system: Optional[str] = None,
                    literal_tokens: str = "raise", **options) -> FormattedDialogue:
    """Format one dialogue (a dataset row, images decoded or not, or a ``Dialogue``) for family ``name``.

    ``add_generation_prompt`` appends the family's assistant prompt; ``system`` sets the system
    prompt (replacing the row's own); ``literal_tokens`` says what to do with the family's control
    tokens found inside text; other keyword options are family-specific (``add_vision_id`` for
    ``qwen2_vl``/``qwen3_vl``/``internvl2_5``/``ovis2``, ``variant`` for ``ovis1_6``,
    ``eos_token`` for ``phi3_v``, ``bos_token`` for ``gemma3``/``mllama``, ``date_string`` for
    ``mllama``).
    """
    return get_formatter(name).format(row, add_generation_prompt=add_generation_prompt, system=system,
                                      literal_tokens=literal_tokens, **options)


for _cls in (Qwen2VLFormatter, Qwen3VLFormatter, LlavaV1Formatter, LlavaNextFormatter, LlavaOneVisionFormatter,
             Idefics3Formatter, SmolVLMFormatter, InternVL25Formatter, Phi3VFormatter, MllamaFormatter,
             Gemma3Formatter, Ovis2Formatter, Ovis16Formatter):
    register_formatter(_cls)
del _cls
