"""OpenAI chat messages: the layout of the Chat Completions API and of OpenAI vision fine-tuning
JSONL (``{"messages": [...]}`` per line).

* system and assistant messages have string content;
* user messages have a list of parts, in dialogue order: ``{"type": "text", "text": ...}`` and
  ``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}`` -- each image
  embedded as a base64 data URL of its original bytes, at the place the dialogue refers to it.

Round trip (``to_openai_messages`` then ``from_openai_messages``) keeps messages, parts and image
bytes identical. Not expressible, per field: image paths (only bytes travel) and the row's
labels (``id``, ``domain``, ``subtopic``, ``source``), which are written as extra top-level keys only
with ``include_metadata=True`` (the fine-tuning endpoint accepts only ``messages``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

from ..errors import MMCRError
from .images import from_data_url, image_bytes, to_data_url

METADATA_KEYS = ("id", "dialogue_type", "domain", "subtopic", "source")


def _row_dict(row: Any) -> Mapping:
    if isinstance(row, Mapping):
        return row
    return row.to_row()  # a records.Dialogue


def to_openai_messages(row: Any, *, image_root: Optional[Union[str, Path]] = None,
                       detail: Optional[str] = None) -> list[dict]:
    """One dialogue as OpenAI chat messages (images as base64 ``image_url`` parts, in place)."""
    row = _row_dict(row)
    images = row.get("images") or []
    urls: dict[int, str] = {}
    out = []
    for m in row["messages"]:
        role, content = m["role"], m["content"]
        has_image = any(p["type"] == "image" for p in content)
        if role != "user" and not has_image:
            out.append({"role": role, "content": "".join(p["text"] for p in content)})
            continue
        if role != "user":
            raise MMCRError(f"dialogue {row.get('id')!r}: OpenAI messages carry images only in user turns")
        parts = []
        for p in content:
            if p["type"] == "image":
                i = p["index"]
                if i not in urls:
                    urls[i] = to_data_url(image_bytes(images[i], image_root))
                image_url = {"url": urls[i]}
                if detail:
                    image_url["detail"] = detail
                parts.append({"type": "image_url", "image_url": image_url})
            else:
                parts.append({"type": "text", "text": p["text"]})
        out.append({"role": role, "content": parts})
    return out


def from_openai_messages(messages: list[dict], **fields) -> dict:
    """OpenAI chat messages -> a dataset row (images as ``{"bytes", "path": None}``, one per
    ``image_url`` part, in order of appearance: MMCR uses every image exactly once)."""
    images: list[dict] = []
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            parts = [{"type": "text", "text": content, "index": None}]
        else:
            parts = []
            for p in content:
                if p["type"] == "text":
                    parts.append({"type": "text", "text": p["text"], "index": None})
                elif p["type"] == "image_url":
                    images.append({"bytes": from_data_url(p["image_url"]["url"]), "path": None})
                    parts.append({"type": "image", "text": None, "index": len(images) - 1})
                else:
                    raise MMCRError(f"unsupported OpenAI content part type {p['type']!r}")
        out.append({"role": m["role"], "content": parts})
    row = {"messages": out, "images": images}
    row.update(fields)
    return row


def write_openai_jsonl(rows: Iterable[Any], path: Union[str, Path], *, image_root=None,
                       include_metadata: bool = False, detail: Optional[str] = None) -> int:
    """Write one ``{"messages": [...]}`` JSON object per line; returns the number of dialogues."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            row = _row_dict(row)
            rec: dict = {}
            if include_metadata:
                rec.update({k: row.get(k) for k in METADATA_KEYS if row.get(k) is not None})
            rec["messages"] = to_openai_messages(row, image_root=image_root, detail=detail)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_openai_jsonl(path: Union[str, Path]) -> Iterator[dict]:
    """Rows back from :func:`write_openai_jsonl` output (metadata keys restored when present)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                msgs = rec.pop("messages")
                yield from_openai_messages(msgs, **rec)
