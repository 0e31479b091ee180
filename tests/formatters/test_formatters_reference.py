"""Byte-for-byte comparison with the families' own chat templates (rendered like transformers)."""

from __future__ import annotations

import pytest

from fmt_helpers import literal_token_row, system, text
from mmcr_datasets.formatters import FormatterError, LiteralSpecialTokenError, format_dialogue, get_formatter
from mmcr_datasets.testing.reference_templates import REFERENCES

FAMILIES = sorted(REFERENCES)
#: what a learned span looks like around the assistant's text: (prefix, end marker)
SPAN_SHAPE = {
    "qwen2_vl": ("", "<|im_end|>"), "qwen3_vl": ("", "<|im_end|>"), "idefics3": (" ", "<end_of_utterance>"),
    "smolvlm": (" ", "<end_of_utterance>"), "llava_next": (" ", "</s>"), "gemma3": ("", "<end_of_turn>"),
    "phi3_v": ("", "<|end|>"), "mllama": ("", "<|eot_id|>"),
}


def _num_images(row):
    return len(row["images"])


def _expect_same(renderer, name, row, **kw):
    gen = kw.pop("add_generation_prompt", False)
    variables = {k: v for k, v in kw.items() if k in ("add_vision_id", "date_string")}
    out = format_dialogue(row, name, add_generation_prompt=gen, literal_tokens="keep", **kw)
    ref = renderer.render(name, row["messages"], add_generation_prompt=gen, **variables)
    assert out.text == ref
    return out


def _check_spans(name, row, out):
    prefix, marker = SPAN_SHAPE[name]
    answers = [m for m in row["messages"] if m["role"] == "assistant"]
    learned = out.learned_texts()
    assert len(learned) == len(answers)
    for span_text, msg in zip(learned, answers):
        answer = "".join(p["text"] for p in msg["content"])
        if name == "gemma3":
            answer = answer.strip()
        assert span_text == prefix + answer + marker


@pytest.mark.parametrize("gen", [False, True], ids=["train", "genprompt"])
@pytest.mark.parametrize("name", FAMILIES)
def test_sample_dialogues_match_reference(renderer, rows, name, gen):
    kw = {"date_string": "22 Nov 2026"} if name == "mllama" else {}
    checked = 0
    for row in rows:
        if name == "mllama" and _num_images(row) > 1:
            with pytest.raises(FormatterError, match="at most 1 image"):
                format_dialogue(row, name)
            continue
        out = _expect_same(renderer, name, row, add_generation_prompt=gen, **kw)
        _check_spans(name, row, out)
        assert len(out.images) == _num_images(row)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("gen", [False, True], ids=["train", "genprompt"])
@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("case", ["several_images_one_turn", "images_only_in_later_turns", "system_prompt",
                                  "unicode", "jinja_syntax"])
def test_edge_cases_match_reference(renderer, edges, name, case, gen):
    row = edges[case]
    if name == "mllama":
        if _num_images(row) > 1:
            with pytest.raises(FormatterError):
                format_dialogue(row, name)
            return
        if case == "system_prompt":  # the family refuses a system prompt with images, like its template
            with pytest.raises(FormatterError, match="incompatible with system"):
                format_dialogue(row, name)
            with pytest.raises(Exception, match="incompatible with system"):
                renderer.render(name, row["messages"], date_string="22 Nov 2026")
            return
    kw = {"date_string": "22 Nov 2026"} if name == "mllama" else {}
    out = _expect_same(renderer, name, row, add_generation_prompt=gen, **kw)
    _check_spans(name, row, out)


def test_image_order_follows_placeholders(edges):
    row = edges["several_images_one_turn"]
    out = format_dialogue(row, "qwen2_vl")
    assert out.image_indices == [0, 1, 2]
    assert out.images == row["images"]
    # llava_next moves each message's images before its text, in their order: still 0, 1, 2
    assert format_dialogue(row, "llava_next").image_indices == [0, 1, 2]
    later = edges["images_only_in_later_turns"]
    text_ = format_dialogue(later, "qwen2_vl").text
    first_user = text_.index("Ready?")
    assert text_.index("<|image_pad|>") > first_user  # not hoisted to the start


@pytest.mark.parametrize("name", ["qwen2_vl", "qwen3_vl"])
def test_add_vision_id_matches_reference(renderer, rows, edges, name):
    multi = [r for r in rows if _num_images(r) > 1][:3] + [edges["several_images_one_turn"]]
    for row in multi:
        out = _expect_same(renderer, name, row, add_vision_id=True, add_generation_prompt=True)
        assert f"Picture {_num_images(row)}: <|vision_start|>" in out.text


@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "mllama"])
def test_system_argument_matches_reference(renderer, rows, name):
    row = rows[0]
    out = format_dialogue(row, name, system="Answer briefly.")
    assert out.text == renderer.render(name, [system("Answer briefly.")] + row["messages"])
    # the argument replaces a system message already in the row
    with_sys = dict(row, messages=[system("Old prompt.")] + row["messages"])
    assert format_dialogue(with_sys, name, system="Answer briefly.").text == out.text


def test_mllama_text_only_dialogue_has_dated_system_block(renderer):
    row = {"id": "t", "images": [], "messages": [system("  Be brief. "), {"role": "user", "content": [text("Hi")]},
                                                   {"role": "assistant", "content": [text("Hello")]}]}
    out = format_dialogue(row, "mllama", date_string="01 Jan 2026", add_generation_prompt=True)
    assert out.text == renderer.render("mllama", row["messages"], date_string="01 Jan 2026",
                                       add_generation_prompt=True)
    assert "Today Date: 01 Jan 2026\n\nBe brief.<|eot_id|>" in out.text


@pytest.mark.parametrize("name", FAMILIES)
def test_literal_special_tokens(renderer, name):
    fmt = get_formatter(name)
    tokens = list(fmt.special_tokens[:4]) + (["<|image_3|>"] if name == "phi3_v" else [])
    for token in tokens:
        row = literal_token_row(token)
        kw = {"date_string": "22 Nov 2026"} if name == "mllama" else {}
        # default: refuse, naming the token
        with pytest.raises(LiteralSpecialTokenError, match="literal_tokens"):
            format_dialogue(row, name, **kw)
        # keep: verbatim, byte-identical to the template
        _expect_same(renderer, name, row, **kw)
        # escape: the text reads the same but the control token no longer occurs
        escaped = format_dialogue(row, name, literal_tokens="escape", **kw)
        kept = format_dialogue(row, name, literal_tokens="keep", **kw)
        assert escaped.text.count(token) < kept.text.count(token)
        assert escaped.text.replace("\u200b", "") == kept.text


def test_plain_image_placeholder_text_is_harmless_for_qwen(renderer):
    # "<image>" is not a Qwen control token: it is formatted verbatim without complaint.
    row = literal_token_row("<image>")
    assert format_dialogue(row, "qwen2_vl").text == renderer.render("qwen2_vl", row["messages"])


def test_gemma3_rejects_non_alternating_roles():
    row = {"id": "x", "images": [], "messages": [{"role": "user", "content": [text("a")]},
                                                 {"role": "user", "content": [text("b")]}]}
    with pytest.raises(FormatterError, match="alternate"):
        format_dialogue(row, "gemma3")


def test_environment_matches_transformers(rows):
    """Our Jinja set-up renders exactly what transformers' own chat-template renderer renders."""
    utils = pytest.importorskip("transformers.utils.chat_template_utils")
    from mmcr_datasets.testing.reference_templates import ReferenceRenderer, reference_dir, reference_source

    if reference_dir() is None:
        pytest.skip("reference chat templates are not available")
    ours = ReferenceRenderer()
    for name in FAMILIES:
        row = next(r for r in rows if name != "mllama" or len(r["images"]) == 1)
        fixed = dict(REFERENCES[name][3], date_string="22 Nov 2026")
        msgs = ours.messages_for(name, row["messages"])
        expected = utils.render_jinja_template(conversations=[msgs], chat_template=reference_source(name),
                                               add_generation_prompt=True, **fixed)
        expected = expected[0][0] if isinstance(expected, tuple) else expected
        if isinstance(expected, list):
            expected = expected[0]
        assert ours.render(name, row["messages"], add_generation_prompt=True, date_string="22 Nov 2026") == expected
