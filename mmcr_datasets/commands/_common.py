"""Arguments shared by several commands."""

from __future__ import annotations


def add_taxonomy(p) -> None:
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy JSON to use instead of the packaged one")


def add_input_format(p, flag: str = "--format") -> None:
    p.add_argument(flag, dest="input_format", choices=["llava", "mmdu", "sharegpt", "messages"], default=None,
                   help="raw format of the input (detected from the first record when omitted)")


def add_report_format(p) -> None:
    p.add_argument("--format", dest="report_format", choices=["text", "json"], default="text",
                   help="report format (default: text)")


def require_path(path) -> None:
    """A missing input is a usage error (exit 2), not a data problem."""
    from pathlib import Path

    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist")
