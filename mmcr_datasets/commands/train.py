"""``mmcr train --config train.yaml``: supervised fine-tuning of a VLM on MMCR data (``[train]`` extra).

Runs on one process as is, and on several under ``accelerate launch -m mmcr_datasets train ...`` or
``torchrun --nproc_per_node N -m mmcr_datasets train ...``. ``--dry-run`` checks and prints the
configuration without the extra installed.
"""

from __future__ import annotations

import json
import os
import sys


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a vision-language model on MMCR data (needs the [train] extra)",
                       description="Supervised fine-tuning (LoRA or full) with assistant-only labels. See "
                                   "examples/train.yaml for every option and its default.")
    p.add_argument("--config", required=True, metavar="FILE", help="YAML training configuration")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (value parsed as YAML), e.g. --set training.max_steps=100; repeatable")
    p.add_argument("--dry-run", action="store_true", help="validate and print the resolved configuration, then exit")
    p.add_argument("--format", dest="report_format", choices=["text", "json"], default="text",
                   help="format of the final summary (default: text)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"mmcr train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2, default=str))
        return 0
    from ..train.trainer import train  # raises MissingExtraError (exit 3) without the extra

    result = train(cfg, quiet=args.quiet)
    if os.environ.get("RANK", "0") != "0":  # one summary per run, from the main process
        return 0
    losses = result.losses()
    summary = {
        "global_step": result.global_step, "train_loss": result.train_loss,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "eval_loss": result.eval_metrics.get("eval_loss"), "final_dir": result.final_dir,
        "resumed_from": result.resumed_from, "collator": {k: v for k, v in result.collator_stats.items()
                                                         if k != "dropped_ids"},
    }
    if args.report_format == "json":
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"trained {summary['global_step']} steps; loss {summary['first_loss']} -> {summary['last_loss']}"
              + (f"; eval loss {summary['eval_loss']:.4f}" if summary["eval_loss"] is not None else "")
              + (f"\nsaved to {result.final_dir}" if result.final_dir else ""))
        c = result.collator_stats
        print(f"rows: {c['rows_out']}/{c['rows_in']} used, {c['truncated_rows']} truncated at a turn boundary, "
              f"{c['dropped_too_long']} dropped as too long, {c['dropped_no_labels']} without learned tokens")
    return 0
