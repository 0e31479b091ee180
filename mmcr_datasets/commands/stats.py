"""``mmcr stats``: statistics of a Hub folder or parquet file (text, JSON or markdown; optional PNG plots)."""

from __future__ import annotations

import sys

from ._common import add_taxonomy


def register(sub) -> None:
    p = sub.add_parser("stats", help="statistics of a Hub folder or parquet file (no image decoding)",
                       description="Counts by config, dialogue type, domain and sub-topic; distributions of turns, "
                                   "images, first-reference turns and message lengths; image sizes and formats from "
                                   "headers; exact duplicate images and dialogues; placeholder and reference density.")
    p.add_argument("path", help="Hub-layout folder or parquet file")
    p.add_argument("--format", dest="report_format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("--plots", metavar="DIR", help="also write PNG plots into DIR (needs mmcr-datasets[plot])")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--no-images", action="store_true",
                   help="skip the image column: no image statistics, dialogues compared on text only (faster)")
    p.add_argument("--tokenizer", metavar="NAME_OR_FILE",
                   help="also count tokens: a tokenizers JSON file, or a local transformers tokenizer folder/name")
    p.add_argument("--num-proc", type=int, default=1, help="read shards in this many processes")
    add_taxonomy(p)
    p.set_defaults(func=run)


def load_tokenizer(spec: str):
    """A ``tokenizers.Tokenizer`` for a ``.json`` file, else a transformers ``AutoTokenizer``."""
    from ..errors import require

    if spec.endswith(".json"):
        tokenizers = require("tokenizers", feature="token counts from a tokenizer file", extra="train")
        return tokenizers.Tokenizer.from_file(spec)
    transformers = require("transformers", feature="token counts with a transformers tokenizer", extra="train")
    return transformers.AutoTokenizer.from_pretrained(spec)


def run(args) -> int:
    from pathlib import Path

    from ..errors import MissingExtraError
    from ..stats import compute_stats
    from ._common import require_path

    require_path(args.path)
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else None
    stats = compute_stats(args.path, images=not args.no_images, tokenizer=tokenizer, taxonomy=args.taxonomy,
                          num_proc=args.num_proc)
    plot_paths = {}
    status = 0
    if args.plots:
        try:
            written = stats.plot(args.plots)
        except MissingExtraError as exc:
            print(f"mmcr stats: no plots: {exc}", file=sys.stderr)
            status = 3
        else:
            base = Path(args.output).resolve().parent if args.output else Path.cwd()
            for name, path in written.items():
                try:
                    plot_paths[name] = Path(path).resolve().relative_to(base).as_posix()
                except ValueError:
                    plot_paths[name] = str(Path(path).resolve())
    if args.report_format == "json":
        text = stats.to_json()
    elif args.report_format == "markdown":
        text = stats.to_markdown(plots=plot_paths, heading_level=2)
    else:
        text = stats.to_text()
        if plot_paths:
            text += "\nplots: " + ", ".join(plot_paths.values())
    if args.output:
        Path(args.output).write_text(text.rstrip() + "\n", encoding="utf-8")
    else:
        print(text.rstrip())
    return status
