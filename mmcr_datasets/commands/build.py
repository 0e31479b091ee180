"""``mmcr build``: raw records in any supported format -> a Hub-layout folder."""

from __future__ import annotations

from ._common import add_input_format, add_taxonomy


def register(sub) -> None:
    p = sub.add_parser("build", help="build a Hub-layout folder (parquet + card) from raw files",
                       description="Read raw MMCR data (a file or a folder of files), validate every record and "
                                   "write a Hub-layout folder that datasets.load_dataset reads.")
    p.add_argument("input", help="raw file or folder")
    add_input_format(p)
    p.add_argument("--image-root", metavar="DIR", help="folder the image paths are relative to (default: the input file's folder)")
    p.add_argument("--name", choices=["310k", "bench"], default="310k")
    p.add_argument("--out", required=True, metavar="DIR", help="the Hub-layout folder to write")
    p.add_argument("--on-invalid", choices=["raise", "warn", "skip"], default="raise")
    p.add_argument("--rejects", metavar="FILE", help="where invalid records go (default: OUT.rejects.jsonl)")
    p.add_argument("--num-proc", type=int, default=1)
    p.add_argument("--max-shard-mb", type=int, default=256, help="approximate shard size (default 256)")
    p.add_argument("--license", default="cc-by-4.0", help="license in the card (default cc-by-4.0)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    add_taxonomy(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ._common import require_path

    require_path(args.input)
    from ..export import build_hub_folder

    result = build_hub_folder(
        args.input, args.out, name=args.name, format=args.input_format, image_root=args.image_root,
        taxonomy=args.taxonomy, on_invalid=args.on_invalid, rejects=args.rejects, num_proc=args.num_proc,
        max_shard_bytes=args.max_shard_mb << 20, overwrite=args.overwrite, card_options={"license": args.license},
    )
    print(result.summary())
    return 1 if result.num_rejected else 0
