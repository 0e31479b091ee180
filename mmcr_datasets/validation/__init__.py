"""Validation: find every problem, report it with a stable code, never stop at the first.

* :func:`validate_records` checks raw files in any supported format (images read from disk,
  header checks only).
* :func:`validate_hub_folder` checks a built Hub-layout folder column at a time.
* :func:`validate_path` picks one of them from what ``path`` is.

Repairs live in :mod:`.fixes`; they are never applied by validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .checks import RELAXED, CheckContext, ValidationProfile, check_record
from .issues import CODES, ERROR, WARNING, Issue, ValidationReport, make_issue

__all__ = [
    "CODES", "ERROR", "WARNING", "Issue", "ValidationReport", "ValidationProfile", "RELAXED", "CheckContext",
    "check_record", "validate_records", "validate_hub_folder", "validate_path", "is_hub_folder",
]


def validate_records(inputs, format: Optional[str] = None, *, name: str = "310k", image_root=None, taxonomy=None,
                     profile: Optional[ValidationProfile] = None, limits=None, check_images: bool = True
                     ) -> ValidationReport:
    """Check raw records (a file or a folder of files); images are read and header-checked."""
    from ..ingest import IngestOptions, iter_checked

    opts = IngestOptions.make(name=name, taxonomy=taxonomy, profile=profile, limits=limits, image_root=image_root,
                              load_images=check_images)
    report = ValidationReport(path=str(inputs))
    for checked in iter_checked(inputs, format, opts):
        report.num_records += 1
        report.extend(checked.issues)
    return report


def is_hub_folder(path) -> bool:
    path = Path(path)
    return path.is_dir() and any(path.glob("*/*.parquet"))


def validate_hub_folder(folder, *, taxonomy=None, name: Optional[str] = None,
                        profile: Optional[ValidationProfile] = None, check_images: bool = False,
                        limits=None) -> ValidationReport:
    """Check a Hub-layout folder (or one parquet file): card, schema, every row; images optional."""
    from ..features import arrow_schema, read_mmcr_metadata
    from ..taxonomy import load_taxonomy
    from .columnar import (check_images_column, check_shard_schema, check_table, duplicate_id_issues,
                           iter_shard_tables)
    import pyarrow.parquet as pq

    folder = Path(folder)
    shards = [folder] if folder.is_file() else sorted(folder.glob("*/*.parquet"))
    report = ValidationReport(path=str(folder))
    if not shards:
        report.extend([make_issue("MMCR060", f"no parquet shards under {folder}", source=str(folder))])
        return report
    if name is None:
        meta = _first_metadata(shards[0], read_mmcr_metadata)
        dataset = (meta or {}).get("dataset")
        if dataset in ("mmcr/310k", "mmcr/bench"):
            name = dataset.split("/")[1]
        else:
            name = "bench" if shards[0].parent.name == "data" else "310k"
    tax = load_taxonomy(taxonomy)
    prof = profile or ValidationProfile.for_dataset(name)
    if folder.is_dir():
        report.extend(_check_card(folder))
    expected = arrow_schema(tax, name=name)
    ids: list = []
    for shard in shards:
        rel = str(shard.relative_to(folder)) if folder.is_dir() else shard.name
        schema_issues = check_shard_schema(shard, expected)
        report.extend(schema_issues)
        if any(i.code in ("MMCR061", "MMCR063") for i in schema_issues):
            try:
                report.num_records += pq.ParquetFile(shard).metadata.num_rows
            except Exception:
                pass
            continue
        try:
            for table, offset in iter_shard_tables(shard):
                report.num_records += table.num_rows
                report.extend(check_table(table, tax, prof, shard=rel, row_offset=offset))
                ids.extend((rid, offset + r, rel) for r, rid in enumerate(table.column("id").to_pylist()))
            if check_images:
                pf = pq.ParquetFile(shard)
                offset = 0
                for g in range(pf.num_row_groups):
                    t = pf.read_row_group(g, columns=["id", "images"])
                    report.extend(check_images_column(t, shard=rel, limits=limits, row_offset=offset))
                    offset += t.num_rows
        except Exception as exc:  # a corrupt shard is an issue, not a crash
            report.extend([make_issue("MMCR063", f"reading failed: {type(exc).__name__}: {exc}", source=rel)])
    report.extend(duplicate_id_issues(ids))
    return report


def _first_metadata(shard, reader):
    import pyarrow.parquet as pq

    try:
        return reader(pq.read_schema(shard))
    except Exception:
        return None


def _check_card(folder: Path) -> list[Issue]:
    readme = folder / "README.md"
    if not readme.is_file():
        return [make_issue("MMCR060", "README.md is missing; load_dataset cannot find the configs",
                           source=str(readme))]
    try:
        import yaml

        text = readme.read_text(encoding="utf-8")
        if not text.startswith("---"):
            raise ValueError("no YAML front matter")
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except Exception as exc:
        return [make_issue("MMCR060", f"README.md has no readable YAML front matter: {exc}", source=str(readme))]
    if not meta.get("configs"):
        return [make_issue("MMCR060", "README.md YAML has no configs:", source=str(readme))]
    return []


def validate_path(path, *, format: Optional[str] = None, **kwargs) -> ValidationReport:
    """A Hub-layout folder or parquet file -> :func:`validate_hub_folder`; else raw records."""
    p = Path(path)
    if p.suffix == ".parquet" or is_hub_folder(p):
        keep = {k: v for k, v in kwargs.items() if k in ("taxonomy", "name", "profile", "check_images", "limits")}
        return validate_hub_folder(p, **keep)
    return validate_records(p, format, **kwargs)
