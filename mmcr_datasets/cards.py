"""Dataset cards for ``mmcr/310k`` and ``mmcr/bench``: Hub YAML metadata plus a readable body.

The YAML carries ``configs:`` (so ``load_dataset`` finds the parquet shards without a script),
``dataset_info:`` (features and split sizes), license, task categories, languages, size category
and pretty name. The body comes from ``dataset_card/<name>.md`` templates, where ``{{ key }}``
is replaced by a value computed here.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq

from .features import SCHEMA_VERSION, mmcr_features
from .resources import card_template_path
from .taxonomy import Taxonomy, load_taxonomy

PRETTY = {"310k": "MMCR-310k", "bench": "MMCR-Bench"}
TEMPLATES = {"310k": "mmcr_310k.md", "bench": "mmcr_bench.md"}
CITATION = """@article{yan2025mmcr,
  title   = {MMCR: Advancing Visual Language Model in Multimodal Multi-Turn Contextual Reasoning},
  author  = {Yan, Dawei and others},
  journal = {arXiv preprint arXiv:2503.18533},
  year    = {2025}
}"""


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>1M"


def config_specs(name: str, folders: list[str]) -> list[dict]:
    """The ``configs:`` entries: 310k has ``all`` (default) plus one per dialogue-type folder."""
    split = "test" if name == "bench" else "train"
    if name == "bench":
        return [{"config_name": "default", "default": True,
                 "data_files": [{"split": split, "path": "data/test-*.parquet"}]}]
    specs = [{"config_name": "all", "default": True,
              "data_files": [{"split": split, "path": [f"{f}/{split}-*.parquet" for f in folders]}]}]
    specs += [{"config_name": f, "data_files": [{"split": split, "path": f"{f}/{split}-*.parquet"}]} for f in folders]
    return specs


def _folder_counts(files: dict) -> dict:
    out = {}
    for folder, paths in files.items():
        rows = 0
        nbytes = 0
        for p in paths:
            meta = pq.ParquetFile(p).metadata
            rows += meta.num_rows
            nbytes += Path(p).stat().st_size
        out[folder] = (rows, nbytes)
    return out


def card_metadata(name: str, files: dict, taxonomy: Taxonomy, *, license: str = "cc-by-4.0",
                  language: Optional[list] = None) -> dict:
    counts = _folder_counts(files)
    folders = sorted(files)
    features_yaml = mmcr_features(taxonomy)._to_yaml_list()
    split = "test" if name == "bench" else "train"
    total_rows = sum(r for r, _ in counts.values())
    total_bytes = sum(b for _, b in counts.values())
    infos = []
    for spec in config_specs(name, folders):
        cfg = spec["config_name"]
        members = folders if cfg in ("all", "default") else [cfg]
        rows = sum(counts[f][0] for f in members)
        nbytes = sum(counts[f][1] for f in members)
        infos.append({"config_name": cfg, "features": features_yaml,
                      "splits": [{"name": split, "num_bytes": nbytes, "num_examples": rows}],
                      "download_size": nbytes, "dataset_size": nbytes})
    return {
        "pretty_name": PRETTY[name],
        "license": license,
        "language": language or ["en"],
        "task_categories": ["image-text-to-text", "visual-question-answering"],
        "tags": ["multimodal", "multi-turn", "multi-image", "dialogue", "contextual-reasoning", "mmcr"],
        "size_categories": [size_category(total_rows)],
        "configs": config_specs(name, folders),
        "dataset_info": infos,
        "mmcr_schema_version": SCHEMA_VERSION,
        "mmcr_taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "fingerprint": taxonomy.fingerprint},
    } | {"_counts": {"rows": total_rows, "bytes": total_bytes, "folders": {f: counts[f][0] for f in folders}}}


def _label_table(files: dict, taxonomy: Taxonomy) -> str:
    domains: Counter = Counter()
    types: Counter = Counter()
    for paths in files.values():
        for p in paths:
            t = pq.read_table(p, columns=["domain", "dialogue_type"])
            domains.update(t.column("domain").to_pylist())
            types.update(t.column("dialogue_type").to_pylist())
    lines = ["| domain | dialogues |", "|---|---|"]
    for i, d in enumerate(taxonomy.domain_names):
        lines.append(f"| {d} | {domains.get(i, 0)} |")
    if domains.get(-1):
        lines.append(f"| (unlabelled) | {domains[-1]} |")
    lines += ["", "| dialogue type | dialogues |", "|---|---|",
              f"| single_image | {types.get(0, 0)} |", f"| multi_image | {types.get(1, 0)} |"]
    return "\n".join(lines)


def _taxonomy_table(taxonomy: Taxonomy) -> str:
    lines = ["| domain | source | sub-topics |", "|---|---|---|"]
    for d in taxonomy.domains:
        src = "project (provisional)" if d.provisional else "paper"
        lines.append(f"| {d.name} | {src} | {', '.join(s.name for s in d.subtopics)} |")
    return "\n".join(lines)


def render_card(name: str, files: dict, taxonomy=None, *, license: str = "cc-by-4.0",
                language: Optional[list] = None, extra: Optional[dict] = None) -> str:
    """Return the README.md text (YAML front matter + body) for a Hub folder."""
    import yaml

    tax = load_taxonomy(taxonomy)
    meta = card_metadata(name, files, tax, license=license, language=language)
    counts = meta.pop("_counts")
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    values = {
        "pretty_name": PRETTY[name],
        "repo_id": f"mmcr/{name}",
        "num_rows": str(counts["rows"]),
        "schema_version": SCHEMA_VERSION,
        "label_table": _label_table(files, tax),
        "taxonomy_table": _taxonomy_table(tax),
        "taxonomy_name": f"{tax.name} {tax.version}",
        "citation": CITATION,
        "license": license,
        "configs": ", ".join(f"`{c['config_name']}`" for c in meta["configs"]),
        "example": json.dumps(_example(files), ensure_ascii=False, indent=2),
    }
    values.update(extra or {})
    body = card_template_path(TEMPLATES[name]).read_text(encoding="utf-8")
    body = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), body)
    return f"---\n{front}---\n\n{body}"


def _example(files: dict) -> dict:
    for paths in files.values():
        for p in paths:
            t = pq.read_table(p, columns=["id", "dialogue_type", "domain", "subtopic", "messages", "num_images",
                                          "num_turns", "source"]).slice(0, 1).to_pylist()
            if t:
                row = t[0]
                row["images"] = ["<image bytes>"] * row["num_images"]
                row["messages"] = row["messages"][:2]
                return row
    return {}


def write_card(folder, name: str, *, files: dict, taxonomy=None, **options) -> Path:
    """Render and write ``README.md`` into ``folder`` (atomically)."""
    import os

    folder = Path(folder)
    text = render_card(name, files, taxonomy, **options)
    path = folder / "README.md"
    tmp = folder / ".README.md.partial"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def hub_folder_files(folder) -> dict:
    """The parquet shards of a Hub folder, per config folder."""
    folder = Path(folder)
    out: dict = {}
    for p in sorted(folder.glob("*/*.parquet")):
        out.setdefault(p.parent.name, []).append(p)
    return out
