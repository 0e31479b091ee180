"""The ``mmcr`` command line. Thin: every command calls the public API.

Each command lives in ``mmcr_datasets/commands/<name>.py`` and exposes
``register(subparsers)``; the parser it adds sets ``func(args) -> int``. Exit codes: 0 clean,
1 data problems, 2 usage, 3 missing extra.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import MissingExtraError, MMCRError

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_EXTRA = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmcr", description="MMCR datasets on the Hugging Face stack.")
    parser.add_argument("--version", action="version", version=f"mmcr-datasets {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.quiet:
        import os

        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    try:
        return int(args.func(args) or 0)
    except MissingExtraError as exc:
        print(f"mmcr: {exc}", file=sys.stderr)
        return EXIT_EXTRA
    except MMCRError as exc:
        print(f"mmcr {args.command}: {exc}", file=sys.stderr)
        return EXIT_DATA
    except (FileNotFoundError, ValueError) as exc:
        print(f"mmcr {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
