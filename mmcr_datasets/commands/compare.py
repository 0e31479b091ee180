"""``mmcr compare``: paired comparison of two eval runs (delta B − A with a bootstrap interval)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare two `mmcr eval` runs turn by turn (delta = B - A)")
    p.add_argument("run_a", metavar="RUN_A", help="folder of the baseline run")
    p.add_argument("run_b", metavar="RUN_B", help="folder of the run compared with it")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="FILE", help="also write the comparison as JSON (and FILE.md beside it)")
    p.add_argument("--format", dest="report_format", choices=["text", "json"], default="text")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from pathlib import Path

    from ..eval.report import format_comparison_markdown
    from ..eval.runner import load_run
    from ..eval.scoring import compare_runs

    run_a, turns_a = load_run(args.run_a)
    run_b, turns_b = load_run(args.run_b)
    result = compare_runs(turns_a, turns_b, n_boot=args.bootstrap, seed=args.seed, run_a=run_a, run_b=run_b)
    result["run_a"] = {"path": str(args.run_a), "model": run_a["model"]["name"], "history": run_a.get("history")}
    result["run_b"] = {"path": str(args.run_b), "model": run_b["model"]["name"], "history": run_b.get("history")}
    markdown = format_comparison_markdown(result, name_a=run_a["model"]["name"], name_b=run_b["model"]["name"])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(json.dumps(result, indent=2) if args.report_format == "json" else markdown, end="")
    return 0
