"""Versioned prompt files and the chat requests built from them.

The prompts live beside this module in ``prompts/<name>_<version>.{system,user}.txt`` and use
``$name`` placeholders (:class:`string.Template`), so they can be read and edited as plain
text. ``prompts/README.md`` documents every placeholder and what changed between versions.

A prompt's identity is its version plus a hash of its text: the LLM cache is keyed by both, so
editing a prompt file without bumping the version still cannot serve stale answers.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Optional

from ..taxonomy import Taxonomy
from .selection import Task, TaskImage

DIALOGUE_PROMPT = "dialogue"
DOMAIN_PROMPT = "domain"
DEFAULT_VERSION = "v1"

_MIME = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


@dataclass(frozen=True)
class PromptTemplate:
    """A system + user template pair of one version."""

    name: str
    version: str
    system: str
    user: str

    @cached_property
    def fingerprint(self) -> str:
        """``name-version-<hash of both texts>``; part of every cache key."""
        digest = hashlib.sha256((self.system + "\0" + self.user).encode("utf-8")).hexdigest()[:12]
        return f"{self.name}-{self.version}-{digest}"


@lru_cache(maxsize=None)
def load_prompt(name: str, version: str = DEFAULT_VERSION, folder: Optional[str] = None) -> PromptTemplate:
    """Read ``<name>_<version>.system.txt`` and ``.user.txt`` from ``folder`` or the package."""
    if folder is not None:
        base = Path(folder)
        system = (base / f"{name}_{version}.system.txt").read_text(encoding="utf-8")
        user = (base / f"{name}_{version}.user.txt").read_text(encoding="utf-8")
    else:
        pkg = resources.files(__package__) / "prompts"
        system = (pkg / f"{name}_{version}.system.txt").read_text(encoding="utf-8")
        user = (pkg / f"{name}_{version}.user.txt").read_text(encoding="utf-8")
    return PromptTemplate(name, version, system.strip(), user.strip())


@dataclass(frozen=True)
class ImageEncoding:
    """How images travel to the LLM: as-is, or downscaled so the longest side is ``max_side``."""

    max_side: Optional[int] = None
    detail: Optional[str] = None  # the OpenAI "detail" hint: low / high / auto

    @property
    def fingerprint(self) -> str:
        return f"side={self.max_side};detail={self.detail}"


@lru_cache(maxsize=512)
def _data_url(sha256: str, ext: str, data: bytes, max_side: Optional[int]) -> str:
    mime = _MIME.get(ext, "application/octet-stream")
    if max_side:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            if max(img.size) > max_side:
                img = img.convert("RGB")
                img.thumbnail((max_side, max_side))
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=90)
                data, mime = buf.getvalue(), "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def image_part(img: TaskImage, encoding: ImageEncoding) -> dict:
    url = {"url": _data_url(img.sha256, img.ext, img.data, encoding.max_side)}
    if encoding.detail:
        url["detail"] = encoding.detail
    return {"type": "image_url", "image_url": url}


def _image_rule(task: Task) -> str:
    if len(task.images) == 1:
        return 'With one picture, the first question introduces it ("images": [1]) and every later question has "images": [].'
    n = len(task.images)
    return (f'The first question introduces picture 1; introduce pictures 2 to {n} where the conversation turns '
            f"to them, all of them within the first {min(task.num_turns, 2 * n)} questions.")


@dataclass(frozen=True)
class DialogueRequest:
    """The chat messages for one task plus the text that identifies them in the cache."""

    messages: list
    identity: str  # the messages with image bytes replaced by their hashes


def build_dialogue_request(task: Task, domain: str, subtopic: str, taxonomy: Taxonomy,
                           prompt: PromptTemplate, encoding: ImageEncoding = ImageEncoding()) -> DialogueRequest:
    """System message + one user message: the images first, then the instructions."""
    dom = next(d for d in taxonomy.domains if d.name == domain)
    sub = next(s for s in dom.subtopics if s.name == subtopic)
    n = len(task.images)
    values = {
        "num_turns": task.num_turns,
        "num_images": n,
        "image_phrase": "picture" if n == 1 else f"{n} pictures",
        "domain": dom.name,
        "domain_description": dom.description,
        "subtopic": sub.name,
        "subtopic_description": sub.description,
        "context": task.context or "(no text around the pictures)",
        "title": task.title or "(untitled)",
        "image_rule": _image_rule(task),
    }
    text = Template(prompt.user).safe_substitute(values)
    content = [image_part(img, encoding) for img in task.images] + [{"type": "text", "text": text}]
    messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]
    identity = "\n".join([prompt.fingerprint, encoding.fingerprint, prompt.system, text]
                         + [img.sha256 for img in task.images])
    return DialogueRequest(messages, identity)


def build_domain_request(context: str, taxonomy: Taxonomy, prompt: PromptTemplate) -> DialogueRequest:
    categories = "\n".join(f"{d.name} / {s.name}: {s.description or d.description}"
                           for d in taxonomy.domains for s in d.subtopics)
    text = Template(prompt.user).safe_substitute(categories=categories, context=context[:2000] or "(empty)")
    messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": text}]
    return DialogueRequest(messages, "\n".join([prompt.fingerprint, taxonomy.fingerprint, prompt.system, text]))
