"""Rows for the formatter tests: the bundled sample converted to dataset rows, and edge cases."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "mmcr_datasets" / "sample"
IMAGES = SAMPLE / "images"


def text(t: str) -> dict:
    return {"type": "text", "text": t, "index": None}


def image(i: int) -> dict:
    return {"type": "image", "text": None, "index": i}


def user(*parts) -> dict:
    return {"role": "user", "content": [text(p) if isinstance(p, str) else p for p in parts]}


def assistant(t: str) -> dict:
    return {"role": "assistant", "content": [text(t)]}


def system(t: str) -> dict:
    return {"role": "system", "content": [text(t)]}


def _split(value: str, next_index: int):
    """Ovis/LLaVA text -> typed parts: the n-th <image> is the n-th image; one newline next to a
    placeholder is its separator; empty text pieces are dropped."""
    pieces = value.split("<image>")
    parts = []
    for j, piece in enumerate(pieces):
        if j > 0:
            parts.append(image(next_index))
            next_index += 1
            if piece.startswith("\n"):
                piece = piece[1:]
        if j < len(pieces) - 1 and piece.endswith("\n"):
            piece = piece[:-1]
        if piece:
            parts.append(text(piece))
    return parts, next_index


def llava_to_row(rec: dict) -> dict:
    names = [rec["image"]] if isinstance(rec["image"], str) else list(rec["image"])
    messages, n = [], 0
    for turn in rec["conversations"]:
        role = {"human": "user", "gpt": "assistant", "system": "system"}[turn["from"]]
        parts, n = _split(turn["value"], n)
        messages.append({"role": role, "content": parts})
    assert n == len(names), rec["id"]
    return {
        "id": rec["id"],
        "images": [{"bytes": None, "path": str(IMAGES / name)} for name in names],
        "messages": messages,
        "domain": rec.get("domain"),
        "subtopic": rec.get("subtopic"),
        "source": rec.get("source"),
    }


SAMPLE_FILES = ("310k/train.json", "bench/test.json")


def local_sample_rows() -> list[dict]:
    """The sample converted by :func:`llava_to_row` (no dependency on the package's readers)."""
    rows = []
    for f in SAMPLE_FILES:
        rows += [llava_to_row(r) for r in json.loads((SAMPLE / f).read_text(encoding="utf-8"))]
    return rows


def reader_sample_rows() -> list[dict]:
    """The sample read by the package's own reader (``mmcr_datasets.readers.read_raw``)."""
    from mmcr_datasets.readers import read_raw
    from mmcr_datasets.records import Dialogue

    rows = []
    for f in SAMPLE_FILES:
        for item in read_raw(SAMPLE / f, "llava"):
            row = Dialogue.from_json(item.record).to_row()
            row["images"] = [{"bytes": None, "path": str(IMAGES / img["path"])} for img in row["images"]]
            rows.append(row)
    return rows


def sample_rows() -> list[dict]:
    """The bundled sample as dataset rows: through the package's reader when it exists."""
    try:
        return reader_sample_rows()
    except ImportError:
        return local_sample_rows()


def _imgs(n):
    names = sorted(p.name for p in IMAGES.glob("*.jpg"))
    return [{"bytes": None, "path": str(IMAGES / names[i])} for i in range(n)]


def edge_rows() -> dict[str, dict]:
    """Named edge-case dialogues (text-safe for every family unless the name says otherwise)."""
    return {
        "several_images_one_turn": {
            "id": "edge-several", "images": _imgs(3),
            "messages": [
                user(image(0), image(1), "Compare these two photos.", image(2), "And this one?"),
                assistant("The first is brighter; the third is a close-up."),
                user("Which one has more texture?"),
                assistant("The second one."),
            ],
        },
        "images_only_in_later_turns": {
            "id": "edge-later", "images": _imgs(2),
            "messages": [
                user("I will show you pictures soon. Ready?"),
                assistant("Ready."),
                user("Here is the first.", image(0)),
                assistant("A cat."),
                user(image(1), "And the second?"),
                assistant("A rocket on a launch pad."),
            ],
        },
        "system_prompt": {
            "id": "edge-system", "images": _imgs(1),
            "messages": [
                system("You are a careful visual analyst."),
                user(image(0), "What is this?"),
                assistant("A photograph of a clock."),
            ],
        },
        "unicode": {
            "id": "edge-unicode", "images": _imgs(1),
            "messages": [
                user(image(0), "这是什么？ Qu'est-ce que c'est ? 🐱 — naïve café, مرحبا"),
                assistant("一只猫 🐈. Ça va ✓ ħ ∑ 𝔘"),
                user("And with tabs\tand\u00a0non-breaking spaces?"),
                assistant("  Leading and trailing spaces are kept or trimmed by the family.  \n"),
            ],
        },
        "jinja_syntax": {
            "id": "edge-jinja", "images": _imgs(1),
            "messages": [
                user(image(0), "Render {{ messages }} and {% if x %}y{% endif %} {# c #} literally."),
                assistant("Literal: {{ 1 + 1 }} {%- raw %} %}"),
            ],
        },
    }


def mmcr_single() -> dict:
    """An MMCR-style single-image dialogue: 4 turns, the image in the first question."""
    return {
        "id": "golden-single", "images": _imgs(1),
        "messages": [
            user(image(0), "What is shown in this picture?"),
            assistant("A brass astronomical clock on a tower facade."),
            user("What do the two dials tell you?"),
            assistant("The outer dial shows the hours; the inner ring follows the zodiac."),
            user("Does that fit the building you mentioned?"),
            assistant("Yes: such clocks were civic landmarks on town halls."),
            user("Sum up the theme in one sentence."),
            assistant("Timekeeping as public art."),
        ],
    }


def mmcr_multi() -> dict:
    """An MMCR-style multi-image dialogue: 8 turns, three images introduced over the dialogue."""
    qa = [
        ([image(0), "Describe the first image briefly."], "A cat looking at the camera."),
        (["What colour are its eyes?"], "Yellow-green."),
        ([image(1), "Here is a second image. How does it relate to the first?"], "Both are close-ups of faces."),
        (["Which of the two is brighter?"], "The second one."),
        (["And the lighting in the first?"], "Soft indoor light."),
        ([image(2), "A third one. Any common theme now?"], "Portraits of living beings."),
        (["Which image breaks the pattern most?"], "The third, because it is a landscape."),
        (["Summarise the three images."], "Two portraits and a landscape, each softly lit."),
    ]
    messages = []
    for q, a in qa:
        messages += [user(*q), assistant(a)]
    return {"id": "golden-multi", "images": _imgs(3), "messages": messages}


def literal_token_row(token: str) -> dict:
    return {
        "id": "edge-literal", "images": _imgs(1),
        "messages": [
            user(image(0), f"What does the string {token} mean in a prompt?"),
            assistant(f"It is a control token: {token}."),
        ],
    }
