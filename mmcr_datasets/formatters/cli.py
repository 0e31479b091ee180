"""``mmcr format PATH --template NAME [--index I]``: show one dialogue as a model family sees it,
with the spans training learns marked.

Wire it as a sub-command with :func:`register` (the ``register(subparsers)`` hook of
``mmcr_datasets/commands/``), or use :func:`add_arguments` + :func:`run`, or call
:func:`main_format` directly (``main_format(["data.json", "--template", "qwen2_vl"])``). Exit codes follow the CLI:
0 printed, 1 the dialogue cannot be formatted for that family, 2 usage (unknown template, missing
file, index out of range).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from . import FormatterError, format_dialogue, get_formatter, list_formatters

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="raw file/folder (Ovis/LLaVA, MMDU, ShareGPT, messages JSON/JSONL), parquet file "
                                "or Hub-layout folder")
    p.add_argument("--template", "-t", required=True, metavar="NAME",
                   help="formatter name: " + ", ".join(list_formatters()))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", "-i", type=int, default=0, help="0-based position of the dialogue (default 0)")
    which.add_argument("--id", dest="record_id", help="the dialogue with this id")
    p.add_argument("--add-generation-prompt", action="store_true", help="append the assistant prompt")
    p.add_argument("--system", help="system prompt (replaces the dialogue's own)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="formatter option, e.g. add_vision_id=true or variant=llama3 (repeatable)")
    p.add_argument("--literal-tokens", choices=["raise", "keep", "escape"], default="raise",
                   help="control tokens found inside text: refuse (default), keep verbatim, or escape")
    p.add_argument("--marks", default="[[,]]", metavar="OPEN,CLOSE",
                   help="markers around learned spans in text output (default '[[,]]')")
    p.add_argument("--format", dest="output_format", choices=["text", "json"], default="text",
                   help="text: the prompt with learned spans marked; json: text, spans and image order")


def _parse_value(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _rows(path: Path, format_name: Optional[str] = None) -> Iterator[dict]:
    """Dataset rows from a parquet file / Hub folder, or from raw records via the readers."""
    if path.suffix == ".parquet" or (path.is_dir() and (path / "README.md").is_file()):
        from ..hub import iter_rows

        yield from iter_rows(path)
        return
    from ..readers import read_raw
    from ..records import Dialogue

    for item in read_raw(path, format_name):
        if item.record is None:
            raise FormatterError(f"{item.source}: the record cannot be read: {item.problems}")
        yield Dialogue.from_json(item.record).to_row()


def _image_name(img: Any) -> str:
    if isinstance(img, dict):
        return img.get("path") or f"<{len(img.get('bytes') or b'')} bytes>"
    return str(getattr(img, "path", None) or type(img).__name__)


def run(args: argparse.Namespace) -> int:
    try:
        formatter = get_formatter(args.template)
    except FormatterError as exc:
        print(f"mmcr format: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.path)
    if not path.exists():
        print(f"mmcr format: {path} does not exist", file=sys.stderr)
        return EXIT_USAGE
    options = {}
    for opt in args.option:
        key, sep, value = opt.partition("=")
        if not sep:
            print(f"mmcr format: --option expects KEY=VALUE, got {opt!r}", file=sys.stderr)
            return EXIT_USAGE
        options[key.strip().replace("-", "_")] = _parse_value(value.strip())
    row = None
    for i, candidate in enumerate(_rows(path)):
        if (args.record_id is not None and candidate.get("id") == args.record_id) or \
                (args.record_id is None and i == args.index):
            row = candidate
            break
    if row is None:
        what = f"id {args.record_id!r}" if args.record_id is not None else f"index {args.index}"
        print(f"mmcr format: no dialogue with {what} in {path}", file=sys.stderr)
        return EXIT_USAGE
    try:
        out = format_dialogue(row, formatter.name, add_generation_prompt=args.add_generation_prompt,
                              system=args.system, literal_tokens=args.literal_tokens, **options)
    except FormatterError as exc:
        print(f"mmcr format: {exc}", file=sys.stderr)
        bad_option = str(exc).startswith(f"formatter {formatter.name!r} has no option")
        return EXIT_USAGE if bad_option else EXIT_DATA
    if args.output_format == "json":
        print(json.dumps({"id": row.get("id"), "formatter": formatter.name, "text": out.text,
                          "assistant_spans": out.assistant_spans, "learned": out.learned_texts(),
                          "image_indices": out.image_indices, "images": [_image_name(i) for i in out.images]},
                         ensure_ascii=False, indent=1))
        return EXIT_OK
    open_mark, _, close_mark = args.marks.partition(",")
    print(f"# {row.get('id')} as {formatter.name} ({formatter.source})")
    print(f"# images in placeholder order: {[_image_name(i) for i in out.images]}")
    print(f"# learned spans ({len(out.assistant_spans)}) are marked {open_mark} ... {close_mark or open_mark}")
    print(out.marked(open_mark, close_mark or open_mark))
    return EXIT_OK


def register(sub) -> None:
    """Add ``format`` to an argparse sub-parser collection; the parser's ``func(args)`` returns the exit code."""
    p = sub.add_parser("format", help="show a dialogue formatted for a model family, learned spans marked",
                       description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)


def main_format(argv: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry point of ``mmcr format``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="mmcr format", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return run(args)
    except FormatterError as exc:
        print(f"mmcr format: {exc}", file=sys.stderr)
        return EXIT_DATA


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_format())
