"""The package's error hierarchy. Every error raised on purpose derives from :class:`MMCRError`."""

from __future__ import annotations


class MMCRError(Exception):
    """Base class of every error this package raises on purpose."""


class SchemaError(MMCRError):
    """A schema, taxonomy or features definition is inconsistent or cannot be read."""


class TaxonomyError(SchemaError):
    """A taxonomy file is malformed, or a label is not in the taxonomy."""


class ReaderError(MMCRError):
    """A raw file cannot be read at all (not a per-record problem)."""


class InvalidRecordError(MMCRError):
    """Raised under ``on_invalid="raise"``: carries the issues of the first invalid record.

    The message names the record id, the JSON pointer of each problem, the file and line.
    """

    def __init__(self, issues):
        self.issues = list(issues)
        self._init_message()

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.issues,))

    def _init_message(self):
        lines = [issue.format() for issue in self.issues]
        head = self.issues[0] if self.issues else None
        where = f"record {head.record_id!r}" if head and head.record_id else "a record"
        if head is not None and head.source:
            where += f" ({head.source})"
        Exception.__init__(
            self,
            f"{where} is invalid ({len(lines)} issue(s)):\n  " + "\n  ".join(lines)
            + "\nUse on_invalid='skip' (CLI: --on-invalid skip --rejects FILE) to keep every valid "
            "record and write the invalid ones to a rejects file."
        )


class ExportError(MMCRError):
    """A Hub-layout export could not be written."""


class MissingExtraError(MMCRError, ImportError):
    """An optional feature was used without its extra installed."""

    def __init__(self, feature: str, extra: str, module: str):
        self.feature, self.extra, self.module = feature, extra, module
        super().__init__(
            f"{feature} needs the optional dependency {module!r}, which is not installed. "
            f"Install it with: pip install 'mmcr-datasets[{extra}]'"
        )


def require(module: str, *, feature: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the ``pip install`` line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised in tests by hiding modules
        raise MissingExtraError(feature, extra, module) from exc
