"""``mmcr export``: re-validate and re-shard an existing dataset into a Hub folder; optionally upload it."""

from __future__ import annotations

from ._common import add_taxonomy


def register(sub) -> None:
    p = sub.add_parser("export", help="write a Hub-layout folder from a built folder, parquet file or "
                                      "save_to_disk folder; optionally push it to the Hub")
    p.add_argument("source", help="Hub-layout folder, parquet file, or a datasets.save_to_disk folder")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--name", choices=["310k", "bench"], default=None, help="detected from the source when omitted")
    p.add_argument("--max-shard-mb", type=int, default=256)
    p.add_argument("--license", default="cc-by-4.0")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the folder to this dataset repo afterwards")
    p.add_argument("--private", action="store_true")
    add_taxonomy(p)
    p.set_defaults(func=run)


def _rows(source):
    from pathlib import Path

    src = Path(source)
    if (src / "dataset_info.json").is_file() or (src / "dataset_dict.json").is_file():
        import datasets

        ds = datasets.load_from_disk(str(src))
        if isinstance(ds, datasets.DatasetDict):
            for split in ds.values():
                yield from split.cast_column("images", datasets.List(datasets.Image(decode=False)))
        else:
            yield from ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
        return
    from ..hub import iter_rows

    yield from iter_rows(src)


def run(args) -> int:
    from ._common import require_path

    require_path(args.source)
    from ..export import export_rows
    from ..hub import folder_name, push_to_hub
    from ..validation import validate_hub_folder

    name = args.name or folder_name(args.source)
    counts = export_rows(_rows(args.source), args.out, name=name, taxonomy=args.taxonomy, overwrite=args.overwrite,
                         max_shard_bytes=args.max_shard_mb << 20, card_options={"license": args.license})
    report = validate_hub_folder(args.out, taxonomy=args.taxonomy, name=name)
    print(f"mmcr/{name}: wrote {sum(counts.values())} row(s) to {args.out} ({counts}); "
          f"validate: {'OK' if report.ok else 'INVALID'}")
    if not report.ok:
        print(report.format_text())
        return 1
    if args.push_to_hub:
        url = push_to_hub(args.out, args.push_to_hub, private=args.private)
        print(f"uploaded: {url}")
    return 0
