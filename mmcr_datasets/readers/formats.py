"""Raw formats <-> canonical records.

Each format is a :class:`RawFormat`: ``to_canonical(raw) -> (record | None, problems)`` and
``from_canonical(record) -> raw``, plus a pointer map so that issues point into the record the
user wrote (``/conversations/3/value``), not into the canonical form.

Placeholder convention (Ovis/LLaVA ``<image>``, MMDU ``<ImageHere>``, ShareGPT ``<image>``): the
n-th placeholder of the dialogue is the n-th image. One newline directly after or before a
placeholder is its separator and is not part of the text; the writers always put one there. Text
that uses that convention round-trips byte for byte; text glued to a placeholder (``<image>What``)
comes back with the newline (``<image>\nWhat``); other whitespace stays in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

PROBLEM = tuple  # (code, raw pointer, message)
_MSG_PTR = re.compile(r"^/messages/(\d+)(/.*)?$")
_IMG_PTR = re.compile(r"^/images(?:/(\d+))?$")

_LABEL_KEYS = ("dialogue_type", "domain", "subtopic", "source", "clip_scores", "num_images", "num_turns")


def split_placeholders(text: str, token: str, next_index: int) -> tuple[list[dict], int]:
    pieces = text.split(token)
    parts: list[dict] = []
    last = len(pieces) - 1
    for j, piece in enumerate(pieces):
        if j > 0:
            parts.append({"type": "image", "index": next_index})
            next_index += 1
            if piece.startswith("\n"):
                piece = piece[1:]
        if j < last and piece.endswith("\n"):
            piece = piece[:-1]
        if piece:
            parts.append({"type": "text", "text": piece})
    if not parts:
        parts.append({"type": "text", "text": text})  # empty text: reported as MMCR030
    return parts, next_index


def join_placeholders(content: list[dict], token: str) -> str:
    out: list[str] = []
    prev = None
    for part in content:
        kind = part["type"]
        piece = token if kind == "image" else part["text"]
        if prev is not None and (prev == "image" or kind == "image"):
            out.append("\n")
        out.append(piece)
        prev = kind
    return "".join(out)


@dataclass(frozen=True)
class RawFormat:
    name: str
    placeholder: Optional[str]
    to_canonical: Callable[[object, Optional[str]], tuple]
    from_canonical: Callable[[dict], dict]
    pointer_map_factory: Callable[[object], Callable[[str], str]]
    description: str = ""


def _labels(raw: dict, rec: dict) -> None:
    for key in _LABEL_KEYS:
        if key in raw:
            rec[key] = raw[key]


def _images_field(raw: dict, key: str, problems: list) -> list:
    value = raw.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    problems.append(("MMCR001", f"/{key}", f"{key} must be a path or a list of paths, got {type(value).__name__}"))
    return []


def _turn_list_to_canonical(raw, key, role_key, text_key, role_map, token, fallback_id):
    problems: list = []
    if not isinstance(raw, dict):
        return None, [("MMCR001", "", f"a record must be a JSON object, got {type(raw).__name__}")]
    conv = raw.get(key)
    if not isinstance(conv, list) or not conv:
        return None, [("MMCR001", f"/{key}", f"{key} must be a non-empty list")]
    images = _images_field(raw, "image" if "image" in raw or "images" not in raw else "images", problems)
    messages = []
    next_index = 0
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or not isinstance(turn.get(text_key), str) or not isinstance(turn.get(role_key), str):
            problems.append(("MMCR001", f"/{key}/{i}", f"each entry needs string {role_key!r} and {text_key!r}"))
            continue
        role = role_map.get(turn[role_key], turn[role_key])
        parts, next_index = split_placeholders(turn[text_key], token, next_index)
        messages.append({"role": role, "content": parts})
    if problems:
        return None, problems
    rid = raw.get("id", fallback_id)
    rec = {"id": rid if rid is None or isinstance(rid, str) else str(rid), "images": images, "messages": messages}
    _labels(raw, rec)
    return rec, []


def _turn_pointer_map(key: str, role_key: str, text_key: str, image_key: str, single: bool):
    def mapper(ptr: str) -> str:
        m = _MSG_PTR.match(ptr)
        if m:
            rest = m.group(2) or ""
            if rest.startswith("/role"):
                return f"/{key}/{m.group(1)}/{role_key}"
            if rest:
                return f"/{key}/{m.group(1)}/{text_key}"
            return f"/{key}/{m.group(1)}"
        if ptr == "/messages":
            return f"/{key}"
        m = _IMG_PTR.match(ptr)
        if m:
            return f"/{image_key}" if single or m.group(1) is None else f"/{image_key}/{m.group(1)}"
        return ptr
    return mapper


# -- Ovis / LLaVA ---------------------------------------------------------------------------
_LLAVA_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def llava_to_canonical(raw, fallback_id=None):
    return _turn_list_to_canonical(raw, "conversations", "from", "value", _LLAVA_ROLES, "<image>", fallback_id)


def llava_from_canonical(rec: dict) -> dict:
    back = {"user": "human", "assistant": "gpt", "system": "system"}
    images = rec.get("images") or []
    out = {"id": rec["id"]}
    if images:
        out["image"] = images[0] if len(images) == 1 else list(images)
    out["conversations"] = [
        {"from": back[m["role"]], "value": join_placeholders(m["content"], "<image>")} for m in rec["messages"]
    ]
    _copy_labels(rec, out)
    return out


def _copy_labels(rec: dict, out: dict) -> None:
    derived = "single_image" if len(rec.get("images") or []) == 1 else "multi_image"
    if rec.get("dialogue_type") not in (None, derived):  # only when it says more than the images do
        out["dialogue_type"] = rec["dialogue_type"]
    for key in ("domain", "subtopic", "source"):
        if rec.get(key) is not None:
            out[key] = rec[key]
    if rec.get("clip_scores"):
        out["clip_scores"] = list(rec["clip_scores"])


def _llava_pointers(raw):
    single = isinstance(raw, dict) and isinstance(raw.get("image"), str)
    return _turn_pointer_map("conversations", "from", "value", "image", single)


# -- MMDU -----------------------------------------------------------------------------------
_MMDU_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "human": "user", "gpt": "assistant"}


def mmdu_to_canonical(raw, fallback_id=None):
    return _turn_list_to_canonical(raw, "conversations", "from", "value", _MMDU_ROLES, "<ImageHere>", fallback_id)


def mmdu_from_canonical(rec: dict) -> dict:
    out = {"id": rec["id"], "image": list(rec.get("images") or [])}
    out["conversations"] = [
        {"from": m["role"], "value": join_placeholders(m["content"], "<ImageHere>")} for m in rec["messages"]
    ]
    _copy_labels(rec, out)
    return out


def _mmdu_pointers(raw):
    single = isinstance(raw, dict) and isinstance(raw.get("image"), str)
    return _turn_pointer_map("conversations", "from", "value", "image", single)


# -- ShareGPT-style JSONL -------------------------------------------------------------------
def sharegpt_to_canonical(raw, fallback_id=None):
    if isinstance(raw, dict) and "messages" not in raw and "conversations" in raw:
        return llava_to_canonical(raw, fallback_id)
    return _turn_list_to_canonical(raw, "messages", "role", "content", {}, "<image>", fallback_id)


def sharegpt_from_canonical(rec: dict) -> dict:
    out = {"id": rec["id"],
           "messages": [{"role": m["role"], "content": join_placeholders(m["content"], "<image>")} for m in rec["messages"]],
           "images": list(rec.get("images") or [])}
    _copy_labels(rec, out)
    return out


def _sharegpt_pointers(raw):
    return _turn_pointer_map("messages", "role", "content", "images", False)


# -- canonical / HF conversational (typed parts) ---------------------------------------------
def messages_to_canonical(raw, fallback_id=None):
    if not isinstance(raw, dict):
        return None, [("MMCR001", "", f"a record must be a JSON object, got {type(raw).__name__}")]
    msgs = raw.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return None, [("MMCR001", "/messages", "messages must be a non-empty list")]
    problems: list = []
    images = _images_field(raw, "images", problems)
    out_msgs = []
    next_index = 0
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            problems.append(("MMCR001", f"/messages/{i}", "a message needs a string role"))
            continue
        content = m.get("content")
        if isinstance(content, str):  # plain-string content: <image> placeholders
            parts, next_index = split_placeholders(content, "<image>", next_index)
        elif isinstance(content, list):
            parts = []
            for k, p in enumerate(content):
                if not isinstance(p, dict):
                    problems.append(("MMCR001", f"/messages/{i}/content/{k}", "a part must be an object"))
                    continue
                if p.get("type") == "image":
                    idx = p.get("index")
                    if idx is None:  # TRL style: images consumed in order
                        idx = next_index
                    parts.append({"type": "image", "index": idx})
                    next_index += 1
                elif p.get("type") == "text":
                    parts.append({"type": "text", "text": p.get("text")})
                else:
                    problems.append(("MMCR001", f"/messages/{i}/content/{k}/type",
                                     f"part type {p.get('type')!r} is not 'text' or 'image'"))
        else:
            problems.append(("MMCR001", f"/messages/{i}/content", "content must be a string or a list of parts"))
            continue
        out_msgs.append({"role": m["role"], "content": parts})
    if problems:
        return None, problems
    rid = raw.get("id", fallback_id)
    rec = {"id": rid if rid is None or isinstance(rid, str) else str(rid), "images": images, "messages": out_msgs}
    _labels(raw, rec)
    return rec, []


def messages_from_canonical(rec: dict) -> dict:
    out = {"id": rec["id"]}
    for key in ("dialogue_type", "domain", "subtopic"):
        out[key] = rec.get(key)
    out["images"] = list(rec.get("images") or [])
    out["messages"] = [
        {"role": m["role"], "content": [dict(p) for p in m["content"]]} for m in rec["messages"]
    ]
    out["source"] = rec.get("source")
    out["clip_scores"] = list(rec.get("clip_scores") or [])
    return out


def _identity_pointers(raw):
    return lambda ptr: ptr


FORMATS: dict[str, RawFormat] = {
    "llava": RawFormat("llava", "<image>", llava_to_canonical, llava_from_canonical, _llava_pointers,
                       "Ovis/LLaVA training JSON: id, image (str or list), conversations[from human/gpt, value]"),
    "mmdu": RawFormat("mmdu", "<ImageHere>", mmdu_to_canonical, mmdu_from_canonical, _mmdu_pointers,
                      "MMDU JSON: id, image[list], conversations[from user/assistant, value] with <ImageHere>"),
    "sharegpt": RawFormat("sharegpt", "<image>", sharegpt_to_canonical, sharegpt_from_canonical, _sharegpt_pointers,
                          "ShareGPT-style JSONL: messages[role, content str], images[list]"),
    "messages": RawFormat("messages", None, messages_to_canonical, messages_from_canonical, _identity_pointers,
                          "canonical JSONL / HF conversational: messages[role, content[typed parts]], images"),
}
FORMAT_ALIASES = {"ovis": "llava", "canonical": "messages", "conversational": "messages", "trl": "messages"}


def get_format(name: str) -> RawFormat:
    key = FORMAT_ALIASES.get(name, name)
    if key not in FORMATS:
        from ..errors import ReaderError

        raise ReaderError(f"unknown raw format {name!r}; choose one of {sorted(FORMATS)} (aliases: {sorted(FORMAT_ALIASES)})")
    return FORMATS[key]


def detect_format(record) -> Optional[str]:
    """Guess the raw format from one record (None when it looks like none of them)."""
    if not isinstance(record, dict):
        return None
    conv = record.get("conversations")
    if isinstance(conv, list):
        text = " ".join(str(t.get("value", "")) for t in conv if isinstance(t, dict))
        roles = {t.get("from") for t in conv if isinstance(t, dict)}
        if "<ImageHere>" in text or roles & {"user", "assistant"}:
            return "mmdu"
        return "llava"
    msgs = record.get("messages")
    if isinstance(msgs, list):
        if any(isinstance(m, dict) and isinstance(m.get("content"), list) for m in msgs):
            return "messages"
        return "sharegpt"
    return None
