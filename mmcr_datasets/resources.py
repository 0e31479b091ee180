"""Locate the data files shipped with the package (schemas, taxonomy, card templates, sample).

In a wheel, ``schema/`` and ``dataset_card/`` are installed as ``mmcr_datasets/_data/...``
(see ``pyproject.toml``). In a source checkout they sit beside the package; both are found.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``schema`` or ``dataset_card`` wherever this installation keeps it."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the packaged folder {name!r} is missing from {_PACKAGE_DIR}; reinstall mmcr-datasets"
    )


def schema_path(filename: str) -> Path:
    return data_dir("schema") / filename


def card_template_path(filename: str) -> Path:
    return data_dir("dataset_card") / filename


def sample_dir() -> Path:
    """The bundled sample dataset (raw Ovis/LLaVA JSON plus images)."""
    return _PACKAGE_DIR / "sample"
