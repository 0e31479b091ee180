"""Kill a real `mmcr generate` process midway, restart it, and count calls at the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

for _module in ("openai", "fastapi", "uvicorn"):  # the [generate] extra and the loopback server
    pytest.importorskip(_module)

from gen_helpers import BAD_DOCS, DOCS, REPO, read_jsonl

CONCURRENCY = 2


def _start(out, base_url):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OPENAI_API_KEY="test-key", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "mmcr_datasets", "-q", "generate", "--docs", str(DOCS), "--out", str(out),
           "--llm-model", "loopback", "--llm-base-url", base_url, "--concurrency", str(CONCURRENCY),
           "--domain-method", "fixed", "--domain", "Natural", "--subtopic", "Materials & Textures",
           "--backoff", "0.01"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_output(out, tasks_expected=None):
    records = [r for shard in sorted((out / "data").glob("part-*.jsonl")) for r in read_jsonl(shard)]
    quarantine = read_jsonl(out / "quarantine.jsonl")
    ids = [r["id"] for r in records] + [q["id"] for q in quarantine]
    assert len(ids) == len(set(ids)), "a dialogue was written twice"
    assert {q["doc_id"]: q["reason"] for q in quarantine} == BAD_DOCS
    docs = sorted(r["source"].split(":", 1)[1] for r in records)
    return records, quarantine, docs


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_kill_and_resume(tmp_path, sig):
    from mmcr_datasets.generate.fake_llm import flawed_by
    from mmcr_datasets.testing.openai_server import OpenAIServer

    from gen_helpers import flaw_rule

    out = tmp_path / "gen"
    with OpenAIServer(reply=flawed_by(flaw_rule), delay=0.25) as server:
        proc = _start(out, server.base_url)
        deadline = time.monotonic() + 60
        while server.stats.requests < 4:  # midway: some tasks done, some in flight, most not started
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode != 0  # interrupted, not finished
        assert not (out / "quarantine.jsonl").exists()  # output is only written by a complete run
        first = server.stats.requests
        assert first < 10

        proc = _start(out, server.base_url)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        attempts = server.stats.attempts

    records, quarantine, docs = _check_output(out)
    tasks = len(records) + len(quarantine)
    assert tasks == 10
    # Every request the run needed reached the server; none was lost.
    assert len(attempts) == tasks
    repeated = sum(n - 1 for n in attempts.values())
    if sig == signal.SIGTERM:
        assert repeated == 0  # a graceful stop lets requests in flight finish and caches them
    else:
        assert repeated <= CONCURRENCY  # only replies in flight at the SIGKILL can be asked again
    assert "resume" in stdout or "written" in stdout
