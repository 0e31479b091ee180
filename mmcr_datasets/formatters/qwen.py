"""Qwen2-VL / Qwen2.5-VL (``qwen2_vl``) and Qwen3-VL (``qwen3_vl``): ChatML with vision tokens.

Byte-identical to the families' chat templates (the Qwen2.5-VL template is the same file as
Qwen2-VL's). Each image becomes ``<|vision_start|><|image_pad|><|vision_end|>`` exactly where the
dialogue refers to it; with ``add_vision_id=True`` it is prefixed ``Picture k: `` with ``k``
counted across the whole conversation. Qwen2-VL inserts the default system prompt
``You are a helpful assistant.`` when the dialogue has none; Qwen3-VL does not.
"""

from __future__ import annotations

from .base import IMAGE, Formatter

_VISION = "<|vision_start|><|image_pad|><|vision_end|>"
_QWEN_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)


class Qwen2VLFormatter(Formatter):
    name = "qwen2_vl"
    description = "Qwen2-VL and Qwen2.5-VL (ChatML, default system prompt, optional 'Picture k:' ids)"
    source = "chat template of Qwen/Qwen2-VL-*-Instruct and Qwen/Qwen2.5-VL-*-Instruct (qwen2_5_vl.jinja)"
    special_tokens = _QWEN_TOKENS
    options = {"add_vision_id": False}
    default_system = "You are a helpful assistant."

    def render(self, w, conv, add_generation_prompt, add_vision_id=False):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        system = conv.system
        if system is None:
            system = self.default_system
        if system is not None:
            write("<|im_start|>system\n" + system + "<|im_end|>\n")
        for m in conv.messages:
            role = m["role"]
            c = m["content"]
            assistant = role == "assistant"
            if assistant:
                write("<|im_start|>assistant\n")
                mark(len(pieces))
            else:
                write("<|im_start|>" + role + "\n")
            if len(c) == 1 and c[0]["type"] == "text":
                write(c[0]["text"])
            else:
                for p in c:
                    if p["type"] == IMAGE:
                        if assistant and not self.images_in_assistant:
                            continue
                        order.append(p["index"])
                        write(f"Picture {len(order)}: " + _VISION if add_vision_id else _VISION)
                    else:
                        write(p["text"])
            if assistant:
                write("<|im_end|>")
                mark(len(pieces))
                write("\n")
            else:
                write("<|im_end|>\n")
        if add_generation_prompt:
            write("<|im_start|>assistant\n")
        return order

    images_in_assistant = True


class Qwen3VLFormatter(Qwen2VLFormatter):
    """Qwen3-VL: like Qwen2-VL but no default system prompt, and images in assistant turns are not
    rendered (the template only reads their text)."""

    name = "qwen3_vl"
    description = "Qwen3-VL (ChatML, no default system prompt, optional 'Picture k:' ids)"
    source = "chat template of Qwen/Qwen3-VL-*-Instruct (qwen3_vl.jinja)"
    default_system = None
    images_in_assistant = False
