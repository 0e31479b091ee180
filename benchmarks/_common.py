"""Helpers shared by the benchmark scripts (synthetic data, timing, memory of a child process)."""

from __future__ import annotations

import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path


def jpeg_pool(n: int = 256, target_kb: int = 30, seed: int = 0) -> list[bytes]:
    """``n`` distinct real JPEGs of about ``target_kb`` KB (noise + gradients, encoded by Pillow)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pool = []
    for i in range(n):
        h, w = 240, 320
        base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
        noise = rng.normal(0, 28 + (i % 7), (h, w, 3))
        img = Image.fromarray(np.clip(base + noise, 0, 255).astype("uint8"))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        pool.append(buf.getvalue())
    return pool


def make_raw(folder: Path, n: int, seed: int = 0) -> Path:
    """Ovis/LLaVA JSON with ``n`` dialogues of 1-4 images each (cached in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"train-{n}.json"
    if path.exists():
        return path
    rng = random.Random(seed)
    pool = jpeg_pool()
    img_dir = folder / "images"
    img_dir.mkdir(exist_ok=True)
    tmp = path.with_suffix(".partial")
    with open(tmp, "w") as fh:
        fh.write("[\n")
        for i in range(n):
            k = 1 if rng.random() < 0.6 else rng.randint(2, 4)
            names = []
            for j in range(k):
                name = f"{i:07d}_{j}.jpg"
                target = img_dir / name
                if not target.exists():
                    target.write_bytes(pool[rng.randrange(len(pool))])
                names.append(name)
            turns = 4 if k == 1 else 8
            first = {t: 0 for t in range(turns)}
            for j in range(k):
                first[0 if j == 0 or turns == 4 else min(2 * j, turns - 1)] += 1
            conv = []
            for t in range(turns):
                conv.append({"from": "human", "value": "<image>\n" * first[t] + f"Question {t} about dialogue {i}: what does the {t}th detail show?"})
                conv.append({"from": "gpt", "value": f"Answer {t}: it shows a detail that refers back to the earlier turn {max(t - 1, 0)}."})
            rec = {"id": f"syn-{i:07d}", "image": names[0] if k == 1 else names, "conversations": conv}
            fh.write(("," if i else "") + json.dumps(rec) + "\n")
        fh.write("]\n")
    os.replace(tmp, path)
    return path


def warm(folder: Path) -> None:
    """Read every file once so the page cache is equally warm for every contender."""
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                while fh.read(1 << 22):
                    pass


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def child_peak_rss_mb(code: str, *args: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; return (seconds, its peak RSS in MB)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    seconds = time.perf_counter() - t0
    out = proc.stdout.strip().splitlines()[-1]
    return seconds, float(out)
