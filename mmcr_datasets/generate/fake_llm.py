"""Deterministic stand-in replies for the generation prompts: dry runs, tests and benchmarks.

:func:`fake_reply` reads a request built by :mod:`.prompting` and answers it the way a well
behaved LLM would: a JSON dialogue with the requested number of turns that introduces each
picture once, in order, with questions made from the document context. Nothing here is a
language model; the text is assembled from the request, so equal requests get equal replies.

``flaw`` makes the reply deliberately wrong in one way, to exercise parsing and quarantine:

* ``fenced``: the correct JSON inside a Markdown code fence (repairable);
* ``prose``: a sentence instead of JSON (quarantined: ``invalid_json``);
* ``truncated``: JSON cut in the middle (``invalid_json``);
* ``bad_ref``: a question refers to a picture number that does not exist (``bad_image_ref``);
* ``wrong_turns``: one turn too few (``wrong_turn_count``).

Use it with :class:`mmcr_datasets.testing.openai_server.OpenAIServer` (``reply=fake_reply``) to
run ``mmcr generate`` end to end without a real endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, Optional

FLAWS = ("fenced", "prose", "truncated", "bad_ref", "wrong_turns")

_TURNS = re.compile(r"exactly (\d+) turns")
_THEME = re.compile(r"Theme area: (.+?) / (.+?)\.\s*\n")
_CONTEXT = re.compile(r'"""\n(.*?)\n"""', re.S)
_CATEGORY = re.compile(r"^(.+?) / (.+?): (.*)$", re.M)


def _user(body: dict) -> tuple[str, int]:
    """The text of the last user message and how many images it carries."""
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content, 0
            text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return text, sum(1 for p in content if p.get("type") == "image_url")
    return "", 0


def request_digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()


def _sentences(context: str) -> list[str]:
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+", context) if len(s.strip()) > 20]
    return parts or ["the scene shown"]


def make_dialogue(num_turns: int, num_images: int, context: str, theme: str, tag: str) -> dict:
    """A well-formed dialogue dict for the given request parameters."""
    sentences = _sentences(context)
    turns = []
    for t in range(num_turns):
        images = [t + 1] if t < num_images else []
        fact = sentences[t % len(sentences)].rstrip(".")
        if images and num_images == 1:
            q = f"What is shown in this picture, and how does it relate to {theme.lower()}?"
        elif images:
            q = f"Looking at picture {images[0]}, what stands out compared with what we discussed before?"
        elif num_images > 1 and t % 2:
            q = f"How do the first and the last picture connect, given what you said in turn {t}?"
        else:
            q = f"Building on your previous answer, why does that detail matter here (point {t + 1})?"
        a = f"{fact}. This adds to the earlier turns without repeating them [{tag}-{t + 1}]."
        turns.append({"images": images, "question": q, "answer": a})
    return {"turns": turns}


def fake_reply(body: dict, flaw: Optional[str] = None) -> str:
    """Answer a dialogue or domain request built by :mod:`.prompting`."""
    text, num_images = _user(body)
    tag = request_digest(body)[:8]
    cats = _CATEGORY.findall(text)
    if cats and "Categories" in text:  # a domain-assignment request
        context = (_CONTEXT.search(text).group(1) if _CONTEXT.search(text) else "").lower()
        words = set(re.findall(r"[a-z]{4,}", context))
        best = max(cats, key=lambda c: (len(words & set(re.findall(r"[a-z]{4,}", " ".join(c).lower()))), -cats.index(c)))
        return json.dumps({"domain": best[0], "subtopic": best[1], "confidence": 0.5})
    m = _TURNS.search(text)
    num_turns = int(m.group(1)) if m else 4
    theme = _THEME.search(text).group(2) if _THEME.search(text) else "the topic"
    context = _CONTEXT.search(text).group(1) if _CONTEXT.search(text) else ""
    dialogue = make_dialogue(num_turns, max(1, num_images), context, theme, tag)
    if flaw == "bad_ref":
        dialogue["turns"][-1]["images"] = [max(1, num_images) + 1]
    elif flaw == "wrong_turns":
        dialogue["turns"] = dialogue["turns"][:-1]
    out = json.dumps(dialogue, ensure_ascii=False)
    if flaw == "fenced":
        return "```json\n" + out + "\n```"
    if flaw == "prose":
        return "Sure! Here is a lovely conversation about the pictures, written as plain sentences."
    if flaw == "truncated":
        return out[: len(out) // 2]
    return out


def flawed_by(rule: Callable[[str], Optional[str]]) -> Callable[[dict], str]:
    """A reply function whose flaw is chosen by ``rule(user text)``."""

    def reply(body: dict) -> str:
        return fake_reply(body, rule(_user(body)[0]))

    return reply
