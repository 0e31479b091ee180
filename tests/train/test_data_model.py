"""Data assembly (mixture, balanced subset, held-out split, per-process streams) and model setup
(freezing, LoRA targets, projector learning rate)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("train_extra")


def _settings(**kw):
    from mmcr_datasets.train.config import DataSettings, DataSource

    train = kw.pop("train")
    return DataSettings(train=[DataSource(**t) if isinstance(t, dict) else DataSource(path=t) for t in train], **kw)


def test_held_out_rows_never_train(demo_dir):
    from mmcr_datasets.train.data import build_datasets

    data = build_datasets(_settings(train=[str(demo_dir / "mmcr" / "310k")], eval_size=3))
    train_ids, eval_ids = set(data.train["id"]), set(data.eval["id"])
    assert len(eval_ids) == 3 and len(train_ids) == 13 and not train_ids & eval_ids
    assert set(data.train.column_names) <= {"id", "messages", "images", "domain", "dialogue_type"}


def test_balanced_subset_uses_the_sampling_module(demo_dir):
    from mmcr_datasets.sampling import stratified_subset
    from mmcr_datasets.train.data import build_datasets

    folder = demo_dir / "mmcr" / "310k"
    data = build_datasets(_settings(train=[str(folder)], subset_size=6, subset_by=["dialogue_type"]))
    assert len(data.train) == 6
    types = data.train.features["dialogue_type"].int2str(data.train["dialogue_type"])
    assert sorted(types) == ["multi_image"] * 3 + ["single_image"] * 3  # balanced over the stratum
    import datasets

    expected = stratified_subset(datasets.load_dataset(str(folder), split="train"), 6, by=("dialogue_type",), seed=42)
    assert sorted(data.train["id"]) == sorted(expected.dataset["id"])
    assert any("stratified" in n or "6" in n for n in data.notes)


def test_mixture_follows_the_weights(demo_dir):
    from mmcr_datasets.train.data import build_datasets

    folder = str(demo_dir / "mmcr" / "310k")
    data = build_datasets(_settings(train=[{"path": folder, "config": "single_image", "weight": 3.0},
                                           {"path": folder, "config": "multi_image", "weight": 1.0}]))
    ids = data.train["id"]
    single_ids = {f"mmcr-sample-310k-{i:04d}" for i in range(1, 11)}  # the sample's single-image dialogues
    n_single = sum(i in single_ids for i in ids)
    assert len(set(ids)) == 16  # all_exhausted: every row of both sources appears at least once
    assert n_single >= 10 and len(ids) > 16  # the smaller source was drawn again (oversampling)
    assert any("mixture" in n and "0.75" in n for n in data.notes)


def test_streams_split_by_node_are_disjoint(demo_dir):
    from mmcr_datasets.train.data import build_datasets

    folder = str(demo_dir / "mmcr" / "310k")
    seen = []
    for rank in (0, 1):
        data = build_datasets(_settings(train=[folder], streaming=True, shuffle_buffer=0), rank=rank, world_size=2)
        assert data.split_by_node
        seen.append([r["id"] for r in data.train])
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
    assert len(seen[0]) + len(seen[1]) == 16


@pytest.mark.parametrize("held_out", [{"eval_size": 2}, {"eval_fraction": 0.3}])
def test_streamed_held_out_rows_reach_no_process(demo_dir, held_out):
    from mmcr_datasets.train.data import build_datasets

    folder = str(demo_dir / "mmcr" / "310k")
    train, evals = set(), []
    for rank in (0, 1):
        data = build_datasets(_settings(train=[folder], streaming=True, shuffle_buffer=0, **held_out),
                              rank=rank, world_size=2)
        train |= {r["id"] for r in data.train}
        evals.append({r["id"] for r in data.eval})
    assert evals[0] == evals[1] and evals[0]
    assert not train & evals[0] and len(train) + len(evals[0]) == 16


def test_freezing_full_finetuning(tiny_dirs):
    from mmcr_datasets.train.model import freeze_parts, load_model, model_parts

    model = load_model(str(tiny_dirs["llava"]), dtype="float32")
    freeze_parts(model, vision=True, projector=False)
    parts = model_parts(model)
    for name, p in model.named_parameters():
        if name.startswith(parts["vision"][0] + "."):
            assert not p.requires_grad, name
        else:
            assert p.requires_grad, name
    # Qwen keeps its projector (merger) inside the vision tower: it still trains
    qwen = load_model(str(tiny_dirs["qwen2_vl"]), dtype="float32")
    freeze_parts(qwen, vision=True, projector=False)
    grads = {n: p.requires_grad for n, p in qwen.named_parameters()}
    assert any(v for n, v in grads.items() if ".merger." in n)
    assert not any(v for n, v in grads.items() if ".visual.blocks." in n)


def test_lora_targets_only_the_language_model_and_saves_the_projector(tiny_dirs):
    from mmcr_datasets.train.config import LoraSettings
    from mmcr_datasets.train.model import apply_lora, load_model

    model = apply_lora(load_model(str(tiny_dirs["idefics3"]), dtype="float32"), LoraSettings(r=4, alpha=8),
                       train_projector=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n and ".text_model." in n for n in trainable)
    assert not any("lora_" in n and ".vision_model." in n for n in trainable)
    assert any(".connector." in n and "modules_to_save" in n for n in trainable)


def test_projector_gets_its_own_learning_rate(tiny_dirs, demo_dir, tmp_path):
    from mmcr_datasets.train.config import TrainConfig
    from mmcr_datasets.train.trainer import build_trainer

    cfg = TrainConfig.from_dict({
        "model": {"name_or_path": str(tiny_dirs["llava"])},
        "data": {"train": [str(demo_dir / "mmcr" / "310k")]},
        "finetune": {"method": "full", "learning_rate": 1e-3, "projector_learning_rate": 1e-4},
        "training": {"output_dir": str(tmp_path), "report_to": "none", "max_steps": 1},
    })
    trainer, _, _ = build_trainer(cfg)
    trainer.create_optimizer()
    lrs = {g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs == {1e-3, 1e-4}


def test_formatter_is_derived_from_the_model(tiny_dirs):
    from mmcr_datasets.errors import MMCRError
    from mmcr_datasets.train.model import load_model, resolve_formatter

    assert resolve_formatter(load_model(str(tiny_dirs["idefics3"]), dtype="float32")) == "idefics3"
    assert resolve_formatter(None, "smolvlm") == "smolvlm"
    with pytest.raises(MMCRError, match="model.formatter"):
        resolve_formatter(type("C", (), {"model_type": "mystery"})())


def test_raw_release_source_is_read_through_the_builder(sample_dir, tmp_path, monkeypatch):
    from mmcr_datasets.train.data import build_datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    data = build_datasets(_settings(train=[{"path": "mmcr/310k", "data_dir": str(sample_dir / "310k" / "train.json"),
                                            "format": "llava", "image_root": str(sample_dir / "images")}]))
    assert len(data.train) == 16 and data.train[0]["images"]


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_gradient_checkpointing_and_a_trainable_vision_tower_run(tiny_dirs, demo_dir, tmp_path, family):
    from mmcr_datasets.train import train
    from mmcr_datasets.train.config import TrainConfig

    cfg = TrainConfig.from_dict({
        "model": {"name_or_path": str(tiny_dirs[family])},
        "data": {"train": [str(demo_dir / "mmcr" / "310k")], "max_turns": 1},
        "finetune": {"method": "lora", "lora": {"r": 4, "alpha": 8}, "freeze_vision_tower": False,
                     "gradient_checkpointing": True},
        "training": {"output_dir": str(tmp_path), "report_to": "none", "max_steps": 2,
                     "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1, "save_final": False,
                     "disable_tqdm": True},
    })
    result = train(cfg)
    assert result.global_step == 2 and all(loss == loss for loss in result.losses())
