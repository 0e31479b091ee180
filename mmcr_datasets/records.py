"""In-memory records: small frozen dataclasses for one dialogue (the third view of the contract).

A :class:`Dialogue` converts losslessly to and from

* the canonical JSON record (``to_json`` / ``from_json``; ``schema/record.schema.json``), and
* the Arrow row (``to_row`` / ``from_row``; :mod:`mmcr_datasets.features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

ROLES = ("system", "user", "assistant")
DIALOGUE_TYPES = ("single_image", "multi_image")


@dataclass(frozen=True)
class TextPart:
    text: str
    type: str = field(default="text", init=False)

    def to_json(self) -> dict:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class ImagePart:
    index: int
    type: str = field(default="image", init=False)

    def to_json(self) -> dict:
        return {"type": "image", "index": self.index}


Part = Union[TextPart, ImagePart]


@dataclass(frozen=True)
class Message:
    role: str
    content: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The concatenated text parts (images dropped)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def image_indices(self) -> list[int]:
        return [p.index for p in self.content if isinstance(p, ImagePart)]

    def to_json(self) -> dict:
        return {"role": self.role, "content": [p.to_json() for p in self.content]}

    def to_row(self) -> dict:
        return {
            "role": self.role,
            "content": [
                {"type": "text", "text": p.text, "index": None}
                if isinstance(p, TextPart)
                else {"type": "image", "text": None, "index": p.index}
                for p in self.content
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> "Message":
        return cls(data["role"], tuple(part_from_json(p) for p in data["content"]))


def part_from_json(part: dict) -> Part:
    if part.get("type") == "image":
        return ImagePart(int(part["index"]))
    return TextPart(part["text"])


@dataclass(frozen=True)
class ImageRef:
    """An image by path (relative to an image root) and/or by its encoded bytes."""

    path: Optional[str] = None
    bytes: Optional[bytes] = field(default=None, repr=False)

    def to_row(self) -> dict:
        return {"bytes": self.bytes, "path": self.path}


@dataclass(frozen=True)
class Dialogue:
    """One MMCR dialogue: messages with typed parts, and the images they refer to by index."""

    id: str
    messages: tuple[Message, ...]
    images: tuple[ImageRef, ...] = ()
    dialogue_type: Optional[str] = None
    domain: Optional[str] = None
    subtopic: Optional[str] = None
    source: Optional[str] = None
    clip_scores: tuple[float, ...] = ()

    def __post_init__(self):
        if self.dialogue_type is None:
            kind = "single_image" if len(self.images) == 1 else "multi_image"
            object.__setattr__(self, "dialogue_type", kind)

    @property
    def num_images(self) -> int:
        return len(self.images)

    @property
    def num_turns(self) -> int:
        return count_turns(m.role for m in self.messages)

    def iter_turns(self) -> Iterator[tuple[Message, Message]]:
        """Yield (user, assistant) pairs, skipping a leading system message."""
        msgs = [m for m in self.messages if m.role != "system"]
        for i in range(0, len(msgs) - 1, 2):
            yield msgs[i], msgs[i + 1]

    # -- canonical JSON -------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "id": self.id,
            "dialogue_type": self.dialogue_type,
            "domain": self.domain,
            "subtopic": self.subtopic,
            "images": [img.path for img in self.images],
            "messages": [m.to_json() for m in self.messages],
            "num_images": self.num_images,
            "num_turns": self.num_turns,
            "source": self.source,
            "clip_scores": list(self.clip_scores),
        }

    @classmethod
    def from_json(cls, data: dict, image_bytes: Optional[list] = None) -> "Dialogue":
        paths = data.get("images") or []
        blobs = image_bytes if image_bytes is not None else [None] * len(paths)
        return cls(
            id=data["id"],
            messages=tuple(Message.from_json(m) for m in data["messages"]),
            images=tuple(ImageRef(p, b) for p, b in zip(paths, blobs)),
            dialogue_type=data.get("dialogue_type"),
            domain=data.get("domain"),
            subtopic=data.get("subtopic"),
            source=data.get("source"),
            clip_scores=tuple(float(x) for x in data.get("clip_scores") or ()),
        )

    # -- Arrow row --------------------------------------------------------------------------
    def to_row(self, taxonomy=None) -> dict:
        """The Arrow row. With a taxonomy, domain/subtopic become ClassLabel ids (-1 if unset)."""
        domain, subtopic = self.domain, self.subtopic
        if taxonomy is not None:
            domain = taxonomy.domain_id(domain) if domain is not None else -1
            subtopic = taxonomy.subtopic_id(subtopic) if subtopic is not None else -1
        return {
            "id": self.id,
            "dialogue_type": self.dialogue_type,
            "domain": domain,
            "subtopic": subtopic,
            "images": [img.to_row() for img in self.images],
            "messages": [m.to_row() for m in self.messages],
            "num_images": self.num_images,
            "num_turns": self.num_turns,
            "source": self.source,
            "clip_scores": list(self.clip_scores),
        }

    @classmethod
    def from_row(cls, row: dict, taxonomy=None) -> "Dialogue":
        """Build from a dataset row (ClassLabel ids or names; images as dicts, bytes or PIL)."""
        def label(value, names):
            if value is None or value == -1:
                return None
            if isinstance(value, int):
                if names is None:
                    raise ValueError("an integer label needs the taxonomy to be decoded")
                return names[value]
            return value

        if taxonomy is None and (isinstance(row.get("domain"), int) or isinstance(row.get("subtopic"), int)):
            from .taxonomy import default_taxonomy

            taxonomy = default_taxonomy()
        dtype = row.get("dialogue_type")
        if isinstance(dtype, int):
            dtype = DIALOGUE_TYPES[dtype]
        images = tuple(_image_ref(img) for img in row.get("images") or ())
        messages = tuple(
            Message(
                m["role"],
                tuple(
                    ImagePart(int(p["index"])) if p["type"] == "image" else TextPart(p["text"])
                    for p in m["content"]
                ),
            )
            for m in row["messages"]
        )
        return cls(
            id=row["id"],
            messages=messages,
            images=images,
            dialogue_type=dtype,
            domain=label(row.get("domain"), taxonomy.domain_names if taxonomy else None),
            subtopic=label(row.get("subtopic"), taxonomy.subtopic_names if taxonomy else None),
            source=row.get("source"),
            clip_scores=tuple(float(x) for x in row.get("clip_scores") or ()),
        )


def _image_ref(img: Any) -> ImageRef:
    if isinstance(img, ImageRef):
        return img
    if isinstance(img, dict):
        return ImageRef(img.get("path"), img.get("bytes"))
    if isinstance(img, (bytes, bytearray)):
        return ImageRef(None, bytes(img))
    if isinstance(img, str):
        return ImageRef(img, None)
    # A decoded PIL image: keep its original encoded bytes when PIL still knows the file.
    import io

    fmt = getattr(img, "format", None) or "PNG"
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return ImageRef(getattr(img, "filename", None) or None, buf.getvalue())


def count_turns(roles) -> int:
    """Number of user->assistant pairs."""
    turns, waiting = 0, False
    for role in roles:
        if role == "user":
            waiting = True
        elif role == "assistant" and waiting:
            turns += 1
            waiting = False
    return turns
