"""The extra stays optional: no torch on import, and a clear pip line when it is missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: run first in a child interpreter: make torch (and everything in the train stack) unimportable
HIDE = textwrap.dedent("""
    import sys
    class _Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch', 'transformers', 'peft', 'trl', 'accelerate'):
                raise ImportError(f'No module named {name!r} (hidden by the test)')
    sys.meta_path.insert(0, _Hide())
""")


def _run(code: str, hide: bool = False):
    src = (HIDE if hide else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=120)


def test_importing_the_package_and_the_train_config_loads_no_torch():
    r = _run("""
        import sys
        import mmcr_datasets, mmcr_datasets.train
        from mmcr_datasets.train import config
        config.TrainConfig
        heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]
        print(heavy)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_using_the_extra_without_torch_names_the_pip_line():
    r = _run("""
        from mmcr_datasets.errors import MissingExtraError
        try:
            from mmcr_datasets.train import MMCRCollator
        except MissingExtraError as exc:
            print(exc)
    """, hide=True)
    assert r.returncode == 0, r.stderr
    assert "pip install 'mmcr-datasets[train]'" in r.stdout and "torch" in r.stdout


def test_cli_train_without_torch_exits_3_with_the_pip_line(tmp_path):
    import yaml

    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"name_or_path": "m"}, "data": {"train": ["mmcr/310k"]},
                                   "training": {"output_dir": str(tmp_path / "out")}}))
    r = _run(f"""
        import sys
        from mmcr_datasets.cli import main
        code = main(['train', '--config', {str(cfg)!r}])
        dry = main(['train', '--config', {str(cfg)!r}, '--dry-run'])
        sys.exit(code * 10 + dry)
    """, hide=True)
    assert r.returncode == 30, (r.returncode, r.stderr)
    assert "pip install 'mmcr-datasets[train]'" in r.stderr
