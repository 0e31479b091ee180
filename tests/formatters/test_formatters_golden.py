"""Formatters without a reference template: golden files, and the families' documented conversation
code re-implemented from their sources and run on the raw Ovis/LLaVA sample records.

Sources (named per family, see each formatter's ``source``):
* llava_v1: haotian-liu/LLaVA ``llava/conversation.py``, ``conv_vicuna_v1`` with ``SeparatorStyle.TWO``.
* llava_onevision: LLaVA-VL/LLaVA-NeXT ``llava/conversation.py``, ``conv_qwen`` (``qwen_1_5``, CHATML).
* internvl2_5: OpenGVLab/InternVL ``internvl_chat/internvl/conversation.py``, template ``internvl2_5`` (MPT).
* ovis2 / ovis1_6: AIDC-AI/Ovis ``ovis/model/conversation_formatter.py`` (Qwen / Gemma / Llama3 formatters).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fmt_helpers import SAMPLE, llava_to_row, mmcr_multi, mmcr_single
from mmcr_datasets.formatters import FormatterError, format_dialogue, list_formatters

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("MMCR_UPDATE_GOLDENS") == "1"

#: (formatter, options) pairs covered by golden files -- every registered formatter at least once
CONFIGS = [(name, {}) for name in list_formatters()] + [
    ("ovis1_6", {"variant": "llama3"}),
    ("qwen2_vl", {"add_vision_id": True}),
    ("internvl2_5", {"add_vision_id": True}),
    ("ovis2", {"add_vision_id": True}),
]
CASES = {
    "mmcr_single": ("factory", mmcr_single, False),
    "mmcr_multi": ("factory", mmcr_multi, True),
    "several_images_one_turn": ("edges", "several_images_one_turn", True),
    "images_only_in_later_turns": ("edges", "images_only_in_later_turns", False),
    "system_prompt": ("edges", "system_prompt", True),
    "unicode": ("edges", "unicode", False),
}


def _config_id(name, opts):
    return name + "".join(f"__{k}={v}" for k, v in sorted(opts.items()))


def _pick(rows, edges, case):
    kind, key, gen = CASES[case]
    row = key() if kind == "factory" else edges[key]
    return row, gen


def test_every_formatter_has_goldens():
    covered = {name for name, _ in CONFIGS}
    assert covered == set(list_formatters())
    if not UPDATE:
        for name, opts in CONFIGS:
            assert list(GOLDEN.glob(_config_id(name, opts) + "__*.json")), f"no golden file for {name}"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name,opts", CONFIGS, ids=[_config_id(n, o) for n, o in CONFIGS])
def test_golden(rows, edges, name, opts, case):
    row, gen = _pick(rows, edges, case)
    extra = {"date_string": "22 Nov 2026"} if name == "mllama" else {}
    path = GOLDEN / f"{_config_id(name, opts)}__{case}.json"
    try:
        out = format_dialogue(row, name, add_generation_prompt=gen, **opts, **extra)
        got = {"text": out.text, "learned": out.learned_texts(), "image_indices": out.image_indices}
    except FormatterError as exc:
        got = {"error": type(exc).__name__, "message": str(exc)}
    got = {"formatter": name, "options": opts, "case": case, "row_id": row["id"],
           "add_generation_prompt": gen, **got}
    if UPDATE:
        path.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert path.is_file(), f"missing golden {path.name}; run with MMCR_UPDATE_GOLDENS=1 and review the diff"
    assert json.loads(path.read_text(encoding="utf-8")) == got


# -- the documented conversation code, re-implemented from the sources, on raw records ----------

def _raw_records():
    out = []
    for f in ("310k/train.json", "bench/test.json"):
        out += json.loads((SAMPLE / f).read_text(encoding="utf-8"))
    return out


def _pairs(rec):
    return [("user" if t["from"] == "human" else "assistant", t["value"]) for t in rec["conversations"]]


def llava_v1_prompt(rec, gen):
    """``Conversation.get_prompt`` for ``SeparatorStyle.TWO`` with conv_vicuna_v1's fields."""
    system = ("A chat between a curious human and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the human's questions.")
    roles = {"user": "USER", "assistant": "ASSISTANT"}
    seps = [" ", "</s>"]
    msgs = [(roles[r], v) for r, v in _pairs(rec)] + ([("ASSISTANT", None)] if gen else [])
    ret = system + seps[0]
    for i, (role, message) in enumerate(msgs):
        ret += role + ": " + message + seps[i % 2] if message else role + ":"
    return ret


def chatml_prompt(rec, gen, system):
    """CHATML (LLaVA-NeXT) / MPT (InternVL) / Ovis QwenConversationFormatter: the same string."""
    ret = "<|im_start|>system\n" + system + "<|im_end|>\n"
    for role, value in _pairs(rec):
        ret += f"<|im_start|>{role}\n" + value + "<|im_end|>\n"
    return ret + ("<|im_start|>assistant\n" if gen else "")


def ovis_gemma_prompt(rec, gen):
    from2role = {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"}
    ret = "<bos>"
    for role, value in _pairs(rec):
        ret += from2role[role] + value + "<end_of_turn>\n"
    return ret + (from2role["assistant"] if gen else "")


def ovis_llama3_prompt(rec, gen):
    from2role = {"system": "<|start_header_id|>system<|end_header_id|>\n\n",
                 "user": "<|start_header_id|>user<|end_header_id|>\n\n",
                 "assistant": "<|start_header_id|>assistant<|end_header_id|>\n\n"}
    ret = "<|begin_of_text|>" + from2role["system"] + "You are a helpful and honest multimodal assistant.<|eot_id|>"
    for role, value in _pairs(rec):
        ret += from2role[role] + value + "<|eot_id|>"
    return ret + (from2role["assistant"] if gen else "")


INTERNVL_SYSTEM = "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
DOCUMENTED = {
    ("llava_v1", ""): llava_v1_prompt,
    ("llava_onevision", ""): lambda rec, gen: chatml_prompt(rec, gen, "You are a helpful assistant."),
    ("ovis2", ""): lambda rec, gen: chatml_prompt(rec, gen, "You are a helpful assistant."),
    ("internvl2_5", ""): lambda rec, gen: chatml_prompt(rec, gen, INTERNVL_SYSTEM),
    ("ovis1_6", "gemma2"): ovis_gemma_prompt,
    ("ovis1_6", "llama3"): ovis_llama3_prompt,
}


@pytest.mark.parametrize("gen", [False, True])
@pytest.mark.parametrize("name,variant", sorted(DOCUMENTED))
def test_documented_format_on_raw_records(name, variant, gen):
    opts = {"variant": variant} if variant else {}
    for rec in _raw_records():
        expected = DOCUMENTED[(name, variant)](rec, gen)
        out = format_dialogue(llava_to_row(rec), name, add_generation_prompt=gen, **opts)
        assert out.text == expected, rec["id"]
        answers = [v for r, v in _pairs(rec) if r == "assistant"]
        assert [t.lstrip(" ") for t in out.learned_texts()] == [
            a + {"llava_v1": "</s>", "ovis1_6": "<end_of_turn>" if variant == "gemma2" else "<|eot_id|>"}.get(
                name, "<|im_end|>") for a in answers]


def test_vision_ids_numbered_across_dialogue(edges):
    row = edges["several_images_one_turn"]
    assert "Image-1: <image>\nImage-2: <image>\nCompare these two photos.\nImage-3: <image>\nAnd this one?" in \
        format_dialogue(row, "internvl2_5", add_vision_id=True).text
    assert "Image 3: <image>" in format_dialogue(row, "ovis2", add_vision_id=True).text
    assert "<|image_1|>\n<|image_2|>\nCompare these two photos.\n<|image_3|>\nAnd this one?" in \
        format_dialogue(row, "phi3_v").text


def test_ovis1_6_gemma2_refuses_system(edges):
    with pytest.raises(FormatterError, match="system"):
        format_dialogue(edges["system_prompt"], "ovis1_6")


def test_reader_and_local_conversion_agree():
    """The package's llava reader and this test's own conversion give the same rows."""
    pytest.importorskip("mmcr_datasets.readers")
    from fmt_helpers import local_sample_rows, reader_sample_rows

    for a, b in zip(local_sample_rows(), reader_sample_rows()):
        assert (a["id"], a["messages"], a["images"]) == (b["id"], b["messages"], b["images"])
