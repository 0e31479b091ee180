"""Factories for tiny, real test data: images encoded by Pillow and raw records of each format."""

from __future__ import annotations

import io
import json
from pathlib import Path


def make_jpeg(width: int = 64, height: int = 48, seed: int = 0, quality: int = 80) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    for x in range(0, width, 7):
        for y in range(0, height, 5):
            img.putpixel((x, y), ((x * seed) % 256, (y * 3) % 256, (x + y) % 256))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def make_png(width: int = 32, height: int = 32) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def llava_record(rid: str = "r1", images=("a.jpg",), turns: int = 4, placements=None, **extra) -> dict:
    """An Ovis/LLaVA record. ``placements[t]`` = how many ``<image>`` go into turn ``t``."""
    images = list(images)
    if placements is None:
        placements = {0: len(images)}
    conv = []
    for t in range(turns):
        prefix = "<image>\n" * placements.get(t, 0)
        conv.append({"from": "human", "value": f"{prefix}Question {t + 1} about the picture?"})
        conv.append({"from": "gpt", "value": f"Answer {t + 1}, which refers back to turn {t}."})
    rec = {"id": rid, "image": images[0] if len(images) == 1 else images, "conversations": conv}
    rec.update(extra)
    return rec


def canonical_record(rid: str = "r1", images=("a.jpg",), turns: int = 4, placements=None, **extra) -> dict:
    images = list(images)
    if placements is None:
        placements = {0: len(images)}
    msgs = []
    nxt = 0
    for t in range(turns):
        parts = []
        for _ in range(placements.get(t, 0)):
            parts.append({"type": "image", "index": nxt})
            nxt += 1
        parts.append({"type": "text", "text": f"Question {t + 1}?"})
        msgs.append({"role": "user", "content": parts})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": f"Answer {t + 1}."}]})
    rec = {"id": rid, "images": images, "messages": msgs}
    rec.update(extra)
    return rec


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path
