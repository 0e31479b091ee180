"""``mmcr sample``: write a balanced, stratified subset of a Hub folder as a new Hub folder with its card."""

from __future__ import annotations

from ._common import add_taxonomy


def register(sub) -> None:
    p = sub.add_parser("sample", help="cut a balanced subset (stratified, deterministic, nested across sizes)",
                       description="Chooses N rows spread evenly over the strata of --by (or by --ratios), the same "
                                   "rows for the same --seed; a smaller subset is contained in a larger one. Strata "
                                   "with too few rows are reported and their share redistributed.")
    p.add_argument("path", help="Hub-layout folder or parquet file")
    p.add_argument("--n", type=int, required=True, help="number of dialogues to keep")
    p.add_argument("--by", default="domain,dialogue_type", help="comma-separated columns (default: %(default)s)")
    p.add_argument("--ratios", metavar="JSON_OR_FILE",
                   help='weights per stratum, e.g. \'{"Science/single_image": 2, "Science/multi_image": 1}\'; '
                        "strata left out are excluded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--name", choices=["310k", "bench"], default=None, help="detected from the source when omitted")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--format", dest="report_format", choices=["text", "json", "markdown"], default="text",
                   help="format of the subset report")
    add_taxonomy(p)
    p.set_defaults(func=run)


def _ratios(spec):
    import json
    from pathlib import Path

    if spec is None:
        return None
    text = Path(spec).read_text(encoding="utf-8") if Path(spec).is_file() else spec
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--ratios is neither a JSON object nor a JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("--ratios must be a JSON object mapping strata to weights")
    return data


def run(args) -> int:
    from ..sampling import stratified_subset, write_subset
    from ..validation import validate_hub_folder
    from ._common import require_path

    require_path(args.path)
    subset = stratified_subset(args.path, args.n, by=args.by, ratios=_ratios(args.ratios), seed=args.seed)
    counts = write_subset(args.path, subset, args.out, name=args.name, taxonomy=args.taxonomy,
                          overwrite=args.overwrite)
    report = subset.report
    if args.report_format == "json":
        print(report.to_json())
    elif args.report_format == "markdown":
        print(report.to_markdown())
    else:
        print(report.to_text())
    check = validate_hub_folder(args.out, taxonomy=args.taxonomy)
    print(f"wrote {sum(counts.values())} row(s) to {args.out} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}); "
          f"validate: {'OK' if check.ok else 'INVALID'}")
    if not check.ok:
        print(check.format_text())
        return 1
    return 0
