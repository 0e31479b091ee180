"""Issues, the registry of validation codes, and the report that collects them.

Every check has a stable code ``MMCR`` + three digits. Codes are never reused or renumbered;
``schema/README.md`` lists them all (a test keeps that list and this registry equal).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class CheckInfo:
    code: str
    severity: str
    title: str
    hint: str
    level: str  # "record", "reader" or "dataset"


CODES: dict[str, CheckInfo] = {}


def register_code(code: str, severity: str, title: str, hint: str, level: str = "record") -> CheckInfo:
    if code in CODES:
        raise ValueError(f"validation code {code} registered twice")
    info = CheckInfo(code, severity, title, hint, level)
    CODES[code] = info
    return info


@dataclass(frozen=True)
class Issue:
    """One problem found in one record (or in a file or folder when ``record_id`` is None)."""

    code: str
    severity: str
    record_id: Optional[str]
    pointer: str
    source: Optional[str]
    message: str
    hint: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        where = self.source or "?"
        rid = f" record {self.record_id!r}" if self.record_id is not None else ""
        ptr = f" at {self.pointer}" if self.pointer else ""
        text = f"{where}:{rid}{ptr}: {self.code} {self.severity}: {self.message}"
        return text + (f" (fix: {self.hint})" if self.hint else "")


def make_issue(code: str, message: str, *, record_id=None, pointer: str = "", source=None, hint=None) -> Issue:
    info = CODES[code]
    return Issue(code, info.severity, record_id, pointer, source, message, info.hint if hint is None else hint)


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(i.severity == ERROR for i in issues)


@dataclass
class ValidationReport:
    """Every issue found, plus how many records were looked at."""

    num_records: int = 0
    issues: list[Issue] = field(default_factory=list)
    path: Optional[str] = None

    @property
    def ok(self) -> bool:
        return not has_errors(self.issues)

    @property
    def num_errors(self) -> int:
        return sum(i.severity == ERROR for i in self.issues)

    @property
    def num_warnings(self) -> int:
        return sum(i.severity == WARNING for i in self.issues)

    def codes(self) -> Counter:
        return Counter(i.code for i in self.issues)

    def extend(self, issues: Iterable[Issue]) -> None:
        self.issues.extend(issues)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "path": self.path,
            "num_records": self.num_records,
            "num_errors": self.num_errors,
            "num_warnings": self.num_warnings,
            "codes": dict(sorted(self.codes().items())),
            "issues": [i.to_dict() for i in self.issues],
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    def format_text(self, max_issues: int = 200) -> str:
        lines = [i.format() for i in self.issues[:max_issues]]
        if len(self.issues) > max_issues:
            lines.append(f"... and {len(self.issues) - max_issues} more (use --format json for all)")
        status = "OK" if self.ok else "INVALID"
        lines.append(
            f"{status}: {self.num_records} record(s), {self.num_errors} error(s), {self.num_warnings} warning(s)"
            + (f" in {self.path}" if self.path else "")
        )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The registry. Keep codes stable; add new ones at the end of their block.
# ---------------------------------------------------------------------------------------------
_R = register_code
# structure
_R("MMCR001", ERROR, "record does not match the schema",
   "make the record match schema/record.schema.json (or the raw format's documented layout)")
_R("MMCR002", ERROR, "missing or empty id", "give every record a non-empty string id, unique in the dataset")
_R("MMCR003", ERROR, "duplicate id", "ids must be unique: rename or drop the later record")
# roles and turns
_R("MMCR010", ERROR, "unknown role", "use user/assistant (human/gpt in LLaVA JSON) and an optional leading system")
_R("MMCR011", ERROR, "system message not first", "move the system message to the start or drop it")
_R("MMCR012", ERROR, "roles do not alternate", "each user message must be followed by exactly one assistant message")
_R("MMCR013", ERROR, "dialogue does not start with a user message", "start with the user's question (after an optional system message)")
_R("MMCR014", ERROR, "dialogue does not end with an assistant message", "add the missing answer or drop the trailing question")
_R("MMCR015", ERROR, "number of turns not allowed", "MMCR dialogues have 4 or 8 turns; pass a relaxed profile for other data")
_R("MMCR016", ERROR, "number of images not allowed", "MMCR dialogues have 1 to 4 images; pass a relaxed profile for other data")
_R("MMCR017", ERROR, "dialogue_type disagrees with the images", "single_image means exactly one image; fix dialogue_type or drop it to derive it")
_R("MMCR018", ERROR, "image outside a user message", "images may appear only in user messages")
# image references
_R("MMCR020", ERROR, "image references and images differ in number", "every image needs exactly one placeholder / image part and vice versa")
_R("MMCR021", ERROR, "image index out of range", "an image part's index must point into the record's images")
_R("MMCR022", ERROR, "image referenced more than once", "reference each image exactly once; repeat the image file if it is really shown twice")
_R("MMCR023", ERROR, "images not in order of first reference", "reorder images so index k is the k-th image referenced (mmcr_datasets.validation.fixes.fix_image_order)")
# text
_R("MMCR030", ERROR, "empty text", "remove the empty part or write the missing text")
_R("MMCR031", ERROR, "text is not valid UTF-8", "re-encode the source file as UTF-8")
_R("MMCR032", WARNING, "placeholder token written as literal text", "a literal <image>/<ImageHere> in text cannot be told from a placeholder when exported; rephrase it")
# labels and derived fields
_R("MMCR040", ERROR, "domain not in the taxonomy", "use a domain of the taxonomy file, or pass --taxonomy FILE with your labels")
_R("MMCR041", ERROR, "sub-topic not in the taxonomy", "use a sub-topic of the taxonomy file, or pass --taxonomy FILE with your labels")
_R("MMCR042", ERROR, "sub-topic belongs to another domain", "fix the domain or the sub-topic so that they match the taxonomy")
_R("MMCR043", ERROR, "benchmark record without domain or sub-topic", "MMCR-Bench records must carry both labels")
_R("MMCR044", ERROR, "stored derived field disagrees with the data", "drop num_images/num_turns or correct them (mmcr_datasets.validation.fixes.fix_derived_fields)")
_R("MMCR045", ERROR, "clip_scores length differs from the number of images", "give one score per image, or none")
# reader level
_R("MMCR050", ERROR, "unreadable JSON", "fix the JSON syntax at the reported line and column", level="reader")
_R("MMCR051", ERROR, "image file missing", "check --image-root and the path in the record", level="reader")
_R("MMCR052", ERROR, "image cannot be decoded", "replace the file with a valid JPEG/PNG/WebP/GIF image", level="reader")
_R("MMCR053", ERROR, "image file is truncated", "the file ends before its end marker; re-download or re-encode it", level="reader")
_R("MMCR054", ERROR, "image exceeds the pixel limit (decompression bomb)", "downscale the image or raise max_pixels if it is trusted", level="reader")
_R("MMCR055", ERROR, "image path escapes the image root", "paths must stay inside --image-root; remove '..' components", level="reader")
_R("MMCR056", ERROR, "absolute image path", "write paths relative to --image-root", level="reader")
_R("MMCR057", ERROR, "image path goes through a symbolic link", "copy the file into the image root instead of linking it", level="reader")
_R("MMCR058", ERROR, "image smaller than the minimum size", "drop the image or lower min_side", level="reader")
# dataset level (Hub-layout folders)
_R("MMCR060", ERROR, "Hub folder has no usable dataset card", "re-export the folder with `mmcr export` / `mmcr build`", level="dataset")
_R("MMCR061", ERROR, "parquet schema differs from the MMCR features", "re-export with this version of mmcr-datasets", level="dataset")
_R("MMCR062", WARNING, "parquet written with another schema version", "re-export with this version of mmcr-datasets", level="dataset")
_R("MMCR063", ERROR, "parquet file unreadable", "the shard is corrupt or incomplete; re-export the folder", level="dataset")
