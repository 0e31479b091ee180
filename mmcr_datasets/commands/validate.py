"""``mmcr validate``: check a Hub-layout folder, a parquet file or raw records; exit 1 on errors."""

from __future__ import annotations

from ._common import add_report_format, add_taxonomy


def register(sub) -> None:
    p = sub.add_parser("validate", help="validate a Hub folder or raw file; exit 0 when clean, 1 with errors",
                       description="Report every issue (code, severity, record, JSON pointer, source, hint). "
                                   "Exit status 0 when there is no error, 1 otherwise (warnings too with --strict).")
    p.add_argument("path")
    add_report_format(p)
    p.add_argument("--input-format", choices=["llava", "mmdu", "sharegpt", "messages"], default=None,
                   help="raw format (detected when omitted)")
    p.add_argument("--image-root", metavar="DIR")
    p.add_argument("--name", choices=["310k", "bench"], default=None,
                   help="which rules apply (bench requires labels); detected from the data when omitted")
    p.add_argument("--check-images", action="store_true",
                   help="for Hub folders also check every embedded image's header (slower)")
    p.add_argument("--relaxed", action="store_true", help="allow any number of turns and images (non-MMCR data)")
    p.add_argument("--strict", action="store_true", help="warnings also make the exit status 1")
    add_taxonomy(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ._common import require_path

    require_path(args.path)
    from ..validation import RELAXED, validate_path
    from ..validation.checks import ValidationProfile

    profile = None
    if args.relaxed:
        profile = ValidationProfile(RELAXED.turns, RELAXED.min_images, RELAXED.max_images, args.name == "bench")
    kwargs = {"taxonomy": args.taxonomy, "profile": profile}
    from pathlib import Path

    from ..validation import is_hub_folder

    p = Path(args.path)
    if p.suffix == ".parquet" or is_hub_folder(p):
        report = validate_path(p, name=args.name, check_images=args.check_images, **kwargs)
    else:
        report = validate_path(p, format=args.input_format, name=args.name or "310k", image_root=args.image_root,
                               **kwargs)
    if args.report_format == "json":
        print(report.to_json(indent=2))
    else:
        print(report.format_text())
    if not report.ok or (args.strict and report.issues):
        return 1
    return 0
