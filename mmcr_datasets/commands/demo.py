"""``mmcr demo``: build the bundled sample into ``DIR/mmcr/310k`` and ``DIR/mmcr/bench``, validate, show how to load."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="build and validate the bundled sample dataset end to end")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/mmcr/310k and DIR/mmcr/bench")
    p.add_argument("--num-proc", type=int, default=1)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export import build_hub_folder
    from ..resources import sample_dir
    from ..validation import validate_hub_folder

    sample = sample_dir()
    out = Path(args.out)
    status = 0
    for name, raw in (("310k", sample / "310k" / "train.json"), ("bench", sample / "bench" / "test.json")):
        target = out / "mmcr" / name
        result = build_hub_folder(raw, target, name=name, format="llava", image_root=sample / "images",
                                  num_proc=args.num_proc, overwrite=True, on_invalid="raise",
                                  card_options={"image_stats": True})
        report = validate_hub_folder(target, check_images=True)
        print(result.summary())
        print(f"  validate: {'OK' if report.ok else 'INVALID'} ({report.num_records} rows, "
              f"{report.num_errors} errors, {report.num_warnings} warnings)")
        if not report.ok:
            print(report.format_text())
            status = 1
    print(
        "\nTry it (from inside the output folder, offline):\n"
        f"  cd {out}\n"
        "  HF_HUB_OFFLINE=1 python -c \"from datasets import load_dataset; "
        "ds = load_dataset('mmcr/310k', split='train'); print(ds); print(ds[0]['messages'][0])\"\n"
        "  HF_HUB_OFFLINE=1 python -c \"from datasets import load_dataset; "
        "print(load_dataset('mmcr/310k', 'multi_image', split='train'))\"\n"
        "  HF_HUB_OFFLINE=1 python -c \"from datasets import load_dataset; "
        "b = load_dataset('mmcr/bench', split='test'); print(b.features['domain'].names)\"\n"
        f"  mmcr validate {out / 'mmcr' / '310k'}"
    )
    return status
