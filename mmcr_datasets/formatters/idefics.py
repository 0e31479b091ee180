"""Idefics3 (``idefics3``) and SmolVLM (``smolvlm``): ``User:<image>text<end_of_utterance>\\n``.

Byte-identical to the Idefics3 chat template; SmolVLM's template differs only in its first token
(``<|im_start|>`` instead of ``<|begin_of_text|>``). Images are placed where the dialogue refers
to them. The role is followed by ``":"`` when the message starts with an image and by ``": "``
otherwise; the generation prompt is ``Assistant:``, so a learned span starts with that space.
"""

from __future__ import annotations

from .base import IMAGE, Formatter

_ROLE_LABELS = {"user": "User:", "system": "System:"}
_TOKENS = ("<image>", "<end_of_utterance>", "<fake_token_around_image>", "<global-img>")


class Idefics3Formatter(Formatter):
    name = "idefics3"
    description = "Idefics3 ('User:<image>...<end_of_utterance>\\n', 'Assistant:' prompt)"
    source = "chat template of HuggingFaceM4/Idefics3-8B-Llama3 (idefics3.jinja)"
    first_token = "<|begin_of_text|>"
    special_tokens = _TOKENS + ("<|begin_of_text|>", "<|end_of_text|>")

    def render(self, w, conv, add_generation_prompt):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        write(self.first_token)
        if conv.system is not None:
            write("System: " + conv.system + "<end_of_utterance>\n")
        for m in conv.messages:
            content = m["content"]
            role = m["role"]
            assistant = role == "assistant"
            if assistant:
                write("Assistant:")
                mark(len(pieces))
            else:
                write(_ROLE_LABELS.get(role) or role.capitalize() + ":")
            if len(content) == 1 and content[0]["type"] == "text":
                write(" " + content[0]["text"])
            else:
                if not (content and content[0]["type"] == IMAGE):
                    write(" ")
                for p in content:
                    if p["type"] == IMAGE:
                        order.append(p["index"])
                        write("<image>")
                    else:
                        write(p["text"])
            if assistant:
                write("<end_of_utterance>")
                mark(len(pieces))
                write("\n")
            else:
                write("<end_of_utterance>\n")
        if add_generation_prompt:
            write("Assistant:")
        return order


class SmolVLMFormatter(Idefics3Formatter):
    name = "smolvlm"
    description = "SmolVLM (Idefics3 format starting with <|im_start|>)"
    source = ("chat template of HuggingFaceTB/SmolVLM-Instruct: idefics3.jinja with <|im_start|> as "
              "its first token")
    first_token = "<|im_start|>"
    special_tokens = _TOKENS + ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
