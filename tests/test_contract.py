"""The three views of the contract agree: JSON Schema, datasets.Features, record classes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest

from mmcr_datasets.features import COLUMNS, SCHEMA_VERSION, arrow_schema, mmcr_features, read_mmcr_metadata
from mmcr_datasets.records import DIALOGUE_TYPES, ROLES, Dialogue
from mmcr_datasets.resources import schema_path
from mmcr_datasets.taxonomy import Taxonomy, default_taxonomy, load_taxonomy
from mmcr_datasets.errors import TaxonomyError

from factories import canonical_record


def _schema(name):
    return json.loads(schema_path(name).read_text())


def test_columns_agree_across_views():
    schema = _schema("record.schema.json")
    features = mmcr_features()
    fields = {f.name for f in dataclasses.fields(Dialogue)} | {"num_images", "num_turns"}
    assert set(schema["properties"]) == set(features) == fields == set(COLUMNS)
    assert list(features) == list(COLUMNS)


def test_enums_and_parts_agree():
    schema = _schema("record.schema.json")
    features = mmcr_features()
    assert schema["properties"]["dialogue_type"]["enum"] == features["dialogue_type"].names == list(DIALOGUE_TYPES)
    assert schema["$defs"]["message"]["properties"]["role"]["enum"] == list(ROLES)
    part_keys = set()
    for alt in schema["$defs"]["part"]["oneOf"]:
        part_keys |= set(alt["properties"])
    content = features["messages"].feature["content"].feature
    assert part_keys == set(content) == {"type", "text", "index"}


def test_dialogue_json_validates_and_round_trips():
    rec = canonical_record(images=["a.jpg", "b.jpg"], turns=8, placements={0: 1, 3: 1}, domain="Science",
                           subtopic="Astronomy", source="test", clip_scores=[0.25, 0.5])
    d = Dialogue.from_json(rec)
    out = d.to_json()
    jsonschema.validate(out, _schema("record.schema.json"))
    assert Dialogue.from_json(out) == d
    assert d.num_turns == 8 and d.num_images == 2 and d.dialogue_type == "multi_image"
    tax = default_taxonomy()
    row = d.to_row(tax)
    assert mmcr_features().encode_example(dict(row, images=[{"bytes": b"x", "path": "a"}] * 2))
    assert Dialogue.from_row(row, tax) == d


def test_bench_schema_requires_labels():
    bench = _schema("bench_record.schema.json")
    resolver_store = {_schema("record.schema.json")["$id"]: _schema("record.schema.json")}
    registry = __import__("referencing").Registry().with_resources(
        [(k, __import__("referencing").Resource.from_contents(v)) for k, v in resolver_store.items()])
    validator = jsonschema.Draft202012Validator(bench, registry=registry)
    rec = Dialogue.from_json(canonical_record()).to_json()
    assert list(validator.iter_errors(rec))  # no labels
    rec.update(domain="Science", subtopic="Astronomy")
    assert not list(validator.iter_errors(rec))


def test_taxonomy_is_8_by_5_with_paper_domains():
    tax = default_taxonomy()
    assert len(tax.domains) == 8 and all(len(d.subtopics) == 5 for d in tax.domains)
    paper = {d.name for d in tax.domains if not d.provisional}
    assert paper == {"Humanities", "Natural", "Science", "Education"}
    assert all(s.provisional for s in tax.subtopics)
    assert all(d.description and all(s.description for s in d.subtopics) for d in tax.domains)
    jsonschema.validate(json.loads(schema_path("taxonomy.json").read_text()), _schema("taxonomy.schema.json"))


def test_user_taxonomy_changes_the_labels(tmp_path):
    data = {"name": "mine", "version": "2", "domains": [
        {"name": "Cooking", "subtopics": [{"name": "Baking"}, {"name": "Grilling"}]},
        {"name": "Space", "subtopics": [{"name": "Rockets"}]}]}
    path = tmp_path / "tax.json"
    path.write_text(json.dumps(data))
    tax = load_taxonomy(path)
    features = mmcr_features(path)
    assert features["domain"].names == ["Cooking", "Space"]
    assert features["subtopic"].names == ["Baking", "Grilling", "Rockets"]
    assert tax.domain_of("Rockets") == "Space" and tax.fingerprint != default_taxonomy().fingerprint


@pytest.mark.parametrize("broken, message", [
    ({"domains": []}, "does not match"),
    ({"domains": [{"name": "A", "subtopics": [{"name": "x"}]}, {"name": "B", "subtopics": [{"name": "x"}]}]}, "unique"),
])
def test_bad_taxonomy_is_refused(tmp_path, broken, message):
    path = tmp_path / "tax.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(path)


def test_schema_version_in_parquet_and_card(demo_dir):
    folder = demo_dir / "mmcr" / "310k"
    shard = sorted(folder.glob("*/*.parquet"))[0]
    schema = pq.read_schema(shard)
    assert read_mmcr_metadata(schema)["schema_version"] == SCHEMA_VERSION
    assert b"huggingface" in schema.metadata
    assert schema.remove_metadata().equals(arrow_schema().remove_metadata())
    card = (folder / "README.md").read_text()
    assert f"mmcr_schema_version: '{SCHEMA_VERSION}'" in card
