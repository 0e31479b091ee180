"""Phi-3 / Phi-3.5 vision (``phi3_v``): ``<|user|>\\n<|image_1|>\\ntext<|end|>\\n``.

The Phi-3.5 chat template takes string content, so images are typed into the text as
``<|image_k|>`` with ``k`` counted from 1 across the whole conversation (the processor maps
``<|image_k|>`` to the k-th image). Each placeholder is separated from neighbouring text by one
newline, the convention of the Phi-3-vision model cards (``<|image_1|>\\n<|image_2|>\\nquestion``).
Given those strings, the output is byte-identical to ``phi3_5.jinja``: the end is ``eos_token``
(default ``<|endoftext|>``) without a generation prompt, and ``<|assistant|>\\n`` with one.
"""

from __future__ import annotations

from .base import Formatter, join_with_newlines


def _image(k: int) -> str:
    return f"<|image_{k}|>"


def phi3_string_content(messages, order=None) -> list[dict]:
    """The dialogue's messages with string content, as ``phi3_v`` feeds them to the template."""
    order = [] if order is None else order
    return [{"role": m["role"], "content": join_with_newlines(m["content"], _image, order)} for m in messages]


class Phi3VFormatter(Formatter):
    name = "phi3_v"
    description = "Phi-3/Phi-3.5-vision (<|user|>/<|assistant|>, <|image_k|> numbered across the dialogue)"
    source = ("chat template of microsoft/Phi-3.5-mini-instruct, also used by Phi-3.5-vision-instruct "
              "(phi3_5.jinja); <|image_k|> convention of the Phi-3-vision model cards")
    special_tokens = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>")
    special_patterns = (r"<\|image_\d+\|>",)
    options = {"eos_token": "<|endoftext|>"}
    inline_literal_check = True

    def render(self, w, conv, add_generation_prompt, eos_token="<|endoftext|>"):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        suspect = False
        if conv.system:
            write("<|system|>\n" + conv.system + "<|end|>\n")
            suspect = "<" in conv.system
        for m in conv.messages:
            role = m["role"]
            c = m["content"]
            if len(c) == 1 and c[0]["type"] == "text":
                body = c[0]["text"]
            else:
                body = join_with_newlines(c, _image, order)
                suspect = True  # image placeholders contain "<": let the full check look at the text
            if "<" in body:
                suspect = True
            if role == "assistant":
                write("<|assistant|>\n")
                mark(len(pieces))
                write(body + "<|end|>")
                mark(len(pieces))
                write("\n")
            elif role == "user":
                write("<|user|>\n" + body + "<|end|>\n")
        write("<|assistant|>\n" if add_generation_prompt else eos_token)
        w.suspect = suspect
        return order
