"""Dataset cards for ``mmcr/310k`` and ``mmcr/bench``: Hub YAML metadata plus a readable body.

The YAML carries ``configs:`` (so ``load_dataset`` finds the parquet shards without a script),
``dataset_info:`` (features and split sizes), license, task categories, languages, size category
and pretty name. The body comes from ``dataset_card/<template>.md``, where ``{{ key }}`` is
replaced by a value computed here: statistics tables (from :mod:`mmcr_datasets.stats`), optional
plots, the taxonomy, one example row, and for a balanced subset the report of how it was drawn.

:func:`validate_card` checks a written card the way the Hub and ``datasets`` read it, offline.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq

from .features import SCHEMA_VERSION, mmcr_features
from .resources import card_template_path
from .taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

PRETTY = {"310k": "MMCR-310k", "bench": "MMCR-Bench"}
TEMPLATES = {"310k": "mmcr_310k.md", "bench": "mmcr_bench.md"}
SPLITS = {"310k": "train", "bench": "test"}
PLOTS_DIR = "plots"
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
TASK_CATEGORIES = ("image-text-to-text", "visual-question-answering")
CITATION = """@article{yan2025mmcr,
  title   = {MMCR: Advancing Visual Language Model in Multimodal Multi-Turn Contextual Reasoning},
  author  = {Yan, Dawei and others},
  journal = {arXiv preprint arXiv:2503.18533},
  year    = {2025}
}"""


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    limit = 1_000
    for label in SIZE_CATEGORIES[:-1]:
        if n < limit:
            return label
        limit *= 10
    return SIZE_CATEGORIES[-1]


def config_specs(name: str, folders: list[str]) -> list[dict]:
    """The ``configs:`` entries: 310k has ``all`` (default) plus one per dialogue-type folder."""
    split = SPLITS[name]
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
            rows += pq.ParquetFile(p).metadata.num_rows
            nbytes += Path(p).stat().st_size
        out[folder] = (rows, nbytes)
    return out


def card_metadata(name: str, files: dict, taxonomy: Taxonomy, *, license: str = "cc-by-4.0",
                  language: Optional[list] = None, pretty_name: Optional[str] = None) -> dict:
    """The YAML front matter as a dict (plus a private ``_counts`` entry the body uses)."""
    counts = _folder_counts(files)
    folders = sorted(files)
    features_yaml = mmcr_features(taxonomy)._to_yaml_list()
    split = SPLITS[name]
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
        "pretty_name": pretty_name or PRETTY[name],
        "license": license,
        "language": language or ["en"],
        "task_categories": list(TASK_CATEGORIES),
        "tags": ["multimodal", "multi-turn", "multi-image", "dialogue", "contextual-reasoning", "mmcr",
                 "arxiv:2503.18533"],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "multilinguality": ["monolingual"],
        "size_categories": [size_category(total_rows)],
        "configs": config_specs(name, folders),
        "dataset_info": infos,
        "mmcr_schema_version": SCHEMA_VERSION,
        "mmcr_taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "fingerprint": taxonomy.fingerprint},
    } | {"_counts": {"rows": total_rows, "bytes": total_bytes, "folders": {f: counts[f][0] for f in folders}}}


def _taxonomy_table(taxonomy: Taxonomy) -> str:
    lines = ["| domain | source | sub-topics |", "|---|---|---|"]
    for d in taxonomy.domains:
        src = "project (provisional)" if d.provisional else "paper"
        lines.append(f"| {d.name} | {src} | {', '.join(s.name for s in d.subtopics)} |")
    return "\n".join(lines)


def _example(files: dict, taxonomy: Taxonomy) -> dict:
    """The first row of the first shard, images elided, labels as names, text cut short."""
    for paths in files.values():
        for p in paths:
            t = pq.read_table(p, columns=["id", "dialogue_type", "domain", "subtopic", "messages", "num_images",
                                          "num_turns", "source", "clip_scores"]).slice(0, 1).to_pylist()
            if not t:
                continue
            row = t[0]
            for col, names in (("dialogue_type", ["single_image", "multi_image"]),
                               ("domain", taxonomy.domain_names), ("subtopic", taxonomy.subtopic_names)):
                v = row[col]
                row[col] = names[v] if isinstance(v, int) and 0 <= v < len(names) else None
            row["images"] = [f"<image {i}: embedded bytes>" for i in range(row["num_images"])]
            msgs = row["messages"][:4]
            for m in msgs:
                for part in m["content"]:
                    if part.get("text") and len(part["text"]) > 160:
                        part["text"] = part["text"][:157] + "..."
            row["messages"] = msgs
            order = ["id", "dialogue_type", "domain", "subtopic", "images", "messages", "num_images", "num_turns",
                     "source", "clip_scores"]
            return {k: row[k] for k in order}
    return {}


def _example_json(row: dict) -> str:
    """JSON of the example row, one line per message so the card stays short."""
    if not row:
        return "{}"
    dump = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    lines = ["{"]
    items = list(row.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key == "messages" and value:
            lines.append('  "messages": [')
            lines += [f"    {dump(m)}" + ("," if j < len(value) - 1 else "") for j, m in enumerate(value)]
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {dump(key)}: {dump(value)}{comma}")
    lines.append("}")
    return "\n".join(lines)


def _stats_for(files: dict, options: dict):
    from .stats import DatasetStats, compute_stats

    given = options.get("stats")
    if isinstance(given, DatasetStats):
        return given
    if given is False:
        return None
    paths = [p for folder in sorted(files) for p in files[folder]]
    if not paths:
        return None
    return compute_stats(paths, images=options.get("image_stats", True), taxonomy=options.get("taxonomy"))


def render_card(name: str, files: dict, taxonomy=None, *, license: str = "cc-by-4.0",
                language: Optional[list] = None, extra: Optional[dict] = None, stats=None,
                image_stats: bool = True, plot_paths: Optional[dict] = None, subset_report=None,
                pretty_name: Optional[str] = None, **_ignored) -> str:
    """Return the README.md text (YAML front matter + body) for a Hub folder.

    ``files``: parquet paths per config folder. ``stats``: a precomputed
    :class:`~mmcr_datasets.stats.DatasetStats`, ``False`` for none, or ``None`` to compute it
    (``image_stats=False`` skips the image column). ``plot_paths``: plot name -> path relative
    to the card. ``subset_report``: a :class:`~mmcr_datasets.sampling.SubsetReport` to show.
    """
    import yaml

    _PlainDumper = _plain_dumper()
    if _ignored:
        logger.debug("render_card: ignoring options %s", sorted(_ignored))
    tax = load_taxonomy(taxonomy)
    if subset_report is not None and pretty_name is None:
        pretty_name = f"{PRETTY[name]} (balanced subset, {subset_report.n} dialogues)"
    meta = card_metadata(name, files, tax, license=license, language=language, pretty_name=pretty_name)
    counts = meta.pop("_counts")
    front = yaml.dump(meta, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=1000)
    st = _stats_for(files, {"stats": stats, "image_stats": image_stats, "taxonomy": tax})
    if st is not None:
        stats_md = st.to_markdown(plots=plot_paths or {}, heading_level=3)
    else:
        stats_md = "_Statistics were not computed for this card; run `mmcr card FOLDER` to add them._\n"
    values = {
        "pretty_name": meta["pretty_name"],
        "repo_id": f"mmcr/{name}",
        "split": SPLITS[name],
        "num_rows": str(counts["rows"]),
        "schema_version": SCHEMA_VERSION,
        "stats": stats_md.rstrip(),
        "label_table": stats_md.rstrip(),  # older templates
        "taxonomy_table": _taxonomy_table(tax),
        "taxonomy_name": f"{tax.name} {tax.version}",
        "citation": CITATION,
        "license": license,
        "configs": ", ".join(f"`{c['config_name']}`" for c in meta["configs"]),
        "example": _example_json(_example(files, tax)),
        "subset": _subset_section(subset_report),
    }
    values.update(extra or {})
    body = card_template_path(TEMPLATES[name]).read_text(encoding="utf-8")
    body = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), body)
    body = re.sub(r"\n{3,}", "\n\n", body)
    return f"---\n{front}---\n\n{body}"


def _plain_dumper():
    import yaml

    class PlainDumper(yaml.SafeDumper):
        """Writes repeated values (the features of every config) in full: no ``&id001`` anchors."""

        def ignore_aliases(self, data):
            return True

    return PlainDumper


def _subset_section(report) -> str:
    if report is None:
        return ""
    return ("## How this subset was drawn\n\n"
            "This folder is a balanced subset cut with `mmcr sample` "
            "(`mmcr_datasets.sampling.stratified_subset`): rows are ranked inside each stratum by a seeded "
            "hash of their id and strata take turns by weight, so with the same seed a smaller subset is "
            "always contained in a larger one.\n\n" + report.to_markdown())


def write_card(folder, name: str, *, files: dict, taxonomy=None, **options) -> Path:
    """Render and write ``README.md`` into ``folder`` (atomically).

    Options are those of :func:`render_card`, plus ``plots=True`` to draw PNG plots into
    ``folder/plots/`` and embed them (needs the ``[plot]`` extra; skipped with a warning without it).
    """
    folder = Path(folder)
    want_plots = options.pop("plots", False)
    if want_plots:
        from .stats import DatasetStats

        st = options.get("stats")
        if not isinstance(st, DatasetStats):
            st = _stats_for(files, {"stats": st, "image_stats": options.get("image_stats", True),
                                    "taxonomy": taxonomy})
            options["stats"] = st if st is not None else False
        if st is not None:
            try:
                written = st.plot(folder / PLOTS_DIR)
            except ImportError as exc:
                logger.warning("no plots in the card: %s", exc)
            else:
                options["plot_paths"] = {k: Path(p).relative_to(folder).as_posix() for k, p in written.items()}
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


def rerender_card(folder, *, name: Optional[str] = None, taxonomy=None, **options) -> Path:
    """Rewrite the README.md of an existing Hub folder from its shards (``mmcr card``).

    License, languages and pretty name of the card already there are kept unless given.
    """
    from .hub import folder_name

    folder = Path(folder)
    files = hub_folder_files(folder)
    if not files:
        raise FileNotFoundError(f"no parquet shards under {folder} (expected <config>/<split>-*.parquet)")
    name = name or folder_name(folder)
    old = _read_front_matter(folder / "README.md")
    for key in ("license", "language", "pretty_name"):
        if options.get(key) is None and old.get(key):
            options[key] = old[key]
    if options.get("pretty_name") == PRETTY.get(name):
        options.pop("pretty_name")
    options = {k: v for k, v in options.items() if v is not None}
    return write_card(folder, name, files=files, taxonomy=taxonomy, **options)


def _read_front_matter(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    try:
        return yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return {}


def validate_card(folder) -> list[str]:
    """Problems with the card of a Hub folder, read as the Hub and ``datasets`` read it (offline).

    Checks: ``huggingface_hub.DatasetCard`` parses it and ``DatasetCardData`` carries license,
    languages, task categories, size category (matching the row count) and pretty name; the
    ``configs:`` parse with ``datasets``' own reader and every data-files pattern matches shards;
    ``dataset_info:`` parses, its features equal the shards' features and its split sizes equal
    the shards' row counts. Returns an empty list when the card is valid.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    folder = Path(folder)
    readme = folder / "README.md"
    problems: list[str] = []
    try:
        card = DatasetCard.load(readme)
    except Exception as exc:  # noqa: BLE001 - report whatever the parser says
        return [f"DatasetCard cannot load {readme}: {exc}"]
    data = card.data
    if not isinstance(data, DatasetCardData):
        return [f"{readme}: card data is {type(data).__name__}, not DatasetCardData"]
    meta = data.to_dict()
    for key in ("license", "language", "task_categories", "size_categories", "pretty_name", "configs",
                "dataset_info"):
        if not meta.get(key):
            problems.append(f"metadata has no {key}")
    for t in meta.get("task_categories") or []:
        if t not in TASK_CATEGORIES:
            problems.append(f"task category {t!r} is not one this project declares")
    files = hub_folder_files(folder)
    rows_by_folder = {f: sum(pq.ParquetFile(p).metadata.num_rows for p in paths) for f, paths in files.items()}
    total = sum(rows_by_folder.values())
    sizes = meta.get("size_categories") or []
    if sizes and sizes != [size_category(total)]:
        problems.append(f"size_categories {sizes} does not match {total} rows ({size_category(total)})")
    problems += _check_configs(folder, data, files)
    return problems


def _check_configs(folder: Path, data, files: dict) -> list[str]:
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs

    problems = []
    try:
        configs = MetadataConfigs.from_dataset_card_data(data)
    except Exception as exc:  # noqa: BLE001
        return [f"configs: does not parse with datasets: {exc}"]
    try:
        infos = DatasetInfosDict.from_dataset_card_data(data)
    except Exception as exc:  # noqa: BLE001
        return [f"dataset_info: does not parse with datasets: {exc}"]
    shard_features = None
    any_shard = next((p for paths in files.values() for p in paths), None)
    if any_shard is not None:
        shard_features = datasets.Features.from_arrow_schema(pq.read_schema(any_shard))
    for cfg_name, cfg in configs.items():
        rows_by_split: dict = {}
        data_files = cfg.get("data_files") or []
        if isinstance(data_files, (str, dict)):
            data_files = [data_files]
        for entry in data_files:
            split = entry.get("split", "train") if isinstance(entry, dict) else "train"
            patterns = entry.get("path") if isinstance(entry, dict) else entry
            patterns = [patterns] if isinstance(patterns, str) else list(patterns)
            for pattern in patterns:
                matched = sorted(folder.glob(pattern))
                if not matched:
                    problems.append(f"config {cfg_name!r}: pattern {pattern!r} matches no file")
                rows_by_split[split] = rows_by_split.get(split, 0) + sum(
                    pq.ParquetFile(p).metadata.num_rows for p in matched)
        info = infos.get(cfg_name)
        if info is None:
            problems.append(f"config {cfg_name!r} has no dataset_info entry")
            continue
        if shard_features is not None and info.features is not None and info.features != shard_features:
            problems.append(f"dataset_info of {cfg_name!r}: features differ from the parquet shards'")
        for split, rows in rows_by_split.items():
            declared = info.splits.get(split).num_examples if info.splits and split in info.splits else None
            if declared != rows:
                problems.append(f"dataset_info of {cfg_name!r}: split {split!r} declares {declared} rows, "
                                f"the shards hold {rows}")
    return problems
