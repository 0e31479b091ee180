"""Pipeline behaviour: failed LLM calls are retried by the next run, cost accounting, shards, --n."""

from __future__ import annotations

import json

import pytest

for _module in ("openai", "fastapi", "uvicorn"):  # the [generate] extra and the loopback server
    pytest.importorskip(_module)

from gen_helpers import DOCS, BAD_DOCS, fast_llm, flaw_rule, read_jsonl

from mmcr_datasets.generate.fake_llm import flawed_by
from mmcr_datasets.generate.pipeline import GenerateConfig, run_generation
from mmcr_datasets.testing.openai_server import Fault, OpenAIServer


def _config(tmp_path, base_url, **kw):
    return GenerateConfig(docs=DOCS, out=tmp_path / "gen", llm=fast_llm(base_url, max_retries=1), concurrency=3,
                          domain_method="fixed", fixed_domain=("Natural", "Materials & Textures"), progress=False,
                          handle_signals=False, **kw)


def test_failed_calls_are_quarantined_then_retried_by_the_next_run(tmp_path):
    def faults(body, attempt):
        return Fault("server_error") if "windowsill" in json.dumps(body) else None

    reply = flawed_by(flaw_rule)
    with OpenAIServer(reply=reply, faults=faults) as broken:
        first = run_generation(_config(tmp_path, broken.base_url))
    assert first.quarantine_reasons.get("llm_error") == 1
    q = {e["doc_id"]: e for e in read_jsonl(tmp_path / "gen" / "quarantine.jsonl")}
    assert q["cat-002"]["reason"] == "llm_error" and q["cat-002"]["attempts"] == 2
    with OpenAIServer(reply=reply) as healthy:
        second = run_generation(_config(tmp_path, healthy.base_url))
        assert healthy.stats.requests == 1  # only the failed task is asked again
    assert "llm_error" not in second.quarantine_reasons
    assert second.accepted == first.accepted + 1
    assert {e["doc_id"] for e in read_jsonl(tmp_path / "gen" / "quarantine.jsonl")} == set(BAD_DOCS)


def test_cost_shards_and_manifest(tmp_path, llm_server):
    res = run_generation(_config(tmp_path, llm_server.base_url, shard_records=2, price_in=2.5, price_out=10.0))
    out = tmp_path / "gen"
    shards = sorted((out / "data").glob("part-*.jsonl"))
    assert len(shards) == -(-res.accepted // 2) and [len(read_jsonl(s)) for s in shards][:-1] == [2] * (len(shards) - 1)
    manifest = json.loads((out / "manifest.json").read_text())
    t = manifest["totals"]
    assert t["cost"] == t["prompt_tokens"] * 2.5 / 1e6 + t["completion_tokens"] * 10 / 1e6 > 0
    assert manifest["config"]["llm"]["model"] == "loopback" and "api_key" not in manifest["config"]["llm"]
    # fewer dialogues asked on the same state: the output shrinks, stale shards and images go away
    small = run_generation(_config(tmp_path, llm_server.base_url, n=2, shard_records=2))
    assert small.accepted == 2 and len(list((out / "data").glob("part-*.jsonl"))) == 1
    images = {p.relative_to(out / "data").as_posix() for p in (out / "data" / "images").rglob("*.*")}
    used = {i for r in read_jsonl(out / "data" / "part-00000.jsonl") for i in r["images"]}
    assert images == used


def test_runs_inside_a_running_event_loop(tmp_path, llm_server):
    """A notebook already runs an event loop; run_generation must still work there."""
    import asyncio

    async def inside():
        return run_generation(_config(tmp_path, llm_server.base_url, n=1))

    assert asyncio.run(inside()).accepted == 1
