"""Gemma 3 (``gemma3``): ``<start_of_turn>user\\n...<end_of_turn>\\n`` with ``<start_of_image>``.

Byte-identical to the Gemma 3 chat template, including its quirks: every text part is stripped of
surrounding whitespace, the system prompt is folded into the first user turn (followed by a
blank line), the assistant role is called ``model``, and roles must alternate.
"""

from __future__ import annotations

from .base import IMAGE, FormatterError, Formatter


class Gemma3Formatter(Formatter):
    name = "gemma3"
    description = "Gemma 3 (<start_of_turn>user/model, <start_of_image>, system folded into the first turn)"
    source = "chat template of google/gemma-3-*-it (gemma3.jinja)"
    special_tokens = ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                      "<end_of_image>", "<image_soft_token>")
    options = {"bos_token": "<bos>"}

    def render(self, w, conv, add_generation_prompt, bos_token="<bos>"):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        write(bos_token)
        prefix = "" if conv.system is None else conv.system + "\n\n"
        for i, m in enumerate(conv.messages):
            role = m["role"]
            if (role == "user") != (i % 2 == 0):
                raise FormatterError("Conversation roles must alternate user/assistant/user/assistant/...")
            assistant = role == "assistant"
            write("<start_of_turn>" + ("model" if assistant else role) + "\n")
            if assistant:
                mark(len(pieces))
            if i == 0:
                write(prefix)
            c = m["content"]
            if len(c) == 1 and c[0]["type"] == "text":
                write(c[0]["text"].strip())
                c = ()
            for p in c:
                if p["type"] == IMAGE:
                    order.append(p["index"])
                    write("<start_of_image>")
                else:
                    write(p["text"].strip())
            write("<end_of_turn>")
            if assistant:
                mark(len(pieces))
            write("\n")
        if add_generation_prompt:
            write("<start_of_turn>model\n")
        return order
