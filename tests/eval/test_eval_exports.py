"""The lmms-eval task folder (YAML + hooks, one document per turn) and the VLMEvalKit multi-turn TSV."""

from __future__ import annotations

import base64
import csv
import importlib.util
import json

import pytest
import yaml

from mmcr_datasets.eval.exports import export_lmms_eval, export_vlmevalkit_tsv

BENCH_TURNS = 48


class _TaskLoader(yaml.SafeLoader):
    """Reads lmms-eval YAML: ``!function module.name`` becomes the string ``module.name``."""


_TaskLoader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))


def _load_hooks(folder):
    spec = importlib.util.spec_from_file_location("mmcr_lmms_utils", folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lmms_eval_task_folder(bench_dir, tmp_path, judge_server, monkeypatch):
    import datasets

    out = tmp_path / "lmms"
    yaml_path = export_lmms_eval(bench_dir, out, judge_model="loop-judge", max_new_tokens=64)
    task = yaml.load(yaml_path.read_text(), Loader=_TaskLoader)
    assert task["task"] == "mmcr_bench" and task["output_type"] == "generate_until" and task["test_split"] == "test"
    for hook in ("doc_to_visual", "doc_to_text", "process_results"):
        assert task[hook].startswith("!function utils.mmcr_")
    assert [m["metric"] for m in task["metric_list"]] == ["mmcr_contextual_accuracy", "mmcr_contextual_accuracy_parsed"]
    assert task["generation_kwargs"]["max_new_tokens"] == 64 and task["generation_kwargs"]["do_sample"] is False

    # what lmms-eval does with the YAML: datasets.load_dataset(dataset_path, **dataset_kwargs)[test_split]
    docs = datasets.load_dataset(task["dataset_path"], **task["dataset_kwargs"])[task["test_split"]]
    assert len(docs) == BENCH_TURNS and len(set(docs["turn_id"])) == BENCH_TURNS
    hooks = _load_hooks(out)
    doc = next(d for d in docs if d["dialogue_id"] == "mmcr-sample-bench-0004" and d["turn"] == 8)
    visuals = hooks.mmcr_doc_to_visual(doc)
    assert len(visuals) == 3 and all(v.mode == "RGB" for v in visuals)
    history = json.loads(doc["history"])
    assert len(history) == 7
    text = hooks.mmcr_doc_to_text(doc, {"pre_prompt": "", "post_prompt": "\nAnswer briefly."})
    assert text.count("Assistant: ") == 7 and text.endswith("Answer briefly.")
    assert history[0]["assistant"] in text, "the history holds the reference answers"

    monkeypatch.setenv("MMCR_JUDGE_BASE_URL", judge_server.base_url)
    monkeypatch.setenv("MMCR_JUDGE_CACHE", str(tmp_path / "judge.sqlite"))
    results = [hooks.mmcr_process_results(d, [f"answer {d['turn_id']}"]) for d in list(docs)[:6]]
    records = [r["mmcr_contextual_accuracy"] for r in results]
    assert all(r["status"] == "ok" and 1 <= r["overall"] <= 10 for r in records)
    assert judge_server.stats.bodies[-1]["model"] == "loop-judge"
    expected = 10 * sum(r["overall"] for r in records) / len(records)
    assert hooks.mmcr_aggregate_all(records) == pytest.approx(expected)
    records.append({**records[0], "overall": None, "status": "unparsed"})
    assert hooks.mmcr_aggregate_all(records) == pytest.approx(expected * 6 / 7)
    assert hooks.mmcr_aggregate_parsed(records) == pytest.approx(expected)


def test_vlmevalkit_multiturn_tsv(bench_dir, tmp_path):
    path = export_vlmevalkit_tsv(bench_dir, tmp_path / "MMCR_Bench.tsv")
    csv.field_size_limit(1 << 30)  # base64 image lists are long fields (pandas, which VLMEvalKit uses, has no limit)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 8 and [r["index"] for r in rows] == [str(i) for i in range(8)]
    total_turns = 0
    for row in rows:
        questions, answers, images = json.loads(row["question"]), json.loads(row["answer"]), json.loads(row["image"])
        assert len(questions) == len(answers) in (4, 8)
        total_turns += len(questions)
        assert sum(q.count("<ImageHere>") for q in questions) == len(images)
        assert all(base64.b64decode(img)[:3] == b"\xff\xd8\xff" for img in images)
        assert (row["dialogue_type"] == "single_image") == (len(images) == 1)
    assert total_turns == BENCH_TURNS


def test_eval_export_cli(bench_dir, tmp_path, capsys):
    from mmcr_datasets.cli import main

    assert main(["eval-export", "--data", str(bench_dir), "--to", "vlmevalkit", "--out", str(tmp_path / "b.tsv")]) == 0
    assert (tmp_path / "b.tsv").stat().st_size > 0
    assert main(["eval-export", "--data", str(bench_dir), "--to", "lmms-eval", "--out", str(tmp_path / "task"),
                 "--task", "mmcr_small"]) == 0
    assert (tmp_path / "task" / "mmcr_small.yaml").is_file() and "--include_path" in capsys.readouterr().out
