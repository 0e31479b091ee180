"""Building Hub folders: invalid-record policies, rejects, parallel and deterministic output, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factories import llava_record, make_jpeg, write_json
from mmcr_datasets.errors import ExportError, InvalidRecordError
from mmcr_datasets.export import build_hub_folder
from mmcr_datasets.hub import iter_rows
from mmcr_datasets.validation import validate_hub_folder

REPO = Path(__file__).resolve().parent.parent


def _mixed(tmp_path, images, n_valid=12):
    """Valid records interleaved with invalid ones (each invalid for a different reason)."""
    recs = []
    for i in range(n_valid):
        if i % 2:
            recs.append(llava_record(f"v{i}", images=["a.jpg", "b.jpg", "c.jpg"][: 2 + i % 2], turns=8,
                                     placements={0: 1, 2: 1, 4: 1} if i % 2 and 2 + i % 2 == 3 else {0: 1, 2: 1}))
        else:
            recs.append(llava_record(f"v{i}", images=["d.jpg"], domain="Science", subtopic="Astronomy"))
    bad = [
        llava_record("bad-missing", images=["nope.jpg"]),
        llava_record("bad-turns", turns=3),
        llava_record("v0"),  # duplicate id
        llava_record("bad-escape", images=["../a.jpg"]),
        llava_record("bad-label", domain="Cooking"),
    ]
    mixed = []
    for i, r in enumerate(recs):
        mixed.append(r)
        if i < len(bad):
            mixed.append(bad[i])
    return write_json(tmp_path / "train.json", mixed), recs, bad


def _ids(folder):
    return [r["id"] for r in iter_rows(folder)]


@pytest.mark.parametrize("policy", ["skip", "warn"])
def test_skip_keeps_every_valid_record_and_rejects_the_rest(policy, tmp_path, images):
    path, valid, bad = _mixed(tmp_path, images)
    out = tmp_path / "out" / "mmcr" / "310k"
    result = build_hub_folder(path, out, image_root=images, on_invalid=policy, rejects=tmp_path / "rej.jsonl")
    assert sorted(_ids(out)) == sorted(r["id"] for r in valid)
    rejects = [json.loads(line) for line in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert [r["record_id"] for r in rejects] == [b["id"] for b in bad]
    assert [r["codes"] for r in rejects] == [["MMCR051"], ["MMCR015"], ["MMCR003"], ["MMCR055"], ["MMCR040"]]
    assert rejects[0]["raw"] == bad[0]  # the record as the user wrote it
    assert result.num_rejected == 5 and result.num_written == len(valid)
    assert validate_hub_folder(out).ok


def test_raise_names_record_pointer_file_and_line(tmp_path, images):
    path, valid, bad = _mixed(tmp_path, images)
    out = tmp_path / "out"
    with pytest.raises(InvalidRecordError) as err:
        build_hub_folder(path, out, image_root=images, on_invalid="raise")
    msg = str(err.value)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if '"bad-missing"' in l) - 1
    assert "'bad-missing'" in msg and "/image" in msg and f"{path}:{line}" in msg and "MMCR051" in msg
    assert not out.exists() and not list(out.parent.glob(".out.tmp-*"))


def test_parallel_build_equals_serial_and_is_deterministic(tmp_path, images):
    path, valid, _ = _mixed(tmp_path, images, n_valid=40)
    outs = {}
    for name, nproc in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / name
        build_hub_folder(path, out, image_root=images, on_invalid="skip", num_proc=nproc,
                         rejects=tmp_path / f"{name}.rej")
        outs[name] = out
    digest = lambda folder: {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                             for p in sorted(folder.rglob("*")) if p.is_file()}
    assert digest(outs["a"]) == digest(outs["b"])  # same input, same bytes
    assert list(iter_rows(outs["a"])) == list(iter_rows(outs["c"]))  # 2 processes, same rows in the same order
    assert (tmp_path / "a.rej").read_text() == (tmp_path / "c.rej").read_text()


def test_shards_are_size_bounded_and_named(tmp_path, images):
    path, valid, _ = _mixed(tmp_path, images, n_valid=30)
    out = tmp_path / "out"
    build_hub_folder(path, out, image_root=images, on_invalid="skip", max_shard_bytes=8_000)
    single = sorted(p.name for p in (out / "single_image").glob("*.parquet"))
    assert len(single) > 1 and single[-1] == f"train-{len(single) - 1:05d}-of-{len(single):05d}.parquet"
    assert sorted(_ids(out)) == sorted(r["id"] for r in valid)


def test_existing_output_is_not_replaced_without_overwrite(tmp_path, images):
    path = write_json(tmp_path / "t.json", [llava_record(images=["a.jpg"])])
    out = tmp_path / "out"
    build_hub_folder(path, out, image_root=images)
    with pytest.raises(ExportError, match="overwrite"):
        build_hub_folder(path, out, image_root=images)
    build_hub_folder(path, out, image_root=images, overwrite=True)
    assert _ids(out) == ["r1"]


def test_a_failure_while_writing_leaves_no_output(tmp_path, images, monkeypatch):
    path = write_json(tmp_path / "t.json", [llava_record(f"r{i}", images=["a.jpg"]) for i in range(5)])
    import mmcr_datasets.cards as cards

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cards, "write_card", boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        build_hub_folder(path, out, image_root=images)
    assert not out.exists() and list(tmp_path.glob(".out*")) == []


def test_killed_build_leaves_nothing_that_loads(tmp_path):
    """SIGKILL in the middle of a real build: the target folder never appears half-written."""
    root = tmp_path / "img"
    root.mkdir()
    for k in range(4):
        (root / f"{k}.jpg").write_bytes(make_jpeg(400, 300, seed=k, quality=95))
    recs = [llava_record(f"r{i}", images=[f"{i % 4}.jpg"]) for i in range(6000)]
    path = write_json(tmp_path / "big.json", recs)
    out = tmp_path / "out" / "mmcr" / "310k"
    code = ("import sys; from mmcr_datasets.export import build_hub_folder; "
            f"build_hub_folder({str(path)!r}, {str(out)!r}, image_root={str(root)!r}, max_shard_bytes=1<<20)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until shards are being written
        if any(out.parent.glob(".310k.tmp-*/single_image/*.partial")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    leftovers = list(out.parent.glob(".310k.tmp-*"))
    assert leftovers, "the build was killed before it wrote anything; the test did not test"
    assert not any(p.name == "README.md" for p in leftovers[0].rglob("*"))
    import datasets

    with pytest.raises(Exception):
        datasets.load_dataset(str(out))


def test_user_taxonomy_flows_into_features_and_card(tmp_path, images):
    tax = {"name": "kitchen", "version": "1", "domains": [
        {"name": "Cooking", "subtopics": [{"name": "Baking"}, {"name": "Grilling"}]},
        {"name": "Eating", "subtopics": [{"name": "Restaurants"}]}]}
    tax_path = write_json(tmp_path / "tax.json", tax)
    path = write_json(tmp_path / "t.json", [llava_record("a", domain="Eating", subtopic="Restaurants"),
                                            llava_record("b", domain="Science", subtopic="Astronomy")])
    out = tmp_path / "out"
    result = build_hub_folder(path, out, image_root=images, taxonomy=tax_path, on_invalid="skip",
                              rejects=tmp_path / "rej.jsonl")
    assert result.num_written == 1 and result.codes == {"MMCR040": 1}
    import datasets

    ds = datasets.load_dataset(str(out), split="train")
    assert ds.features["domain"].names == ["Cooking", "Eating"]
    assert ds.features["domain"].int2str(ds[0]["domain"]) == "Eating"
    assert "kitchen" in (out / "README.md").read_text()
    assert validate_hub_folder(out, taxonomy=tax_path).ok
    hint = json.loads((tmp_path / "rej.jsonl").read_text())["issues"][0]["message"]
    assert "Science" in hint and str(tax_path) in hint


def test_all_records_invalid_writes_rejects_and_no_output(tmp_path, images):
    path = write_json(tmp_path / "t.json", [llava_record("a", turns=3), llava_record("b", images=["nope.jpg"])])
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="rejects"):
        build_hub_folder(path, out, image_root=images, on_invalid="skip", rejects=tmp_path / "rej.jsonl")
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    assert [json.loads(l)["record_id"] for l in (tmp_path / "rej.jsonl").read_text().splitlines()] == ["a", "b"]
