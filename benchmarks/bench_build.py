"""Benchmark: `mmcr build` against plain pyarrow, parallel speed-up, validation speed, peak memory.

    python benchmarks/bench_build.py --n 20000 [--data /tmp/mmcr-bench]

Prints, from one run:
  (a) baseline: the same rows (images embedded) written with plain ``pyarrow.parquet.ParquetWriter``
  (b) ``build_hub_folder`` (what ``mmcr build`` runs): read, validate, header-check images, shard, card
      ratio (b)/(a) in throughput (target >= 0.8); ``--num-proc 2`` vs 1 (target >= 1.5x)
  validation of the built folder (images not decoded) vs per-record ``jsonschema`` (target >= 20x)
  peak RSS of a build at n/4 and n dialogues (must not grow with n)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Timer, child_peak_rss_mb, make_raw, warm  # noqa: E402


def baseline_write(raw: Path, image_root: Path, out: Path) -> int:
    """The floor: parse JSON, read image bytes, same Arrow rows, one ParquetWriter. No checks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmcr_datasets.features import arrow_schema

    schema = arrow_schema()
    records = json.loads(raw.read_text())
    writer = pq.ParquetWriter(out, schema, compression="snappy")
    batch = []
    n = 0
    for rec in records:
        names = [rec["image"]] if isinstance(rec["image"], str) else rec["image"]
        images = [{"bytes": (image_root / p).read_bytes(), "path": p} for p in names]
        messages = []
        k = 0
        for turn in rec["conversations"]:
            parts = []
            text = turn["value"]
            while text.startswith("<image>\n"):
                parts.append({"type": "image", "text": None, "index": k})
                k += 1
                text = text[len("<image>\n"):]
            parts.append({"type": "text", "text": text, "index": None})
            messages.append({"role": "user" if turn["from"] == "human" else "assistant", "content": parts})
        batch.append({"id": rec["id"], "dialogue_type": 0 if len(images) == 1 else 1, "domain": -1, "subtopic": -1,
                      "images": images, "messages": messages, "num_images": len(images),
                      "num_turns": len(messages) // 2, "source": None, "clip_scores": []})
        if len(batch) == 1000:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
            batch = []
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        n += len(batch)
    writer.close()
    return n


def jsonschema_baseline(raw: Path) -> tuple[int, float]:
    import jsonschema

    from mmcr_datasets.readers import read_raw
    from mmcr_datasets.resources import schema_path

    records = [item.record for item in read_raw(raw, "llava")]
    validator = jsonschema.Draft202012Validator(json.loads(schema_path("record.schema.json").read_text()))
    with Timer() as t:
        for rec in records:
            validator.validate(rec)
    return len(records), t.seconds


BUILD_CHILD = """
import resource, sys
from mmcr_datasets.export import build_hub_folder
build_hub_folder(sys.argv[1], sys.argv[2], image_root=sys.argv[3], overwrite=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--data", default="/tmp/mmcr-bench-build", help="where synthetic data is cached")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args(argv)

    from mmcr_datasets.export import build_hub_folder
    from mmcr_datasets.validation import validate_hub_folder

    from mmcr_datasets.features import arrow_schema

    arrow_schema()  # import datasets once, outside every timed section
    data = Path(args.data)
    with Timer() as t:
        raw = make_raw(data, args.n)
    image_root = data / "images"
    size = sum(p.stat().st_size for p in image_root.iterdir()) / 1e9
    print(f"data: {args.n} dialogues in {raw} (images {size:.2f} GB; prepared in {t.seconds:.1f} s)")
    out = data / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    warm(data)

    with Timer() as ta:
        n_a = baseline_write(raw, image_root, out / "baseline.parquet")
    with Timer() as tb:
        res = build_hub_folder(raw, out / "hub1", image_root=image_root)
    with Timer() as tc:
        res2 = build_hub_folder(raw, out / "hub2", image_root=image_root, num_proc=2)
    assert n_a == res.num_written == res2.num_written == args.n
    ra, rb, rc = n_a / ta.seconds, args.n / tb.seconds, args.n / tc.seconds
    print(f"(a) baseline ParquetWriter      {ta.seconds:7.2f} s  {ra:8.0f} dialogues/s")
    print(f"(b) build_hub_folder, 1 process {tb.seconds:7.2f} s  {rb:8.0f} dialogues/s   ratio (b)/(a) = {rb / ra:.2f}  (target >= 0.8)")
    print(f"(c) build_hub_folder, 2 procs   {tc.seconds:7.2f} s  {rc:8.0f} dialogues/s   speed-up 2 vs 1 = {rc / rb:.2f}x  (target >= 1.5x)")

    with Timer() as tv:
        report = validate_hub_folder(out / "hub1")
    assert report.ok and report.num_records == args.n, report.format_text()
    n_js, t_js = jsonschema_baseline(raw)
    print(f"validate folder (columnar, images not decoded) {tv.seconds:7.3f} s; per-record jsonschema {t_js:7.3f} s "
          f"over {n_js} records; speed-up = {t_js / tv.seconds:.1f}x  (target >= 20x)")

    if not args.skip_memory:
        small = make_raw(data, max(args.n // 4, 1))
        for raw_n, path in ((max(args.n // 4, 1), small), (args.n, raw)):
            secs, rss = child_peak_rss_mb(BUILD_CHILD, str(path), str(out / f"mem{raw_n}"), str(image_root))
            print(f"peak RSS of a build of {raw_n:6d} dialogues: {rss:7.1f} MB ({secs:.1f} s)")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
