"""Lazy imports, the missing-extra error, and CLI usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gen_helpers import DOCS, REPO


def test_import_does_not_pull_heavy_dependencies():
    code = ("import sys, mmcr_datasets, mmcr_datasets.generate, mmcr_datasets.cli\n"
            "mmcr_datasets.cli.build_parser()\n"
            "from mmcr_datasets.generate import pipeline\n"
            "bad = [m for m in ('openai', 'torch', 'transformers', 'fastapi') if m in sys.modules]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_openai_names_the_extra(tmp_path, monkeypatch, capsys):
    from mmcr_datasets.cli import main

    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` fail
    rc = main(["generate", "--docs", str(DOCS), "--out", str(tmp_path / "o"), "--llm-model", "m"])
    assert rc == 3
    assert "pip install 'mmcr-datasets[generate]'" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    from mmcr_datasets.cli import main

    base = ["generate", "--out", str(tmp_path / "o"), "--llm-model", "m", "--llm-base-url", "http://127.0.0.1:9/v1"]
    assert main(base + ["--docs", str(DOCS), "--domain-method", "fixed"]) == 2
    assert main(base + ["--docs", str(DOCS), "--clip-threshold", "0.1", "--clip-percentile", "5"]) == 2
    pytest.importorskip("openai")
    assert main(base + ["--docs", str(tmp_path / "missing.jsonl"), "--domain-method", "fixed",
                        "--domain", "Natural", "--subtopic", "Materials & Textures"]) == 1
    assert "does not exist" in capsys.readouterr().err
