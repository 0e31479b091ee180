# needs: pip install 'mmcr-datasets[generate]' fastapi uvicorn
"""Generation throughput against a loopback LLM that answers after a fixed delay.

The LLM is simulated by :func:`mmcr_datasets.generate.fake_llm.fake_reply` behind the loopback
OpenAI-compatible server (in its own process, so it does not share the GIL with the pipeline),
answering every request after ``--delay`` seconds (200 ms by default). The same pipeline runs
twice in one process, at concurrency 1 and at concurrency 32, each on fresh documents and an
empty cache, and the script prints dialogues per second for both and the speed-up against the
ideal one (the concurrency ratio: with a latency-bound endpoint, 32 requests in flight should
finish 32 times as many dialogues per second). Target: at least 0.8 of the ideal.

    python benchmarks/bench_generate.py [--tasks-1 20] [--tasks-32 640] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _serve(port: int, delay: float) -> None:
    import uvicorn

    from mmcr_datasets.generate.fake_llm import fake_reply
    from mmcr_datasets.testing.openai_server import create_app

    app = create_app(reply=fake_reply, delay=delay, keep_bodies=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="critical", access_log=False, backlog=2048)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the loopback server did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux); 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def make_documents(folder: Path, count: int, tag: str) -> Path:
    """``count`` one-image documents; every image is a distinct JPEG made from a sample photo."""
    from PIL import Image

    photos = sorted((REPO / "mmcr_datasets" / "sample" / "images").glob("*.jpg"))
    bases = []
    for p in photos:
        with Image.open(p) as img:
            img = img.convert("RGB")
            img.thumbnail((256, 256))
            if min(img.size) >= 128:
                bases.append((p.stem, img.copy()))
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        name, base = bases[i % len(bases)]
        img = base.copy()
        for bit in range(16):  # a visible 16-bit stamp makes every JPEG distinct
            colour = (255, 255, 255) if (i >> bit) & 1 else (0, 0, 0)
            for dx in range(4):
                for dy in range(4):
                    img.putpixel((bit * 4 + dx, dy), colour)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        path = folder / f"{tag}-{i:05d}.jpg"
        path.write_bytes(buf.getvalue())
        text = (f"Document {tag}-{i}: a photograph from the sample collection ({name}). It shows the subject "
                f"in some detail; the caption explains where and when it was taken, and why it matters.")
        lines.append(json.dumps({"id": f"{tag}-{i}", "texts": [text, None], "images": [None, path.name]}))
    docs = folder / "docs.jsonl"
    docs.write_text("\n".join(lines) + "\n")
    return docs


def run_once(docs: Path, out: Path, base_url: str, concurrency: int) -> tuple[float, int]:
    from mmcr_datasets.generate.llm import LLMSettings
    from mmcr_datasets.generate.pipeline import GenerateConfig, run_generation
    from mmcr_datasets.generate.selection import SelectionOptions

    cfg = GenerateConfig(
        docs=docs, out=out, llm=LLMSettings(model="loopback", base_url=base_url, api_key="bench", timeout=60),
        concurrency=concurrency, domain_method="fixed", fixed_domain=("Natural", "Materials & Textures"),
        selection=SelectionOptions(multi_image_share=0.0), progress=False, handle_signals=False)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_generation(cfg)
    seconds = time.perf_counter() - t0
    run_once.cpu_ms = (time.process_time() - c0) * 1000 / max(1, result.accepted)
    if result.quarantined:
        raise RuntimeError(f"unexpected quarantine: {result.quarantine_reasons}")
    return seconds, result.accepted


def run_raw_client(docs: Path, base_url: str, concurrency: int) -> tuple[float, int]:
    """Baseline: the same requests sent by the bare ``openai`` client, nothing else.

    No documents are read and nothing is parsed, validated or stored, so this is what the HTTP
    client alone can do on this machine at this concurrency.
    """
    import asyncio

    import openai
    from openai.types.chat import ChatCompletion

    from mmcr_datasets.generate.documents import read_documents
    from mmcr_datasets.generate.prompting import build_dialogue_request, load_prompt
    from mmcr_datasets.generate.selection import SelectionOptions, select_tasks
    from mmcr_datasets.taxonomy import load_taxonomy

    tax, prompt = load_taxonomy(), load_prompt("dialogue")
    bodies = [{"model": "loopback", "messages": build_dialogue_request(t, "Natural", "Materials & Textures", tax,
                                                                        prompt).messages}
              for t in select_tasks(read_documents(docs), SelectionOptions(multi_image_share=0.0))]

    async def go() -> float:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=60)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int, body: dict):
            async with sem:
                await client.post("/chat/completions", body=body, cast_to=ChatCompletion)

        t0 = time.perf_counter()
        await asyncio.gather(*[one(i, b) for i, b in enumerate(bodies)])
        seconds = time.perf_counter() - t0
        await client.close()
        return seconds

    return asyncio.run(go()), len(bodies)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks-1", type=int, default=20, help="dialogues at concurrency 1 (default 20)")
    p.add_argument("--tasks-32", type=int, default=640, help="dialogues at concurrency 32 (default 640)")
    p.add_argument("--delay", type=float, default=0.2, help="server answer delay in seconds (default 0.2)")
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args(argv)

    port = _free_port()
    server = mp.get_context("spawn").Process(target=_serve, args=(port, args.delay), daemon=True)
    server.start()
    try:
        _wait_for(port)
        base_url = f"http://127.0.0.1:{port}/v1"
        with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
            tmp = Path(tmp)
            docs1 = make_documents(tmp / "docs1", args.tasks_1, "a")
            docsN = make_documents(tmp / "docsN", args.tasks_32, "b")
            run_once(make_documents(tmp / "warm", 4, "w"), tmp / "out-warm", base_url, 4)  # imports, connections
            t1, n1 = run_once(docs1, tmp / "out1", base_url, 1)
            s0 = _cpu_seconds(server.pid)
            tN, nN = run_once(docsN, tmp / "outN", base_url, args.concurrency)
            server_ms = (_cpu_seconds(server.pid) - s0) * 1000 / max(1, nN)
            tR, nR = run_raw_client(docsN, base_url, args.concurrency)
    finally:
        server.terminate()
        server.join(5)
    r1, rN = n1 / t1, nN / tN
    ideal = float(args.concurrency)
    speedup = rN / r1
    print(f"loopback LLM answering after {args.delay * 1000:.0f} ms; single-image dialogues, 4 turns, one JPEG each")
    print(f"concurrency  1: {n1:5d} dialogues in {t1:7.2f} s = {r1:8.2f} dialogues/s "
          f"(latency bound: {1 / args.delay:.2f}/s)")
    cpuN = run_once.cpu_ms
    print(f"concurrency {args.concurrency:2d}: {nN:5d} dialogues in {tN:7.2f} s = {rN:8.2f} dialogues/s "
          f"(ideal {r1 * args.concurrency:.2f}/s)")
    print(f"CPU per dialogue: pipeline {cpuN:.1f} ms, loopback server {server_ms:.1f} ms; "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    rR = nR / tR
    print(f"baseline, the same {nR} requests from the bare openai client at concurrency {args.concurrency}: "
          f"{rR:.2f}/s; the pipeline runs at {rN / rR:.2f} of it")
    need = r1 * args.concurrency * cpuN / 1000
    print(f"at the ideal rate the pipeline needs {need:.0%} of one CPU core (the server another "
          f"{r1 * args.concurrency * server_ms / 1000:.0%}); below the target, check the load average")
    print(f"speed-up {speedup:.1f}x against an ideal {ideal:.0f}x = {speedup / ideal:.2f} of ideal (target >= 0.80)")
    return 0 if speedup / ideal >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
