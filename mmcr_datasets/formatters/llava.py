"""LLaVA families: ``llava_v1`` (LLaVA-1.5), ``llava_next`` (LLaVA-NeXT Mistral) and
``llava_onevision`` (LLaVA-OneVision, Qwen2 based).

* ``llava_v1`` follows the ``vicuna_v1`` conversation of the LLaVA repository
  (haotian-liu/LLaVA, ``llava/conversation.py``: ``conv_vicuna_v1``, ``SeparatorStyle.TWO``):
  ``SYSTEM USER: q ASSISTANT: a</s>USER: ...``; the generation prompt is ``ASSISTANT:``.
* ``llava_next`` is byte-identical to the LLaVA-NeXT Mistral chat template. That template puts all
  images of a message *before* its text (``<image>\\n`` each), whatever their position in the
  dialogue, and ignores ``add_generation_prompt``; this formatter does exactly the same.
* ``llava_onevision`` follows the conversation the model was trained with (LLaVA-VL/LLaVA-NeXT,
  ``llava/conversation.py``: ``conv_qwen`` = template ``qwen_1_5``, ``SeparatorStyle.CHATML``):
  ChatML with the default system prompt ``You are a helpful assistant.``. Note that the
  ``llava-hf`` processor template differs (``<|im_start|>user <image>`` with a space, images first,
  no default system prompt); use ``llava_next``-style processing only if you train with it.

LLaVA-1.5 and OneVision place ``<image>`` where the dialogue refers to it, separated from the
neighbouring text by one newline (the ``<image>\\n`` convention of their training data).
"""

from __future__ import annotations

from .base import IMAGE, FormatterError, Formatter, join_with_newlines
from .chatml import write_chatml_turns

_IMAGE = "<image>"


def _image(_k: int) -> str:
    return _IMAGE


class LlavaV1Formatter(Formatter):
    name = "llava_v1"
    description = "LLaVA-1.5 (vicuna_v1 conversation: 'USER: ... ASSISTANT: ...</s>')"
    source = "haotian-liu/LLaVA llava/conversation.py conv_vicuna_v1 (SeparatorStyle.TWO, sep=' ', sep2='</s>')"
    special_tokens = ("<image>", "</s>", "<s>")
    default_system = (
        "A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions."
    )

    def render(self, w, conv, add_generation_prompt):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        write((self.default_system if conv.system is None else conv.system) + " ")
        for m in conv.messages:
            c = m["content"]
            body = (c[0]["text"] if len(c) == 1 and c[0]["type"] == "text"
                    else join_with_newlines(c, _image, order))
            if m["role"] == "assistant":
                write("ASSISTANT:")
                mark(len(pieces))
                write(" " + body + "</s>")
                mark(len(pieces))
            elif m["role"] == "user":
                write("USER: " + body + " ")
            else:
                raise FormatterError(f"llava_v1 supports user and assistant roles, not {m['role']!r}")
        if add_generation_prompt:
            write("ASSISTANT:")
        return order


class LlavaNextFormatter(Formatter):
    name = "llava_next"
    description = "LLaVA-NeXT Mistral ('[INST] <image>\\n... [/INST] answer</s> '); images first in each message"
    source = "chat template of llava-hf/llava-v1.6-mistral-7b-hf (llava_next.jinja)"
    special_tokens = ("<image>", "</s>", "<s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>")

    def render(self, w, conv, add_generation_prompt):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        if conv.system is not None:
            write("<<SYS>>\n" + conv.system + "\n<</SYS>>\n\n")
        for m in conv.messages:
            role = m["role"]
            content = m["content"]
            if role == "user":
                if len(content) == 1 and content[0]["type"] != IMAGE:
                    write("[INST] " + content[0]["text"] + " [/INST]")
                    continue
                write("[INST] ")
                for p in content:
                    if p["type"] == IMAGE:
                        order.append(p["index"])
                        write("<image>\n")
                for p in content:
                    if p["type"] != IMAGE:
                        write(p["text"])
                write(" [/INST]")
            elif role == "assistant":
                first = content[0]
                if first["type"] == IMAGE:
                    raise FormatterError("llava_next renders only the first part of an assistant message, "
                                         "and it is an image")
                mark(len(pieces))
                write(" " + first["text"] + "</s>")
                mark(len(pieces))
                write(" ")
            else:
                raise FormatterError("Only user and assistant roles are supported!")
        return order


class LlavaOneVisionFormatter(Formatter):
    name = "llava_onevision"
    description = "LLaVA-OneVision (ChatML 'qwen_1_5' conversation, <image> where referred)"
    source = "LLaVA-VL/LLaVA-NeXT llava/conversation.py conv_qwen (template 'qwen_1_5', SeparatorStyle.CHATML)"
    special_tokens = ("<image>", "<video>", "<|im_start|>", "<|im_end|>", "<|endoftext|>")
    default_system = "You are a helpful assistant."

    def render(self, w, conv, add_generation_prompt):
        order: list[int] = []
        system = self.default_system if conv.system is None else conv.system
        if system:
            w.pieces.append("<|im_start|>system\n" + system + "<|im_end|>\n")
        write_chatml_turns(w, conv, _image, order, add_generation_prompt)
        return order
