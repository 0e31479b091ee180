"""compute_stats: counts checked against the raw sample, exact merging, inputs, duplicates, outputs, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import canonical_record, make_jpeg
from stats_fixtures import (SAMPLE, built_sample, raw_image_first_turns, raw_images, raw_sample,  # noqa: F401
                            table_from_records, words)

from mmcr_datasets.stats import DatasetStats, compute_stats


def _hist(d: dict) -> dict:
    return {int(k): v for k, v in d["histogram"].items()}


@pytest.mark.parametrize("name", ["310k", "bench"])
def test_sample_stats_match_counts_from_the_raw_json(built_sample, name):
    from PIL import Image

    raw = raw_sample(name)
    d = compute_stats(built_sample / "mmcr" / name).to_dict()

    assert d["num_dialogues"] == len(raw)
    imgs = [raw_images(r) for r in raw]
    types = Counter("single_image" if len(i) == 1 else "multi_image" for i in imgs)
    assert d["counts"]["dialogue_type"] == dict(types)
    assert d["counts"]["domain"] == dict(Counter(r["domain"] for r in raw))
    assert d["counts"]["subtopic"] == dict(Counter(r["subtopic"] for r in raw))
    cross = Counter((r["domain"], r["subtopic"]) for r in raw)
    assert {(dom, sub): n for dom, subs in d["counts"]["domain_x_subtopic"].items() for sub, n in subs.items()} \
        == dict(cross)
    if name == "310k":
        assert d["counts"]["config"] == {"single_image": types["single_image"], "multi_image": types["multi_image"]}
    else:
        assert d["counts"]["config"] == {"data": len(raw)}

    dist = d["distributions"]
    assert _hist(dist["turns"]) == dict(Counter(len(r["conversations"]) // 2 for r in raw))
    assert _hist(dist["images"]) == dict(Counter(len(i) for i in imgs))
    assert _hist(dist["image_first_turn"]) == dict(Counter(t for r in raw for t in raw_image_first_turns(r)))
    user = [m["value"] for r in raw for m in r["conversations"] if m["from"] == "human"]
    asst = [m["value"] for r in raw for m in r["conversations"] if m["from"] == "gpt"]
    assert _hist(dist["user_words"]) == dict(Counter(words(t) for t in user))
    assert _hist(dist["assistant_words"]) == dict(Counter(words(t) for t in asst))
    assert d["words"] == {"user": sum(words(t) for t in user), "assistant": sum(words(t) for t in asst)}
    assert _hist(dist["image_parts_per_user_message"]) == dict(Counter(t.count("<image>") for t in user))
    assert d["num_user_messages"] == len(user) and d["num_assistant_messages"] == len(asst)

    # images: sizes and formats from PIL on the files, duplicates from the file contents
    refs = [p for i in imgs for p in i]
    blobs = {p: (SAMPLE / "images" / p).read_bytes() for p in set(refs)}
    sizes = {p: Image.open(io.BytesIO(b)).size for p, b in blobs.items()}
    img = d["images"]
    assert img["count"] == len(refs)
    assert img["formats"] == {"JPEG": len(refs)}
    assert _hist(img["width"]) == dict(Counter(sizes[p][0] for p in refs))
    assert _hist(img["height"]) == dict(Counter(sizes[p][1] for p in refs))
    assert img["bytes"]["total"] == sum(len(blobs[p]) for p in refs)
    distinct = len({hashlib.sha256(blobs[p]).digest() for p in refs})
    dup = d["duplicates"]
    assert dup["images"]["distinct"] == distinct
    assert dup["images"]["duplicates"] == len(refs) - distinct
    assert dup["dialogues"]["duplicates"] == 0
    assert dup["ids"] == {"distinct": len(raw), "repeated": 0, "examples": []}
    dens = d["density"]
    assert dens["image_placeholders_per_user_message"] == round(len(refs) / len(user), 4)
    assert dens["literal_placeholders_in_text"] == 0


def test_chars_and_words_match_a_python_loop(built_sample):
    """Per-message character counts, checked against a straightforward loop over the rows."""
    from mmcr_datasets.hub import iter_rows

    folder = built_sample / "mmcr" / "310k"
    chars = {"user": Counter(), "assistant": Counter()}
    dialogue_words = Counter()
    for row in iter_rows(folder):
        total = 0
        for m in row["messages"]:
            texts = [p["text"] for p in m["content"] if p["type"] == "text"]
            chars[m["role"]][sum(len(t) for t in texts)] += 1
            total += sum(len(t.split()) for t in texts)
        dialogue_words[total] += 1
    d = compute_stats(folder, images=False).to_dict()
    assert _hist(d["distributions"]["user_chars"]) == dict(chars["user"])
    assert _hist(d["distributions"]["assistant_chars"]) == dict(chars["assistant"])
    assert _hist(d["distributions"]["dialogue_words"]) == dict(dialogue_words)
    assert d["images"] == {"scanned": False}


def test_merged_shard_stats_equal_whole_dataset_stats(built_sample, tmp_path):
    folder = built_sample / "mmcr" / "310k"
    whole = compute_stats(folder)
    # re-shard the same rows into files of 3 rows each, in one config folder
    tables = [pq.read_table(p) for p in sorted(folder.glob("*/*.parquet"))]
    table = pa.concat_tables(tables)
    shards = []
    for i in range(0, table.num_rows, 3):
        p = tmp_path / f"part-{i:03d}.parquet"
        pq.write_table(table.slice(i, 3), p)
        shards.append(p)
    per_shard = [compute_stats(p) for p in shards]
    merged = DatasetStats.merge_all(per_shard)
    reversed_merge = DatasetStats.merge_all(reversed(per_shard))
    pairwise = per_shard[0]
    for part in per_shard[1:]:
        pairwise = pairwise + part
    one_file = compute_stats(shards)
    for candidate in (merged, reversed_merge, pairwise, one_file):
        a, b = candidate.to_dict(), whole.to_dict()
        a["counts"].pop("config"), b["counts"].pop("config")  # shard files carry no config folder
        assert a == b
    # batch size and row order inside the data do not matter either
    assert compute_stats(folder, batch_rows=1) == whole
    assert compute_stats(folder, batch_rows=5) == whole
    # per config folder, merged
    assert DatasetStats.merge_all(compute_stats(p) for p in sorted(folder.glob("*/*.parquet"))) == whole
    # and merging does not change its inputs
    before = per_shard[0].to_dict()
    per_shard[0].merge(per_shard[1])
    assert per_shard[0].to_dict() == before


def test_parallel_processes_give_the_same_stats(built_sample):
    folder = built_sample / "mmcr" / "310k"
    assert compute_stats(folder, num_proc=2) == compute_stats(folder)


def test_accepts_a_datasets_dataset_and_a_table(built_sample):
    import datasets

    folder = built_sample / "mmcr" / "310k"
    ds = datasets.load_dataset(str(folder), split="train")
    from_folder = compute_stats(folder).to_dict()
    from_ds = compute_stats(ds).to_dict()
    assert from_ds["counts"].pop("config") == {"default": len(ds)}
    from_folder["counts"].pop("config")
    assert from_ds == from_folder
    # a selection (indices mapping) is honoured: stats of 5 selected rows == stats of those rows as a table
    sel = ds.select([0, 3, 7, 11, 15])
    table = pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("*/*.parquet"))])
    by_id = {rid: i for i, rid in enumerate(table.column("id").to_pylist())}
    picked = table.take([by_id[r] for r in sel["id"]])
    assert compute_stats(sel) == compute_stats(picked)
    assert compute_stats(sel).num_dialogues == 5


def _images():
    return {f"{c}.jpg": make_jpeg(40 + i * 8, 30 + i * 4, seed=i + 1) for i, c in enumerate("abcd")}


def test_duplicates_and_literal_placeholders_and_references():
    images = _images()
    recs = [
        canonical_record("a", images=["a.jpg"]),
        canonical_record("b", images=["b.jpg", "a.jpg"], turns=8, placements={0: 1, 2: 1}),
        canonical_record("c", images=["c.jpg"]),
    ]
    # a copy of dialogue "c" under another id (a duplicate dialogue), and a reused id
    recs.append(dict(canonical_record("c2", images=["c.jpg"])))
    recs.append(canonical_record("a", images=["d.jpg"]))
    # a literal placeholder left in the text, and explicit references
    recs[0]["messages"][0]["content"][1]["text"] = "<image> What is shown in the first image?"
    recs[0]["messages"][2]["content"][0]["text"] = "You mentioned a colour earlier; which one?"
    table = table_from_records(recs, images)
    d = compute_stats(table).to_dict()
    dup = d["duplicates"]
    assert dup["images"]["total"] == 6 and dup["images"]["distinct"] == 4 and dup["images"]["duplicates"] == 2
    assert dup["images"]["groups"] == 2
    assert {tuple(g["dialogues"]) for g in dup["images"]["examples"]} == {("a", "b"), ("c", "c2")}
    assert dup["dialogues"]["duplicates"] == 1
    assert dup["dialogues"]["examples"][0]["dialogues"] == ["c", "c2"]
    assert dup["ids"]["repeated"] == 1 and dup["ids"]["examples"] == [{"id": "a", "count": 2}]
    dens = d["density"]
    assert dens["literal_placeholders_in_text"] == 1 and dens["messages_with_literal_placeholder"] == 1
    later_users = 3 + 7 + 3 + 3 + 3  # user messages after the first turn
    assert d["num_user_messages"] == 4 + 8 + 4 + 4 + 4
    assert dens["share_of_later_user_messages_with_context_reference"] == round(1 / later_users, 4)
    assert dens["share_of_user_messages_with_image_reference"] == round(1 / 24, 4)
    # image 2 of dialogue b is first referenced in turn 3
    assert d["image_first_turn_by_image"] == {"1": {"1": 5}, "2": {"3": 1}}
    # the same text with different image bytes is not a duplicate dialogue
    assert compute_stats(table, images=False).to_dict()["duplicates"]["dialogues"]["duplicates"] == 2


def test_image_problems_are_counted_not_raised():
    images = _images()
    images["bad.jpg"] = b"\xff\xd8\xff\xe0not really a jpeg"
    table = table_from_records([canonical_record("x", images=["bad.jpg"]), canonical_record("y")], images)
    img = compute_stats(table).to_dict()["images"]
    assert img["count"] == 2
    assert img["formats"]["JPEG"] == 1 and img["formats"]["unreadable"] == 1
    assert sum(img["problems"].values()) == 1


def test_token_counts_with_a_tokenizer(built_sample):
    folder = built_sample / "mmcr" / "bench"
    d = compute_stats(folder, tokenizer=str.split).to_dict()
    dist = d["distributions"]
    assert dist["user_tokens"]["histogram"] == dist["user_words"]["histogram"]
    assert dist["assistant_tokens"]["histogram"] == dist["assistant_words"]["histogram"]
    assert d["tokenizer"] == "split"

    class FakeHF:  # the transformers calling convention
        name_or_path = "fake/tok"
        model_input_names = ["input_ids"]

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [list(t) for t in texts]}

    d = compute_stats(folder, tokenizer=FakeHF()).to_dict()
    assert d["distributions"]["user_tokens"]["histogram"] == d["distributions"]["user_chars"]["histogram"]
    assert d["tokenizer"] == "fake/tok"


def test_outputs_json_markdown_text(built_sample):
    st = compute_stats(built_sample / "mmcr" / "310k")
    data = json.loads(st.to_json())
    assert data["format"] == "mmcr-stats/1" and data["num_dialogues"] == 16
    assert "histogram" not in json.dumps(st.to_dict(histograms=False)["distributions"])
    md = st.to_markdown()
    for heading in ("### Overview", "### Domains and dialogue types", "### Sub-topics (domain x sub-topic)",
                    "### Distributions", "### Images", "### Exact duplicates", "### Placeholders and references"):
        assert heading in md
    assert "| Science | Astronomy | 1 |" in md
    text = st.to_text()
    assert text.startswith("16 dialogue(s)") and "duplicates:" in text


def test_empty_input_gives_empty_stats():
    from mmcr_datasets.features import arrow_schema

    st = compute_stats(arrow_schema().empty_table())
    assert st.num_dialogues == 0 and st.to_dict()["duplicates"]["dialogues"]["total"] == 0
    assert (st + st).num_dialogues == 0


def test_plots_written_with_matplotlib(built_sample, tmp_path):
    pytest.importorskip("matplotlib")
    written = compute_stats(built_sample / "mmcr" / "310k").plot(tmp_path / "plots")
    assert set(written) == {"domain", "subtopic", "lengths", "images_per_dialogue", "image_sizes"}
    for path in written.values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_without_matplotlib_name_the_extra(built_sample, tmp_path, monkeypatch):
    from mmcr_datasets.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    st = compute_stats(built_sample / "mmcr" / "bench")  # stats themselves need no matplotlib
    assert st.num_dialogues == 8
    with pytest.raises(MissingExtraError, match=r"pip install 'mmcr-datasets\[plot\]'"):
        st.plot(tmp_path)
    from mmcr_datasets.cli import main

    assert main(["-q", "stats", str(built_sample / "mmcr" / "bench"), "--plots", str(tmp_path / "p")]) == 3


def test_cli_stats(built_sample, tmp_path, capsys):
    from mmcr_datasets.cli import main

    folder = built_sample / "mmcr" / "310k"
    assert main(["-q", "stats", str(folder), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_dialogues"] == 16 and data["counts"]["dialogue_type"] == {"multi_image": 6, "single_image": 10}
    assert main(["-q", "stats", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("16 dialogue(s)")
    out = tmp_path / "stats.md"
    args = ["-q", "stats", str(folder / "single_image" / "train-00000-of-00001.parquet"), "--format", "markdown",
            "-o", str(out)]
    if pytest.importorskip("matplotlib", reason="plots need matplotlib"):
        args += ["--plots", str(tmp_path / "plots")]
    assert main(args) == 0
    md = out.read_text()
    assert "## Overview" in md and "](plots/domain.png)" in md
    assert (tmp_path / "plots" / "domain.png").is_file()
    assert main(["-q", "stats", str(tmp_path / "missing")]) == 2
    capsys.readouterr()
    assert main(["-q", "stats", str(SAMPLE / "310k" / "train.json")]) == 2
    assert "mmcr build" in capsys.readouterr().err


def _image_zoo() -> dict:
    from PIL import Image

    def enc(img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    rgb = Image.new("RGB", (37, 21), (200, 30, 60))
    exif = Image.Exif()
    exif[0x010F] = "mmcr-test-camera"
    zoo = {
        "jpeg": enc(rgb, "JPEG"),
        "jpeg_progressive": enc(rgb.resize((64, 9)), "JPEG", progressive=True),
        "jpeg_exif": enc(rgb.resize((13, 77)), "JPEG", exif=exif.tobytes()),
        "jpeg_gray": enc(rgb.convert("L"), "JPEG"),
        "jpeg_cmyk": enc(rgb.convert("CMYK"), "JPEG"),
        "png_rgba": enc(rgb.convert("RGBA").resize((5, 300)), "PNG"),
        "png_palette": enc(rgb.convert("P"), "PNG"),
        "gif": enc(rgb.convert("P"), "GIF"),
        "webp": enc(rgb, "WEBP"),
        "bmp": enc(rgb, "BMP"),
    }
    zoo["jpeg_trailing_bytes"] = zoo["jpeg"] + b"\x00" * 40
    zoo["jpeg_truncated"] = zoo["jpeg"][: len(zoo["jpeg"]) // 2]
    zoo["png_truncated"] = zoo["png_rgba"][:-20]
    zoo["garbage"] = b"not an image at all"
    zoo["empty"] = b""
    return zoo


def test_vector_header_reader_agrees_with_probe_image():
    from mmcr_datasets.images import ImageLimits, ImageProblem, probe_image
    from mmcr_datasets.stats import _FORMATS, _headers, _StringBuffer

    zoo = _image_zoo()
    names = list(zoo)
    arr = pa.array([zoo[k] for k in names], pa.binary())
    for chunk in (arr, arr.slice(2, 9)):
        fmt, w, h = _headers(_StringBuffer(chunk))
        for i, data in enumerate(chunk.to_pylist()):
            if fmt[i] < 0:
                continue  # not settled by the vector reader: probe_image decides
            info = probe_image(data, ImageLimits(max_pixels=1 << 62, min_side=0))
            assert (info.format, info.width, info.height) == (_FORMATS[fmt[i]], w[i], h[i])
    # every common well-formed image is settled without Python per image
    fmt, _, _ = _headers(_StringBuffer(arr))
    settled = {k for k, f in zip(names, fmt.tolist()) if f >= 0}
    assert {"jpeg", "jpeg_progressive", "jpeg_exif", "jpeg_gray", "jpeg_cmyk", "png_rgba", "png_palette",
            "gif"} <= settled
    assert not settled & {"jpeg_truncated", "png_truncated", "garbage", "empty"}
    # and compute_stats reports what probe_image says about each
    expected_fmt, expected_w, problems = Counter(), Counter(), Counter()
    for data in zoo.values():
        try:
            info = probe_image(data, ImageLimits(max_pixels=1 << 62, min_side=0))
        except ImageProblem as exc:
            expected_fmt["unreadable"] += 1
            problems[exc.code] += 1
            continue
        expected_fmt[info.format] += 1
        expected_w[info.width] += 1
    table = pa.table({"id": ["z"], "images": pa.array([[{"bytes": b, "path": None} for b in zoo.values()]]),
                      "messages": pa.array([[{"role": "user", "content": [{"type": "text", "text": "hi",
                                                                          "index": None}]}]])})
    img = compute_stats(table).to_dict()["images"]
    assert img["formats"] == dict(sorted(expected_fmt.items()))
    assert _hist(img["width"]) == dict(expected_w)
    assert img["problems"] == dict(sorted(problems.items()))
    assert img["bytes"]["total"] == sum(len(b) for b in zoo.values())


def test_word_counts_equal_str_split_on_unicode_text():
    import random

    from mmcr_datasets.stats import _StringBuffer

    rng = random.Random(5)
    alphabet = list("ab c\t\n\r\x0b\x0c\x1c\x1f\x00\x85\u00a0\u1680\u2003\u2028\u202f\u205f\u3000\u200béü日’…")
    texts = [None if rng.random() < 0.05 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
             for _ in range(2000)]
    arr = pa.array(texts)
    for chunk in (arr, arr.slice(11, 1500), pa.array(texts, pa.large_string())):
        expected = [len(t.split()) if t else 0 for t in chunk.to_pylist()]
        assert _StringBuffer(chunk).word_counts().tolist() == expected


def test_dialogue_keys_tell_apart_every_change_of_content():
    import copy

    images = _images()
    base = canonical_record("base", images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 2: 1})
    variants = {"same": copy.deepcopy(base)}
    v = copy.deepcopy(base)
    v["messages"][1]["content"][0]["text"] = "Answer 1!"  # one character
    variants["char"] = v
    v = copy.deepcopy(base)
    v["images"] = ["a.jpg", "c.jpg"]  # other bytes for image 2
    variants["image_bytes"] = v
    variants["image_turn"] = canonical_record("x", images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 3: 1})
    v = copy.deepcopy(base)
    v["messages"][1]["content"] = [{"type": "text", "text": "Answer"}, {"type": "text", "text": " 1."}]
    variants["split_part"] = v  # same characters, other part boundaries
    v = copy.deepcopy(base)
    v["messages"][0]["content"][1]["text"] = "Question 1?" + v["messages"][1]["content"][0]["text"]
    v["messages"][1]["content"][0]["text"] = "x"
    variants["moved_text"] = v
    recs = [base] + [dict(r, id=f"v-{k}") for k, r in variants.items()]
    d = compute_stats(table_from_records(recs, images)).to_dict()["duplicates"]["dialogues"]
    assert d["duplicates"] == 1 and d["groups"] == 1
    assert d["examples"][0]["dialogues"] == ["base", "v-same"]
