"""Formatter speed against the families' own Jinja chat templates, same run, same data.

Needs: the ``dev`` extra (jinja2) and the reference templates in ../shared/reference/chat_templates
(or MMCR_REFERENCE_TEMPLATES). For every formatter that has a reference template, it formats N
synthetic text-only dialogues (4 or 8 turns) with ``format_dialogue`` and renders the same
dialogues with the compiled template in a Jinja2 environment configured like transformers'
(``template.render``, plus the typed-parts-to-string conversion that phi3_v's string-content
template needs; compilation and transformers' input copying are not counted, which favours Jinja;
``--transformers`` also times transformers' own ``render_jinja_template``, the path
``apply_chat_template`` takes). It checks that every output is identical and prints the speed ratio.

    python benchmarks/bench_format.py                 # 20,000 dialogues per family
    python benchmarks/bench_format.py -n 2000 --min-ratio 3

Exit status: 0 when all outputs are identical (and every ratio >= --min-ratio, if given), 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcr_datasets.formatters import format_dialogue  # noqa: E402
from mmcr_datasets.testing.reference_templates import (  # noqa: E402
    REFERENCES, ReferenceRenderer, reference_dir, reference_source)

WORDS = ("the cat image photo second first building light shadow colour left right detail theme "
         "compare earlier answer why how because notice texture background shows suggests river "
         "mountain street people window clock rocket coins sky bright dark small large 3 1990 café").split()
FIXED = {"mllama": {"date_string": "22 Nov 2026"}}


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """Text-only dialogues in the dataset row layout: 4 or 8 turns, 8-60 words per message."""
    rng = random.Random(seed)

    def sentence():
        words = rng.choices(WORDS, k=rng.randint(8, 60))
        return " ".join(words).capitalize() + rng.choice(".?!")

    rows = []
    for i in range(n):
        messages = []
        for _ in range(rng.choice((4, 8))):
            messages.append({"role": "user", "content": [{"type": "text", "text": sentence(), "index": None}]})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": sentence(), "index": None}]})
        rows.append({"id": f"syn-{i}", "images": [], "messages": messages})
    return rows


def bench(name: str, rows: list[dict], renderer: ReferenceRenderer, repeat: int, with_transformers: bool) -> dict:
    template = renderer.template(name)
    fixed = dict(REFERENCES[name][3], **FIXED.get(name, {}))
    options = FIXED.get(name, {})
    convert = renderer.messages_for  # the input layout the template needs (phi3_v: string content)
    render = template.render

    # Interleave the two in chunks and keep, per chunk, the best of `repeat` runs: on a shared,
    # loaded machine both sides then see the same conditions.
    chunk = 1000
    ours, ref = [], []
    best_ours = best_jinja = 0.0
    best_tf = float("inf")
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        t_ours = t_jinja = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            o = [format_dialogue(r, name, **options).text for r in part]
            t1 = time.perf_counter()
            j = [render(messages=convert(name, r["messages"]), tools=None, documents=None,
                        add_generation_prompt=False, **fixed) for r in part]
            t2 = time.perf_counter()
            t_ours, t_jinja = min(t_ours, t1 - t0), min(t_jinja, t2 - t1)
        ours += o
        ref += j
        best_ours += t_ours
        best_jinja += t_jinja
    if with_transformers:  # what apply_chat_template(tokenize=False) runs: input copy + render
        from transformers.utils.chat_template_utils import render_jinja_template

        source = reference_source(name)
        t0 = time.perf_counter()
        for r in rows:
            render_jinja_template(conversations=[convert(name, r["messages"])], chat_template=source,
                                  add_generation_prompt=False, **fixed)
        best_tf = time.perf_counter() - t0
    mismatches = sum(a != b for a, b in zip(ours, ref))
    return {"name": name, "ours": best_ours, "jinja": best_jinja, "ratio": best_jinja / best_ours,
            "transformers": best_tf, "mismatches": mismatches}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20_000, help="dialogues per family (default 20000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per family; the best is kept (default 3)")
    ap.add_argument("--only", nargs="*", help="formatters to run (default: all with a reference template)")
    ap.add_argument("--min-ratio", type=float, default=None, help="fail when a ratio is below this")
    ap.add_argument("--transformers", action="store_true",
                    help="also time transformers' render_jinja_template (one run; needs transformers)")
    args = ap.parse_args(argv)
    if reference_dir() is None:
        print("reference templates not found (../shared/reference/chat_templates); nothing to compare", file=sys.stderr)
        return 1
    rows = synthetic_rows(args.n)
    renderer = ReferenceRenderer()
    names = args.only or sorted(REFERENCES)
    print(f"{len(rows)} synthetic text-only dialogues; per 1000-dialogue chunk, best of {args.repeat} interleaved "
          "runs.\njinja = the compiled template's render() (plus the string conversion phi3_v's template needs); "
          "compilation not counted.")
    head = f"{'formatter':<12} {'ours (s)':>9} {'jinja (s)':>10} {'speed-up':>9}"
    if args.transformers:
        head += f" {'transformers (s)':>17} {'speed-up':>9}"
    print(head + "  identical")
    ok = True
    ratios = {}
    for name in names:
        r = bench(name, rows, renderer, args.repeat, args.transformers)
        same = r["mismatches"] == 0
        ratios[name] = r["ratio"]
        ok &= same and (args.min_ratio is None or r["ratio"] >= args.min_ratio)
        line = f"{name:<12} {r['ours']:>9.3f} {r['jinja']:>10.3f} {r['ratio']:>8.2f}x"
        if args.transformers:
            line += f" {r['transformers']:>17.3f} {r['transformers'] / r['ours']:>8.2f}x"
        print(line + "  " + ("yes" if same else "NO (%d differ)" % r["mismatches"]))
    met = [n for n, v in ratios.items() if v >= 3.0]
    print(f"target >= 3x over jinja: met by {len(met)} of {len(ratios)}"
          + (f" (below: {', '.join(sorted(set(ratios) - set(met)))})" if len(met) < len(ratios) else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
