"""ChatML families with an ``<image>`` placeholder: InternVL2.5 (``internvl2_5``) and Ovis2
(``ovis2``, the family MMCR was trained on), plus Ovis1.6 (``ovis1_6``: Gemma2 or Llama3 turns).

All of them place ``<image>`` where the dialogue refers to it, separated from neighbouring text by
one newline, and learn ``answer<end marker>`` (the newline after the marker is not learned, as in
Ovis's own ``ConversationFormatter``).

* ``internvl2_5``: InternVL's ``internvl2_5`` conversation template (OpenGVLab/InternVL,
  ``internvl_chat/internvl/conversation.py``, ``SeparatorStyle.MPT``) with its default Chinese system
  prompt. ``add_vision_id=True`` writes ``Image-k: <image>`` (k across the dialogue), the
  multi-image prompt style of the InternVL2.5 model card.
* ``ovis2``: Ovis's ``QwenConversationFormatter`` (AIDC-AI/Ovis, ``ovis/model/conversation_formatter.py``)
  with the default system prompt ``You are a helpful assistant.``; ``add_vision_id=True`` writes
  ``Image k: <image>`` as in the Ovis2 multi-image example.
* ``ovis1_6``: ``variant="gemma2"`` follows ``GemmaConversationFormatter`` (``<bos>``, Gemma turns,
  no system prompt allowed); ``variant="llama3"`` follows ``Llama3ConversationFormatter``
  (``<|begin_of_text|>``, Llama 3 headers, default system prompt
  ``You are a helpful and honest multimodal assistant.``).
"""

from __future__ import annotations

from .base import FormatterError, Formatter, join_with_newlines

_CHATML = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


def write_chatml_turns(w, conv, placeholder, order: list, add_generation_prompt: bool) -> None:
    """Every message as ``<|im_start|>role\n...<|im_end|>\n`` (images by ``placeholder(k)``), the
    assistant answer and its ``<|im_end|>`` marked as learned; then the optional generation prompt.
    Shared by the ChatML families that write an image placeholder where the dialogue refers to it."""
    pieces = w.pieces
    write = pieces.append
    mark = w.marks.append
    for m in conv.messages:
        role = m["role"]
        c = m["content"]
        body = (c[0]["text"] if len(c) == 1 and c[0]["type"] == "text"
                else join_with_newlines(c, placeholder, order))
        write("<|im_start|>" + role + "\n")
        if role == "assistant":
            mark(len(pieces))
            write(body + "<|im_end|>")
            mark(len(pieces))
            write("\n")
        else:
            write(body + "<|im_end|>\n")
    if add_generation_prompt:
        write("<|im_start|>assistant\n")


class _ChatMLImageFormatter(Formatter):
    default_system: str = ""
    vision_id: str = "Image {k}: "
    options = {"add_vision_id": False}

    def render(self, w, conv, add_generation_prompt, add_vision_id=False):
        order: list[int] = []
        write = w.pieces.append
        if add_vision_id:
            fmt = self.vision_id
            placeholder = lambda k: fmt.format(k=k) + "<image>"  # noqa: E731
        else:
            placeholder = lambda k: "<image>"  # noqa: E731
        system = self.default_system if conv.system is None else conv.system
        write("<|im_start|>system\n" + system + "<|im_end|>\n")
        write_chatml_turns(w, conv, placeholder, order, add_generation_prompt)
        return order


class InternVL25Formatter(_ChatMLImageFormatter):
    name = "internvl2_5"
    description = "InternVL2.5 (ChatML, InternVL system prompt, <image>; optional 'Image-k:' ids)"
    source = ("OpenGVLab/InternVL internvl_chat/internvl/conversation.py template 'internvl2_5' "
              "(SeparatorStyle.MPT); 'Image-k: <image>' from the InternVL2.5 model card")
    special_tokens = _CHATML + ("<image>", "<img>", "</img>", "<IMG_CONTEXT>")
    default_system = ("你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位"
                      "联合开发的多模态大语言模型。")
    vision_id = "Image-{k}: "


class Ovis2Formatter(_ChatMLImageFormatter):
    name = "ovis2"
    description = "Ovis2 (ChatML, 'You are a helpful assistant.', <image>; optional 'Image k:' ids)"
    source = "AIDC-AI/Ovis ovis/model/conversation_formatter.py QwenConversationFormatter"
    special_tokens = _CHATML + ("<image>",)
    default_system = "You are a helpful assistant."
    vision_id = "Image {k}: "


class Ovis16Formatter(Formatter):
    name = "ovis1_6"
    description = "Ovis1.6 (variant='gemma2': Gemma2 turns, no system; variant='llama3': Llama 3 headers)"
    source = ("AIDC-AI/Ovis ovis/model/conversation_formatter.py GemmaConversationFormatter and "
              "Llama3ConversationFormatter")
    special_tokens = ("<image>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<|begin_of_text|>",
                      "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    options = {"variant": "gemma2"}
    llama3_system = "You are a helpful and honest multimodal assistant."

    def render(self, w, conv, add_generation_prompt, variant="gemma2"):
        order: list[int] = []
        pieces = w.pieces
        write = pieces.append
        mark = w.marks.append
        if variant == "gemma2":
            if conv.system is not None:
                raise FormatterError("Ovis1.6-Gemma2 does not support a system prompt (Gemma has none)")
            write("<bos>")
            roles = {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"}
            end, end_nl = "<end_of_turn>", "\n"
        elif variant == "llama3":
            write("<|begin_of_text|>")
            system = self.llama3_system if conv.system is None else conv.system
            write("<|start_header_id|>system<|end_header_id|>\n\n" + system + "<|eot_id|>")
            roles = {"user": "<|start_header_id|>user<|end_header_id|>\n\n",
                     "assistant": "<|start_header_id|>assistant<|end_header_id|>\n\n"}
            end, end_nl = "<|eot_id|>", ""
        else:
            raise FormatterError(f"ovis1_6 variant must be 'gemma2' or 'llama3', not {variant!r}")
        for m in conv.messages:
            role = m["role"]
            if role not in roles:
                raise FormatterError(f"ovis1_6 supports user and assistant roles, not {role!r}")
            c = m["content"]
            body = (c[0]["text"] if len(c) == 1 and c[0]["type"] == "text"
                    else join_with_newlines(c, lambda k: "<image>", order))
            write(roles[role])
            if role == "assistant":
                mark(len(pieces))
                write(body + end)
                mark(len(pieces))
                write(end_nl)
            else:
                write(body + end + end_nl)
        if add_generation_prompt:
            write(roles["assistant"])
        return order
