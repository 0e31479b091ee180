"""The training configuration: YAML loading, defaults, errors that name the key, the CLI front end."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmcr_datasets.train.config import ConfigError, TrainConfig, apply_overrides, load_config

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"model": {"name_or_path": "m"}, "data": {"train": ["mmcr/310k"]}, "training": {"output_dir": "out"}}


def test_example_yaml_loads_with_documented_defaults():
    cfg = load_config(REPO / "examples" / "train.yaml")
    assert cfg.model.name_or_path == "Qwen/Qwen2-VL-2B-Instruct"
    assert cfg.data.train[0].path == "mmcr/310k" and cfg.data.train[0].weight == 1.0
    assert cfg.finetune.method == "lora" and cfg.learning_rate == 2e-4
    # the example shows every default: it must equal a config built from the minimal keys
    minimal = TrainConfig.from_dict({"model": {"name_or_path": cfg.model.name_or_path},
                                     "data": {"train": ["mmcr/310k"], "eval_size": 200},
                                     "training": {"output_dir": cfg.training.output_dir}})
    assert minimal.to_dict() == cfg.to_dict()


def test_defaults_follow_their_sources():
    cfg = TrainConfig.from_dict(MINIMAL)
    assert cfg.learning_rate == 2e-4  # LoRA, LLaVA-1.5
    assert (cfg.finetune.lora.r, cfg.finetune.lora.alpha, cfg.finetune.lora.dropout) == (128, 256, 0.05)
    assert cfg.finetune.freeze_vision_tower and not cfg.finetune.freeze_projector
    assert (cfg.training.warmup_ratio, cfg.training.lr_scheduler_type, cfg.training.weight_decay) == (0.03, "cosine", 0.0)
    assert cfg.data.max_length == 2048
    full = TrainConfig.from_dict(dict(MINIMAL, finetune={"method": "full"}))
    assert full.learning_rate == 2e-5


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"'learnin_rate' \(did you mean 'learning_rate'\?\)"):
        TrainConfig.from_dict(dict(MINIMAL, finetune={"learnin_rate": 1e-4}))
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict(dict(MINIMAL, optimizer={}))


def test_missing_and_inconsistent_values_are_all_reported():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"data": {"streaming": True}, "finetune": {"method": "qlora"}})
    msg = str(err.value)
    for needle in ("model.name_or_path", "data.train", "training.output_dir", "finetune.method", "max_steps"):
        assert needle in msg


def test_types_are_checked_and_yaml_number_strings_accepted():
    cfg = TrainConfig.from_dict(dict(MINIMAL, finetune={"learning_rate": "1e-4"}))
    assert cfg.learning_rate == 1e-4
    with pytest.raises(ConfigError, match="training.max_steps must be an integer"):
        TrainConfig.from_dict(dict(MINIMAL, training={"output_dir": "o", "max_steps": "many"}))


def test_sources_and_mixture_weights():
    cfg = TrainConfig.from_dict(dict(MINIMAL, data={"train": [{"path": "a", "weight": 3}, "b"]}))
    assert [(s.path, s.weight) for s in cfg.data.train] == [("a", 3.0), ("b", 1.0)]
    with pytest.raises(ConfigError, match="weight must be positive"):
        TrainConfig.from_dict(dict(MINIMAL, data={"train": [{"path": "a", "weight": 0}]}))


def test_overrides_and_load(tmp_path):
    import yaml

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    cfg = load_config(path, ["training.max_steps=7", "finetune.lora.r=4", "data.streaming=true"])
    assert cfg.training.max_steps == 7 and cfg.finetune.lora.r == 4 and cfg.data.streaming
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["nonsense"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_dry_run_and_usage_errors(tmp_path, capsys):
    import json

    import yaml

    from mmcr_datasets.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    assert main(["train", "--config", str(path), "--dry-run", "--set", "training.max_steps=3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["training"]["max_steps"] == 3
    path.write_text(yaml.safe_dump(dict(MINIMAL, training={"outptu_dir": "x"})))
    assert main(["train", "--config", str(path)]) == 2
    assert "outptu_dir" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
