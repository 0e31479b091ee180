"""Idefics3 (``idefics3``) and SmolVLM (``smolvlm``): ``User:<image>text<end_of_utterance>\\n``.

Byte-identical to the Idefics3 chat template; SmolVLM's template differs only in its first token
(``<|im_start|>`` instead of ``<|begin_of_text|>``). Images are placed where the dialogue refers
to them. The role is followed by ``":"`` when the message starts with an image and by ``": "``
otherwise; the generation prompt is ``Assistant:``, so a learned span starts with that space.
"""

from __future__ import annotations

from .base import IMAGE, Formatter

_TOKENS = ("<image>", "<end_of_utterance>", "<fake_token_around_image>", "<global-img>")


class Idefics3Formatter(Formatter):
    name = "idefics3"
    description = "Idefics3 ('User:<image>...<end_of_utterance>\\n', 'Assistant:' prompt)"
    source = "chat template of HuggingFaceM4/Idefics3-8B-Llama3 (idefics3.jinja)"
    first_token = "<|begin_of_text|>"
    special_tokens = _TOKENS + ("<|begin_of_text|>", "<|end_of_text|>")

    def render(self, w, conv, add_generation_prompt):
        order: list[int] = []
        write = w.write
        write(self.first_token)
        if conv.system is not None:
            write("System: " + conv.system + "<end_of_utterance>\n")
        for m in conv.messages:
            content = m["content"]
            assistant = m["role"] == "assistant"
            write(m["role"].capitalize() + ":")
            if assistant:
                w.begin()
            if not (content and content[0]["type"] == IMAGE):
                write(" ")
            for p in content:
                if p["type"] == IMAGE:
                    order.append(p["index"])
                    write("<image>")
                else:
                    write(p["text"])
            write("<end_of_utterance>")
            if assistant:
                w.end()
            write("\n")
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
