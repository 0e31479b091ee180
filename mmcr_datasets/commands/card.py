"""``mmcr card``: re-render the README.md (dataset card) of a Hub-layout folder and check it."""

from __future__ import annotations

from ._common import add_taxonomy


def register(sub) -> None:
    p = sub.add_parser("card", help="rewrite the dataset card (README.md) of a Hub folder from its shards",
                       description="Renders the YAML metadata (configs, dataset_info, license, task categories, size "
                                   "category) and the body (statistics, taxonomy, format, example, limitations, "
                                   "citation), then checks the card offline. Exit 1 when the check fails.")
    p.add_argument("path", help="Hub-layout folder")
    p.add_argument("--name", choices=["310k", "bench"], default=None, help="detected from the shards when omitted")
    p.add_argument("--license", default=None, help="license id (default: keep the card's, else cc-by-4.0)")
    p.add_argument("--pretty-name", default=None)
    p.add_argument("--plots", action="store_true", help="draw PNG plots into PATH/plots/ and embed them "
                                                        "(needs mmcr-datasets[plot])")
    p.add_argument("--no-image-stats", action="store_true", help="do not read the image column (faster)")
    add_taxonomy(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..cards import rerender_card, validate_card
    from ..validation import is_hub_folder

    folder = Path(args.path)
    if not is_hub_folder(folder):
        raise FileNotFoundError(f"{folder} is not a Hub-layout folder (no <config>/*.parquet inside)")
    if args.plots:
        from ..errors import require

        require("matplotlib", feature="card plots", extra="plot")
    path = rerender_card(folder, name=args.name, taxonomy=args.taxonomy, license=args.license,
                         pretty_name=args.pretty_name, plots=args.plots, image_stats=not args.no_image_stats)
    problems = validate_card(folder)
    print(f"wrote {path}")
    if problems:
        print("card check failed:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("card check: OK (DatasetCard metadata, configs, dataset_info and split sizes)")
    return 0
