"""Registry, custom formatters, Dialogue input, import hygiene and the `mmcr format` entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fmt_helpers import SAMPLE, assistant, user
from mmcr_datasets.formatters import (
    FormattedDialogue,
    Formatter,
    FormatterError,
    format_dialogue,
    get_formatter,
    list_formatters,
    register_formatter,
)
from mmcr_datasets.formatters.cli import main_format

ISSUE_FAMILIES = {"qwen2_vl", "qwen3_vl", "llava_v1", "llava_next", "llava_onevision", "idefics3", "smolvlm",
                  "internvl2_5", "phi3_v", "mllama", "gemma3", "ovis2", "ovis1_6"}


def test_registry_lists_every_family():
    assert ISSUE_FAMILIES <= set(list_formatters())
    for name in list_formatters():
        f = get_formatter(name)
        assert f.name == name and f.source and f.description
    with pytest.raises(FormatterError, match="known: "):
        get_formatter("qwen9")


def test_unknown_option_is_refused(rows):
    with pytest.raises(FormatterError, match="add_vision_id"):
        format_dialogue(rows[0], "qwen2_vl", add_vision_ids=True)


def test_register_custom_formatter(rows):
    class PlainFormatter(Formatter):
        """'Q: ... A: ...' with [IMG] markers."""

        name = "test_plain"
        source = "this test"
        description = "plain"
        special_tokens = ("[IMG]",)

        def render(self, w, conv, add_generation_prompt):
            order = []
            for m in conv.messages:
                if m["role"] == "assistant":
                    w.write("A:")
                    w.begin()
                    w.write(" " + m["content"][0]["text"] + "\n")
                    w.end()
                else:
                    pieces = []
                    for p in m["content"]:
                        if p["type"] == "image":
                            order.append(p["index"])
                            pieces.append("[IMG]")
                        else:
                            pieces.append(p["text"])
                    w.write("Q: " + " ".join(pieces) + "\n")
            if add_generation_prompt:
                w.write("A:")
            return order

    register_formatter(PlainFormatter)
    try:
        with pytest.raises(FormatterError, match="already registered"):
            register_formatter(PlainFormatter)
        out = format_dialogue(rows[0], "test_plain", add_generation_prompt=True)
        assert isinstance(out, FormattedDialogue)
        assert out.text.startswith("Q: [IMG] What kind of animal")
        assert out.text.endswith("\nA:")
        assert len(out.assistant_spans) == 4 and all(t.startswith(" ") for t in out.learned_texts())
        assert out.images == rows[0]["images"]
    finally:
        from mmcr_datasets import formatters

        formatters._REGISTRY.pop("test_plain", None)


def test_dialogue_objects_format_like_rows(rows):
    from mmcr_datasets.records import Dialogue

    row = rows[12]
    d = Dialogue.from_row({**row, "images": [{"bytes": None, "path": i["path"]} for i in row["images"]]})
    for name in ("qwen2_vl", "llava_next", "ovis2", "phi3_v"):
        a, b = format_dialogue(row, name), format_dialogue(d, name)
        assert a.text == b.text and a.assistant_spans == b.assistant_spans
        assert [img.path for img in b.images] == [img["path"] for img in a.images]


def test_decoded_images_follow_placeholder_order(edges):
    from PIL import Image

    row = edges["several_images_one_turn"]
    pil = [Image.new("RGB", (8, 8), c) for c in ("red", "green", "blue")]
    out = format_dialogue(dict(row, images=pil), "llava_onevision")
    assert out.images == pil


def test_image_index_out_of_range():
    row = {"id": "bad", "images": [], "messages": [user({"type": "image", "text": None, "index": 0}, "hi"),
                                                   assistant("ok")]}
    with pytest.raises(FormatterError, match="refers to image 0"):
        format_dialogue(row, "qwen2_vl")


def test_marked_output(rows):
    out = format_dialogue(rows[0], "qwen2_vl")
    marked = out.marked("<<", ">>")
    assert marked.count("<<") == 4 and marked.replace("<<", "").replace(">>", "") == out.text


def test_imports_stay_light():
    code = ("import sys, mmcr_datasets, mmcr_datasets.formatters, mmcr_datasets.exports, mmcr_datasets.labels, "
            "mmcr_datasets.formatters.cli; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'jinja2', "
            "'openai', 'tokenizers')); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_main_format_text_and_json(capsys):
    path = str(SAMPLE / "bench" / "test.json")
    assert main_format([path, "--template", "idefics3", "--index", "1"]) == 0
    text = capsys.readouterr().out
    assert "mmcr-sample-bench-0002 as idefics3" in text and "Assistant:[[ " in text
    assert main_format([path, "-t", "qwen2_vl", "--id", "mmcr-sample-bench-0004", "-o", "add_vision_id=true",
                        "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "Picture 3: <|vision_start|>" in data["text"] and len(data["learned"]) == 8
    assert data["images"] == ["coins.jpg", "brick.jpg", "text.jpg"] or len(data["images"]) == 3


def test_main_format_exit_codes(capsys):
    path = str(SAMPLE / "bench" / "test.json")
    assert main_format([path, "-t", "nope"]) == 2
    assert main_format([path, "-t", "qwen2_vl", "--index", "99"]) == 2
    assert main_format([path, "-t", "qwen2_vl", "-o", "bogus=1"]) == 2
    assert main_format([path, "-t", "mllama", "--index", "0"]) == 1  # two images: mllama takes one
    assert "at most 1 image" in capsys.readouterr().err
    assert main_format([str(SAMPLE / "missing.json"), "-t", "qwen2_vl"]) == 2


def test_register_as_subcommand(capsys):
    import argparse

    from mmcr_datasets.formatters.cli import register

    parser = argparse.ArgumentParser(prog="mmcr")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["format", str(SAMPLE / "310k" / "train.json"), "--template", "gemma3",
                              "--add-generation-prompt", "--marks", "<<,>>"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.rstrip("\n").endswith("<start_of_turn>model") and "<<" in out
