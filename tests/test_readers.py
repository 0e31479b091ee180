"""Readers and writers: every raw format, incremental JSON, line numbers, lossless round trips."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from factories import canonical_record, llava_record, make_jpeg, write_json, write_jsonl
from mmcr_datasets.hub import iter_rows
from mmcr_datasets.ingest import IngestOptions, iter_checked, to_arrow_row
from mmcr_datasets.readers import read_raw, split_placeholders, join_placeholders
from mmcr_datasets.readers.jsonstream import iter_json_items
from mmcr_datasets.records import Dialogue
from mmcr_datasets.taxonomy import default_taxonomy
from mmcr_datasets.writers import write_raw

FORMATS = ["llava", "mmdu", "sharegpt", "messages"]


def _sample_rows(sample_dir):
    opts = IngestOptions.make(image_root=sample_dir / "images")
    rows = []
    for checked in iter_checked(sample_dir / "310k" / "train.json", "llava", opts):
        assert checked.ok, [i.format() for i in checked.issues]
        rows.append(to_arrow_row(checked, opts.taxonomy))
    return rows


@pytest.mark.parametrize("text, parts", [
    ("<image>\nWhat is this?", [("image", 0), ("text", "What is this?")]),
    ("<image>\n<image>\nCompare them.", [("image", 0), ("image", 1), ("text", "Compare them.")]),
    ("First this\n<image>\nthen that.", [("text", "First this"), ("image", 0), ("text", "then that.")]),
    ("No image here.", [("text", "No image here.")]),
])
def test_placeholders_split_and_join_losslessly(text, parts):
    got, nxt = split_placeholders(text, "<image>", 0)
    assert [(p["type"], p.get("index", p.get("text"))) for p in got] == parts
    assert join_placeholders(got, "<image>") == text


def test_llava_sample_round_trips_byte_for_byte(sample_dir, tmp_path):
    """raw -> rows -> raw gives back the very records of the bundled sample."""
    rows = _sample_rows(sample_dir)
    out = tmp_path / "train.json"
    write_raw(rows, out, "llava", image_root=tmp_path / "images")
    original = json.loads((sample_dir / "310k" / "train.json").read_text())
    assert json.loads(out.read_text()) == original
    for name in {p for r in original for p in ([r["image"]] if isinstance(r["image"], str) else r["image"])}:
        assert (tmp_path / "images" / name).read_bytes() == (sample_dir / "images" / name).read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips(fmt, sample_dir, tmp_path):
    rows = _sample_rows(sample_dir)
    out = tmp_path / ("data.jsonl" if fmt in ("sharegpt", "messages") else "data.json")
    assert write_raw(rows, out, fmt, image_root=tmp_path / "img") == len(rows)
    opts = IngestOptions.make(image_root=tmp_path / "img")
    again = [to_arrow_row(c, opts.taxonomy) for c in iter_checked(out, fmt, opts)]
    assert again == rows  # identical rows, image bytes included


def test_mmdu_keyed_object_and_array(tmp_path, images):
    recs = [json.loads(json.dumps(llava_record(f"k{i}")).replace("<image>", "<ImageHere>")
                       .replace('"human"', '"user"').replace('"gpt"', '"assistant"')) for i in range(3)]
    keyed = {r.pop("id"): r for r in recs}
    path = write_json(tmp_path / "mmdu.json", keyed)
    items = list(read_raw(path, "mmdu"))
    assert [i.record["id"] for i in items] == ["k0", "k1", "k2"]
    assert items[0].record["messages"][0]["content"][0] == {"type": "image", "index": 0}
    out = tmp_path / "back.json"
    tax = default_taxonomy()
    write_raw([Dialogue.from_json(i.record) for i in items], out, "mmdu", keyed=True)
    assert {k: {kk: vv for kk, vv in v.items() if kk != "id"} for k, v in json.loads(out.read_text()).items()} == {
        k: dict(v, image=[v["image"]]) for k, v in keyed.items()}


def test_trl_parts_without_index_are_numbered_in_order(tmp_path):
    rec = canonical_record(images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 2: 1})
    for m in rec["messages"]:
        for p in m["content"]:
            p.pop("index", None)
    item = next(read_raw(write_jsonl(tmp_path / "x.jsonl", [rec]), "messages"))
    idx = [p["index"] for m in item.record["messages"] for p in m["content"] if p["type"] == "image"]
    assert idx == [0, 1]


def test_format_is_detected(tmp_path):
    write_json(tmp_path / "a.json", [llava_record()])
    write_jsonl(tmp_path / "b.jsonl", [canonical_record()])
    sg = {"id": "s", "messages": [{"role": "user", "content": "<image>\nHi?"}, {"role": "assistant", "content": "Yo."}],
          "images": ["a.jpg"]}
    write_jsonl(tmp_path / "c.jsonl", [sg])
    assert [i.fmt.name for i in read_raw(tmp_path)] == ["llava", "messages", "sharegpt"]


def test_line_numbers_point_at_each_record(tmp_path):
    path = write_json(tmp_path / "a.json", [llava_record("a"), llava_record("b")])
    lines = path.read_text().splitlines()
    for item in read_raw(path, "llava"):
        line = int(item.source.rsplit(":", 1)[1])
        assert lines[line - 1].strip() == "{" and f'"{item.record["id"]}"' in lines[line]


def test_jsonl_bad_line_does_not_stop_the_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(llava_record("a")) + "\n{not json\n" + json.dumps(llava_record("c")) + "\n")
    items = list(read_raw(path, "llava"))
    assert [i.record_id for i in items] == ["a", None, "c"]
    assert items[1].problems[0][0] == "MMCR050" and items[1].source.endswith(":2")


def test_large_json_array_is_read_incrementally(tmp_path):
    """Peak memory while reading does not grow with the file: 4x more records, about the same peak."""
    def make(n):
        path = tmp_path / f"big{n}.json"
        with open(path, "w") as fh:
            fh.write("[\n")
            for i in range(n):
                rec = llava_record(f"id{i}", images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 4: 1})
                fh.write(("," if i else "") + json.dumps(rec) + "\n")
            fh.write("]\n")
        return path

    peaks = {}
    for n in (5_000, 20_000):
        path = make(n)
        tracemalloc.start()
        count = sum(1 for _ in iter_json_items(path))
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == n
    size = (tmp_path / "big20000.json").stat().st_size
    assert peaks[20_000] < 12 << 20 < size  # far below the file size (about 60 MB)
    assert peaks[20_000] < 1.5 * peaks[5_000] + (1 << 20)


def test_rows_to_parquet_to_rows_keep_image_bytes(demo_dir, sample_dir):
    original = {r["id"]: r for r in _sample_rows(sample_dir)}
    seen = 0
    for row in iter_rows(demo_dir / "mmcr" / "310k"):
        want = original[row["id"]]
        assert [i["bytes"] for i in row["images"]] == [i["bytes"] for i in want["images"]]
        assert row == want
        seen += 1
    assert seen == len(original)


def test_literal_placeholder_refused_by_placeholder_formats(tmp_path):
    rec = canonical_record()
    rec["messages"][2]["content"][0]["text"] = "What does <image> mean?"
    from mmcr_datasets.errors import MMCRError

    with pytest.raises(MMCRError, match="MMCR032"):
        write_raw([Dialogue.from_json(rec)], tmp_path / "x.json", "llava")
    assert not (tmp_path / "x.json").exists()
    write_raw([Dialogue.from_json(rec)], tmp_path / "x.jsonl", "messages")
    assert "What does <image> mean?" in (tmp_path / "x.jsonl").read_text()


def test_image_signatures_give_mime_and_extension():
    from mmcr_datasets.images import file_extension, mime_type, sniff_format

    from factories import make_png

    assert (sniff_format(make_jpeg()), mime_type(make_jpeg()), file_extension(make_jpeg())) == ("JPEG", "image/jpeg", "jpg")
    assert (sniff_format(make_png()), file_extension(make_png())) == ("PNG", "png")
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"not an image") is None
    assert mime_type(b"?") == "application/octet-stream" and file_extension(b"?") == "bin"
