"""VLMEvalKit multi-turn TSV (the layout of its ``ImageMTDataset`` / MMDU benchmark).

One row per dialogue, tab-separated, read by VLMEvalKit with ``pandas.read_csv(sep="\\t")``:

=============  ====================================================================================
``index``      0-based integer row index
``question``   Python-literal list of the user turns; ``<ImageHere>`` marks each image, in order
``answer``     Python-literal list of the assistant answers (same length)
``image``      base64 of the image (one image) or a Python-literal list of base64 strings
``image_path`` file name (one image) or a list of file names, used by VLMEvalKit to dump the images
``id`` ...     ``id``, ``dialogue_type``, ``domain``, ``subtopic``, ``num_images``, ``num_turns``
=============  ====================================================================================

VLMEvalKit's ``build_prompt`` splits each question on ``<ImageHere>`` and keeps the text pieces
verbatim, so each placeholder is separated from neighbouring text by one newline (the MMDU
convention; the readers strip it again). Not expressible: a system prompt (``system="drop"`` drops
it, the default ``"raise"`` refuses), images in assistant turns, and image paths other than the
file name.
"""

from __future__ import annotations

import ast
import base64
import csv
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

from ..errors import MMCRError
from ..formatters.base import join_with_newlines
from .images import image_bytes, sniff_mime

PLACEHOLDER = "<ImageHere>"
COLUMNS = ("index", "question", "answer", "image", "image_path", "id", "dialogue_type", "domain", "subtopic",
           "num_images", "num_turns")
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp", "image/bmp": ".bmp"}


def _row_dict(row: Any) -> Mapping:
    return row if isinstance(row, Mapping) else row.to_row()


def _label(value):
    return "" if value is None or value == -1 else str(value)


def to_vlmevalkit_record(row: Any, index: int, *, image_root=None, system: str = "raise") -> dict:
    """One dialogue as a VLMEvalKit MT record (strings, ready for the TSV)."""
    row = _row_dict(row)
    messages = row["messages"]
    rid = row.get("id")
    if messages and messages[0]["role"] == "system":
        if system != "drop":
            raise MMCRError(f"dialogue {rid!r} has a system prompt, which the VLMEvalKit MT format cannot carry; "
                            "pass system='drop' to write_vlmevalkit_tsv to drop it")
        messages = messages[1:]
    questions, answers, order = [], [], []
    for m in messages:
        if m["role"] == "user":
            questions.append(join_with_newlines(m["content"], lambda k: PLACEHOLDER, order))
        elif m["role"] == "assistant":
            if any(p["type"] == "image" for p in m["content"]):
                raise MMCRError(f"dialogue {rid!r}: VLMEvalKit MT supports images only in questions")
            answers.append("".join(p["text"] for p in m["content"]))
        else:
            raise MMCRError(f"dialogue {rid!r}: unexpected role {m['role']!r}")
    if len(questions) != len(answers):
        raise MMCRError(f"dialogue {rid!r}: {len(questions)} questions but {len(answers)} answers")
    images = row.get("images") or []
    blobs = [image_bytes(images[i], image_root) for i in order]
    b64 = [base64.b64encode(b).decode("ascii") for b in blobs]
    stem = str(rid if rid is not None else index).replace("/", "_")
    names = [f"{stem}_{k}{_EXT.get(sniff_mime(b), '.png')}" for k, b in enumerate(blobs)]
    single = len(b64) == 1
    return {
        "index": str(index),
        "question": repr(questions),
        "answer": repr(answers),
        "image": b64[0] if single else repr(b64),
        "image_path": names[0] if single else repr(names),
        "id": "" if rid is None else str(rid),
        "dialogue_type": _label(row.get("dialogue_type")),
        "domain": _label(row.get("domain")),
        "subtopic": _label(row.get("subtopic")),
        "num_images": str(len(b64)),
        "num_turns": str(len(questions)),
    }


def write_vlmevalkit_tsv(rows: Iterable[Any], path: Union[str, Path], *, image_root=None,
                         system: str = "raise") -> int:
    """Write the dialogues as a VLMEvalKit multi-turn TSV; returns the number written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writeheader()
        for i, row in enumerate(rows):
            w.writerow(to_vlmevalkit_record(row, i, image_root=image_root, system=system))
            n += 1
    return n


def _as_list(value: str) -> list[str]:
    if value.startswith("[") and value.endswith("]"):
        return [str(x) for x in ast.literal_eval(value)]
    return [value] if value else []


def read_vlmevalkit_tsv(path: Union[str, Path]) -> Iterator[dict]:
    """Rows back from a VLMEvalKit MT TSV (``<ImageHere>`` -> image parts, base64 -> bytes)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f, delimiter="\t"):
            questions, answers = _as_list(rec["question"]), _as_list(rec["answer"])
            blobs = [base64.b64decode(s) for s in _as_list(rec.get("image") or "")]
            messages, n = [], 0
            for q, a in zip(questions, answers):
                parts, n = _split(q, n)
                messages.append({"role": "user", "content": parts})
                messages.append({"role": "assistant", "content": [{"type": "text", "text": a, "index": None}]})
            if n != len(blobs):
                raise MMCRError(f"TSV row {rec.get('index')}: {n} {PLACEHOLDER} placeholders but {len(blobs)} images")
            row = {"id": rec.get("id") or rec.get("index"), "messages": messages,
                   "images": [{"bytes": b, "path": None} for b in blobs]}
            for key in ("dialogue_type", "domain", "subtopic"):
                if rec.get(key):
                    row[key] = rec[key]
            yield row


def _split(text: str, next_index: int):
    """Inverse of the newline convention: the n-th placeholder is image n; one adjacent newline is
    the separator; empty text pieces are dropped."""
    pieces = text.split(PLACEHOLDER)
    parts = []
    for j, piece in enumerate(pieces):
        if j > 0:
            parts.append({"type": "image", "text": None, "index": next_index})
            next_index += 1
            if piece.startswith("\n"):
                piece = piece[1:]
        if j < len(pieces) - 1 and piece.endswith("\n"):
            piece = piece[:-1]
        if piece:
            parts.append({"type": "text", "text": piece, "index": None})
    return parts, next_index
