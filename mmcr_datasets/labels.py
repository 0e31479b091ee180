"""Token ids and assistant-only labels for one dialogue: :func:`tokenize_dialogue`.

The labels are ``-100`` everywhere except on the tokens of the formatter's ``assistant_spans``
(each answer with its end-of-turn marker), and they stay right after the processor has expanded
each image placeholder into many image tokens. Two ways to get there, both exact:

* ``method="replacements"`` (used when the processor offers it, transformers 5.2x): one processor
  call returns the token offsets *in the expanded text* and where each placeholder was replaced;
  the spans are shifted by the replacements before the tokens are labelled.
* ``method="align"`` (any transformers version): tokenize the formatted text with offsets and
  label it, ask the processor how many tokens each image expands to (one call per distinct image
  size, cached), then walk the processor's ids and the text ids side by side. Every text token must
  reappear in order, and the lengths must add up; otherwise :class:`LabelAlignmentError` is raised
  rather than returning a silently wrong mask.

A token is learned when it contains at least one character of a span (so a byte-level token
``" answer"`` that starts with the separator space is learned). This never relies on
``return_assistant_tokens_mask``, which returns all zeros with images in several transformers
versions.
"""

from __future__ import annotations

import io
import weakref
from typing import Any, Optional, Sequence

from .errors import MMCRError, require
from .formatters import FormattedDialogue, format_dialogue

IGNORE_INDEX = -100

__all__ = ["IGNORE_INDEX", "LabelAlignmentError", "tokenize_dialogue", "label_tokens", "load_image"]


class LabelAlignmentError(MMCRError):
    """The processor's token ids could not be matched with the formatted text's tokens."""


def load_image(image: Any):
    """A PIL image (RGB) from a PIL image, ``{"bytes", "path"}`` dict, ``ImageRef``, bytes or path."""
    from PIL import Image

    if isinstance(image, Image.Image):
        img = image
    else:
        data = path = None
        if isinstance(image, dict):
            data, path = image.get("bytes"), image.get("path")
        elif isinstance(image, (bytes, bytearray)):
            data = bytes(image)
        elif isinstance(image, str) or hasattr(image, "__fspath__"):
            path = image
        elif hasattr(image, "bytes") and hasattr(image, "path"):  # records.ImageRef
            data, path = image.bytes, image.path
        else:
            raise TypeError(f"cannot load an image from {type(image).__name__}")
        img = Image.open(io.BytesIO(data)) if data else Image.open(path)
        img.load()
    return img if img.mode == "RGB" else img.convert("RGB")


def label_tokens(ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """``ids`` where a token's character range overlaps a span, ``-100`` elsewhere."""
    labels = [IGNORE_INDEX] * len(ids)
    spans = sorted(spans)
    k, n = 0, len(spans)
    for t, (a, b) in enumerate(offsets):
        while k < n and spans[k][1] <= a:
            k += 1
        if k == n:
            break
        s, e = spans[k]
        if (a < e and b > s) or (a == b and s <= a < e):
            labels[t] = ids[t]
    return labels


def _tokenizer_of(obj):
    tok = getattr(obj, "tokenizer", obj)
    if not getattr(tok, "is_fast", False):
        raise MMCRError(
            f"tokenize_dialogue needs a fast tokenizer (offset mappings); got {type(tok).__name__}. "
            "Load it with use_fast=True."
        )
    return tok


def _first(x):
    """The first (only) sequence of a batch of one, as a list."""
    x = x[0]
    return x.tolist() if hasattr(x, "tolist") else list(x)


def tokenize_dialogue(
    row: Any,
    name: str,
    tokenizer_or_processor: Any,
    *,
    add_generation_prompt: bool = False,
    system: Optional[str] = None,
    literal_tokens: str = "raise",
    return_tensors: Optional[str] = None,
    processor_kwargs: Optional[dict] = None,
    method: str = "auto",
    return_formatted: bool = False,
    **options,
) -> dict:
    """Format ``row`` with formatter ``name`` and tokenize it with a transformers tokenizer or
    processor, returning ``input_ids``, ``attention_mask``, ``labels`` (``-100`` outside the
    assistant spans) and, with a processor and images, the processor's pixel inputs
    (``pixel_values``, ``image_grid_thw``, ...). With ``return_formatted=True``, ``formatted`` holds
    the :class:`FormattedDialogue` (leave it off inside ``Dataset.map``, which stores only plain data).

    Given a bare tokenizer (or a dialogue without images), nothing is expanded: each image stays
    the single placeholder token the formatter wrote, and no pixel inputs are returned.
    The text is tokenized without adding special tokens (the formatted text already carries the
    family's BOS where its template writes one). ``return_tensors="pt"`` returns tensors with a
    batch dimension of one; the default returns lists for the ids and the processor's arrays.
    ``method`` is ``"auto"``, ``"replacements"`` or ``"align"`` (see the module docstring).
    """
    require("transformers", feature="tokenize_dialogue", extra="train")
    formatted = format_dialogue(row, name, add_generation_prompt=add_generation_prompt, system=system,
                                literal_tokens=literal_tokens, **options)
    tokenizer = _tokenizer_of(tokenizer_or_processor)
    is_processor = tokenizer_or_processor is not tokenizer and hasattr(tokenizer_or_processor, "image_processor")
    extras: dict = {}
    if is_processor and formatted.images:
        images = [load_image(img) for img in formatted.images]
        kwargs = dict(processor_kwargs or {})
        if method in ("auto", "replacements"):
            result = _via_replacements(tokenizer_or_processor, formatted, images, kwargs, strict=method != "auto")
        else:
            result = None
        if result is None:
            result = _via_alignment(tokenizer_or_processor, tokenizer, formatted, images, kwargs)
        ids, labels, extras = result
    else:
        enc = tokenizer(formatted.text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        labels = label_tokens(ids, enc["offset_mapping"], formatted.assistant_spans)
    out = {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}
    out.update(extras)
    if return_tensors == "pt":
        torch = require("torch", feature="tokenize_dialogue(return_tensors='pt')", extra="train")
        for key in ("input_ids", "attention_mask", "labels"):
            out[key] = torch.tensor([out[key]], dtype=torch.long)
        for key, value in extras.items():
            if not isinstance(value, torch.Tensor):
                try:
                    out[key] = torch.as_tensor(value)
                except (TypeError, ValueError):
                    pass
    elif return_tensors is not None:
        raise ValueError(f"return_tensors must be None or 'pt', not {return_tensors!r}")
    if return_formatted:
        out["formatted"] = formatted
    return out


_TEXT_KEYS = ("input_ids", "attention_mask", "offset_mapping", "text_replacement_offsets", "token_type_ids")


def _via_replacements(processor, formatted: FormattedDialogue, images, kwargs, strict: bool):
    """One processor call that reports offsets in the expanded text and where it replaced what."""
    try:
        enc = processor(text=[formatted.text], images=images, add_special_tokens=False, return_offsets_mapping=True,
                        return_text_replacement_offsets=True, return_tensors="np", **kwargs)
    except (TypeError, ValueError, NotImplementedError) as exc:
        if strict:
            raise LabelAlignmentError(f"the processor does not support replacement offsets: {exc}") from exc
        return None
    if "text_replacement_offsets" not in enc or "offset_mapping" not in enc:
        if strict:
            raise LabelAlignmentError("the processor returned no replacement offsets")
        return None
    replacements = sorted(enc["text_replacement_offsets"][0], key=lambda r: r["span"][0])
    text = formatted.text
    pos = 0
    for r in replacements:  # every replacement must be a placeholder of our text, in order
        start, end = r["span"]
        if start < pos or text[start:end] != r["text"]:
            raise LabelAlignmentError(f"unexpected replacement {r!r} in the formatted text")
        pos = end

    def shift(p: int) -> int:
        delta = 0
        for r in replacements:
            (s, e), (ns, ne) = r["span"], r["new_span"]
            if e <= p:
                delta += (ne - ns) - (e - s)
            elif s < p:
                raise LabelAlignmentError("an assistant span starts or ends inside an image placeholder")
        return p + delta

    spans = [(shift(s), shift(e)) for s, e in formatted.assistant_spans]
    ids = _first(enc["input_ids"])
    offsets = [tuple(int(v) for v in o) for o in enc["offset_mapping"][0]]
    labels = label_tokens(ids, offsets, spans)
    extras = {k: v for k, v in enc.items() if k not in _TEXT_KEYS}
    return ids, labels, extras


_EXPANSION_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _expansion_length(processor, image, kwargs) -> int:
    """How many tokens the processor turns one image placeholder into, for this image's size
    (cached per processor and size: every processor we know expands by size, not content; the
    alignment check below would catch one that does not)."""
    try:
        cache = _EXPANSION_CACHE.setdefault(processor, {})
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    key = (image.size, repr(sorted(kwargs.items())))
    if key not in cache:
        enc = processor(text=[processor.image_token], images=[image], add_special_tokens=False, **kwargs)
        cache[key] = len(_first(enc["input_ids"]))
    return cache[key]


def _via_alignment(processor, tokenizer, formatted: FormattedDialogue, images, kwargs):
    """Label the text's own tokens, then carry the labels over to the processor's expanded ids."""
    enc = tokenizer(formatted.text, add_special_tokens=False, return_offsets_mapping=True)
    ours = list(enc["input_ids"])
    ours_labels = label_tokens(ours, enc["offset_mapping"], formatted.assistant_spans)
    full_enc = processor(text=[formatted.text], images=images, add_special_tokens=False, return_tensors="np", **kwargs)
    full = _first(full_enc["input_ids"])
    placeholder = tokenizer.convert_tokens_to_ids(processor.image_token)
    lengths = [_expansion_length(processor, img, kwargs) for img in images]
    labels: list[int] = []
    j, k = 0, 0
    for tok, lab in zip(ours, ours_labels):
        if tok == placeholder:
            if k >= len(lengths):
                raise LabelAlignmentError("more image placeholders in the text than images")
            labels.extend([IGNORE_INDEX] * lengths[k])
            j += lengths[k]
            k += 1
            continue
        if j >= len(full) or full[j] != tok:
            raise LabelAlignmentError(
                f"token {j} of the processor output ({full[j] if j < len(full) else 'end'}) does not match the "
                f"text token {tok}; the processor changed the text outside image placeholders"
            )
        labels.append(lab)
        j += 1
    if j != len(full) or k != len(lengths):
        raise LabelAlignmentError(f"aligned {j} of {len(full)} processor tokens and {k} of {len(lengths)} images")
    extras = {k_: v for k_, v in full_enc.items() if k_ not in _TEXT_KEYS}
    return full, labels, extras
