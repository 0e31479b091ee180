"""The user's calls: load_dataset("mmcr/310k") on the demo output, offline; mmcr_datasets.load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from PIL import Image

import mmcr_datasets
from mmcr_datasets.errors import MMCRError

REPO = Path(__file__).resolve().parent.parent


def test_load_dataset_reads_every_config(demo_dir, monkeypatch):
    monkeypatch.chdir(demo_dir)
    counts = {c: datasets.load_dataset("mmcr/310k", c, split="train").num_rows
              for c in ("all", "single_image", "multi_image")}
    assert counts == {"all": 16, "single_image": 10, "multi_image": 6}
    ds = datasets.load_dataset("mmcr/310k", split="train")
    row = ds[0]
    assert all(isinstance(img, Image.Image) for img in row["images"])
    assert row["messages"][0]["role"] == "user"
    kinds = {p["type"] for m in row["messages"] for p in m["content"]}
    assert kinds == {"image", "text"}
    assert ds.features["domain"].names[:4] == ["Humanities", "Natural", "Science", "Education"]


def test_streaming_works(demo_dir, monkeypatch):
    monkeypatch.chdir(demo_dir)
    stream = datasets.load_dataset("mmcr/310k", "multi_image", split="train", streaming=True)
    rows = list(stream)
    assert len(rows) == 6
    assert all(len(r["images"]) == r["num_images"] >= 2 for r in rows)
    assert isinstance(rows[0]["images"][0], Image.Image)


def test_bench_has_classlabels_and_all_domains(demo_dir, monkeypatch):
    monkeypatch.chdir(demo_dir)
    bench = datasets.load_dataset("mmcr/bench", split="test")
    assert isinstance(bench.features["domain"], datasets.ClassLabel)
    assert isinstance(bench.features["subtopic"], datasets.ClassLabel)
    assert bench.features["subtopic"].num_classes == 40
    assert sorted(set(bench["domain"])) == list(range(8))
    assert -1 not in bench["subtopic"]


def test_package_load_from_hub_folder_and_raw_folder(demo_dir, sample_dir, tmp_path):
    hub = mmcr_datasets.load("mmcr/310k", "multi_image", split="train", data_dir=demo_dir / "mmcr" / "310k")
    raw = mmcr_datasets.load("mmcr/310k", "multi_image", split="train", data_dir=sample_dir / "310k",
                             image_root=sample_dir / "images", cache_dir=str(tmp_path / "cache"))
    assert hub.num_rows == raw.num_rows == 6
    assert [r["id"] for r in hub] == [r["id"] for r in raw]
    strip = lambda row: {k: v for k, v in row.items() if k != "images"}
    assert [strip(r) for r in hub] == [strip(r) for r in raw]
    a = hub.cast_column("images", datasets.List(datasets.Image(decode=False)))[0]["images"]
    b = raw.cast_column("images", datasets.List(datasets.Image(decode=False)))[0]["images"]
    assert [x["bytes"] for x in a] == [x["bytes"] for x in b]


def test_builder_streams_and_runs_in_parallel(sample_dir, tmp_path):
    from mmcr_datasets.builders import builder_for

    b = builder_for("bench", data_dir=sample_dir / "bench" / "test.json", image_root=sample_dir / "images",
                    cache_dir=str(tmp_path / "c1"))
    streamed = [r["id"] for r in b.as_streaming_dataset(split="test")]
    b.download_and_prepare(num_proc=2)
    prepared = b.as_dataset(split="test")
    assert streamed == prepared["id"] and len(streamed) == 8


def test_builder_skip_policy_writes_rejects(tmp_path, images):
    from factories import llava_record, write_json
    from mmcr_datasets.builders import builder_for

    path = write_json(tmp_path / "t.json", [llava_record("a"), llava_record("b", turns=2), llava_record("c")])
    rejects = tmp_path / "rejects.jsonl"
    b = builder_for("310k", data_dir=path, image_root=images, on_invalid="skip", cache_dir=str(tmp_path / "c"),
                    rejects=str(rejects))
    b.download_and_prepare()
    assert b.as_dataset(split="train")["id"] == ["a", "c"]
    assert '"b"' in rejects.read_text() and "MMCR015" in rejects.read_text()


def test_import_is_light():
    code = ("import sys, mmcr_datasets; from mmcr_datasets import Dialogue, load_taxonomy; "
            "from mmcr_datasets.cli import main; main(['-q', 'env']); "
            "bad = [m for m in ('torch', 'transformers', 'openai', 'trl', 'peft') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


def test_push_to_hub_refuses_an_invalid_folder(tmp_path):
    (tmp_path / "single_image").mkdir()
    (tmp_path / "single_image" / "train-00000-of-00001.parquet").write_bytes(b"not parquet")
    with pytest.raises(MMCRError, match="refusing to upload"):
        mmcr_datasets.push_to_hub(tmp_path, "someone/mmcr-test")
