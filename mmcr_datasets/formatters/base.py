"""The formatter contract: :class:`FormattedDialogue`, the :class:`Formatter` base class and the
helpers every family module shares.

A formatter turns one dialogue into the exact prompt string a model family's own chat template
produces, builds it with plain string operations (no Jinja), and records two things on the way:

* the order in which images are referred to by placeholders (``images`` / ``image_indices``);
* the character spans training must learn (``assistant_spans``).

**What a span covers.** A span starts right after the family's generation prompt (the text
``add_generation_prompt=True`` appends) and ends after the assistant's end-of-turn marker. So it
holds exactly what the model must generate at inference time: the answer, any separator the
generation prompt leaves out (LLaVA-1.5's ``"ASSISTANT:"`` prompt is followed by ``" answer"``,
Idefics3's ``"Assistant:"`` by ``" answer"``), and the end marker (``<|im_end|>``, ``</s>``,
``<end_of_utterance>``, ...). Newlines the template writes *after* the end marker are not
learned: nothing is generated after the stop token.

**Literal special tokens in text.** Templates paste text verbatim, so a user text containing
``<image>`` or ``<|im_end|>`` renders as that token and the processor later counts it as an image
placeholder or a turn boundary -- the classic "placeholders do not match images" failure, and a
silently wrong loss mask. Each formatter knows its family's control tokens; what happens when one
appears inside text is the ``literal_tokens`` option:

* ``"raise"`` (default): :class:`LiteralSpecialTokenError` names the token, the message and the
  part, so the record can be fixed or escaped deliberately;
* ``"keep"``: paste verbatim, exactly like the family's template (byte-identical to it);
* ``"escape"``: insert a zero-width space (U+200B) after the token's first character, so the text
  reads the same but no tokenizer matches the control token.
"""

from __future__ import annotations

import re
from itertools import accumulate
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..errors import MMCRError

IMAGE = "image"
TEXT = "text"
ZERO_WIDTH_SPACE = "\u200b"
LITERAL_TOKEN_POLICIES = ("raise", "keep", "escape")


class FormatterError(MMCRError):
    """A dialogue cannot be formatted for a family (unknown formatter, bad roles, too many images)."""


class LiteralSpecialTokenError(FormatterError):
    """A text part contains one of the family's control tokens (see ``literal_tokens``)."""


@dataclass(slots=True)
class FormattedDialogue:
    """The result of :func:`format_dialogue`.

    ``text`` is the prompt string; ``images`` are the row's images in placeholder order (the order
    a processor consumes them); ``image_indices`` are their indices into the row's ``images``;
    ``assistant_spans`` are ``(start, end)`` character offsets into ``text`` of what training must
    learn (see the module docstring).
    """

    text: str
    images: list = field(default_factory=list)
    assistant_spans: list = field(default_factory=list)
    image_indices: list = field(default_factory=list)
    formatter: str = ""

    def learned_texts(self) -> list[str]:
        """The text of every assistant span, in order."""
        return [self.text[s:e] for s, e in self.assistant_spans]

    def marked(self, open_mark: str = "[[", close_mark: str = "]]") -> str:
        """``text`` with every learned span wrapped in ``open_mark`` ... ``close_mark`` (for display)."""
        out, pos = [], 0
        for s, e in self.assistant_spans:
            out.append(self.text[pos:s])
            out.append(open_mark + self.text[s:e] + close_mark)
            pos = e
        out.append(self.text[pos:])
        return "".join(out)


class _Writer:
    """Collects text pieces and marks learned spans by piece position.

    Formatters append to ``pieces`` (``write = w.pieces.append`` is the fast path) and call
    :meth:`begin` / :meth:`end` around what must be learned; character offsets are computed once,
    at the end, from the piece lengths.
    """

    __slots__ = ("pieces", "marks", "suspect")

    def __init__(self):
        self.pieces: list[str] = []
        self.marks: list[int] = []
        self.suspect = False  # set by formatters that pre-check text inline (``inline_literal_check``)

    def write(self, s: str) -> None:
        self.pieces.append(s)

    def begin(self) -> None:
        self.marks.append(len(self.pieces))

    end = begin

    def result(self) -> tuple[str, list[tuple[int, int]]]:
        pieces, marks = self.pieces, self.marks
        if len(marks) % 2:
            raise FormatterError("a learned span was opened but not closed")
        if not marks:
            return "".join(pieces), []
        cum = [0]
        cum.extend(accumulate(map(len, pieces)))
        return "".join(pieces), [(cum[marks[i]], cum[marks[i + 1]]) for i in range(0, len(marks), 2)]


@dataclass(slots=True)
class Conversation:
    """A dialogue as formatters see it: an optional system text and the other messages.

    ``messages`` keep the row's own dicts (``{"role", "content": [{"type", "text", "index"}]}``) so
    nothing is copied; ``system`` is the joined text of a leading system message, or the
    ``system=`` argument of :func:`format_dialogue`, which replaces it.
    """

    system: Optional[str]
    messages: list
    num_images: Optional[int]
    images: Any = None


class Formatter:
    """Base class of a family formatter. Subclasses set the class attributes and implement
    :meth:`render`, writing to a :class:`_Writer` and returning image indices in placeholder order.

    ``name``: registry id. ``source``: where the format comes from (a reference template or a
    documented conversation format). ``special_tokens``: control tokens of the family checked in
    text parts; ``special_patterns``: regular expressions for numbered ones. ``options``: the keyword
    options :meth:`render` accepts, with their defaults. ``max_images``: the most images a dialogue
    may have for this family (``None``: no limit).
    """

    name: str = ""
    description: str = ""
    source: str = ""
    special_tokens: tuple[str, ...] = ()
    special_patterns: tuple[str, ...] = ()  # regexes for numbered tokens such as <|image_3|>
    options: dict = {}
    max_images: Optional[int] = None
    #: True when :meth:`render` sets ``w.suspect`` itself whenever a text it writes contains one of
    #: the control tokens' first characters; the full literal-token check then runs only on those
    #: dialogues (after rendering, re-rendering if text had to be escaped) instead of on all of them.
    inline_literal_check: bool = False

    def __init__(self):
        toks = sorted(set(self.special_tokens), key=len, reverse=True)
        alts = list(self.special_patterns) + [re.escape(t) for t in toks]
        self._special_re = re.compile("|".join(alts)) if alts else None
        # Fast pre-filter: the first characters of the control tokens (usually just "<"); a
        # substring test is much cheaper than the regular expression.
        firsts = {t[0] for t in toks} | {p.lstrip("\\")[0] for p in self.special_patterns}
        self._prefilter = tuple(sorted(firsts))

    # -- API ------------------------------------------------------------------------------
    def format(self, row: Any, *, add_generation_prompt: bool = False, system: Optional[str] = None,
               literal_tokens: str = "raise", **options) -> FormattedDialogue:
        if options:
            unknown = set(options) - set(self.options)
            if unknown:
                raise FormatterError(
                    f"formatter {self.name!r} has no option(s) {sorted(unknown)}; "
                    f"its options are {sorted(self.options) or 'none'}"
                )
            opts = {**self.options, **options}
        else:
            opts = self.options
        if literal_tokens not in LITERAL_TOKEN_POLICIES:
            raise FormatterError(f"literal_tokens must be one of {LITERAL_TOKEN_POLICIES}, not {literal_tokens!r}")
        conv = to_conversation(row, system)
        check = literal_tokens != "keep"
        if check and not self.inline_literal_check:
            conv = self._check_literal_tokens(conv, literal_tokens, row)
        w = _Writer()
        order = self.render(w, conv, add_generation_prompt, **opts)
        if check and w.suspect:
            checked = self._check_literal_tokens(conv, literal_tokens, row)
            if checked is not conv:
                w = _Writer()
                order = self.render(w, checked, add_generation_prompt, **opts)
        if self.max_images is not None and len(order) > self.max_images:
            raise FormatterError(
                f"{self.name} supports at most {self.max_images} image(s) per dialogue, but "
                f"dialogue {_row_id(row)!r} has {len(order)}. Split the dialogue, keep only single-image "
                f"dialogues (filter num_images == 1), or choose a multi-image family."
            )
        images_src = conv.images
        images = []
        if order and images_src is not None:
            n = len(images_src)
            for i in order:
                if i < 0 or i >= n:
                    raise FormatterError(f"dialogue {_row_id(row)!r} refers to image {i} but has {n} image(s)")
            images = [images_src[i] for i in order]
        text, spans = w.result()
        return FormattedDialogue(text, images, spans, order, self.name)

    def render(self, w: _Writer, conv: Conversation, add_generation_prompt: bool, **options) -> list[int]:
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------------------
    def _check_literal_tokens(self, conv: Conversation, policy: str, row) -> Conversation:
        rx = self._special_re
        if rx is None:
            return conv
        search = rx.search
        pre = self._prefilter
        # Fast negative test: a substring test per text part for the tokens' first characters; the
        # regular-expression walk below only runs when one of them occurs.
        if not _may_contain(conv, pre):
            return conv
        changed = None
        if conv.system is not None and search(conv.system):
            if policy == "raise":
                raise self._literal_error(row, "system", search(conv.system).group(0), -1)
            conv = Conversation(self._escape(conv.system), conv.messages, conv.num_images, conv.images)
        for mi, m in enumerate(conv.messages):
            for pi, p in enumerate(m["content"]):
                if p["type"] != TEXT:
                    continue
                hit = search(p["text"])
                if hit:
                    if policy == "raise":
                        raise self._literal_error(row, m["role"], hit.group(0), mi, pi)
                    if changed is None:
                        changed = [dict(x, content=list(x["content"])) for x in conv.messages]
                    changed[mi]["content"][pi] = dict(p, text=self._escape(p["text"]))
        if changed is not None:
            conv = Conversation(conv.system, changed, conv.num_images, conv.images)
        return conv

    def _escape(self, text: str) -> str:
        return self._special_re.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:], text)

    def _literal_error(self, row, role, token, mi, pi=None):
        where = "the system prompt" if mi < 0 else f"message {mi} ({role}; counted after any system message), part {pi}"
        return LiteralSpecialTokenError(
            f"dialogue {_row_id(row)!r}: {where} contains {token!r}, a control token of {self.name}. "
            f"Pasted verbatim it would act as a real token (an extra image placeholder or turn "
            f"boundary). Pass literal_tokens='escape' to neutralise it with a zero-width space, or "
            f"literal_tokens='keep' to paste it verbatim as the family's template does."
        )


def _may_contain(conv: Conversation, chars: tuple) -> bool:
    """Whether any text (or the system prompt) contains one of ``chars``."""
    if conv.system is not None and any(ch in conv.system for ch in chars):
        return True
    if len(chars) == 1:
        ch = chars[0]
        for m in conv.messages:
            for p in m["content"]:
                if p["type"] == TEXT and ch in p["text"]:
                    return True
        return False
    for m in conv.messages:
        for p in m["content"]:
            if p["type"] == TEXT and any(ch in p["text"] for ch in chars):
                return True
    return False


# -- input normalisation ------------------------------------------------------------------


def to_conversation(row: Any, system: Optional[str] = None) -> Conversation:
    """Split a row (dict or :class:`~mmcr_datasets.records.Dialogue`) into system text and messages."""
    if type(row) is dict or isinstance(row, Mapping):  # a dict, or datasets' lazy row in Dataset.map
        messages = row["messages"]
        images = row.get("images")
    else:  # a Dialogue (or anything with to_row)
        from ..records import Dialogue

        if not isinstance(row, Dialogue):
            raise FormatterError(f"cannot format a {type(row).__name__}; pass a dataset row or a Dialogue")
        messages = [m.to_row() for m in row.messages]
        images = list(row.images)
    num_images = None if images is None else len(images)
    sys_text = None
    if messages and messages[0]["role"] == "system":
        sys_text = "".join([p["text"] for p in messages[0]["content"] if p["type"] == TEXT])
        messages = messages[1:]
    if system is not None:
        sys_text = system
    return Conversation(sys_text, messages, num_images, images)


def _row_id(row) -> Any:
    if isinstance(row, Mapping):
        return row.get("id")
    return getattr(row, "id", None)


def count_images(messages: Sequence[dict]) -> int:
    return sum(1 for m in messages for p in m["content"] if p["type"] == IMAGE)


def join_with_newlines(content: Sequence[dict], placeholder: Callable[[int], str], order: list) -> str:
    """Text parts verbatim and images as ``placeholder(k)`` (``k``: 1-based count of images so far),
    with one ``"\\n"`` between an image and a neighbouring part: the Ovis/LLaVA ``<image>\\n``
    convention (the readers strip exactly this newline, so reading then formatting reproduces the
    original text).
    """
    out = []
    prev_image = None
    for p in content:
        if p["type"] == IMAGE:
            if prev_image is not None:
                out.append("\n")
            order.append(p["index"])
            out.append(placeholder(len(order)))
            prev_image = True
        else:
            if prev_image:
                out.append("\n")
            out.append(p["text"])
            prev_image = False
    return "".join(out)
