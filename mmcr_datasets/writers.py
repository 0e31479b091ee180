"""Writers: dataset rows (or Dialogues, or canonical records) back to each raw format.

What each target can express:

| field | llava | mmdu | sharegpt | messages |
|---|---|---|---|---|
| id, messages, image order | yes | yes | yes | yes |
| image placement inside a message | yes (placeholder) | yes | yes | yes (typed parts) |
| domain, subtopic, dialogue_type, source, clip_scores | extra keys (read back by our reader; other tools ignore them) | extra keys | extra keys | yes |
| literal `<image>` / `<ImageHere>` in text | no: refused (MMCR032) | no: refused | no: refused | yes |
| image bytes | written as files under ``image_root`` | files | files | files |

A placeholder is always separated from neighbouring text by one newline (see :mod:`.readers.formats`).
Every write is atomic (temporary file + rename).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from .errors import MMCRError
from .images import file_extension
from .readers.formats import get_format
from .records import Dialogue

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
JSONL_FORMATS = ("sharegpt", "messages")


def _as_dialogue(item, taxonomy) -> Dialogue:
    if isinstance(item, Dialogue):
        return item
    if isinstance(item, dict) and "messages" in item and _is_row(item):
        return Dialogue.from_row(item, taxonomy)
    if isinstance(item, dict):
        return Dialogue.from_json(item)
    raise TypeError(f"cannot write {type(item).__name__}; give rows, Dialogues or canonical dicts")


def _is_row(item: dict) -> bool:
    imgs = item.get("images") or []
    return isinstance(item.get("domain"), int) or any(not isinstance(i, str) for i in imgs)


def _image_name(d: Dialogue, k: int, data: Optional[bytes]) -> str:
    ref = d.images[k]
    if ref.path:
        norm = os.path.normpath(ref.path.replace("\\", "/"))
        if not os.path.isabs(norm) and not norm.startswith(".."):
            return norm.replace(os.sep, "/")
    ext = file_extension(data) if data else "jpg"
    return f"{_SAFE.sub('_', d.id)}_{k}.{ext}"


def dialogue_to_canonical(d: Dialogue, image_root: Optional[Path] = None) -> dict:
    """Canonical record of ``d``; with ``image_root``, image bytes are written there as files."""
    rec = d.to_json()
    paths = []
    for k, ref in enumerate(d.images):
        data = ref.bytes
        name = _image_name(d, k, data)
        if image_root is not None and data is not None:
            target = Path(image_root) / name
            if not (target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.partial")
                tmp.write_bytes(data)
                os.replace(tmp, target)
        elif ref.path is None:
            raise MMCRError(f"record {d.id!r}: image {k} has neither a path nor bytes to write")
        paths.append(name)
    rec["images"] = paths
    return rec


def iter_raw(items: Iterable, format: str, *, taxonomy=None, image_root=None) -> Iterator[dict]:
    """Yield raw records of ``format`` for rows / Dialogues / canonical dicts."""
    fmt = get_format(format)
    for item in items:
        d = _as_dialogue(item, taxonomy)
        rec = dialogue_to_canonical(d, image_root)
        if fmt.placeholder is not None:
            _refuse_literal_placeholders(rec, fmt)
        yield fmt.from_canonical(rec)


def _refuse_literal_placeholders(rec: dict, fmt) -> None:
    for i, m in enumerate(rec["messages"]):
        for k, p in enumerate(m["content"]):
            if p["type"] == "text" and any(t in p["text"] for t in ("<image>", "<ImageHere>")):
                raise MMCRError(
                    f"record {rec['id']!r} /messages/{i}/content/{k}: the text holds a literal placeholder token, "
                    f"which the {fmt.name} format cannot tell from an image (MMCR032); export to 'messages' instead "
                    "or rephrase the text"
                )


def write_raw(items: Iterable, path: Union[str, Path], format: str, *, taxonomy=None, image_root=None,
              keyed: bool = False) -> int:
    """Write records to ``path`` in ``format``; returns the number written.

    ``llava`` and ``mmdu`` write a JSON array (``keyed=True``: an object keyed by id, MMDU's
    other layout); ``sharegpt`` and ``messages`` write JSON Lines. Images with bytes are written
    under ``image_root`` when given.
    """
    fmt = get_format(format)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            records = iter_raw(items, fmt.name, taxonomy=taxonomy, image_root=image_root)
            if fmt.name in JSONL_FORMATS and not path.suffix == ".json":
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    n += 1
            else:
                fh.write("{" if keyed else "[")
                for rec in records:
                    fh.write(",\n" if n else "\n")
                    if keyed:
                        fh.write(json.dumps(rec["id"], ensure_ascii=False) + ": ")
                    fh.write(json.dumps(rec, ensure_ascii=False, indent=None))
                    n += 1
                fh.write("\n}\n" if keyed else "\n]\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n
