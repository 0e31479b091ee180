"""One fixture per validation code: each yields exactly that code, and nothing else.

Record-level codes are also checked on built parquet data (the columnar validator) to prove the
two engines agree.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import canonical_record, llava_record, make_jpeg, write_json, write_jsonl
from mmcr_datasets.features import arrow_schema
from mmcr_datasets.images import ImageLimits
from mmcr_datasets.taxonomy import default_taxonomy
from mmcr_datasets.validation import CODES, validate_hub_folder, validate_records
from mmcr_datasets.validation.checks import ValidationProfile

REPO = Path(__file__).resolve().parent.parent


def _roles(rec, roles):
    """Rewrite the roles of a canonical record's messages (same content)."""
    for m, r in zip(rec["messages"], roles):
        m["role"] = r
    return rec


def _canon(tmp, rec, **kw):
    return write_jsonl(tmp / "data.jsonl", [rec]), {"format": "messages", **kw}


def _llava(tmp, recs, **kw):
    return write_json(tmp / "data.json", recs), {"format": "llava", **kw}


def _png_header(width, height) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def fixture_for(code: str, tmp: Path, images: Path):
    """Return (path, kwargs for validate_records) whose report holds exactly ``code``."""
    c = canonical_record
    if code == "MMCR001":
        rec = c()
        rec["messages"][0]["content"].append({"type": "video", "index": 0})
        return _canon(tmp, rec)
    if code == "MMCR002":
        rec = llava_record()
        del rec["id"]
        return _llava(tmp, [rec])
    if code == "MMCR003":
        return _llava(tmp, [llava_record("x"), llava_record("x")])
    if code == "MMCR010":
        rec = llava_record()
        rec["conversations"][1]["from"] = "bot"
        return _llava(tmp, [rec])
    if code == "MMCR011":
        rec = c()
        rec["messages"].insert(2, {"role": "system", "content": [{"type": "text", "text": "Be brief."}]})
        return _canon(tmp, rec)
    if code == "MMCR012":
        return _canon(tmp, _roles(c(), ["user", "assistant", "user", "user", "assistant", "assistant", "user", "assistant"]))
    if code == "MMCR013":
        rec = c()  # an assistant greeting first, then the 4 normal turns
        rec["messages"].insert(0, {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]})
        return _canon(tmp, rec)
    if code == "MMCR014":
        rec = c()
        rec["messages"].pop()
        return _canon(tmp, rec)
    if code == "MMCR015":
        return _llava(tmp, [llava_record(turns=3)])
    if code == "MMCR016":
        names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.png"]
        return _llava(tmp, [llava_record(images=names, turns=8)])
    if code == "MMCR017":
        return _llava(tmp, [llava_record(images=["a.jpg", "b.jpg"], turns=8, dialogue_type="single_image")])
    if code == "MMCR018":
        rec = llava_record()
        rec["conversations"][0]["value"] = "Question without the picture?"
        rec["conversations"][1]["value"] = "<image>\nAn answer that shows an image."
        return _llava(tmp, [rec])
    if code == "MMCR020":
        return _llava(tmp, [llava_record(images=["a.jpg", "b.jpg"], turns=8, placements={0: 1})])
    if code == "MMCR021":
        rec = c()
        rec["messages"][0]["content"][0]["index"] = 5
        return _canon(tmp, rec)
    if code == "MMCR022":
        rec = c(images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 2: 1})
        rec["messages"][4]["content"][0]["index"] = 0
        return _canon(tmp, rec)
    if code == "MMCR023":
        rec = c(images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 2: 1})
        rec["messages"][0]["content"][0]["index"] = 1
        rec["messages"][4]["content"][0]["index"] = 0
        return _canon(tmp, rec)
    if code == "MMCR030":
        rec = llava_record()
        rec["conversations"][3]["value"] = "  "
        return _llava(tmp, [rec])
    if code == "MMCR031":
        line = json.dumps(llava_record(), ensure_ascii=False).replace("Answer 2", "Answer \udcff2".encode(
            "utf-8", "surrogateescape").decode("utf-8", "surrogateescape"))
        path = tmp / "data.jsonl"
        raw = json.dumps(llava_record()).encode().replace(b"Answer 2", b"Answer \xff2")
        path.write_bytes(raw + b"\n")
        return path, {"format": "llava"}
    if code == "MMCR032":
        rec = llava_record()
        rec["conversations"][2]["value"] = "What does the tag <ImageHere> mean in MMDU files?"
        return _llava(tmp, [rec])
    if code == "MMCR040":
        return _llava(tmp, [llava_record(domain="Cooking")])
    if code == "MMCR041":
        return _llava(tmp, [llava_record(domain="Science", subtopic="Quantum Cooking")])
    if code == "MMCR042":
        return _llava(tmp, [llava_record(domain="Science", subtopic="Food & Drink")])
    if code == "MMCR043":
        path, kw = _llava(tmp, [llava_record(domain="Science")])
        return path, {**kw, "name": "bench"}
    if code == "MMCR044":
        return _canon(tmp, c(num_images=3))
    if code == "MMCR045":
        return _canon(tmp, c(clip_scores=[0.3, 0.2]))
    if code == "MMCR050":
        path = tmp / "data.json"
        text = json.dumps([llava_record("ok")], indent=1)
        path.write_text(text[:-2] + ",\n {\"id\": \"broken\", \"image\": \"a.jpg\" \"conversations\": []}\n]")
        return path, {"format": "llava"}
    if code == "MMCR051":
        return _llava(tmp, [llava_record(images=["missing.jpg"])])
    if code == "MMCR052":
        (images / "bad.jpg").write_bytes(b"this is not an image at all" * 10)
        return _llava(tmp, [llava_record(images=["bad.jpg"])])
    if code == "MMCR053":
        data = make_jpeg(200, 150)
        (images / "cut.jpg").write_bytes(data[: len(data) // 2])
        return _llava(tmp, [llava_record(images=["cut.jpg"])])
    if code == "MMCR054":
        (images / "bomb.png").write_bytes(_png_header(20000, 20000))
        return _llava(tmp, [llava_record(images=["bomb.png"])])
    if code == "MMCR055":
        return _llava(tmp, [llava_record(images=["../secret.jpg"])])
    if code == "MMCR056":
        return _llava(tmp, [llava_record(images=[str(images / "a.jpg")])])
    if code == "MMCR057":
        os.symlink(images / "a.jpg", images / "link.jpg")
        return _llava(tmp, [llava_record(images=["link.jpg"])])
    if code == "MMCR058":
        path, kw = _llava(tmp, [llava_record()])
        return path, {**kw, "limits": ImageLimits(min_side=100)}
    return None


RAW_CODES = [c for c in CODES if CODES[c].level in ("record", "reader")]
DATASET_CODES = [c for c in CODES if CODES[c].level == "dataset"]


def test_every_code_has_a_fixture(tmp_path, images):
    missing = []
    for code in RAW_CODES:
        (tmp_path / code).mkdir()
        if fixture_for(code, tmp_path / code, images) is None:
            missing.append(code)
    assert not missing


@pytest.mark.parametrize("code", RAW_CODES)
def test_fixture_yields_exactly_its_code(code, tmp_path, images):
    (images.parent / "secret.jpg").write_bytes(make_jpeg())  # exists, but outside the root
    path, kw = fixture_for(code, tmp_path, images)
    report = validate_records(path, image_root=images, **kw)
    assert [i.code for i in report.issues] == [code], report.format_text()
    issue = report.issues[0]
    assert issue.severity == CODES[code].severity
    assert issue.message and issue.hint
    assert issue.source and str(path) in issue.source
    if code != "MMCR050":
        assert issue.pointer.startswith("/") or issue.pointer == ""
    assert report.ok == (CODES[code].severity != "error")


def test_reader_errors_carry_line_and_column(tmp_path, images):
    path, kw = fixture_for("MMCR050", tmp_path, images)
    report = validate_records(path, image_root=images, **kw)
    assert report.num_records == 2  # the good record before the error is still read
    assert re.search(r"line \d+ column \d+", report.issues[0].message)


def test_no_path_outside_the_root_is_opened(tmp_path, images, monkeypatch):
    """Escaping, absolute and symlinked paths are refused before any open()."""
    opened = []
    real_open = os.open

    def spy(path, *a, **k):
        opened.append(str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", spy)
    for code in ("MMCR055", "MMCR056", "MMCR057"):
        sub = tmp_path / code
        sub.mkdir()
        path, kw = fixture_for(code, sub, images)
        validate_records(path, image_root=images, **kw)
    root = str(images.resolve())
    assert all(p.startswith(str(images)) or p.startswith(root) for p in opened)
    assert not any(p.endswith(("secret.jpg", "link.jpg")) for p in opened)


def test_schema_readme_lists_every_code():
    text = (REPO / "schema" / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(MMCR\d{3})` \|", text, flags=re.M))
    assert listed == set(CODES)


# -- the columnar engine agrees ------------------------------------------------------------------
def _lenient_row(rec: dict, image: bytes, tax) -> dict:
    """An Arrow row written without any validation (to plant invalid data in parquet)."""
    def label(value, lookup, bogus):
        if value is None:
            return -1
        try:
            return lookup(value)
        except KeyError:
            return bogus

    n = len(rec["images"])
    return {
        "id": rec.get("id"),
        "dialogue_type": {"single_image": 0, "multi_image": 1}.get(rec.get("dialogue_type"), 0 if n == 1 else 1),
        "domain": label(rec.get("domain"), tax.domain_id, 99),
        "subtopic": label(rec.get("subtopic"), tax.subtopic_id, 999),
        "images": [{"bytes": image, "path": p} for p in rec["images"]],
        "messages": [{"role": m["role"], "content": [
            {"type": p["type"], "text": p.get("text"), "index": p.get("index")} for p in m["content"]]}
            for m in rec["messages"]],
        "num_images": rec.get("num_images", n),
        "num_turns": rec.get("num_turns", sum(m["role"] == "user" for m in rec["messages"])),
        "source": None,
        "clip_scores": rec.get("clip_scores", []),
    }


COLUMNAR = {
    "MMCR002": lambda: [canonical_record(rid="")],
    "MMCR003": lambda: [canonical_record("x"), canonical_record("x")],
    "MMCR010": lambda: [_roles(canonical_record(), ["user", "bot"])],
    "MMCR011": lambda: [dict(canonical_record(), messages=canonical_record()["messages"][:2] + [
        {"role": "system", "content": [{"type": "text", "text": "S"}]}] + canonical_record()["messages"][2:])],
    "MMCR012": lambda: [_roles(canonical_record(), ["user", "assistant", "user", "user", "assistant", "assistant"])],
    "MMCR013": lambda: [dict(canonical_record(), messages=[{"role": "assistant", "content": [{"type": "text", "text": "Hi."}]}]
                             + canonical_record()["messages"][:-1])],
    "MMCR014": lambda: [dict(canonical_record(), messages=canonical_record()["messages"][:-1])],
    "MMCR015": lambda: [canonical_record(turns=3)],
    "MMCR016": lambda: [canonical_record(images=list("abcde"), turns=8)],
    "MMCR017": lambda: [canonical_record(images=["a", "b"], turns=8, dialogue_type="single_image")],
    "MMCR018": lambda: [_move_image_to_assistant(canonical_record())],
    "MMCR020": lambda: [canonical_record(images=["a", "b"], turns=8, placements={0: 1})],
    "MMCR021": lambda: [_set_index(canonical_record(), [(0, 0, 5)])],
    "MMCR022": lambda: [_set_index(canonical_record(images=["a", "b"], turns=8, placements={0: 1, 2: 1}), [(4, 0, 0)])],
    "MMCR023": lambda: [_set_index(canonical_record(images=["a", "b"], turns=8, placements={0: 1, 2: 1}),
                                   [(0, 0, 1), (4, 0, 0)])],
    "MMCR030": lambda: [_set_text(canonical_record(), 3, " ")],
    "MMCR032": lambda: [_set_text(canonical_record(), 2, "What is <image> in LLaVA?")],
    "MMCR040": lambda: [canonical_record(domain="Cooking")],
    "MMCR041": lambda: [canonical_record(subtopic="Quantum Cooking")],
    "MMCR042": lambda: [canonical_record(domain="Science", subtopic="Food & Drink")],
    "MMCR043": lambda: [canonical_record(domain="Science")],
    "MMCR044": lambda: [canonical_record(num_images=3)],
    "MMCR045": lambda: [canonical_record(clip_scores=[0.1, 0.2])],
}


def _move_image_to_assistant(rec):
    img = rec["messages"][0]["content"].pop(0)
    rec["messages"][1]["content"].insert(0, img)
    return rec


def _set_index(rec, changes):
    for m, k, idx in changes:
        rec["messages"][m]["content"][k]["index"] = idx
    return rec


def _set_text(rec, m, text):
    rec["messages"][m]["content"][-1]["text"] = text
    return rec


def _plant(folder: Path, records, name="310k"):
    tax = default_taxonomy()
    image = make_jpeg()
    rows = [_lenient_row(r, image, tax) for r in records]
    sub = folder / ("data" if name == "bench" else "single_image")
    sub.mkdir(parents=True)
    shard = sub / ("test" if name == "bench" else "train")
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(tax, name=name)), f"{shard}-00000-of-00001.parquet")
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files: data/*.parquet\n---\n")


@pytest.mark.parametrize("code", sorted(COLUMNAR))
def test_columnar_engine_reports_the_same_code(code, tmp_path):
    name = "bench" if code == "MMCR043" else "310k"
    _plant(tmp_path, COLUMNAR[code](), name)
    report = validate_hub_folder(tmp_path, name=name)
    assert [i.code for i in report.issues] == [code], report.format_text()
    shard = "data/test" if name == "bench" else "single_image/train"
    assert report.issues[0].source.startswith(f"{shard}-00000-of-00001.parquet:")


def test_columnar_engine_clean_on_valid_rows(tmp_path):
    placements = [None, {0: 1, 2: 1}, {0: 2, 4: 1}]
    _plant(tmp_path, [canonical_record(f"r{i}", images=["a", "b", "c"][: 1 + i % 3], turns=4 if i % 3 == 0 else 8,
                                       placements=placements[i % 3]) for i in range(30)])
    report = validate_hub_folder(tmp_path)
    assert report.ok and not report.issues, report.format_text()
    assert report.num_records == 30


def test_dataset_level_codes(tmp_path):
    good = tmp_path / "good"
    _plant(good, [canonical_record()])
    # MMCR060: no card
    nocard = tmp_path / "nocard"
    _plant(nocard, [canonical_record()])
    (nocard / "README.md").unlink()
    assert [i.code for i in validate_hub_folder(nocard).issues] == ["MMCR060"]
    # MMCR061: other columns
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), other / "data" / "test-00000-of-00001.parquet")
    (other / "README.md").write_text((good / "README.md").read_text())
    assert [i.code for i in validate_hub_folder(other).issues] == ["MMCR061"]
    # MMCR062: another schema version
    old = tmp_path / "old"
    _plant(old, [canonical_record()])
    shard = old / "single_image" / "train-00000-of-00001.parquet"
    table = pq.read_table(shard)
    meta = dict(table.schema.metadata)
    meta[b"mmcr"] = json.dumps({"schema_version": "0.9", "dataset": "mmcr/310k"}).encode()
    pq.write_table(table.replace_schema_metadata(meta), shard)
    assert [i.code for i in validate_hub_folder(old).issues] == ["MMCR062"]
    # MMCR063: a corrupt shard
    bad = tmp_path / "bad"
    _plant(bad, [canonical_record()])
    (bad / "single_image" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really parquet")
    assert [i.code for i in validate_hub_folder(bad).issues] == ["MMCR063"]
    assert set(DATASET_CODES) == {"MMCR060", "MMCR061", "MMCR062", "MMCR063"}
