"""The ``mmcr`` command line, called through its real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from factories import llava_record, write_json
from mmcr_datasets.cli import main
from mmcr_datasets.validation.fixes import apply_fixes, fix_image_order, fix_missing_placeholders

FIELDS = {"code", "severity", "record_id", "pointer", "source", "message", "hint"}


def test_validate_clean_folder_exits_0(demo_dir, capsys):
    assert main(["validate", str(demo_dir / "mmcr" / "310k"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["num_records"] == 16 and report["issues"] == []


def test_validate_raw_with_issues_exits_1_with_full_issues(tmp_path, images, capsys):
    path = write_json(tmp_path / "t.json", [llava_record("a"), llava_record("b", images=["zz.jpg"])])
    assert main(["validate", str(path), "--image-root", str(images), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["num_records"] == 2
    (issue,) = report["issues"]
    assert set(issue) >= FIELDS and issue["code"] == "MMCR051" and issue["record_id"] == "b"
    assert issue["pointer"] == "/image" and issue["source"].startswith(str(path) + ":")


def test_build_cli_skip_writes_rejects_and_loads(tmp_path, images, capsys):
    path = write_json(tmp_path / "t.json", [llava_record("a"), llava_record("b", turns=5), llava_record("c")])
    out = tmp_path / "hub"
    code = main(["build", str(path), "--format", "llava", "--image-root", str(images), "--name", "310k",
                 "--out", str(out), "--on-invalid", "skip", "--rejects", str(tmp_path / "rej.jsonl")])
    assert code == 1  # data problems were found (and reported), the valid records were written
    assert "2 of 3" in capsys.readouterr().out
    assert datasets.load_dataset(str(out), split="train")["id"] == ["a", "c"]
    assert json.loads((tmp_path / "rej.jsonl").read_text())["record_id"] == "b"


def test_convert_cli_round_trip(demo_dir, tmp_path, sample_dir):
    out = tmp_path / "conv" / "train.json"
    assert main(["convert", str(demo_dir / "mmcr" / "310k"), "--to", "llava", "--out", str(out)]) == 0
    original = {r["id"]: r for r in json.loads((sample_dir / "310k" / "train.json").read_text())}
    assert {r["id"]: r for r in json.loads(out.read_text())} == original
    assert (out.parent / "images" / "chelsea.jpg").read_bytes() == (sample_dir / "images" / "chelsea.jpg").read_bytes()
    back = tmp_path / "back.jsonl"
    assert main(["convert", str(out), "--to", "messages", "--out", str(back),
                 "--image-root", str(out.parent / "images")]) == 0
    assert len(back.read_text().splitlines()) == 16


def test_export_cli_reshards_and_validates(demo_dir, tmp_path, capsys):
    out = tmp_path / "re"
    assert main(["export", str(demo_dir / "mmcr" / "bench"), "--out", str(out)]) == 0
    assert "mmcr/bench" in capsys.readouterr().out
    assert datasets.load_dataset(str(out), split="test").num_rows == 8


def test_usage_errors_exit_2(capsys):
    assert main(["build"]) == 2
    assert main([]) == 2
    assert main(["validate", "/does/not/exist"]) == 2


def test_fixes_are_explicit_and_logged():
    rec = {"id": "x", "images": ["a.jpg", "b.jpg"], "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Compare?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]}]}
    fixed, log = fix_missing_placeholders(rec)
    assert rec["messages"][0]["content"][0]["type"] == "text"  # input untouched
    assert fixed["messages"][0]["content"][:2] == [{"type": "image", "index": 0}, {"type": "image", "index": 1}]
    assert len(log) == 1 and "inserted 2" in str(log[0])
    swapped = json.loads(json.dumps(fixed))
    swapped["messages"][0]["content"][0]["index"], swapped["messages"][0]["content"][1]["index"] = 1, 0
    swapped["clip_scores"] = [0.1, 0.9]
    reordered, log = fix_image_order(swapped)
    assert reordered["images"] == ["b.jpg", "a.jpg"] and reordered["clip_scores"] == [0.9, 0.1]
    assert [p["index"] for p in reordered["messages"][0]["content"][:2]] == [0, 1]
    same, log = apply_fixes(fixed, ["missing_placeholders", "image_order"])
    assert same == fixed and log == []
    with pytest.raises(ValueError):
        apply_fixes(rec, ["everything"])


def test_fix_cli_repairs_and_logs(tmp_path, images, capsys):
    rec = llava_record("x", images=["a.jpg", "b.jpg"], turns=8, placements={})
    path = write_json(tmp_path / "t.json", [rec, llava_record("ok")])
    assert main(["validate", str(path), "--image-root", str(images)]) == 1
    out = tmp_path / "fixed.json"
    assert main(["fix", str(path), "--fix", "missing_placeholders", "--out", str(out)]) == 0
    fixed = json.loads(out.read_text())
    assert fixed[0]["conversations"][0]["value"].startswith("<image>\n<image>\nQuestion 1")
    assert fixed[1] == llava_record("ok")
    log = [json.loads(l) for l in (tmp_path / "fixed.json.changes.jsonl").read_text().splitlines()]
    assert [(c["record_id"], c["fix"]) for c in log] == [("x", "fix_missing_placeholders")]
    assert main(["validate", str(out), "--image-root", str(images)]) == 0
