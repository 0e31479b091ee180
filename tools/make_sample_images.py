#!/usr/bin/env python
"""Build the images of the bundled MMCR sample from scikit-image's data files.

The sample dialogues in ``mmcr_datasets/sample`` refer to small JPEG copies of
photographs that ship with scikit-image (``skimage/data``).  Only images whose
scikit-image documentation states a public-domain dedication, CC0, or "no known
copyright restrictions" are used; see ``mmcr_datasets/sample/SOURCES.md``.

Every image is converted to RGB, downscaled (never upscaled) so that its longest
side is at most 512 px with the aspect ratio kept, and written as a baseline
JPEG with quality 85 and no metadata.  The output is deterministic for a given
Pillow / libjpeg version.

Usage::

    python tools/make_sample_images.py            # writes the images
    python tools/make_sample_images.py --check    # only verifies they exist and fit the limits
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

# output name (without .jpg) -> file name inside skimage/data
IMAGES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "cell": "cell.png",
    "chelsea": "chelsea.png",
    "clock_motion": "clock_motion.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "microaneurysms": "microaneurysms.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}

MAX_SIDE = 512
QUALITY = 85
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "mmcr_datasets" / "sample" / "images"


def skimage_data_dir() -> Path:
    """Directory holding scikit-image's bundled data files."""
    import skimage

    return Path(skimage.__file__).resolve().parent / "data"


def convert(src: Path, dst: Path) -> tuple[int, int]:
    with Image.open(src) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        im = im.convert("RGB")
        w, h = im.size
        scale = MAX_SIDE / max(w, h)
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            im = im.resize(size, Image.Resampling.LANCZOS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.save(dst, "JPEG", quality=QUALITY, optimize=True, progressive=False)
        return im.size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--check", action="store_true", help="verify only, write nothing")
    args = parser.parse_args(argv)

    data_dir = skimage_data_dir()
    total = 0
    problems = 0
    for name, filename in IMAGES.items():
        dst = args.out / f"{name}.jpg"
        if args.check:
            if not dst.is_file():
                print(f"missing: {dst}")
                problems += 1
                continue
            with Image.open(dst) as im:
                size, mode = im.size, im.mode
            if max(size) > MAX_SIDE or mode != "RGB":
                print(f"bad: {dst} size={size} mode={mode}")
                problems += 1
        else:
            src = data_dir / filename
            if not src.is_file():
                print(f"source not found: {src}", file=sys.stderr)
                return 1
            size = convert(src, dst)
            print(f"{dst.name:24s} {size[0]}x{size[1]:<4d} {dst.stat().st_size:7d} bytes")
        total += dst.stat().st_size if dst.is_file() else 0
    print(f"total: {len(IMAGES)} images, {total} bytes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
