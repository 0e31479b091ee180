"""End to end on the bundled bench sample: local and OpenAI-compatible models, faults, kill and resume, keys."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmcr_datasets.cli import main
from mmcr_datasets.eval import CallableModel, JudgeConfig, OpenAIChatModel, TransformersModel, evaluate, load_run
from mmcr_datasets.testing.openai_server import FAULT_KINDS, FaultPlan, OpenAIServer, echo_reply, judge_reply

SECRET = "sk-mmcr-test-SECRET-0123456789"
REPO = Path(__file__).resolve().parents[2]
BENCH_TURNS = 48  # the bundled bench sample: 8 dialogues, four with 4 turns and four with 8


def _assert_one_record_per_turn(turns):
    keys = [(t["dialogue_id"], t["turn"]) for t in turns]
    assert len(keys) == BENCH_TURNS and len(set(keys)) == BENCH_TURNS


def test_tiny_transformers_model_with_own_history(bench_dir, judge_server, tiny_qwen2_vl, tmp_path):
    import torch

    model, processor = tiny_qwen2_vl
    adapter = TransformersModel(model, processor, batch_size=16, max_new_tokens=4, formatter="qwen2_vl",
                                name="tiny-qwen2-vl")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads, and loses a lot on a busy machine
    try:
        result = evaluate(bench_dir, adapter, JudgeConfig(model="judge", base_url=judge_server.base_url),
                          out=tmp_path / "run", history="model", n_boot=200)
    finally:
        torch.set_num_threads(threads)
    _assert_one_record_per_turn(result.turns)
    assert all(t["status"] == "ok" and isinstance(t["answer"], str) for t in result.turns)
    assert result.run["history"] == "model"
    # history="model": turn 2 of a dialogue was asked with the model's own turn-1 answer in the history
    first = next(t for t in result.turns if t["turn"] == 1)
    judge_bodies = [json.dumps(b) for b in judge_server.stats.bodies]
    assert any(json.dumps(first["answer"])[1:-1] in body and "Assistant: " in body for body in judge_bodies)
    scores = result.scores
    assert scores["contextual_accuracy"] == scores["contextual_accuracy_parsed"]
    assert 10 <= scores["contextual_accuracy"] <= 100
    total = scores["total"]["all"]
    assert total["ci_low"] <= total["value"] <= total["ci_high"]
    assert set(scores["by_turn"]) == {str(i) for i in range(1, 9)}
    assert scores["by_turn"]["8"]["n_turns"] == 4 and scores["by_dialogue_type"]["multi_image"]["n_turns"] == 32
    assert len(scores["by_domain"]) == 8
    for name in ("run.json", "turns.jsonl", "scores.json", "report.md", "plots/by_domain.png", "plots/dimensions.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert "Contextual accuracy" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize("family, formatter", [("llava", "llava_v1"), ("idefics3", "idefics3")])
def test_transformers_adapter_batches_other_families(bench_dir, family, formatter):
    pytest.importorskip("torch")
    import torch

    from mmcr_datasets.eval import build_request, load_dialogues
    from mmcr_datasets.eval.bench import turn_pairs
    from mmcr_datasets.testing import tiny_models

    if not hasattr(tiny_models, "tiny_model"):
        pytest.skip("mmcr_datasets.testing.tiny_models has no tiny_model yet")
    dialogues = load_dialogues(bench_dir, limit=2)
    # the first and last turn of two dialogues: 1 to 2 images, short and long prompts in one batch
    requests = [build_request(d, k, [a.text for _, a in turn_pairs(d)][:k])
                for d in dialogues for k in (0, len(turn_pairs(d)) - 1)]
    adapter = TransformersModel(tiny_models.tiny_model(family), tiny_models.tiny_processor(family), batch_size=4,
                                max_new_tokens=3, formatter=formatter)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generations = adapter.generate(requests)
    finally:
        torch.set_num_threads(threads)
    assert len(generations) == 4 and all(g.error is None and isinstance(g.text, str) for g in generations)
    assert all(0 < g.completion_tokens <= 3 for g in generations)


def test_cli_with_a_saved_local_model_and_images_sent_to_the_judge(bench_dir, judge_server, tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    from mmcr_datasets.testing import tiny_models

    if not hasattr(tiny_models, "tiny_model"):
        pytest.skip("mmcr_datasets.testing.tiny_models has no tiny_model yet")
    folder = tmp_path / "tiny-llava"
    tiny_models.tiny_model("llava").save_pretrained(folder)
    tiny_models.tiny_processor("llava").save_pretrained(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["eval", "--data", str(bench_dir), "--limit", "2", "--model", f"hf:{folder}", "--chat-format",
                     "llava_v1", "--max-new-tokens", "3", "--history", "model", "--judge-model", "j",
                     "--judge-base-url", judge_server.base_url, "--judge-images", "--no-plots",
                     "--out", str(tmp_path / "run"), "--format", "json"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_turns"] == summary["n_parsed"] == 12  # an 8-turn and a 4-turn dialogue
    run, _ = load_run(tmp_path / "run")
    assert run["model"]["name"] == f"transformers:{folder}" and run["judge"]["send_images"] is True
    sent = [p for b in judge_server.stats.bodies for p in b["messages"][-1]["content"] if isinstance(p, dict)
            and p.get("type") == "image_url"]
    assert sent and all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in sent)


def test_reference_history_requests_carry_reference_answers_and_images(bench_dir, judge_server, tmp_path):
    seen = []

    def fn(request):
        seen.append(request)
        return f"answer to turn {request.turn + 1}"

    result = evaluate(bench_dir, CallableModel(fn, name="fn"), JudgeConfig(model="j", base_url=judge_server.base_url),
                      out=tmp_path / "run", history="reference", n_boot=0, plots=False)
    _assert_one_record_per_turn(result.turns)
    assert len(seen) == BENCH_TURNS
    last = max(seen, key=lambda r: (r.dialogue_id == "mmcr-sample-bench-0004", r.turn))
    assert last.turn == 7 and len(last.images) == 3
    assistant_texts = [m["content"][0]["text"] for m in last.messages if m["role"] == "assistant"]
    assert len(assistant_texts) == 7 and not any(t.startswith("answer to turn") for t in assistant_texts)
    image_parts = sum(1 for m in last.messages for p in m["content"] if p["type"] == "image")
    assert image_parts == len(last.pil_images()) == 3


def test_openai_compatible_model_through_the_cli_and_keys_never_written(bench_dir, tmp_path, monkeypatch, capsys,
                                                                       caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with OpenAIServer(reply=judge_reply, api_key=SECRET) as judge, \
            OpenAIServer(reply=echo_reply, api_key=SECRET) as served:
        out = tmp_path / "run"
        code = main(["-v", "eval", "--data", str(bench_dir), "--model", "openai:served-vlm", "--model-base-url",
                     served.base_url, "--judge-model", "judge", "--judge-base-url", judge.base_url,
                     "--concurrency", "8", "--price-in", "2.5", "--price-out", "10", "--out", str(out),
                     "--bootstrap", "100"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert served.stats.requests == BENCH_TURNS and judge.stats.requests == BENCH_TURNS
        image_urls = [p for b in served.stats.bodies for m in b["messages"] if isinstance(m["content"], list)
                      for p in m["content"] if p["type"] == "image_url"]
        assert image_urls and all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in image_urls)
    run, turns = load_run(out)
    _assert_one_record_per_turn(turns)
    assert all(t["answer"].startswith("Answer ") for t in turns)
    assert run["accounting"]["cost_usd"] > 0 and run["model"]["name"].startswith("openai:served-vlm@")
    assert "contextual accuracy:" in captured.out
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    assert blobs and not any(SECRET.encode() in b for b in blobs), "the API key leaked into a file"
    assert SECRET not in captured.out + captured.err + caplog.text


def test_faults_on_both_servers_lose_no_turn(bench_dir, tmp_path, fast_retry):
    transient = FaultPlan({k: 0.08 for k in FAULT_KINDS}, times=1, seconds=1.0, retry_after=0.01)
    with OpenAIServer(reply=judge_reply, faults=transient) as judge, \
            OpenAIServer(reply=echo_reply, faults=FaultPlan({"rate_limit": 0.2, "server_error": 0.2},
                                                             retry_after=0.01)) as served:
        result = evaluate(bench_dir, OpenAIChatModel("m", base_url=served.base_url, retry=fast_retry),
                          JudgeConfig(model="j", base_url=judge.base_url, retry=fast_retry, concurrency=8),
                          out=tmp_path / "run", n_boot=0, plots=False)
        assert sum(judge.stats.faults.values()) >= 10 and sum(served.stats.faults.values()) >= 5
    _assert_one_record_per_turn(result.turns)
    assert result.scores["status_counts"] == {"ok": BENCH_TURNS}
    assert result.run["accounting"]["retried"]


def test_permanent_bad_replies_are_recorded_as_unparsed_and_count_zero(bench_dir, tmp_path, fast_retry):
    plan = FaultPlan({"out_of_range": 0.25, "partial_json": 0.15}, times=None)
    with OpenAIServer(reply=judge_reply, faults=plan) as judge:
        result = evaluate(bench_dir, CallableModel(lambda r: "fixed answer " + r.dialogue_id + str(r.turn), name="c"),
                          JudgeConfig(model="j", base_url=judge.base_url, retry=fast_retry), out=tmp_path / "run",
                          n_boot=0, plots=False)
    _assert_one_record_per_turn(result.turns)
    bad = [t for t in result.turns if t["status"] != "ok"]
    assert bad and all(t["status"] == "unparsed" and t["reason"] and t["scores"] is None for t in bad)
    good = [t["overall"] for t in result.turns if t["status"] == "ok"]
    s = result.scores
    assert s["contextual_accuracy"] == pytest.approx(10 * sum(good) / BENCH_TURNS, abs=1e-3)
    assert s["contextual_accuracy_parsed"] == pytest.approx(10 * sum(good) / len(good), abs=1e-3)
    assert s["status_counts"]["unparsed"] == len(bad) and sum(s["unparsed_reasons"].values()) == len(bad)


def test_model_failures_are_recorded_and_retried_on_the_next_run(bench_dir, judge_server, tmp_path):
    calls = {"n": 0}

    def flaky(request):
        calls["n"] += 1
        if request.dialogue_id.endswith("0003") and calls["n"] < 100:
            raise RuntimeError("GPU fell over")
        return "ok " + request.dialogue_id

    model = CallableModel(flaky, name="flaky")
    judge = JudgeConfig(model="j", base_url=judge_server.base_url)
    first = evaluate(bench_dir, model, judge, out=tmp_path / "run", n_boot=0, plots=False)
    _assert_one_record_per_turn(first.turns)
    failed = [t for t in first.turns if t["status"] == "no_answer"]
    assert len(failed) == 4 and all("GPU fell over" in t["reason"] for t in failed)
    calls["n"] = 1000
    second = evaluate(bench_dir, model, judge, out=tmp_path / "run", n_boot=0, plots=False)
    assert second.scores["status_counts"] == {"ok": BENCH_TURNS}
    assert calls["n"] == 1004, "only the four failed turns are asked again"


def _cache_counts(path: Path) -> int:
    try:
        with sqlite3.connect(str(path), timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killed_run_resumes_to_the_same_scores(bench_dir, tmp_path, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OPENAI_API_KEY": SECRET}
    with OpenAIServer(reply=judge_reply, delay=0.06) as judge, OpenAIServer(reply=echo_reply) as served:
        def command(out):
            return [sys.executable, "-m", "mmcr_datasets", "-v", "eval", "--data", str(bench_dir), "--model",
                    "openai:served", "--model-base-url", served.base_url, "--judge-model", "judge",
                    "--judge-base-url", judge.base_url, "--concurrency", "2", "--bootstrap", "200", "--no-plots",
                    "--out", str(out)]

        out = tmp_path / "killed"
        log = (tmp_path / "first.log").open("wb")
        proc = subprocess.Popen(command(out), env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while _cache_counts(out / "cache.sqlite") < 12:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        log.close()
        done_before = _cache_counts(out / "cache.sqlite")
        assert 12 <= done_before < BENCH_TURNS and not (out / "scores.json").exists()
        requests_before = judge.stats.requests

        second = subprocess.run(command(out), env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        resumed_requests = judge.stats.requests - requests_before
        assert resumed_requests == BENCH_TURNS - done_before, "finished judgements are not asked again"
        assert judge.stats.requests <= BENCH_TURNS + 2, "at most the calls in flight at the kill are repeated"

        # the uninterrupted reference run, in-process through the same CLI entry point
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        assert main(command(tmp_path / "fresh")[3:]) == 0

    assert _cache_counts(out / "cache.sqlite") == BENCH_TURNS
    (run_a, turns_a), (_, turns_b) = load_run(out), load_run(tmp_path / "fresh")
    _assert_one_record_per_turn(turns_a)
    strip = lambda ts: [{k: v for k, v in t.items() if k != "cached"} for t in ts]  # noqa: E731
    assert strip(turns_a) == strip(turns_b)
    assert json.loads((out / "scores.json").read_text()) == json.loads((tmp_path / "fresh" / "scores.json").read_text())
    assert run_a["accounting"]["cached"] == done_before
    for folder in (out, tmp_path / "fresh"):
        assert not any(SECRET.encode() in p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert SECRET not in second.stdout + second.stderr + (tmp_path / "first.log").read_text()


def test_compare_cli_paired_delta(bench_dir, judge_server, tmp_path, capsys):
    judge = JudgeConfig(model="j", base_url=judge_server.base_url)
    evaluate(bench_dir, CallableModel(lambda r: "short", name="base"), judge, out=tmp_path / "a", n_boot=0, plots=False)
    evaluate(bench_dir, CallableModel(lambda r: "a longer answer " + r.dialogue_id, name="tuned"), judge,
             out=tmp_path / "b", n_boot=0, plots=False)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "json",
                 "--out", str(tmp_path / "cmp.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    ca = result["contextual_accuracy"]
    assert result["n_common_turns"] == BENCH_TURNS and ca["n"] == BENCH_TURNS
    assert ca["delta"] == pytest.approx(ca["b"] - ca["a"], abs=1e-3)
    assert ca["ci_low"] <= ca["delta"] <= ca["ci_high"]
    assert (tmp_path / "cmp.md").read_text().startswith("# tuned vs base")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == 1


def test_eval_without_openai_exits_3(bench_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openai", None)
    code = main(["eval", "--data", str(bench_dir), "--model", "openai:m", "--model-base-url", "http://127.0.0.1:9/v1",
                 "--judge-model", "j", "--out", str(tmp_path / "x")])
    assert code == 3 and "pip install 'mmcr-datasets[eval]'" in capsys.readouterr().err


def test_importing_the_package_and_eval_stays_light():
    code = ("import sys, mmcr_datasets, mmcr_datasets.eval, mmcr_datasets.cli; "
            "mmcr_datasets.cli.build_parser(); "
            "bad = [m for m in ('openai', 'torch', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
