"""Turn an LLM reply into a canonical record, repairing only what cannot change its meaning.

The LLM is asked for ``{"turns": [{"images": [1], "question": ..., "answer": ...}, ...]}``.
Safe repairs, each recorded by name in the record's provenance:

* ``strip_code_fence``: the object is wrapped in a Markdown code fence;
* ``extract_json_object``: prose before or after one complete JSON object;
* ``unwrap_turn_list``: a bare list of turns instead of ``{"turns": [...]}``;
* ``key_synonyms``: ``user``/``assistant`` (or ``q``/``a``) keys instead of ``question``/``answer``;
* ``coerce_image_numbers``: ``"2"`` or ``2`` instead of ``[2]``;
* ``introduce_single_image``: a single-image dialogue whose questions introduce no picture gets
  its only picture in the first question.

Everything else is a failure with a reason code, quarantined, never guessed: text that is not
JSON, a truncated reply, a wrong number of turns, a picture number out of range, a picture
introduced twice or never (with several pictures), pictures introduced out of their numbered
order (reordering them would break the questions' "the first picture"-style references), empty
questions or answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

from .selection import Task

FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)


class ParseFailure(Exception):
    """A reply that cannot become a dialogue; ``code`` is the quarantine reason."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass
class ParsedDialogue:
    messages: list  # canonical messages; image i of the task is image index i
    repairs: list = field(default_factory=list)


def _load_json(content: str, repairs: list):
    text = content.strip()
    m = FENCE.match(text)
    if m:
        text = m.group(1).strip()
        repairs.append("strip_code_fence")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            value = json.loads(text[start:end + 1])
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            repairs.append("extract_json_object")
            return value
    raise ParseFailure("invalid_json", f"the reply is not a JSON object: {content[:120]!r}")


_Q_KEYS = ("question", "user", "q")
_A_KEYS = ("answer", "assistant", "a")


def _field(turn: dict, keys, repairs: list, where: str) -> str:
    for i, key in enumerate(keys):
        if key in turn:
            if i and "key_synonyms" not in repairs:
                repairs.append("key_synonyms")
            value = turn[key]
            if not isinstance(value, str) or not value.strip():
                raise ParseFailure("bad_structure", f"{where}: {key!r} must be non-empty text")
            return value.strip()
    raise ParseFailure("bad_structure", f"{where}: no {keys[0]!r}")


def _image_numbers(value, repairs: list, where: str) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [value]
        if "coerce_image_numbers" not in repairs:
            repairs.append("coerce_image_numbers")
    if not isinstance(value, list):
        raise ParseFailure("bad_image_ref", f"{where}: 'images' must be a list of picture numbers")
    out = []
    for v in value:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
            if "coerce_image_numbers" not in repairs:
                repairs.append("coerce_image_numbers")
        if not isinstance(v, int) or isinstance(v, bool):
            raise ParseFailure("bad_image_ref", f"{where}: picture reference {v!r} is not a number")
        out.append(v)
    return out


def parse_dialogue(content: Optional[str], task: Task, finish_reason: Optional[str] = None) -> ParsedDialogue:
    """Parse one reply for ``task``; raise :class:`ParseFailure` when it is unusable."""
    if finish_reason == "length":
        raise ParseFailure("truncated", "the reply was cut off at the token limit (finish_reason=length)")
    if not content or not content.strip():
        raise ParseFailure("empty_reply", "the reply has no content")
    repairs: list = []
    data = _load_json(content, repairs)
    if isinstance(data, list):
        data = {"turns": data}
        repairs.append("unwrap_turn_list")
    turns = data.get("turns") if isinstance(data, dict) else None
    if not isinstance(turns, list) or not turns:
        raise ParseFailure("bad_structure", "the reply has no non-empty 'turns' list")
    if len(turns) != task.num_turns:
        raise ParseFailure("wrong_turn_count", f"{len(turns)} turn(s); {task.num_turns} were asked for")
    n = len(task.images)
    parsed = []
    for t, turn in enumerate(turns):
        where = f"turn {t + 1}"
        if not isinstance(turn, dict):
            raise ParseFailure("bad_structure", f"{where} is not an object")
        q = _field(turn, _Q_KEYS, repairs, where)
        a = _field(turn, _A_KEYS, repairs, where)
        nums = _image_numbers(turn.get("images"), repairs, where)
        for v in nums:
            if not 1 <= v <= n:
                raise ParseFailure("bad_image_ref", f"{where} refers to picture {v}, but there are {n} picture(s) numbered 1 to {n}")
        parsed.append((q, a, nums))
    introduced = [v for _, _, nums in parsed for v in nums]
    dupes = sorted({v for v in introduced if introduced.count(v) > 1})
    if dupes:
        raise ParseFailure("bad_image_ref", f"picture(s) {dupes} introduced more than once")
    if n == 1 and not introduced:
        q, a, _ = parsed[0]
        parsed[0] = (q, a, [1])
        introduced = [1]
        repairs.append("introduce_single_image")
    missing = sorted(set(range(1, n + 1)) - set(introduced))
    if missing:
        raise ParseFailure("bad_image_ref", f"picture(s) {missing} never introduced by a question")
    if introduced != sorted(introduced):
        raise ParseFailure("bad_image_ref", f"pictures introduced in the order {introduced}, not 1 to {n}")
    messages = []
    for q, a, nums in parsed:
        content_parts = [{"type": "image", "index": v - 1} for v in nums]
        content_parts.append({"type": "text", "text": q})
        messages.append({"role": "user", "content": content_parts})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": a}]})
    return ParsedDialogue(messages, repairs)
