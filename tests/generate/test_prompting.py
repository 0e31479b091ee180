"""Prompt files, the requests built from them, and what identifies a request in the cache."""

from __future__ import annotations

import base64
import io

from gen_helpers import DOCS

from mmcr_datasets.generate.documents import read_documents
from mmcr_datasets.generate.prompting import (ImageEncoding, build_dialogue_request, build_domain_request,
                                              load_prompt)
from mmcr_datasets.generate.selection import select_tasks
from mmcr_datasets.taxonomy import load_taxonomy


def _tasks():
    return list(select_tasks(read_documents(DOCS)))


def test_dialogue_request_fills_every_placeholder():
    tax = load_taxonomy()
    prompt = load_prompt("dialogue", "v1")
    multi = next(t for t in _tasks() if len(t.images) > 1)
    req = build_dialogue_request(multi, "Technology", "Spaceflight", tax, prompt)
    system, user = req.messages
    assert system["role"] == "system" and "JSON" in system["content"]
    parts = user["content"]
    assert [p["type"] for p in parts] == ["image_url"] * len(multi.images) + ["text"]
    text = parts[-1]["text"]
    assert "$" not in text and "exactly 8 turns" in text and "Spaceflight" in text
    assert multi.title in text and multi.context[:40] in text
    assert parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    # the cache identity names images by hash, never by their bytes
    assert "base64" not in req.identity and multi.images[0].sha256 in req.identity
    assert prompt.fingerprint.startswith("dialogue-v1-") and prompt.fingerprint in req.identity


def test_image_downscaling_for_the_request():
    from PIL import Image

    task = _tasks()[1]
    req = build_dialogue_request(task, "Daily Life", "Pets & Companion Animals", load_taxonomy(),
                                 load_prompt("dialogue"), ImageEncoding(max_side=64, detail="low"))
    part = req.messages[1]["content"][0]["image_url"]
    assert part["detail"] == "low"
    data = base64.b64decode(part["url"].split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as img:
        assert max(img.size) == 64
    plain = build_dialogue_request(task, "Daily Life", "Pets & Companion Animals", load_taxonomy(), load_prompt("dialogue"))
    assert plain.identity != req.identity  # another encoding is another request


def test_domain_request_lists_every_subtopic():
    tax = load_taxonomy()
    req = build_domain_request("A cat on a sofa.", tax, load_prompt("domain"))
    text = req.messages[1]["content"]
    assert all(f"{d} / {s}:" in text for d, s in ((s.domain, s.name) for s in tax.subtopics))
    assert "$" not in text


def test_own_prompt_folder(tmp_path):
    (tmp_path / "dialogue_v7.system.txt").write_text("Be brief.")
    (tmp_path / "dialogue_v7.user.txt").write_text("Write $num_turns turns about $subtopic.")
    prompt = load_prompt("dialogue", "v7", str(tmp_path))
    req = build_dialogue_request(_tasks()[0], "Technology", "Spaceflight", load_taxonomy(), prompt)
    assert req.messages[1]["content"][-1]["text"] == "Write 8 turns about Spaceflight."
