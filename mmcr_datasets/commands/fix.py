"""``mmcr fix``: apply named, safe repairs to raw records and write a change log.

Validation never repairs anything; this command does, only the repairs you name, and logs each
change. Records it cannot parse are not written and are listed (exit status 1), never dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._common import add_input_format, require_path


def register(sub) -> None:
    from ..validation.fixes import ALL_FIXES

    p = sub.add_parser("fix", help="apply safe, explicit repairs to raw records, with a change log")
    p.add_argument("input", help="raw file")
    add_input_format(p)
    p.add_argument("--fix", required=True, help=f"comma-separated repairs, in order: {', '.join(ALL_FIXES)}")
    p.add_argument("--out", required=True, help="output file (same format as the input unless --to)")
    p.add_argument("--to", choices=["llava", "mmdu", "sharegpt", "messages"], default=None)
    p.add_argument("--log", help="change log as JSON Lines (default: OUT.changes.jsonl)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..readers import read_raw
    from ..records import Dialogue
    from ..validation.fixes import apply_fixes
    from ..writers import write_raw

    require_path(args.input)
    names = [n.strip() for n in args.fix.split(",") if n.strip()]
    out = Path(args.out)
    log_path = Path(args.log) if args.log else out.with_name(out.name + ".changes.jsonl")
    changes, unreadable = [], []

    def fixed_records():
        for item in read_raw(args.input, args.input_format):
            if item.record is None:
                unreadable.append({"source": item.source, "problems": item.problems})
                continue
            record, log = apply_fixes(item.record, names)
            changes.extend({"source": item.source, **c.__dict__} for c in log)
            try:
                yield Dialogue.from_json(record)
            except (KeyError, TypeError, ValueError) as exc:
                unreadable.append({"source": item.source, "problems": [["MMCR001", "", f"{type(exc).__name__}: {exc}"]]})

    # the input format is known once the first record is read; peek it for the writer
    first = next(iter(read_raw(args.input, args.input_format)), None)
    target = args.to or (first.fmt.name if first else "messages")
    n = write_raw(fixed_records(), out, target)
    tmp = log_path.with_name(f".{log_path.name}.partial")
    tmp.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in changes), encoding="utf-8")
    tmp.replace(log_path)
    print(f"wrote {n} record(s) to {out} ({target}); {len(changes)} change(s) logged to {log_path}")
    for entry in unreadable:
        print(f"not written: {entry['source']}: {entry['problems']}")
    return 1 if unreadable else 0
