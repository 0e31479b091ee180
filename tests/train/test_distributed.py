"""Two processes on the CPU (gloo): a streaming run completes and each process sees its own data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.usefixtures("train_extra"), pytest.mark.slow]


def _launcher():
    """``accelerate launch`` when its CLI is installed next to this interpreter, else ``torchrun``."""
    bindir = os.path.dirname(sys.executable)
    accelerate = shutil.which("accelerate", path=bindir)
    if accelerate:
        return [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0"]


def test_two_processes_train_on_disjoint_shards(tiny_dirs, demo_dir, tmp_path):
    import yaml

    out = tmp_path / "out"
    cfg = {
        "model": {"name_or_path": str(tiny_dirs["qwen2_vl"])},
        "data": {"train": [str(demo_dir / "mmcr" / "310k")], "streaming": True, "max_turns": 1, "max_length": 512,
                 "shuffle_buffer": 4},
        "finetune": {"method": "lora", "learning_rate": 1e-2, "lora": {"r": 8, "alpha": 16}},
        "training": {"output_dir": str(out), "max_steps": 3, "per_device_train_batch_size": 2,
                     "gradient_accumulation_steps": 1, "logging_steps": 1, "save_steps": 3, "report_to": "none",
                     "record_ids": True},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cmd = _launcher() + ["-m", "mmcr_datasets", "-q", "train", "--config", str(path), "--format", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "DISTRIBUTED" not in r.stderr  # transformers warns when DDP was not set up
    ids = [(out / f"record_ids.rank{k}.txt").read_text().split() for k in (0, 1)]
    assert ids[0] and ids[1]
    # each process read its own shard: no dialogue reached both
    assert not set(ids[0]) & set(ids[1])
    assert {i.rsplit("-", 1)[0] for i in ids[0] + ids[1]} == {"mmcr-sample-310k"}
    assert (out / "checkpoint-3").is_dir() and (out / "final" / "mmcr_train.json").is_file()
