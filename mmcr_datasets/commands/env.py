"""``mmcr env``: versions and settings to paste into a bug report."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("env", help="print versions of this package, its dependencies and extras")
    p.add_argument("--format", dest="report_format", choices=["text", "json"], default="text")
    p.set_defaults(func=run)


PACKAGES = {
    "core": ["datasets", "huggingface-hub", "pyarrow", "pillow", "jsonschema", "pyyaml", "numpy"],
    "train": ["torch", "transformers", "trl", "peft", "accelerate"],
    "eval": ["openai", "httpx"],
    "plot": ["matplotlib"],
}


def collect() -> dict:
    import os
    import platform
    from importlib import metadata

    from .. import __version__
    from ..features import SCHEMA_VERSION
    from ..taxonomy import default_taxonomy

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    tax = default_taxonomy()
    return {
        "mmcr-datasets": __version__,
        "schema_version": SCHEMA_VERSION,
        "taxonomy": f"{tax.name} {tax.version} ({tax.fingerprint})",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {group: {d: version(d) for d in dists} for group, dists in PACKAGES.items()},
        "env": {k: os.environ.get(k) for k in ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT")},
    }


def run(args) -> int:
    info = collect()
    if args.report_format == "json":
        print(json.dumps(info, indent=2))
        return 0
    for key in ("mmcr-datasets", "schema_version", "taxonomy", "python", "platform"):
        print(f"{key}: {info[key]}")
    for group, versions in info["packages"].items():
        shown = ", ".join(f"{d} {v or '(not installed)'}" for d, v in versions.items())
        print(f"{group}: {shown}")
    for k, v in info["env"].items():
        if v is not None:
            print(f"{k}={v}")
    return 0
