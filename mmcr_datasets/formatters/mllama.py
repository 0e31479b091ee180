"""Llama 3.2 Vision (``mllama``): Llama 3 headers with ``<|image|>``; one image per dialogue.

Byte-identical to the Llama-3.2-Vision-Instruct chat template (the Llama 3.2 text template with
list content rendered part by part, ``<|image|>`` for an image). Like that template, it writes the
dated system block only when the dialogue has no image, and refuses a system prompt together with
images. Mllama attends to a single image per sample in practice, so a dialogue with more than one
image raises :class:`~mmcr_datasets.formatters.FormatterError` (filter ``num_images == 1``).
"""

from __future__ import annotations

from datetime import datetime

from .base import IMAGE, FormatterError, Formatter


class MllamaFormatter(Formatter):
    name = "mllama"
    description = "Llama 3.2 Vision (<|start_header_id|> headers, <|image|>; at most one image)"
    source = "chat template of meta-llama/Llama-3.2-11B-Vision-Instruct (llama3_2.jinja with image parts)"
    special_tokens = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                      "<|eot_id|>", "<|eom_id|>", "<|image|>", "<|python_tag|>")
    options = {"bos_token": "<|begin_of_text|>", "date_string": None}
    max_images = 1

    def render(self, w, conv, add_generation_prompt, bos_token="<|begin_of_text|>", date_string=None):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        write(bos_token)
        system = "" if conv.system is None else conv.system.strip()
        write("")  # the dated system block goes here when the dialogue turns out to have no image
        slot = len(pieces) - 1
        for m in conv.messages:
            role = m["role"]
            write("<|start_header_id|>" + role + "<|end_header_id|>\n\n")
            assistant = role == "assistant"
            if assistant:
                mark(len(pieces))
            c = m["content"]
            if len(c) == 1 and c[0]["type"] == "text":
                write(c[0]["text"])
                c = ()
            for p in c:
                if p["type"] == IMAGE:
                    order.append(p["index"])
                    write("<|image|>")
                else:
                    write(p["text"])
            write("<|eot_id|>")
            if assistant:
                mark(len(pieces))
        if add_generation_prompt:
            write("<|start_header_id|>assistant<|end_header_id|>\n\n")
        if order:
            if system != "":
                raise FormatterError("Prompting with images is incompatible with system messages "
                                     "(Llama 3.2 Vision); drop the system prompt for mllama.")
        else:
            if date_string is None:
                date_string = datetime.now().strftime("%d %b %Y")
            pieces[slot] = ("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                            "Today Date: " + date_string + "\n\n" + system + "<|eot_id|>")
        return order
