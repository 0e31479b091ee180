"""Reading interleaved documents, de-duplication, image filters and image-group selection."""

from __future__ import annotations

import base64
import json

import pytest

from gen_helpers import DOCS, REPO

from mmcr_datasets.errors import ReaderError
from mmcr_datasets.generate.documents import Deduplicator, read_documents
from mmcr_datasets.generate.selection import (ImageFilter, SelectionOptions, SelectionStats, _chunk, context_for,
                                              select_tasks)

SAMPLE = REPO / "mmcr_datasets" / "sample" / "images"


def test_read_jsonl_documents_resolves_relative_paths():
    docs = list(read_documents(DOCS))
    assert [d.doc_id for d in docs][:3] == ["space-001", "cat-002", "coffee-003"]
    space = docs[0]
    assert len(space.texts) == len(space.images) == 6
    assert space.images[1].data == (SAMPLE / "astronaut.jpg").read_bytes()
    assert space.images[0] is None and space.texts[1] is None
    assert space.metadata["title"] == "From launch pad to orbit"
    remote = docs[-1]
    assert remote.images[1].problem == "remote_image" and remote.images[1].data is None


@pytest.mark.parametrize("layout", ["binary", "image_struct"])
def test_parquet_with_image_bytes_matches_jsonl(tmp_path, layout):
    """Images as a binary column, or as {bytes, path} structs (a `datasets.Image` column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def cell(img):
        if img is None:
            return None
        return img.data if layout == "binary" else {"bytes": img.data, "path": None}

    rows = []
    for doc in read_documents(DOCS):
        rows.append({"id": doc.doc_id, "texts": doc.texts, "images": [cell(img) for img in doc.images],
                     "metadata": json.dumps(doc.metadata)})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "docs.parquet")
    from_parquet = list(read_documents(tmp_path / "docs.parquet"))
    from_jsonl = list(read_documents(DOCS))
    # the remote image has no bytes in either; every other document hashes the same
    assert [d.content_hash() for d in from_parquet[:-1]] == [d.content_hash() for d in from_jsonl[:-1]]
    assert from_parquet[0].metadata["title"] == "From launch pad to orbit"  # JSON-string metadata
    tasks_p = [(t.key, t.title) for t in select_tasks(from_parquet)]
    tasks_j = [(t.key, t.title) for t in select_tasks(from_jsonl)]
    assert tasks_p == tasks_j and tasks_p


def test_image_entry_forms(tmp_path):
    data = (SAMPLE / "coffee.jpg").read_bytes()
    (tmp_path / "c.jpg").write_bytes(data)
    b64 = base64.b64encode(data).decode()
    row = {"id": "forms", "texts": ["intro", None, None, None, None, None],
           "images": [None, "c.jpg", f"file://{tmp_path / 'c.jpg'}", f"data:image/jpeg;base64,{b64}",
                      {"bytes": b64, "path": None}, "missing.jpg"]}
    (tmp_path / "d.jsonl").write_text(json.dumps(row) + "\n")
    (doc,) = read_documents(tmp_path / "d.jsonl")
    assert [img.data == data for img in doc.images[1:5]] == [True] * 4
    assert doc.images[5].problem == "image_not_found"


def test_broken_rows_are_reader_errors(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"texts": ["a"], "images": [None, None]}) + "\n")
    with pytest.raises(ReaderError, match="aligned"):
        list(read_documents(tmp_path / "a.jsonl"))
    with pytest.raises(ReaderError, match="does not exist"):
        list(read_documents(tmp_path / "nope"))


def test_dedup_and_filters():
    stats = SelectionStats()
    tasks = list(select_tasks(read_documents(DOCS), SelectionOptions(), stats))
    assert stats.duplicate_documents == 1 and stats.duplicate_images == 1
    assert stats.skipped_images == {"too_small": 1, "bad_aspect": 1, "remote_image": 1}
    used = [img.sha256 for t in tasks for img in t.images]
    assert len(used) == len(set(used))  # no image is used twice
    assert all(1 <= len(t.images) <= 4 for t in tasks)
    assert {t.num_turns for t in tasks} == {4, 8}
    assert all((t.num_turns == 4) == (len(t.images) == 1) for t in tasks)
    # the multi-image share is respected within one group
    share = stats.multi_tasks / (stats.single_tasks + stats.multi_tasks)
    assert abs(share - 100 / 310) < 0.2
    # only singles when multi-image dialogues are switched off
    singles = list(select_tasks(read_documents(DOCS), SelectionOptions(multi_image_share=0.0)))
    assert all(len(t.images) == 1 for t in singles) and len(singles) > len(tasks)


def test_image_filter_reasons():
    f = ImageFilter(min_side=128, max_aspect=3.0)
    assert f.reason((SAMPLE / "coffee.jpg").read_bytes()) is None
    assert f.reason((SAMPLE / "microaneurysms.jpg").read_bytes()) == "too_small"
    assert f.reason((REPO / "tests/generate/data/images/brick_strip.jpg").read_bytes()) == "bad_aspect"
    assert f.reason(b"not an image") == "unreadable_image"
    assert f.reason((SAMPLE / "coffee.jpg").read_bytes()[:2000]) == "truncated_image"


def test_context_prefers_text_near_the_images():
    (doc,) = [d for d in read_documents(DOCS) if d.doc_id == "micro-004"]
    full = context_for(doc, [2], 10_000)
    assert full.startswith("Medicine relies") and "Ophthalmologists" in full
    short = context_for(doc, [2], 150)
    assert "quantitative phase image" in short and "Ophthalmologists" not in short


def test_chunk_never_leaves_one_image_alone():
    assert [len(c) for c in _chunk(list(range(5)), 4)] == [3, 2]
    assert [len(c) for c in _chunk(list(range(8)), 4)] == [4, 4]
    assert [len(c) for c in _chunk(list(range(9)), 4)] == [3, 3, 3]
    assert _chunk([1], 4) == []


def test_deduplicator_counts():
    d = Deduplicator()
    assert d.claim_image("a") and not d.claim_image("a")
    assert d.dropped_images == 1


def test_bad_rows_raise_or_are_skipped_and_counted(tmp_path):
    good = DOCS.read_text().splitlines()[1].replace("../../../", str(REPO) + "/")
    (tmp_path / "d.jsonl").write_text("\n".join([good, "{not json", json.dumps({"texts": ["a"], "images": []}), good]) + "\n")
    with pytest.raises(ReaderError, match="not valid JSON"):
        list(read_documents(tmp_path / "d.jsonl"))
    bad: list = []
    docs = list(read_documents(tmp_path / "d.jsonl", on_bad_document="skip", bad=bad))
    assert len(docs) == 2 and [b[0].rsplit(":", 1)[1] for b in bad] == ["2", "3"]


def test_images_left_out_by_the_per_document_cap_stay_available(tmp_path):
    a = {"id": "a", "texts": ["A page about three photographs.", None, None, None],
         "images": [None, str(SAMPLE / "coffee.jpg"), str(SAMPLE / "rocket.jpg"), str(SAMPLE / "coins.jpg")]}
    b = {"id": "b", "texts": ["Another page that reuses a photograph.", None], "images": [None, str(SAMPLE / "coins.jpg")]}
    (tmp_path / "d.jsonl").write_text(json.dumps(a) + "\n" + json.dumps(b) + "\n")
    opts = SelectionOptions(multi_image_share=0.0, max_tasks_per_doc=1)
    tasks = list(select_tasks(read_documents(tmp_path / "d.jsonl"), opts))
    assert [(t.doc_id, len(t.images)) for t in tasks] == [("a", 1), ("b", 1)]
    assert tasks[1].images[0].data == (SAMPLE / "coins.jpg").read_bytes()
