"""Lazy public names for a package: the module holding a name is imported on first use.

Keeps ``import mmcr_datasets`` (and the extras' packages) free of heavy imports such as
``datasets``, torch, transformers or openai until a name that needs them is touched.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Union

Target = Union[str, tuple]  # "module" (attribute of the same name) or ("module", "attribute")


def lazy_exports(package: str, exports: dict[str, Target]) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for ``package`` serving the names in ``exports``."""

    def __getattr__(name: str):
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = (target, name) if isinstance(target, str) else target
        value = getattr(importlib.import_module(f".{module}", package), attr)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(exports) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
