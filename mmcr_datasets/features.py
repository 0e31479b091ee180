"""The Arrow view of the contract: ``datasets.Features`` for MMCR-310k and MMCR-Bench.

Both sets share one column layout (see ``DATA_MODEL.md``); they differ in what validation
requires (bench rows always carry a domain and a sub-topic). The label names come from the
taxonomy, so a user taxonomy yields its own ClassLabel names.
"""

from __future__ import annotations

import json

from .records import DIALOGUE_TYPES
from .taxonomy import TaxonomyLike, load_taxonomy

SCHEMA_VERSION = "1.0"
#: Key of this package's entry in the parquet schema metadata (beside ``huggingface``).
METADATA_KEY = b"mmcr"

COLUMNS = (
    "id",
    "dialogue_type",
    "domain",
    "subtopic",
    "images",
    "messages",
    "num_images",
    "num_turns",
    "source",
    "clip_scores",
)


def mmcr_features(taxonomy: TaxonomyLike = None):
    """``datasets.Features`` of an MMCR dialogue row (identical for 310k and bench)."""
    from datasets import ClassLabel, Features, Image, List, Value

    tax = load_taxonomy(taxonomy)
    part = {"type": Value("string"), "text": Value("string"), "index": Value("int32")}
    return Features(
        {
            "id": Value("string"),
            "dialogue_type": ClassLabel(names=list(DIALOGUE_TYPES)),
            "domain": ClassLabel(names=tax.domain_names),
            "subtopic": ClassLabel(names=tax.subtopic_names),
            "images": List(Image()),
            "messages": List({"role": Value("string"), "content": List(part)}),
            "num_images": Value("int32"),
            "num_turns": Value("int32"),
            "source": Value("string"),
            "clip_scores": List(Value("float32")),
        }
    )


def features_310k(taxonomy: TaxonomyLike = None):
    return mmcr_features(taxonomy)


def features_bench(taxonomy: TaxonomyLike = None):
    return mmcr_features(taxonomy)


def arrow_schema(taxonomy: TaxonomyLike = None, *, name: str = "310k"):
    """The pyarrow schema with the HF features and this package's metadata attached."""
    tax = load_taxonomy(taxonomy)
    features = mmcr_features(tax)
    schema = features.arrow_schema
    meta = dict(schema.metadata or {})
    meta[b"huggingface"] = json.dumps({"info": {"features": features.to_dict()}}).encode()
    meta[METADATA_KEY] = json.dumps(mmcr_metadata(tax, name)).encode()
    return schema.with_metadata(meta)


def mmcr_metadata(taxonomy, name: str) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": f"mmcr/{name}",
        "taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "fingerprint": taxonomy.fingerprint},
    }


def read_mmcr_metadata(parquet_schema) -> dict | None:
    meta = parquet_schema.metadata or {}
    raw = meta.get(METADATA_KEY)
    return json.loads(raw) if raw else None
