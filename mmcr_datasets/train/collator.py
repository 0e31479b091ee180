"""Dataset rows -> model-ready batches: :class:`MMCRCollator`.

One processor call per batch does the heavy work (image preprocessing, placeholder expansion,
tokenisation, padding), exactly as the model family expects it. The prompt text comes from the
project's formatter (:func:`~mmcr_datasets.formatters.format_dialogue`), which places every image
where the dialogue refers to it, so an image introduced in turn 3 is seen in turn 3, not moved
to the top the way TRL's ``prepare_multimodal_messages`` does for string content.

**Labels.** The processor is asked for each token's character offsets in the *expanded* text and
for where it replaced each placeholder; the formatter's assistant spans are shifted by those
replacements and every token overlapping a span keeps its id, all others get ``-100``. This is the
same rule as :func:`~mmcr_datasets.labels.tokenize_dialogue`, computed for a whole batch at once.
When a processor cannot report replacements (older transformers), each row is labelled with
``tokenize_dialogue(method="align")`` and its ids are checked against the batch call.

**Length policy.** Image tokens are never cut. A row longer than ``max_length`` is either
shortened to its first ``k`` turns (``truncation="turns"``, the largest ``k`` that fits; images
referred to only in later turns go with them) or left out (``truncation="drop"``). A row with no
learned token left is always left out. Every such event is counted in :attr:`MMCRCollator.stats`
and logged; nothing is dropped silently.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

from ..errors import MMCRError, require

torch = require("torch", feature="the MMCR training collator", extra="train")
np = require("numpy", feature="the MMCR training collator", extra="train")
require("transformers", feature="the MMCR training collator", extra="train")

from ..formatters import format_dialogue  # noqa: E402
from ..labels import IGNORE_INDEX, load_image, tokenize_dialogue  # noqa: E402

logger = logging.getLogger(__name__)

TRUNCATION_POLICIES = ("turns", "drop")
_DROP_KEYS = ("offset_mapping", "text_replacement_offsets")

__all__ = ["MMCRCollator", "CollatorStats", "BatchTooLongError", "truncate_turns", "TRUNCATION_POLICIES"]


class BatchTooLongError(MMCRError):
    """Every row of a batch was left out (too long for ``max_length`` or without learned tokens)."""


@dataclass
class CollatorStats:
    """Counters of what the collator did; ``format_text()`` gives a one-line summary."""

    rows_in: int = 0
    rows_out: int = 0
    batches: int = 0
    capped_rows: int = 0
    truncated_rows: int = 0
    turns_removed: int = 0
    images_removed: int = 0
    dropped_too_long: int = 0
    dropped_no_labels: int = 0
    tokens: int = 0
    learned_tokens: int = 0
    dropped_ids: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def format_text(self) -> str:
        return (f"{self.rows_out}/{self.rows_in} rows in {self.batches} batches; cut to max_turns: "
                f"{self.capped_rows} rows; truncated at a turn boundary: "
                f"{self.truncated_rows} rows ({self.turns_removed} turns, {self.images_removed} images removed); "
                f"dropped: {self.dropped_too_long} too long, {self.dropped_no_labels} without learned tokens; "
                f"{self.learned_tokens}/{self.tokens} tokens learned")


def truncate_turns(row: dict, k: int) -> dict:
    """``row`` with only its first ``k`` user->assistant turns (a leading system message is kept).

    Images referred to only in removed turns are removed and the remaining indices renumbered in
    order of first reference, so the row stays valid under the data contract.
    """
    messages = row["messages"]
    head = 1 if messages and messages[0]["role"] == "system" else 0
    kept = messages[: head + 2 * k]
    order: dict[int, int] = {}
    new_messages = []
    for m in kept:
        parts = []
        for p in m["content"]:
            if p["type"] == "image":
                new = order.setdefault(p["index"], len(order))
                p = dict(p, index=new)
            parts.append(p)
        new_messages.append(dict(m, content=parts))
    images = row.get("images")
    out = dict(row, messages=new_messages)
    if images is not None:
        out["images"] = [images[i] for i in sorted(order, key=order.get)]
    if "num_turns" in row:
        out["num_turns"] = k
    if "num_images" in row:
        out["num_images"] = len(order)
    return out


def _num_turns(row: dict) -> int:
    return sum(1 for m in row["messages"] if m["role"] == "assistant")


class MMCRCollator:
    """Collate MMCR dataset rows (``messages`` with typed parts + ``images``) into model inputs.

    Returns ``input_ids``, ``attention_mask``, ``labels`` (``-100`` except on assistant answers and
    their end-of-turn markers) and whatever pixel inputs the processor produces
    (``pixel_values``, ``image_grid_thw``, ``pixel_attention_mask``, ...), as torch tensors.
    Usable as ``data_collator`` of the transformers ``Trainer`` and of TRL's ``SFTTrainer``
    (with ``remove_unused_columns=False`` so the raw rows reach it).

    Args:
        processor: the model's transformers processor (fast tokenizer required).
        formatter: formatter id of the model family (``qwen2_vl``, ``llava_v1``, ``idefics3``, ...).
        max_length: longest sequence in tokens, image tokens included; ``None`` = no limit.
        truncation: ``"turns"`` or ``"drop"`` for longer rows (see the module docstring).
        system: system prompt replacing the rows' own (``None`` keeps the formatter's default).
        literal_tokens: what to do with control tokens inside text (see the formatters).
        pad_to_multiple_of: pad the sequence length to a multiple of this.
        processor_kwargs: extra keyword arguments for the processor call (``max_pixels``, ...).
        formatter_options: family options of the formatter (``add_vision_id``, ...).
        record_ids: keep the ``id`` of every collated row in :attr:`seen_ids` (for audits of
            which process saw which data).
        max_turns: keep only the first ``max_turns`` turns of every dialogue (before any length
            check); counted in ``stats.capped_rows``.

    The counters in :attr:`stats` (and :attr:`seen_ids`) live in the process that runs the
    collator: with ``dataloader_num_workers > 0`` each worker counts its own rows, and the warnings
    it logs are the record of what was truncated or dropped.
    """

    def __init__(self, processor, formatter: str, *, max_length: Optional[int] = None, truncation: str = "turns",
                 system: Optional[str] = None, literal_tokens: str = "raise", pad_to_multiple_of: Optional[int] = None,
                 processor_kwargs: Optional[dict] = None, formatter_options: Optional[dict] = None,
                 record_ids: bool = False, max_turns: Optional[int] = None):
        if truncation not in TRUNCATION_POLICIES:
            raise ValueError(f"truncation must be one of {TRUNCATION_POLICIES}, not {truncation!r}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be positive or None, not {max_length}")
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        if not getattr(self.tokenizer, "is_fast", False):
            raise MMCRError(f"MMCRCollator needs a fast tokenizer (offset mappings); got {type(self.tokenizer).__name__}")
        if self.tokenizer.pad_token_id is None:
            raise MMCRError("the tokenizer has no pad token; set tokenizer.pad_token (often to the eos token)")
        self.formatter = formatter
        self.max_length = max_length
        self.truncation = truncation
        self.system = system
        self.literal_tokens = literal_tokens
        self.pad_to_multiple_of = pad_to_multiple_of
        self.processor_kwargs = dict(processor_kwargs or {})
        self.formatter_options = dict(formatter_options or {})
        self.record_ids = record_ids
        if max_turns is not None and max_turns < 1:
            raise ValueError(f"max_turns must be positive or None, not {max_turns}")
        self.max_turns = max_turns
        self.seen_ids: list = []
        self.stats = CollatorStats()
        self._lock = threading.Lock()
        self._replacements_ok: Optional[bool] = None

    # -- public -------------------------------------------------------------------------
    def __call__(self, rows: Sequence[dict]) -> dict:
        rows = list(rows)
        with self._lock:
            self.stats.rows_in += len(rows)
        if self.max_turns is not None:
            rows = [self._cap(r) for r in rows]
        formatted = [self._format(r) for r in rows]
        enc, labels = self._encode(rows, formatted)
        if self.max_length is not None:
            lengths = enc["attention_mask"].sum(dim=1).tolist()
            if any(n > self.max_length for n in lengths):
                rows, formatted = self._apply_length_policy(rows, formatted, lengths, labels)
                enc, labels = self._encode(rows, formatted) if formatted else (None, None)
        if enc is not None:
            keep = [i for i in range(len(rows)) if bool((labels[i] != IGNORE_INDEX).any())]
            if len(keep) < len(rows):
                with self._lock:
                    for i in range(len(rows)):
                        if i not in keep:
                            self.stats.dropped_no_labels += 1
                            self.stats.dropped_ids.append(rows[i].get("id"))
                logger.warning("left out %d row(s) with no assistant token to learn", len(rows) - len(keep))
                rows, formatted = [rows[i] for i in keep], [formatted[i] for i in keep]
                enc, labels = self._encode(rows, formatted) if formatted else (None, None)
        if enc is None:
            raise BatchTooLongError(
                f"every row of a batch was left out (max_length={self.max_length}, truncation={self.truncation!r}). "
                "Raise max_length, use truncation='turns', or filter long dialogues before training."
            )
        enc["labels"] = labels
        with self._lock:
            self.stats.rows_out += len(rows)
            self.stats.batches += 1
            self.stats.tokens += int(enc["attention_mask"].sum())
            self.stats.learned_tokens += int((labels != IGNORE_INDEX).sum())
            if self.record_ids:
                self.seen_ids.extend(r.get("id") for r in rows)
        return enc

    def _cap(self, row: dict) -> dict:
        n = _num_turns(row)
        if n <= self.max_turns:
            return row
        with self._lock:
            self.stats.capped_rows += 1
        return truncate_turns(row, self.max_turns)

    # -- formatting and encoding ---------------------------------------------------------
    def _format(self, row: dict):
        return format_dialogue(row, self.formatter, system=self.system, literal_tokens=self.literal_tokens,
                               **self.formatter_options)

    def _processor_call(self, formatted, **extra):
        images = [[load_image(img) for img in f.images] for f in formatted]
        kwargs = dict(padding=True, padding_side="right", add_special_tokens=False,
                      pad_to_multiple_of=self.pad_to_multiple_of)
        kwargs.update(self.processor_kwargs)
        kwargs.update(extra)
        texts = [f.text for f in formatted]
        if all(not imgs for imgs in images):
            enc = self.processor(text=texts, **kwargs)
        else:
            enc = self.processor(text=texts, images=images, **kwargs)
        return _to_tensors(enc)

    def _encode(self, rows, formatted) -> tuple[dict, Any]:
        """One processor call for the batch; returns (encoding without offsets, labels tensor)."""
        if self._replacements_ok is not False:
            try:
                enc = self._processor_call(formatted, return_offsets_mapping=True,
                                           return_text_replacement_offsets=True)
            except (TypeError, ValueError, NotImplementedError) as exc:
                if self._replacements_ok:
                    raise
                logger.info("processor cannot report replacement offsets (%s); labelling by alignment", exc)
                enc = None
            if enc is not None and "text_replacement_offsets" in enc and "offset_mapping" in enc:
                self._replacements_ok = True
                labels = self._labels_from_offsets(formatted, enc)
                return {k: v for k, v in enc.items() if k not in _DROP_KEYS}, labels
            self._replacements_ok = False
        return self._encode_by_alignment(rows, formatted)

    def _labels_from_offsets(self, formatted, enc):
        """Labels from token offsets: a token is learned when its characters overlap a span (a
        zero-width token when it sits inside one), the rule of :func:`~mmcr_datasets.labels.label_tokens`.

        Offsets of the real (non-padding) tokens never decrease, so each span's tokens are found by
        binary search and labelled as one slice; only the tokens at the two edges of a slice are
        tested one by one. This keeps per-token Python work out of the collator's hot path.
        """
        ids = enc["input_ids"]
        labels = torch.full_like(ids, IGNORE_INDEX)
        mask = enc["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        for i, f in enumerate(formatted):
            offs = enc["offset_mapping"][i]
            first = 0 if mask[i, 0] else int(mask[i].argmax())  # left padding, should a processor force it
            n = first + int(lengths[i])
            for s, e in _shift_spans(f, enc["text_replacement_offsets"][i]):
                lo = bisect.bisect_left(offs, s, first, n, key=_end)  # first token ending at or after s
                hi = bisect.bisect_left(offs, e, lo, n, key=_start)   # first token starting at or after e
                while lo < hi and not _overlaps(offs[lo], s, e):
                    lo += 1
                while hi > lo and not _overlaps(offs[hi - 1], s, e):
                    hi -= 1
                if lo < hi:
                    labels[i, lo:hi] = ids[i, lo:hi]
        return labels

    def _encode_by_alignment(self, rows, formatted):
        """Fallback: label each row by alignment, then place its labels in the batch encoding."""
        enc = self._processor_call(formatted)
        ids = enc["input_ids"]
        labels = torch.full_like(ids, IGNORE_INDEX)
        for i, row in enumerate(rows):
            one = tokenize_dialogue(row, self.formatter, self.processor, method="align", system=self.system,
                                    literal_tokens=self.literal_tokens, processor_kwargs=self.processor_kwargs,
                                    **self.formatter_options)
            pos = enc["attention_mask"][i].nonzero().flatten()
            row_ids = ids[i, pos].tolist()
            if row_ids != list(one["input_ids"]):
                raise MMCRError("the batch encoding and the per-row encoding of the same text differ; "
                                "cannot place the labels")
            labels[i, pos] = torch.tensor(one["labels"], dtype=labels.dtype)
        return {k: v for k, v in enc.items() if k not in _DROP_KEYS}, labels

    # -- length policy ------------------------------------------------------------------
    def _apply_length_policy(self, rows, formatted, lengths, labels):
        out_rows, out_fmt = [], []
        for i, (row, f, n) in enumerate(zip(rows, formatted, lengths)):
            if n <= self.max_length:
                out_rows.append(row)
                out_fmt.append(f)
                continue
            if self.truncation == "turns":
                short = self._truncate_to_fit(row, labels[i])
                if short is not None:
                    new_row, new_f = short
                    with self._lock:
                        self.stats.truncated_rows += 1
                        self.stats.turns_removed += _num_turns(row) - _num_turns(new_row)
                        self.stats.images_removed += len(f.images) - len(new_f.images)
                    out_rows.append(new_row)
                    out_fmt.append(new_f)
                    continue
            with self._lock:
                self.stats.dropped_too_long += 1
                self.stats.dropped_ids.append(row.get("id"))
            logger.warning("left out row %r: %d tokens > max_length=%d%s", row.get("id"), n, self.max_length,
                           "" if self.truncation == "drop" else " even with its first turn only")
        return out_rows, out_fmt

    def _truncate_to_fit(self, row, row_labels):
        """The longest prefix of whole turns that fits, or ``None``; checked with a real encoding."""
        learned = (row_labels != IGNORE_INDEX).nonzero().flatten().tolist()
        # token index just past each assistant answer = the end of each learned run
        ends = [t + 1 for j, t in enumerate(learned) if j + 1 == len(learned) or learned[j + 1] != t + 1]
        k = sum(1 for e in ends if e <= self.max_length)
        k = min(k, _num_turns(row) - 1)
        while k >= 1:
            new_row = truncate_turns(row, k)
            f = self._format(new_row)
            enc = self._processor_call([f])
            if int(enc["attention_mask"].sum()) <= self.max_length:
                return new_row, f
            k -= 1
        return None

    # -- reporting ----------------------------------------------------------------------
    def __getstate__(self):  # DataLoader workers started with "spawn" pickle the collator
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = CollatorStats()
            self.seen_ids = []


def _start(o) -> int:
    return o[0]


def _end(o) -> int:
    return o[1]


def _overlaps(o, s: int, e: int) -> bool:
    a, b = o[0], o[1]
    return (a < e and b > s) or (a == b and s <= a < e)


def _to_tensors(enc) -> dict:
    """The processor's output as torch tensors, converted here rather than by the processor: its
    generic converter walks nested Python lists element by element, which for the offset mapping
    of a long batch costs more than the tokenisation itself. Offsets and replacements stay lists."""
    out = {}
    for key, value in enc.items():
        if key in _DROP_KEYS or isinstance(value, torch.Tensor):
            out[key] = value
        elif isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(value)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(value))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)) \
                and value[0] and isinstance(value[0][0], int):
            out[key] = torch.tensor(value, dtype=torch.long)
        else:
            out[key] = torch.as_tensor(np.asarray(value))
    return out


def _shift_spans(formatted, replacements) -> list[tuple[int, int]]:
    """The formatter's assistant spans moved to coordinates of the processor's expanded text."""
    reps = sorted(replacements, key=lambda r: r["span"][0])
    text = formatted.text
    pos = 0
    for r in reps:
        start, end = r["span"]
        if start < pos or text[start:end] != r["text"]:
            raise MMCRError(f"the processor replaced {r['text']!r} at {start}, which is not a placeholder of the "
                            "formatted text; the formatter and the processor disagree about image tokens")
        pos = end
    out = []
    for s, e in formatted.assistant_spans:
        shifted = []
        for p in (s, e):
            delta = 0
            for r in reps:
                (rs, re_), (ns, ne) = r["span"], r["new_span"]
                if re_ <= p:
                    delta += (ne - ns) - (re_ - rs)
                elif rs < p:
                    raise MMCRError("an assistant span starts or ends inside an image placeholder")
            shifted.append(p + delta)
        out.append((shifted[0], shifted[1]))
    return out
