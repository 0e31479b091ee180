"""``mmcr convert``: any supported input -> a raw format (or a peer format registered by an extra)."""

from __future__ import annotations

from pathlib import Path

from ._common import add_taxonomy

RAW_TARGETS = ("llava", "mmdu", "sharegpt", "messages")


def _peer_exporters() -> dict:
    try:
        from ..exports import EXPORTERS  # OpenAI messages, VLMEvalKit TSV, ... (formatters issue)
    except ImportError:
        return {}
    return dict(EXPORTERS)


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a Hub folder or raw file to another format")
    p.add_argument("path", help="Hub-layout folder, parquet file, or raw file/folder")
    p.add_argument("--to", required=True, help=f"target format: {', '.join(RAW_TARGETS)} or a peer export")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--from", dest="input_format", choices=list(RAW_TARGETS), default=None,
                   help="raw input format (detected when omitted)")
    p.add_argument("--image-root", metavar="DIR", help="raw input: folder the image paths are relative to")
    p.add_argument("--image-out", metavar="DIR",
                   help="raw output: folder to write image files into (default: OUT's folder/images)")
    p.add_argument("--keyed", action="store_true", help="mmdu: write an object keyed by id instead of an array")
    add_taxonomy(p)
    p.set_defaults(func=run)


def iter_input_rows(path, *, input_format=None, image_root=None, taxonomy=None):
    """Rows from a Hub folder/parquet file (as stored) or from raw records (validated, images loaded)."""
    from ..errors import InvalidRecordError
    from ..hub import iter_rows
    from ..ingest import IngestOptions, iter_checked, to_arrow_row
    from ..validation import is_hub_folder

    p = Path(path)
    if p.suffix == ".parquet" or is_hub_folder(p):
        yield from iter_rows(p)
        return
    opts = IngestOptions.make(taxonomy=taxonomy, image_root=image_root)
    for checked in iter_checked(p, input_format, opts):
        if not checked.ok:
            raise InvalidRecordError(checked.issues)
        yield to_arrow_row(checked, opts.taxonomy)


def run(args) -> int:
    from ._common import require_path

    require_path(args.path)
    from ..taxonomy import load_taxonomy
    from ..writers import write_raw

    tax = load_taxonomy(args.taxonomy)
    rows = iter_input_rows(args.path, input_format=args.input_format, image_root=args.image_root, taxonomy=tax)
    out = Path(args.out)
    if args.to in RAW_TARGETS:
        image_out = Path(args.image_out) if args.image_out else out.parent / "images"
        n = write_raw(rows, out, args.to, taxonomy=tax, image_root=image_out, keyed=args.keyed)
        print(f"wrote {n} record(s) to {out} ({args.to}); images under {image_out} "
              f"(read it back with --image-root {image_out})")
        return 0
    peers = _peer_exporters()
    if args.to not in peers:
        raise ValueError(f"unknown target format {args.to!r}; choose one of {sorted(RAW_TARGETS + tuple(peers))}")
    n = peers[args.to](rows, out, taxonomy=tax)
    print(f"wrote {n} record(s) to {out} ({args.to})")
    return 0
