"""Loading MMCR-Bench dialogues and cutting them into per-turn model requests.

A :class:`TurnRequest` is what the evaluated model sees at turn ``t`` of a dialogue: the user
questions of turns ``0..t``, the assistant answers of turns ``0..t-1`` (the reference answers or
the model's own, depending on the history mode) and the images referred to so far, in the order
of their image parts. Its ``messages`` use the conversational format that transformers
processors and TRL accept (``{"type": "image"}`` / ``{"type": "text", "text": ...}`` parts).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..errors import MMCRError
from ..images import mime_type
from ..records import Dialogue, ImagePart, ImageRef, Message, TextPart

HISTORY_MODES = ("reference", "model")


def load_dialogues(data, *, taxonomy=None, limit: Optional[int] = None, image_root=None) -> list[Dialogue]:
    """MMCR-Bench dialogues from a path, a Hub id, a ``datasets.Dataset`` or a list of dialogues/rows.

    * a Hub-layout folder or a parquet file: read with pyarrow (no ``datasets`` needed);
    * a raw file or folder (Ovis/LLaVA, MMDU, ShareGPT, canonical JSON): prepared through the
      bench builder (``image_root`` locates the images);
    * any other string: a Hub dataset id, read with ``datasets.load_dataset(id, split="test")``.
    """
    from ..taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    rows: Iterable
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.exists():
            from ..validation import is_hub_folder

            if is_hub_folder(path) or path.suffix == ".parquet":
                from ..hub import iter_rows

                rows = iter_rows(path)
            else:
                from ..hub import load

                rows = load("mmcr/bench", data_dir=path, split="test", image_root=image_root, taxonomy=tax)
        else:
            import datasets

            ds = datasets.load_dataset(str(data), split="test")
            if "images" in ds.features:
                ds = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
            rows = ds
    else:
        rows = data
    out = []
    for row in rows:
        out.append(row if isinstance(row, Dialogue) else Dialogue.from_row(row, tax))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise MMCRError(f"no dialogues found in {data!r}")
    ids = [d.id for d in out]
    if len(set(ids)) != len(ids):
        raise MMCRError("dialogue ids must be unique to evaluate (they key the cache and the results)")
    return out


def image_bytes(ref: ImageRef) -> bytes:
    """The encoded bytes of an image reference (read from its path when no bytes are embedded)."""
    if ref.bytes is not None:
        return ref.bytes
    if ref.path and Path(ref.path).is_file():
        return Path(ref.path).read_bytes()
    raise MMCRError(f"image {ref.path!r} has no embedded bytes and is not a readable file")


def image_digest(ref: ImageRef) -> str:
    return hashlib.sha256(image_bytes(ref)).hexdigest()


def image_mime(data: bytes) -> str:
    return mime_type(data)


def data_uri(ref: ImageRef) -> str:
    """A ``data:`` URI with the image bytes in base64, as OpenAI-compatible servers accept."""
    data = image_bytes(ref)
    return f"data:{image_mime(data)};base64," + base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class TurnRequest:
    """One model call: ``messages`` up to and including the user question of turn ``turn`` (0-based)."""

    dialogue_id: str
    turn: int
    messages: tuple
    images: tuple = field(default=(), repr=False)

    def pil_images(self) -> list:
        from PIL import Image

        out = []
        for ref in self.images:
            img = Image.open(io.BytesIO(image_bytes(ref)))
            out.append(img.convert("RGB"))
        return out

    def openai_messages(self) -> list[dict]:
        """The messages with each image part as a base64 ``image_url`` part."""
        images = iter(self.images)
        out = []
        for m in self.messages:
            parts = []
            for p in m["content"]:
                if p["type"] == "image":
                    parts.append({"type": "image_url", "image_url": {"url": data_uri(next(images))}})
                else:
                    parts.append({"type": "text", "text": p["text"]})
            if m["role"] == "assistant":
                out.append({"role": "assistant", "content": "".join(p.get("text", "") for p in parts)})
            else:
                out.append({"role": m["role"], "content": parts})
        return out

    def digest(self) -> str:
        """A hash of the request: message text and the bytes of every image."""
        payload = {"messages": list(self.messages), "images": [image_digest(r) for r in self.images]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _hf_message(message: Message, image_map: dict) -> dict:
    parts = []
    for p in message.content:
        if isinstance(p, ImagePart):
            parts.append({"type": "image"})
        elif isinstance(p, TextPart) and p.text:
            parts.append({"type": "text", "text": p.text})
    return {"role": message.role, "content": parts}


def turn_pairs(dialogue: Dialogue) -> list[tuple[Message, Message]]:
    return list(dialogue.iter_turns())


def system_message(dialogue: Dialogue) -> Optional[Message]:
    first = dialogue.messages[0] if dialogue.messages else None
    return first if first is not None and first.role == "system" else None


def build_request(dialogue: Dialogue, turn: int, answers: Sequence[str]) -> TurnRequest:
    """The request for ``turn`` with ``answers[k]`` as the assistant reply of each earlier turn ``k``."""
    pairs = turn_pairs(dialogue)
    if not 0 <= turn < len(pairs):
        raise IndexError(f"dialogue {dialogue.id} has {len(pairs)} turns; no turn {turn}")
    msgs, images = [], []
    sys_msg = system_message(dialogue)
    if sys_msg is not None:
        msgs.append({"role": "system", "content": [{"type": "text", "text": sys_msg.text}]})
    for k in range(turn + 1):
        user, _ = pairs[k]
        images.extend(dialogue.images[i] for i in user.image_indices)
        msgs.append(_hf_message(user, {}))
        if k < turn:
            msgs.append({"role": "assistant", "content": [{"type": "text", "text": answers[k]}]})
    return TurnRequest(dialogue.id, turn, tuple(msgs), tuple(images))


def history_text(request: TurnRequest) -> str:
    """The conversation before the last user message as plain text, images as ``[image N]``."""
    lines, n = [], 0
    for m in request.messages[:-1]:
        chunks = []
        for p in m["content"]:
            if p["type"] == "image":
                n += 1
                chunks.append(f"[image {n}]")
            else:
                chunks.append(p["text"])
        lines.append(f"{m['role'].capitalize()}: " + " ".join(chunks))
    return "\n".join(lines) if lines else "(no earlier turns)"


def question_text(request: TurnRequest) -> str:
    """The last user message as text, its images numbered after those of the history."""
    n = sum(1 for m in request.messages[:-1] for p in m["content"] if p["type"] == "image")
    chunks = []
    for p in request.messages[-1]["content"]:
        if p["type"] == "image":
            n += 1
            chunks.append(f"[image {n}]")
        else:
            chunks.append(p["text"])
    return " ".join(chunks)
