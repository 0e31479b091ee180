"""Balanced subsets: determinism, balance with redistribution, ratios, nesting, writing, CLI."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from stats_fixtures import built_sample, label_table, raw_sample  # noqa: F401

from mmcr_datasets.sampling import nested_subsets, stratified_subset

STRATA = {("A", "single_image"): 50, ("A", "multi_image"): 40, ("B", "single_image"): 60,
          ("B", "multi_image"): 3, ("C", "single_image"): 45, ("C", "multi_image"): 30}


def _ids(subset, table):
    return set(table.column("id").take(pa.array(subset.indices)).to_pylist())


def _strata(table, indices):
    t = table.take(pa.array(indices))
    return Counter(zip(t.column("domain").to_pylist(), t.column("dialogue_type").to_pylist()))


def test_uniform_balance_with_a_small_stratum_redistributed():
    table = label_table(STRATA)
    sub = stratified_subset(table, 60)
    assert len(sub) == 60 and len(set(sub.indices.tolist())) == 60
    got = _strata(table, sub.indices)
    # B/multi_image has 3 rows for a target of 10: all taken, the 7 seats spread over the other five
    assert got[("B", "multi_image")] == 3
    others = [v for k, v in got.items() if k != ("B", "multi_image")]
    assert sum(others) == 57 and max(others) - min(others) <= 1
    rep = sub.report
    assert rep.redistributed
    by_name = {s.name: s for s in rep.strata}
    assert by_name["B/multi_image"].available == 3 and by_name["B/multi_image"].achieved == 3
    assert by_name["B/multi_image"].target == pytest.approx(10.0)
    assert any("B/multi_image has only 3 row(s)" in note for note in rep.notes)
    # the report's achieved counts are the real counts of the chosen rows
    assert {s.key: s.achieved for s in rep.strata} == dict(got)
    data = rep.to_dict()
    assert data["n"] == 60 and sum(s["achieved"] for s in data["strata"]) == 60
    assert "| B/multi_image | 3 | 10.0 | 3 |" in rep.to_markdown()


def test_deterministic_and_seed_dependent_and_order_free():
    table = label_table(STRATA)
    a = stratified_subset(table, 40, seed=7)
    b = stratified_subset(table, 40, seed=7)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.order, b.order)
    assert _ids(stratified_subset(table, 40, seed=8), table) != _ids(a, table)
    # rows ranked by id, so shuffling the table picks the same dialogues
    perm = np.random.default_rng(0).permutation(table.num_rows)
    shuffled = table.take(pa.array(perm))
    assert _ids(stratified_subset(shuffled, 40, seed=7), shuffled) == _ids(a, table)


def test_nested_subsets_are_contained():
    table = label_table(STRATA)
    sizes = [5, 17, 60, 120, 228]
    separate = {n: _ids(stratified_subset(table, n, seed=3), table) for n in sizes}
    for small, large in zip(sizes, sizes[1:]):
        assert separate[small] < separate[large]
    together = nested_subsets(table, sizes, seed=3)
    assert {n: _ids(s, table) for n, s in together.items()} == separate
    assert together[228].report.total_rows == 228 and len(separate[228]) == 228
    # the order of a large subset starts with the smaller ones
    big = stratified_subset(table, 120, seed=3)
    assert set(table.column("id").take(pa.array(big.order[:17])).to_pylist()) == separate[17]


def test_ratios_and_exclusions():
    table = label_table(STRATA)
    sub = stratified_subset(table, 40, ratios={"A/single_image": 3, ("C", "single_image"): 1})
    got = _strata(table, sub.indices)
    assert dict(got) == {("A", "single_image"): 30, ("C", "single_image"): 10}
    assert any("have no ratio" in note for note in sub.report.notes)
    # a weighted stratum absent from the data is reported and its share redistributed
    sub = stratified_subset(table, 20, ratios={"A/single_image": 1, "Z/single_image": 1})
    assert dict(_strata(table, sub.indices)) == {("A", "single_image"): 20}
    assert any("Z/single_image is absent" in note for note in sub.report.notes)
    # single-column strata take plain values as keys
    sub = stratified_subset(table, 30, by="dialogue_type", ratios={"single_image": 2, "multi_image": 1})
    t = table.take(pa.array(sub.indices))
    assert Counter(t.column("dialogue_type").to_pylist()) == {"single_image": 20, "multi_image": 10}
    with pytest.raises(ValueError, match="one value per column"):
        stratified_subset(table, 10, ratios={"A": 1})
    with pytest.raises(ValueError, match="positive weight"):
        stratified_subset(table, 10, ratios={"A/single_image": 0})


def test_impossible_requests_fail_loudly():
    table = label_table(STRATA)
    with pytest.raises(ValueError, match="cannot draw 229 rows"):
        stratified_subset(table, 229)
    with pytest.raises(ValueError, match="cannot draw 60 rows"):
        stratified_subset(table, 60, ratios={"A/single_image": 1})
    with pytest.raises(ValueError, match="positive integer"):
        stratified_subset(table, 0)
    with pytest.raises(ValueError, match="no column"):
        stratified_subset(table, 5, by=("subtopic",))


def test_subset_of_a_hub_folder_and_of_a_dataset(built_sample, hf_cache, tmp_path):
    import datasets

    from mmcr_datasets.validation import validate_hub_folder
    from mmcr_datasets.sampling import write_subset

    folder = built_sample / "mmcr" / "310k"
    from_folder = stratified_subset(folder, 9, by=("domain",))
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(hf_cache))
    from_ds = stratified_subset(ds, 9, by=("domain",))
    assert len(from_ds.dataset) == 9
    assert set(from_ds.dataset["id"]) == set(ds.select(from_folder.indices.tolist())["id"])
    # 8 domains, 9 seats: every domain once, one domain twice
    assert sorted(Counter(from_ds.dataset.features["domain"].int2str(from_ds.dataset["domain"])).values()) \
        == [1] * 7 + [2]
    out = tmp_path / "sub"
    counts = write_subset(ds, from_ds, out)
    assert sum(counts.values()) == 9
    assert validate_hub_folder(out).ok
    again = datasets.load_dataset(str(out), split="train", cache_dir=str(hf_cache))
    assert sorted(again["id"]) == sorted(from_ds.dataset["id"])


def test_cli_sample_writes_a_loadable_balanced_folder(built_sample, hf_cache, tmp_path, capsys):
    import datasets

    from mmcr_datasets.cards import validate_card
    from mmcr_datasets.cli import main
    from mmcr_datasets.validation import validate_hub_folder

    src = built_sample / "mmcr" / "310k"
    raw = {r["id"]: r for r in raw_sample("310k")}
    out = {}
    for n in (5, 12):
        out[n] = tmp_path / f"s{n}"
        rc = main(["-q", "sample", str(src), "--n", str(n), "--by", "domain,dialogue_type", "--out", str(out[n]),
                   "--seed", "1", "--format", "json"])
        assert rc == 0
        printed = capsys.readouterr().out
        report = __import__("json").loads(printed[:printed.rindex("}") + 1])
        ds = datasets.load_dataset(str(out[n]), split="train", cache_dir=str(hf_cache))
        assert ds.num_rows == n
        assert validate_hub_folder(out[n]).ok
        assert validate_card(out[n]) == []
        # the reported distribution is the distribution of the written rows
        written = Counter(f"{raw[i]['domain']}/{'single_image' if isinstance(raw[i]['image'], str) else 'multi_image'}"
                          for i in ds["id"])
        assert {s["stratum"]: s["achieved"] for s in report["strata"] if s["achieved"]} == dict(written)
        card = (out[n] / "README.md").read_text()
        assert "## How this subset was drawn" in card and f"(balanced subset, {n} dialogues)" in card
    small = set(datasets.load_dataset(str(out[5]), split="train", cache_dir=str(hf_cache))["id"])
    large = set(datasets.load_dataset(str(out[12]), split="train", cache_dir=str(hf_cache))["id"])
    assert small < large
    # 13 strata in the sample, 12 seats: no stratum gets two before all have one
    assert max(Counter(written).values()) == 1
    assert main(["-q", "sample", str(src), "--n", "17", "--out", str(tmp_path / "too_many")]) == 2
    assert main(["-q", "sample", str(src), "--n", "3", "--out", str(out[5])]) == 1  # exists, no --overwrite
