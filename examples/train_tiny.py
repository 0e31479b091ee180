# extra: train (pip install 'mmcr-datasets[train]'; install the CPU torch wheel first, see README)
"""Fine-tune a tiny random VLM on the bundled MMCR sample, on the CPU, fully offline, in about a minute.

It writes the sample as a Hub-layout folder (``OUT/mmcr/310k``), saves a tiny model of the chosen
family (``OUT/tiny-<family>``), writes a training config (``OUT/train.yaml``), trains with LoRA,
and finally loads the result and generates an answer. The same config drives ``mmcr train``:

    python examples/train_tiny.py [OUT_DIR] [--family qwen2_vl|llava|idefics3|smolvlm] [--steps 24]
    mmcr train --config OUT_DIR/train.yaml --set training.max_steps=40 --set training.resume_from_checkpoint=latest

The model is random, so the answer is gibberish; what matters is that the training loss falls
(the run overfits four dialogues) and that every step of the real pipeline runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="out/train_tiny")
    ap.add_argument("--family", default="qwen2_vl", choices=["qwen2_vl", "qwen2_5_vl", "llava", "idefics3", "smolvlm"])
    ap.add_argument("--steps", type=int, default=24)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import torch
    import yaml

    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and avoids oversubscribing a busy CPU

    from mmcr_datasets.export import build_hub_folder
    from mmcr_datasets.resources import sample_dir
    from mmcr_datasets.train import generate_reply, load_config, load_finetuned, save_tiny_model, train

    out = Path(args.out)
    sample = sample_dir()
    data = out / "mmcr" / "310k"
    build_hub_folder(sample / "310k" / "train.json", data, name="310k", format="llava",
                     image_root=sample / "images", overwrite=True)
    model_dir = save_tiny_model(args.family, out / f"tiny-{args.family}")

    config = {
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [{"path": str(data), "weight": 1.0}], "subset_size": 4, "eval_size": 2,
                 "max_turns": 1, "max_length": 512},
        # a tiny random model needs a full-rank adapter and a high learning rate to move in 24 steps
        "finetune": {"method": "lora", "learning_rate": 1e-2, "lora": {"r": 64, "alpha": 128, "dropout": 0.0}},
        "training": {"output_dir": str(out / "run"), "max_steps": args.steps, "per_device_train_batch_size": 2,
                     "gradient_accumulation_steps": 1, "logging_steps": 4, "save_steps": max(1, args.steps // 2),
                     "warmup_ratio": 0.0, "lr_scheduler_type": "constant"},
    }
    cfg_path = out / "train.yaml"
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = train(load_config(cfg_path))

    losses = result.losses()
    print(f"\ntraining loss {losses[0]:.3f} -> {losses[-1]:.3f} over {result.global_step} steps; "
          f"eval loss {result.eval_metrics.get('eval_loss', float('nan')):.3f}")
    model, processor, formatter = load_finetuned(result.final_dir)
    import datasets

    row = datasets.load_dataset(str(data), split="train")[0]
    print("answer to the first question:", repr(generate_reply(model, processor, formatter, row, max_new_tokens=12)))
    print(f"config: {cfg_path}\nresult: {result.final_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
