"""Contextual accuracy, breakdowns, bootstrap intervals and the paired comparison, on hand-made records."""

from __future__ import annotations

import pytest

from mmcr_datasets.eval.judge import SCORE_KEYS
from mmcr_datasets.eval.report import format_comparison_markdown, format_markdown
from mmcr_datasets.eval.scoring import compare_runs, ratio_with_ci, score_turns


def rec(did, turn, overall=None, status="ok", domain="Science", dtype="single_image", dims=None):
    scores = None
    if status == "ok":
        scores = {k: float(overall) for k in SCORE_KEYS}
        scores.update(dims or {})
    return {"dialogue_id": did, "turn": turn, "domain": domain, "subtopic": domain + "/x", "dialogue_type": dtype,
            "status": status, "reason": None if status == "ok" else "no_json_object", "scores": scores,
            "overall": scores["overall"] if scores else None}


def test_contextual_accuracy_all_turns_vs_parsed_turns():
    records = [rec("a", 1, 8), rec("a", 2, 6), rec("a", 3, status="unparsed"), rec("a", 4, 10),
               rec("b", 1, 4, domain="Natural"), rec("b", 2, status="failed", domain="Natural")]
    s = score_turns(records, n_boot=0)
    assert s["contextual_accuracy"] == pytest.approx(10 * (8 + 6 + 10 + 4) / 6, abs=1e-3)
    assert s["contextual_accuracy_parsed"] == pytest.approx(10 * (8 + 6 + 10 + 4) / 4, abs=1e-3)
    assert s["total"]["n_turns"] == 6 and s["total"]["n_parsed"] == 4 and s["total"]["n_dialogues"] == 2
    assert s["status_counts"] == {"ok": 4, "unparsed": 1, "failed": 1}
    assert s["by_domain"]["Natural"]["all"]["value"] == pytest.approx(20.0)
    assert s["by_domain"]["Natural"]["parsed"]["value"] == pytest.approx(40.0)
    assert s["by_turn"]["1"]["all"]["value"] == pytest.approx(60.0)
    assert s["by_turn"]["3"]["parsed"]["value"] is None and s["by_turn"]["3"]["all"]["value"] == 0.0
    assert s["dimensions"]["overall"]["value"] == pytest.approx(s["contextual_accuracy_parsed"])


def test_dimension_scores_are_parsed_means_times_ten():
    records = [rec("a", 1, 5, dims={"precision": 9}), rec("b", 1, 5, dims={"precision": 7}), rec("c", 1, status="unparsed")]
    s = score_turns(records, n_boot=0)
    assert s["dimensions"]["precision"]["value"] == pytest.approx(80.0)
    assert s["dimensions"]["theme_clarity"]["value"] == pytest.approx(50.0)


def test_bootstrap_interval_is_deterministic_and_brackets_the_value():
    records = [rec(f"d{i}", t, overall=1 + (i * 3 + t) % 10) for i in range(30) for t in range(1, 5)]
    a = score_turns(records, n_boot=500, seed=1)["total"]["all"]
    b = score_turns(records, n_boot=500, seed=1)["total"]["all"]
    assert a == b and a["ci_low"] < a["value"] < a["ci_high"]
    narrow = ratio_with_ci([50.0] * 100, [10] * 100, n_boot=200, seed=0, label="x")
    assert narrow["value"] == narrow["ci_low"] == narrow["ci_high"] == 50.0
    assert ratio_with_ci([1.0], [1], n_boot=200, seed=0, label="x")["ci_low"] is None  # one cluster: no interval


def test_paired_comparison_delta_interval_and_wins():
    a = [rec(f"d{i}", t, overall=5) for i in range(20) for t in (1, 2)]
    b = [rec(f"d{i}", t, overall=7 if i % 4 else 5) for i in range(20) for t in (1, 2)]
    result = compare_runs(a, b, n_boot=500, seed=0, run_a={"history": "reference"}, run_b={"history": "model"})
    ca = result["contextual_accuracy"]
    assert ca["a"] == 50.0 and ca["b"] == pytest.approx(65.0) and ca["delta"] == pytest.approx(15.0)
    assert 0 < ca["ci_low"] <= ca["delta"] <= ca["ci_high"] and ca["p_boot"] < 0.05
    assert result["wins"] == {"b_better": 30, "tie": 10, "a_better": 0}
    assert any("history mode" in w for w in result["warnings"])
    same = compare_runs(a, a, n_boot=200)
    assert same["contextual_accuracy"]["delta"] == 0.0 and same["contextual_accuracy"]["p_boot"] == 1.0
    assert "+15.0" in format_comparison_markdown(result, "base", "tuned")


def test_paired_comparison_on_partly_overlapping_runs_with_unparsed_turns():
    a = [rec("x", 1, 6), rec("x", 2, status="unparsed"), rec("y", 1, 4)]
    b = [rec("x", 1, 8), rec("x", 2, 8), rec("z", 1, 9)]
    result = compare_runs(a, b, n_boot=0)
    assert result["n_common_turns"] == 2 and result["warnings"]
    assert result["contextual_accuracy"]["delta"] == pytest.approx(10 * ((8 + 8) - (6 + 0)) / 2)
    assert result["contextual_accuracy_parsed_both"]["n"] == 1


def test_markdown_report_lists_every_breakdown():
    records = [rec("a", 1, 8), rec("a", 2, status="unparsed")]
    scores = score_turns(records, n_boot=50)
    run = {"model": {"name": "m"}, "history": "reference", "num_dialogues": 1, "num_turns": 2,
           "judge": {"model": "j", "prompt_version": "judge-v1", "prompt_sha": "abc", "temperature": 0.0},
           "accounting": {"calls": 2, "cached": 0, "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001}}
    text = format_markdown(run, scores)
    for heading in ("## By domain", "## By sub-topic", "## By dialogue type", "## By turn index",
                    "Consistency of Contextual References", "no_json_object", "$0.0010"):
        assert heading in text
