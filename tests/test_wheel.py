"""The built wheel ships the schemas, card templates and the sample, read via the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, cwd=REPO)
    (path,) = out.glob("mmcr_datasets-*.whl")
    return path


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("mmcr_datasets/_data/schema/taxonomy.json", "mmcr_datasets/_data/schema/record.schema.json",
                     "mmcr_datasets/_data/schema/README.md", "mmcr_datasets/_data/dataset_card/mmcr_310k.md",
                     "mmcr_datasets/_data/dataset_card/mmcr_bench.md", "mmcr_datasets/sample/310k/train.json",
                     "mmcr_datasets/sample/bench/test.json", "mmcr_datasets/sample/SOURCES.md",
                     "mmcr_datasets/sample/images/chelsea.jpg", "mmcr_datasets/cli.py"):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)
    size = sum(i.file_size for i in zipfile.ZipFile(wheel).infolist())
    assert size < 5 << 20


def test_installed_wheel_runs_the_demo(wheel, tmp_path):
    """Install the wheel into a throwaway target and run the demo from there (no source tree on the path)."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import mmcr_datasets, pathlib; "
            "assert pathlib.Path(mmcr_datasets.__file__).is_relative_to(sys.argv[1]); "
            "from mmcr_datasets.cli import main; sys.exit(main(['-q', 'demo', '--out', sys.argv[2]]))")
    subprocess.run([sys.executable, "-c", code, str(target), str(tmp_path / "demo")], check=True, cwd=tmp_path)
    assert (tmp_path / "demo" / "mmcr" / "bench" / "README.md").is_file()
