"""Readers: every supported raw format becomes a stream of :class:`RawItem` (canonical records).

>>> for item in read_raw("train.json", format="llava"):
...     item.record, item.source, item.problems
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from ..errors import ReaderError
from .formats import FORMATS, RawFormat, detect_format, get_format, join_placeholders, split_placeholders
from .jsonstream import JsonItem, iter_json_items

__all__ = [
    "RawItem", "read_raw", "list_input_files", "detect_file_format", "FORMATS", "get_format",
    "split_placeholders", "join_placeholders", "iter_json_items",
]

RAW_SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass
class RawItem:
    """One record as read: canonical form (or None when it could not be converted) and provenance."""

    record: Optional[dict]
    raw: object
    source: str
    fmt: RawFormat
    problems: list = field(default_factory=list)  # (code, raw pointer, message) from reading/conversion
    position: int = 0  # 0-based position of the record in the whole input

    @property
    def record_id(self) -> Optional[str]:
        if self.record is not None and isinstance(self.record.get("id"), str):
            return self.record["id"]
        if isinstance(self.raw, dict) and isinstance(self.raw.get("id"), str):
            return self.raw["id"]
        return None

    def pointer_map(self) -> Callable[[str], str]:
        return self.fmt.pointer_map_factory(self.raw)


def list_input_files(path: Union[str, Path]) -> list[Path]:
    """A raw file, or every ``*.json``/``*.jsonl`` file under a folder (sorted, so builds are deterministic)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RAW_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise ReaderError(f"no .json or .jsonl files under {path}")
        return files
    raise ReaderError(f"input {path} does not exist")


def detect_file_format(path: Union[str, Path]) -> str:
    for item in iter_json_items(path):
        if item.error is None:
            fmt = detect_format(item.value)
            if fmt:
                return fmt
        break
    raise ReaderError(
        f"cannot tell the format of {path}; pass --format (one of {sorted(FORMATS)})"
    )


def read_raw(
    paths: Union[str, Path, Iterable[Union[str, Path]]],
    format: Optional[str] = None,
    *,
    select: Optional[Callable[[int], bool]] = None,
) -> Iterator[RawItem]:
    """Read records from one or more raw files in order. ``select(position)`` skips records cheaply."""
    if isinstance(paths, (str, Path)):
        files = list_input_files(paths)
    else:
        files = [Path(p) for p in paths]
    position = 0
    for file in files:
        fmt = get_format(format) if format else get_format(detect_file_format(file))
        for item in iter_json_items(file, jsonl=True if file.suffix.lower() in (".jsonl", ".ndjson") else None):
            pos = position
            position += 1
            if select is not None and not select(pos):
                continue
            source = f"{file}:{item.line}"
            if item.error is not None:
                yield RawItem(None, item.raw_text, source, fmt, [("MMCR050", "", item.error)], pos)
                continue
            fallback = item.key
            record, problems = fmt.to_canonical(item.value, fallback)
            yield RawItem(record, item.value, source, fmt, list(problems), pos)

