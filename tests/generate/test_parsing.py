"""Parsing LLM replies: the safe repairs, and every failure with its quarantine reason."""

from __future__ import annotations

import json

import pytest

from mmcr_datasets.generate.fake_llm import make_dialogue
from mmcr_datasets.generate.parsing import ParseFailure, parse_dialogue
from mmcr_datasets.generate.selection import Task, TaskImage
from mmcr_datasets.taxonomy import load_taxonomy
from mmcr_datasets.validation.checks import CheckContext, check_record


def _task(n_images: int) -> Task:
    imgs = tuple(TaskImage(f"{i:064x}", "jpg", b"") for i in range(n_images))
    return Task("doc", "docs.jsonl:1", 0, imgs, "context")


def _good(n_images: int) -> dict:
    return make_dialogue(4 if n_images == 1 else 8, n_images, "First sentence here, long enough. Second one too, also long.",
                         "Theme", "t")


@pytest.mark.parametrize("n", [1, 2, 4])
def test_good_reply_becomes_a_valid_record(n):
    parsed = parse_dialogue(json.dumps(_good(n)), _task(n))
    assert parsed.repairs == []
    rec = {"id": "x", "images": [f"{i}.jpg" for i in range(n)], "messages": parsed.messages,
           "dialogue_type": "single_image" if n == 1 else "multi_image"}
    assert check_record(rec, CheckContext(load_taxonomy())) == []


def test_safe_repairs_are_recorded():
    good = _good(2)
    text = "Here you go:\n" + json.dumps(good) + "\nHope this helps."
    assert parse_dialogue(text, _task(2)).repairs == ["extract_json_object"]
    assert parse_dialogue("```json\n" + json.dumps(good) + "\n```", _task(2)).repairs == ["strip_code_fence"]
    assert parse_dialogue(json.dumps(good["turns"]), _task(2)).repairs == ["unwrap_turn_list"]
    syn = {"turns": [{"images": t["images"], "user": t["question"], "assistant": t["answer"]} for t in good["turns"]]}
    assert parse_dialogue(json.dumps(syn), _task(2)).repairs == ["key_synonyms"]
    coerced = json.loads(json.dumps(good))
    coerced["turns"][0]["images"] = "1"
    coerced["turns"][1]["images"] = 2
    assert parse_dialogue(json.dumps(coerced), _task(2)).repairs == ["coerce_image_numbers"]
    single = _good(1)
    for t in single["turns"]:
        t["images"] = []
    parsed = parse_dialogue(json.dumps(single), _task(1))
    assert parsed.repairs == ["introduce_single_image"]
    assert parsed.messages[0]["content"][0] == {"type": "image", "index": 0}


def _fails(content, n=2, finish=None) -> str:
    with pytest.raises(ParseFailure) as info:
        parse_dialogue(content, _task(n), finish)
    return info.value.code


def test_failures_have_reasons():
    good = _good(2)
    assert _fails("I cannot do that.") == "invalid_json"
    assert _fails(json.dumps(good)[:200]) == "invalid_json"
    assert _fails(json.dumps(good), finish="length") == "truncated"
    assert _fails("") == "empty_reply"
    assert _fails(json.dumps({"dialogue": []})) == "bad_structure"
    assert _fails(json.dumps({"turns": good["turns"][:7]})) == "wrong_turn_count"
    blank = json.loads(json.dumps(good))
    blank["turns"][3]["answer"] = "  "
    assert _fails(json.dumps(blank)) == "bad_structure"
    for mutate in (lambda t: t[7].update(images=[3]),  # out of range
                   lambda t: t[7].update(images=[0]),  # zero-based numbering: not guessed
                   lambda t: t[5].update(images=[1]),  # introduced twice
                   lambda t: t[1].update(images=[]),  # picture 2 never introduced
                   lambda t: (t[0].update(images=[2]), t[1].update(images=[1])),  # out of order
                   lambda t: t[2].update(images=["two"])):
        bad = json.loads(json.dumps(good))
        mutate(bad["turns"])
        assert _fails(json.dumps(bad)) == "bad_image_ref"
