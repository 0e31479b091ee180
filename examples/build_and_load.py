# extra: none (core install: pip install mmcr-datasets)
"""Build the bundled sample into a Hub-layout folder, validate it, and load it like a user would.

    python examples/build_and_load.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
from datasets import load_dataset  # noqa: E402

import mmcr_datasets  # noqa: E402
from mmcr_datasets.resources import sample_dir  # noqa: E402


def main(out: Path) -> None:
    sample = sample_dir()
    target = out / "mmcr" / "310k"
    result = mmcr_datasets.build_hub_folder(sample / "310k" / "train.json", target, format="llava",
                                            image_root=sample / "images", overwrite=True, on_invalid="skip")
    print(result.summary())
    report = mmcr_datasets.validate_path(target)
    print(report.format_text())

    ds = load_dataset(str(target), "multi_image", split="train")
    row = ds[0]
    print(row["id"], mmcr_datasets.features_310k()["domain"].int2str(row["domain"]), f"{len(row['images'])} images")
    for message in row["messages"][:4]:
        parts = [f"<image {p['index']}>" if p["type"] == "image" else p["text"] for p in message["content"]]
        print(f"  {message['role']:>9}: {' '.join(parts)[:100]}")

    # back to the Ovis/LLaVA format, images written beside it
    undecoded = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
    n = mmcr_datasets.write_raw(undecoded, out / "llava" / "train.json", "llava", image_root=out / "llava" / "images")
    print(f"wrote {n} records back to {out / 'llava' / 'train.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "example_out"))
