"""Collation speed: MMCRCollator against apply_chat_template + TRL's vision collator, same run, same rows.

Needs: the ``train`` extra (torch, transformers, trl) and the Qwen2-VL chat template (the reference
copy in ../shared/reference/chat_templates, MMCR_REFERENCE_TEMPLATES, or ``--chat-template FILE``).

Both sides turn the same decoded dataset rows (the bundled sample, repeated to ``-n`` rows; PIL
images of up to 512 px) into model-ready tensors with the same tiny offline Qwen2-VL processor:

* ours: ``MMCRCollator(processor, "qwen2_vl")`` -- formatter text, one processor call per batch,
  labels from the assistant spans (answers and ``<|im_end|>`` only);
* baseline: ``trl.trainer.sft_trainer.DataCollatorForVisionLanguageModeling(processor)``, which
  renders each conversation with ``processor.apply_chat_template`` (Jinja) and tokenizes it. The
  reference template has no ``{% generation %}`` markers, so its labels are every non-padding
  token -- the baseline does *less* work than ours. The rows' messages are converted to the
  layout TRL expects outside the timed region (in the baseline's favour).

The two are interleaved per chunk of batches, best of ``--repeat`` runs per chunk, so both see the
same machine load. It checks that both produce identical ``input_ids`` (the formatter is
byte-identical to the template) and that our labels decode to exactly the assistant answers, then
prints rows/s and the speed ratio (ours / baseline).

    python benchmarks/bench_collate.py                  # 256 rows, batch 8
    python benchmarks/bench_collate.py -n 512 --min-ratio 1.0

Exit status: 0 when the checks pass (and the ratio >= --min-ratio, if given), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def sample_rows(n: int) -> list[dict]:
    """The bundled 310k sample built into a Hub folder and read back with ``datasets`` (decoded), cycled to ``n`` rows."""
    import datasets

    from mmcr_datasets.export import build_hub_folder
    from mmcr_datasets.resources import sample_dir

    sample = sample_dir()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "mmcr" / "310k"
        build_hub_folder(sample / "310k" / "train.json", target, name="310k", format="llava",
                         image_root=sample / "images", overwrite=True, on_invalid="raise")
        ds = datasets.load_dataset(str(target), split="train", cache_dir=str(Path(tmp) / "cache"))
        base = [ds[i] for i in range(len(ds))]
    for r in base:  # decode now: both sides get already-decoded PIL images
        for img in r["images"]:
            img.load()
    return [base[i % len(base)] for i in range(n)]


def trl_messages(row: dict) -> dict:
    """The row in the layout TRL's collator fills: image parts without payload, text parts with text."""
    msgs = []
    for m in row["messages"]:
        parts = [{"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]}
                 for p in m["content"]]
        msgs.append({"role": m["role"], "content": parts})
    return {"messages": msgs, "images": list(row["images"])}


def chat_template(path) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8")
    from mmcr_datasets.testing.reference_templates import reference_dir

    ref = reference_dir()
    if ref is None:
        raise SystemExit("the Qwen2-VL chat template was not found; pass --chat-template FILE "
                         "(qwen2_5_vl.jinja) or set MMCR_REFERENCE_TEMPLATES")
    return (ref / "qwen2_5_vl.jinja").read_text(encoding="utf-8")


def check_labels(collator, rows, batch) -> int:
    """Number of rows whose learned tokens do not decode to exactly their answers + <|im_end|>."""
    bad = 0
    tok = collator.tokenizer
    for i, row in enumerate(rows):
        labels = batch["labels"][i].tolist()
        ids = batch["input_ids"][i].tolist()
        runs, cur = [], []
        for t, lab in zip(ids, labels):
            if lab != -100:
                cur.append(t)
            elif cur:
                runs.append(cur)
                cur = []
        if cur:
            runs.append(cur)
        answers = ["".join(p["text"] for p in m["content"] if p["type"] == "text")
                   for m in row["messages"] if m["role"] == "assistant"]
        bad += [tok.decode(r) for r in runs] != [a + "<|im_end|>" for a in answers]
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=256, help="rows (default 256)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per chunk; the best is kept (default 3)")
    ap.add_argument("--chunk", type=int, default=4, help="batches per interleaved chunk (default 4)")
    ap.add_argument("--chat-template", metavar="FILE", help="Qwen2-VL chat template for the baseline")
    ap.add_argument("--min-ratio", type=float, default=None, help="fail when ours/baseline is below this")
    args = ap.parse_args(argv)

    import torch
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from mmcr_datasets.testing.tiny_models import tiny_processor
    from mmcr_datasets.train.collator import MMCRCollator

    torch.set_num_threads(1)
    processor = tiny_processor("qwen2_vl")
    processor.chat_template = chat_template(args.chat_template)
    rows = sample_rows(args.n)
    trl_rows = [trl_messages(r) for r in rows]
    ours = MMCRCollator(processor, "qwen2_vl")
    baseline = DataCollatorForVisionLanguageModeling(processor)

    bs = args.batch_size
    batches = [(rows[i:i + bs], trl_rows[i:i + bs]) for i in range(0, len(rows), bs)]
    # correctness first, on the first batch
    mine, theirs = ours(batches[0][0]), baseline(batches[0][1])
    same_ids = torch.equal(mine["input_ids"], theirs["input_ids"])
    wrong = check_labels(ours, batches[0][0], mine)
    learned_ours = float((mine["labels"] != -100).sum() / mine["attention_mask"].sum())
    learned_base = float((theirs["labels"] != -100).sum() / theirs["attention_mask"].sum())

    t_ours = t_base = 0.0
    for start in range(0, len(batches), args.chunk):
        part = batches[start:start + args.chunk]
        best_o = best_b = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for r, _t in part:
                ours(r)
            t1 = time.perf_counter()
            for _r, t in part:
                baseline(t)
            t2 = time.perf_counter()
            best_o, best_b = min(best_o, t1 - t0), min(best_b, t2 - t1)
        t_ours += best_o
        t_base += best_b
    ratio = t_base / t_ours
    n = len(rows)
    print(f"{n} rows (bundled sample, 1-4 decoded images each), batch {bs}, tiny Qwen2-VL processor; "
          f"per chunk of {args.chunk} batches, best of {args.repeat} interleaved runs")
    print(f"{'collator':<44} {'rows/s':>8} {'learned tokens':>15}")
    print(f"{'MMCRCollator (formatter + 1 processor call)':<44} {n / t_ours:>8.1f} {learned_ours:>14.1%}")
    print(f"{'apply_chat_template + TRL vision collator':<44} {n / t_base:>8.1f} {learned_base:>14.1%}")
    print(f"speed ratio (ours / baseline): {ratio:.2f}")
    print(f"identical input_ids: {'yes' if same_ids else 'NO'}; rows whose labels are not exactly the answers: {wrong}")
    ok = same_ids and wrong == 0
    if args.min_ratio is not None and ratio < args.min_ratio:
        print(f"ratio {ratio:.2f} is below --min-ratio {args.min_ratio}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
