"""Incremental JSON reading: a JSON array, a JSON object keyed by id, or JSON Lines.

Memory stays bounded by the largest single record, not the file: a 310k-record JSON array is
parsed one element at a time. Text is decoded as UTF-8 with ``surrogateescape`` so that a stray
non-UTF-8 byte does not abort the file; the record that holds it is reported (MMCR031) by the
text checks instead. Every item carries the line where it starts.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

CHUNK = 1 << 20
#: Give up waiting for the end of a record after this much unparsed text: it is a syntax error.
MAX_RECORD_CHARS = 256 << 20
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass
class JsonItem:
    value: Any
    line: int
    key: Optional[str] = None  # for objects keyed by id
    error: Optional[str] = None  # set when the item could not be parsed (value is None)
    raw_text: Optional[str] = None  # the unparsable line (JSON Lines only)


class _Buffer:
    def __init__(self, fh):
        self.fh = fh
        self.dec = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1
        self._counted = 0

    def fill(self) -> bool:
        if self.eof:
            return False
        data = self.fh.read(CHUNK)
        if self.pos > CHUNK:  # drop consumed text so memory stays bounded
            self.line_at(self.pos)
            self.buf = self.buf[self.pos:]
            self._counted -= self.pos
            self.pos = 0
        if not data:
            self.eof = True
            self.buf += self.dec.decode(b"", final=True)
            return False
        self.buf += self.dec.decode(data)
        return True

    def line_at(self, pos: int) -> int:
        if pos > self._counted:
            self.line += self.buf.count("\n", self._counted, pos)
            self._counted = pos
        return self.line

    def skip_ws(self) -> None:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self.fill():
                return

    def peek(self) -> str:
        self.skip_ws()
        return self.buf[self.pos:self.pos + 1]

    def decode_value(self):
        self.skip_ws()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if not self.eof and len(self.buf) - self.pos < MAX_RECORD_CHARS:
                    self.fill()
                    continue
                line = self.line_at(self.pos) + self.buf.count("\n", self.pos, exc.pos)
                col = exc.pos - (self.buf.rfind("\n", 0, exc.pos) + 1) + 1
                raise _Syntax(f"{exc.msg} at line {line} column {col}", line) from None
            if end >= len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self.fill()
                continue
            self.pos = end
            return value

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            line = self.line_at(self.pos)
            found = repr(c) if c else "end of file"
            raise _Syntax(f"expected one of {' '.join(repr(x) for x in chars)} but found {found} at line {line}", line)
        self.pos += 1
        return c


class _Syntax(Exception):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def iter_json_items(path: str | Path, *, jsonl: Optional[bool] = None) -> Iterator[JsonItem]:
    """Yield the records of a JSON array, an object keyed by id, or a JSON Lines file.

    ``jsonl=None`` decides from the content: ``[`` starts an array; ``{`` whose first value is an
    object starts a keyed object; anything else is read as JSON Lines.
    """
    path = Path(path)
    if jsonl is None and path.suffix.lower() in (".jsonl", ".ndjson"):
        jsonl = True
    if not jsonl:
        with open(path, "rb") as fh:
            buf = _Buffer(fh)
            first = buf.peek()
            if first == "[":
                yield from _iter_array(buf)
                return
            if first == "{" and _keyed_object(path):
                yield from _iter_keyed(buf)
                return
            if jsonl is False and first not in ("{", ""):
                yield JsonItem(None, 1, error=f"the file starts with {first!r}; expected a JSON array or object")
                return
    yield from _iter_lines(path)


def _iter_array(buf: _Buffer) -> Iterator[JsonItem]:
    try:
        buf.expect("[")
        if buf.peek() == "]":
            buf.pos += 1
            return
        while True:
            buf.skip_ws()
            line = buf.line_at(buf.pos)
            yield JsonItem(buf.decode_value(), line)
            if buf.expect(",]") == "]":
                break
        if buf.peek():
            raise _Syntax(f"extra data after the closing ']' at line {buf.line_at(buf.pos)}", buf.line_at(buf.pos))
    except _Syntax as exc:
        yield JsonItem(None, exc.line, error=str(exc))


def _keyed_object(path: Path) -> bool:
    """True when the file is one object whose first value is an object (MMDU keyed layout)."""
    with open(path, "rb") as fh:
        buf = _Buffer(fh)
        try:
            buf.expect("{")
            if buf.peek() == "}":
                return True
            key = buf.decode_value()
            buf.expect(":")
            if not isinstance(key, str) or buf.peek() != "{":
                return False
            value = buf.decode_value()
            # A record's own keys (JSON Lines) vs an id mapping to a record.
            return isinstance(value, dict) and buf.peek() in (",", "}")
        except _Syntax:
            return False


def _iter_keyed(buf: _Buffer) -> Iterator[JsonItem]:
    try:
        buf.expect("{")
        if buf.peek() == "}":
            return
        while True:
            buf.skip_ws()
            line = buf.line_at(buf.pos)
            key = buf.decode_value()
            if not isinstance(key, str):
                raise _Syntax(f"expected a string key at line {line}", line)
            buf.expect(":")
            yield JsonItem(buf.decode_value(), line, key=key)
            if buf.expect(",}") == "}":
                break
    except _Syntax as exc:
        yield JsonItem(None, exc.line, error=str(exc))


def _iter_lines(path: Path) -> Iterator[JsonItem]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            text = raw.decode("utf-8", "surrogateescape")
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield JsonItem(None, lineno, error=f"{exc.msg} at line {lineno} column {exc.colno}",
                               raw_text=text.rstrip("\r\n"))
                continue
            yield JsonItem(value, lineno)
