"""Safe, explicit repairs of canonical records. Never applied by validation or building.

Each fix takes a canonical record and returns ``(new_record, changes)``: a fresh dict (the input
is not modified) and a list of :class:`Change` entries saying what moved where. A fix that does
not apply returns the record unchanged and no changes.

>>> fixed, log = fix_missing_placeholders(record)
>>> for change in log: print(change)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class Change:
    fix: str
    record_id: str
    pointer: str
    description: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.fix} at {self.pointer}: {self.description}"


def _image_parts(rec):
    for i, m in enumerate(rec["messages"]):
        for k, p in enumerate(m["content"]):
            if p.get("type") == "image":
                yield i, k, p


def fix_missing_placeholders(record: dict) -> tuple[dict, list[Change]]:
    """Images listed but never referenced (LLaVA records without ``<image>``): put them, in order,
    at the start of the first user message. Applies only when the record has no image reference
    at all (otherwise which image goes where is a guess, and nothing is changed)."""
    rec = copy.deepcopy(record)
    images = rec.get("images") or []
    if not images or any(True for _ in _image_parts(rec)):
        return rec, []
    for i, m in enumerate(rec["messages"]):
        if m["role"] == "user":
            m["content"][:0] = [{"type": "image", "index": k} for k in range(len(images))]
            return rec, [Change("fix_missing_placeholders", rec.get("id"), f"/messages/{i}/content/0",
                                f"inserted {len(images)} image reference(s) before the first user text")]
    return record, []


def fix_image_order(record: dict) -> tuple[dict, list[Change]]:
    """Reorder ``images`` (and ``clip_scores``) so that index k is the k-th image referenced.

    Applies only when every image is referenced exactly once (a permutation)."""
    rec = copy.deepcopy(record)
    images = rec.get("images") or []
    order = [p["index"] for _, _, p in _image_parts(rec)]
    if sorted(order) != list(range(len(images))) or order == sorted(order):
        return rec, []
    new_index = {old: new for new, old in enumerate(order)}
    for _, _, p in _image_parts(rec):
        p["index"] = new_index[p["index"]]
    rec["images"] = [images[old] for old in order]
    scores = rec.get("clip_scores") or []
    if len(scores) == len(images):
        rec["clip_scores"] = [scores[old] for old in order]
    return rec, [Change("fix_image_order", rec.get("id"), "/images",
                        f"reordered images {order} -> {list(range(len(order)))}")]


def fix_derived_fields(record: dict) -> tuple[dict, list[Change]]:
    """Recompute ``num_images``, ``num_turns`` and ``dialogue_type`` from the data."""
    rec = copy.deepcopy(record)
    changes = []
    n_images = len(rec.get("images") or [])
    n_turns = sum(1 for m in rec["messages"] if m.get("role") == "user")
    want = {"num_images": n_images, "num_turns": n_turns,
            "dialogue_type": "single_image" if n_images == 1 else "multi_image"}
    for key, value in want.items():
        if key in rec and rec[key] is not None and rec[key] != value:
            changes.append(Change("fix_derived_fields", rec.get("id"), f"/{key}", f"{rec[key]!r} -> {value!r}"))
            rec[key] = value
    return rec, changes


def fix_whitespace(record: dict) -> tuple[dict, list[Change]]:
    """Strip leading/trailing whitespace of text parts and drop parts that become empty in user
    messages that still hold other content."""
    rec = copy.deepcopy(record)
    changes = []
    for i, m in enumerate(rec["messages"]):
        kept = []
        for k, p in enumerate(m["content"]):
            if p.get("type") == "text" and isinstance(p.get("text"), str):
                stripped = p["text"].strip()
                if stripped != p["text"]:
                    changes.append(Change("fix_whitespace", rec.get("id"), f"/messages/{i}/content/{k}/text",
                                          "stripped surrounding whitespace"))
                    p["text"] = stripped
                if not stripped and len(m["content"]) > 1:
                    changes.append(Change("fix_whitespace", rec.get("id"), f"/messages/{i}/content/{k}",
                                          "dropped an empty text part"))
                    continue
            kept.append(p)
        m["content"] = kept
    return rec, changes


ALL_FIXES: dict[str, Callable[[dict], tuple[dict, list[Change]]]] = {
    "missing_placeholders": fix_missing_placeholders,
    "image_order": fix_image_order,
    "derived_fields": fix_derived_fields,
    "whitespace": fix_whitespace,
}


def apply_fixes(record: dict, names: Iterable[str]) -> tuple[dict, list[Change]]:
    """Apply the named fixes in order; return the record and the combined change log."""
    log: list[Change] = []
    for name in names:
        if name not in ALL_FIXES:
            raise ValueError(f"unknown fix {name!r}; choose from {sorted(ALL_FIXES)}")
        record, changes = ALL_FIXES[name](record)
        log.extend(changes)
    return record, log
