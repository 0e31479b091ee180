"""Benchmark: judge throughput at concurrency 32 against a sequential baseline, same run, same server.

    python benchmarks/bench_judge.py [--calls 3000] [--concurrency 32] [--baseline-calls 50] [--delay 0.2]

A loopback OpenAI-compatible server (``mmcr_datasets.testing.openai_server``, in its own process
so it does not share the client's interpreter) answers every chat completion after ``--delay``
seconds with a deterministic JSON score object. The judge (``mmcr_datasets.eval.judge.Judge``,
the real ``openai`` client, parsing, accounting, SQLite cache writes) judges distinct turns:

  (a) sequential baseline: concurrency 1 on ``--baseline-calls`` calls (a smaller number: at
      0.2 s per call, 3,000 sequential calls would take 10 minutes; throughput is per call, so
      the ratio is unaffected);
  (b) ``--calls`` calls at ``--concurrency``;
  (c) for context, the bare ``openai`` client (``AsyncOpenAI.post``, same payload, same
      concurrency, no judge logic, no cache) on ``--calls`` calls: the ceiling this machine and
      this loopback server allow. On a busy 2-core machine (c) itself varies by +-20 %.

Target: (b) >= 0.8 x concurrency / delay calls/s (128 calls/s for 32 and 0.2 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def start_server(delay: float):
    proc = subprocess.Popen([sys.executable, "-m", "mmcr_datasets.testing.openai_server", "--reply", "judge",
                             "--delay", str(delay)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    line = proc.stdout.readline().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"the loopback server did not start: {line!r}")
    base = f"http://127.0.0.1:{int(line.split()[1])}/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/models", timeout=1).read()
            return proc, base
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the loopback server did not answer within 30 s")
            time.sleep(0.05)


def items(n: int, tag: str):
    from mmcr_datasets.eval.judge import JudgeItem

    return [JudgeItem(f"d{i // 8}", i % 8, "User: [image 1] What is shown?\nAssistant: A clock.",
                      f"Question {i} about the clock?", "The reference answer.", f"Answer {tag}-{i}.")
            for i in range(n)]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), or 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def run(base_url: str, n: int, concurrency: int, cache_dir: Path, tag: str) -> tuple[float, dict]:
    from mmcr_datasets.eval.client import RetryPolicy
    from mmcr_datasets.eval.judge import Judge, JudgeConfig
    from mmcr_datasets.eval.store import EvalStore

    store = EvalStore(cache_dir / f"{tag}.sqlite")
    judge = Judge(JudgeConfig(model="bench-judge", base_url=base_url, concurrency=concurrency,
                              retry=RetryPolicy(timeout=30)), store=store)
    todo = items(n, tag)
    start = time.perf_counter()
    results = judge.judge_many(todo)
    elapsed = time.perf_counter() - start
    store.close()
    ok = sum(1 for r in results if r.status == "ok")
    if ok != n:
        raise SystemExit(f"{n - ok} of {n} judgements failed: {[r.reason for r in results if r.status != 'ok'][:3]}")
    return elapsed, judge.accounting.to_dict(judge.config)


def bare_client(base_url: str, n: int, concurrency: int) -> float:
    """Seconds for ``n`` bare ``AsyncOpenAI.post`` calls with ``concurrency`` workers (the ceiling)."""
    import asyncio

    import openai

    from mmcr_datasets.eval.judge import Judge, JudgeConfig

    payload = Judge(JudgeConfig(model="bench-judge", base_url=base_url)).build_payload(items(1, "bare")[0])

    async def go():
        client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
        todo = list(range(n))

        async def worker():
            while todo:
                todo.pop()
                await client.post("/chat/completions", cast_to=object, body=payload)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        await client.close()
        return elapsed

    return asyncio.run(go())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--baseline-calls", type=int, default=50)
    p.add_argument("--delay", type=float, default=0.2)
    p.add_argument("--no-bare", dest="bare", action="store_false", help="skip the bare-client ceiling (c)")
    args = p.parse_args(argv)

    server, base_url = start_server(args.delay)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache_dir = Path(tmp)
            run(base_url, 8, 4, cache_dir, "warmup")
            t_seq, _ = run(base_url, args.baseline_calls, 1, cache_dir, "sequential")
            cpu_client, cpu_server = time.process_time(), process_cpu(server.pid)
            t_con, acc = run(base_url, args.calls, args.concurrency, cache_dir, "concurrent")
            cpu_client = time.process_time() - cpu_client
            cpu_server = process_cpu(server.pid) - cpu_server
            t_bare = bare_client(base_url, args.calls, args.concurrency) if args.bare else None
    finally:
        server.terminate()
        server.wait(timeout=10)
    seq_rate = args.baseline_calls / t_seq
    con_rate = args.calls / t_con
    target = 0.8 * args.concurrency / args.delay if args.delay > 0 else 0.0
    print(f"loopback server delay {args.delay:.3f} s per call; cache writes on (SQLite)")
    print(f"(a) sequential baseline : {args.baseline_calls:5d} calls in {t_seq:7.2f} s = {seq_rate:7.1f} calls/s "
          f"(smaller sample; per-call rate)")
    print(f"(b) concurrency {args.concurrency:<7d} : {args.calls:5d} calls in {t_con:7.2f} s = {con_rate:7.1f} calls/s "
          f"(attempts {acc['attempts']}, retried {acc['retried'] or 'none'})")
    if t_bare:
        bare_rate = args.calls / t_bare
        print(f"(c) bare openai client  : {args.calls:5d} calls in {t_bare:7.2f} s = {bare_rate:7.1f} calls/s "
              f"(ceiling here; (b) reaches {100 * con_rate / bare_rate:.0f} % of it)")
    print(f"CPU per call in (b)     : judge {1000 * cpu_client / args.calls:.2f} ms, loopback server "
          f"{1000 * cpu_server / args.calls:.2f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    print(f"ratio (b)/(a)           : {con_rate / seq_rate:.1f}x  (ideal {args.concurrency}x)")
    print(f"target                  : >= {target:.0f} calls/s -> {'PASS' if con_rate >= target else 'FAIL'}")
    return 0 if con_rate >= target else 1


if __name__ == "__main__":
    raise SystemExit(main())
