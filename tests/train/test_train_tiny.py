"""End to end on the bundled sample with tiny models: the loss falls, checkpoints save, resume
continues from the saved step, and the saved adapter/model loads and generates.

One run per family, alternating LoRA/full fine-tuning and the transformers Trainer / TRL's
SFTTrainer, so each combination is exercised. The runs overfit a balanced 4-dialogue subset (first
turn only): a falling loss there is the signal that inputs and labels line up.
"""

from __future__ import annotations

import pytest

from train_helpers import FAMILIES

pytestmark = [pytest.mark.usefixtures("train_extra"), pytest.mark.slow]

RUNS = [("qwen2_vl", "lora", "transformers"), ("llava", "full", "trl"), ("idefics3", "lora", "trl")]
STEPS, SAVE = 24, 12


def _config(model_dir, data_dir, out, method, trainer, **training):
    from mmcr_datasets.train.config import TrainConfig

    t = {"output_dir": str(out), "max_steps": STEPS, "per_device_train_batch_size": 2,
         "gradient_accumulation_steps": 1, "logging_steps": 2, "save_steps": SAVE, "warmup_ratio": 0.0,
         "lr_scheduler_type": "constant", "trainer": trainer, "report_to": "none", "disable_tqdm": True}
    t.update(training)
    return TrainConfig.from_dict({
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [str(data_dir)], "subset_size": 4, "eval_size": 2, "max_turns": 1, "max_length": 512},
        "finetune": {"method": method, "learning_rate": 1e-2 if method == "lora" else 3e-3,
                     "lora": {"r": 64, "alpha": 128, "dropout": 0.0}},
        "training": t,
    })


@pytest.fixture(scope="module", params=RUNS, ids=["-".join(r) for r in RUNS])
def run(request, tiny_dirs, demo_dir, tmp_path_factory):
    from mmcr_datasets.train import train

    family, method, trainer = request.param
    out = tmp_path_factory.mktemp(f"run_{family}")
    # the first run logs with report_to=auto (TensorBoard when installed), the others log nowhere
    extra = {"report_to": "auto"} if family == "qwen2_vl" else {}
    cfg = _config(tiny_dirs[family], demo_dir / "mmcr" / "310k", out, method, trainer, **extra)
    return {"family": family, "method": method, "trainer": trainer, "out": out, "cfg": cfg, "result": train(cfg)}


def test_loss_falls_markedly(run):
    losses = run["result"].losses()
    first, last = losses[0], sum(losses[-2:]) / 2
    assert len(losses) >= STEPS // 2
    assert last < 0.8 * first, losses
    assert run["result"].eval_metrics["eval_loss"] > 0
    assert run["result"].collator_stats["dropped_too_long"] == 0


def test_tensorboard_logs_when_installed(run):
    import importlib.util

    if run["cfg"].training.report_to != "auto" or importlib.util.find_spec("tensorboard") is None:
        pytest.skip("only the report_to=auto run, with tensorboard installed")
    assert list((run["out"] / "runs").rglob("events.out.tfevents.*"))


def test_checkpoints_save_and_resume_continues_from_the_saved_step(run, tmp_path):
    from mmcr_datasets.train import train

    out = run["out"]
    assert (out / f"checkpoint-{SAVE}").is_dir() and (out / f"checkpoint-{STEPS}").is_dir()
    # resume from the middle checkpoint into a fresh folder: the step counter continues from SAVE
    cfg = _config(run["cfg"].model.name_or_path, run["cfg"].data.train[0].path, tmp_path, run["method"],
                  run["trainer"], max_steps=SAVE + 4, save_steps=100,
                  resume_from_checkpoint=str(out / f"checkpoint-{SAVE}"))
    cfg.training.save_final = False
    resumed = train(cfg)
    assert resumed.resumed_from.endswith(f"checkpoint-{SAVE}")
    assert resumed.global_step == SAVE + 4
    logged = [h for h in resumed.log_history if "loss" in h]
    # the history up to the checkpoint is the original run's; new steps start after it
    original = [h for h in run["result"].log_history if "loss" in h and h["step"] <= SAVE]
    assert [h for h in logged if h["step"] <= SAVE] == original
    new = [h for h in logged if h["step"] > SAVE]
    assert new and new[0]["step"] <= SAVE + 2
    # it continued from the trained weights, not from scratch
    assert new[0]["loss"] < 0.9 * original[0]["loss"]


def test_saved_result_loads_and_generates(run, sample_rows):
    import torch

    from mmcr_datasets.train import generate_reply, load_finetuned
    from mmcr_datasets.train.collator import MMCRCollator, truncate_turns

    final = run["out"] / "final"
    assert (final / "mmcr_train.json").is_file()
    saved = ("adapter_model.safetensors" if run["method"] == "lora" else "model.safetensors")
    assert (final / saved).is_file()
    model, processor, formatter = load_finetuned(final)
    assert formatter == FAMILIES[run["family"]]
    row = truncate_turns(sample_rows[0], 1)
    reply = generate_reply(model, processor, formatter, row, max_new_tokens=8)
    assert isinstance(reply, str)
    # the loaded weights are the trained ones: training rows score far better than at the start
    batch = MMCRCollator(processor, formatter, max_turns=1)([row])
    with torch.no_grad():
        loss = model(**batch).loss.item()
    assert loss < run["result"].losses()[0]
