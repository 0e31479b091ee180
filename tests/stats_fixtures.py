"""Fixtures and helpers shared by test_stats, test_cards and test_sampling.

Import the fixtures into a test module by name (``from stats_fixtures import built_sample``);
pytest then finds them there. The sample is built once per session with the real exporter.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "mmcr_datasets" / "sample"


@pytest.fixture(scope="session")
def built_sample(tmp_path_factory) -> Path:
    """The bundled sample built into DIR/mmcr/310k and DIR/mmcr/bench (read-only for tests)."""
    from mmcr_datasets.export import build_hub_folder

    out = tmp_path_factory.mktemp("stats_sample")
    build_hub_folder(SAMPLE / "310k" / "train.json", out / "mmcr" / "310k", name="310k", format="llava",
                     image_root=SAMPLE / "images", card_options={"image_stats": True})
    build_hub_folder(SAMPLE / "bench" / "test.json", out / "mmcr" / "bench", name="bench", format="llava",
                     image_root=SAMPLE / "images", card_options={"image_stats": True})
    return out


@pytest.fixture
def sample_copy(built_sample, tmp_path) -> Path:
    """A writable copy of the built sample (DIR/mmcr/310k, DIR/mmcr/bench)."""
    dst = tmp_path / "copy"
    shutil.copytree(built_sample, dst)
    return dst


def raw_sample(name: str) -> list[dict]:
    path = SAMPLE / ("310k/train.json" if name == "310k" else "bench/test.json")
    return json.loads(path.read_text(encoding="utf-8"))


def raw_images(rec: dict) -> list[str]:
    img = rec.get("image")
    if img is None:
        return []
    return [img] if isinstance(img, str) else list(img)


def words(text: str) -> int:
    return len(text.replace("<image>", " ").split())


def raw_image_first_turns(rec: dict) -> list[int]:
    """1-based turn of each ``<image>`` placeholder, in order, read from the raw conversation."""
    turns = []
    turn = 0
    for msg in rec["conversations"]:
        if msg["from"] == "human":
            turn += 1
            turns += [turn] * len(re.findall(r"<image>", msg["value"]))
    return turns


def table_from_records(records: list[dict], images: dict, taxonomy=None) -> pa.Table:
    """An Arrow table in the MMCR schema from canonical records; ``images`` maps names to bytes."""
    from mmcr_datasets.features import arrow_schema
    from mmcr_datasets.records import DIALOGUE_TYPES, Dialogue
    from mmcr_datasets.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    rows = []
    for rec in records:
        d = Dialogue.from_json(rec, [images[p] for p in rec["images"]])
        row = d.to_row(tax)
        row["dialogue_type"] = DIALOGUE_TYPES.index(row["dialogue_type"])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=arrow_schema(tax))


def label_table(strata: dict, prefix: str = "r") -> pa.Table:
    """A table of just ``id``, ``domain``, ``dialogue_type``: ``strata`` maps (domain, type) to a row count."""
    ids, domains, types = [], [], []
    k = 0
    for (dom, typ), count in strata.items():
        for _ in range(count):
            ids.append(f"{prefix}{k:06d}")
            domains.append(dom)
            types.append(typ)
            k += 1
    return pa.table({"id": ids, "domain": domains, "dialogue_type": types})
