"""The training configuration: :class:`TrainConfig` and its YAML form (``mmcr train --config FILE``).

A YAML file has four sections, each a dataclass below; every key is optional except
``model.name_or_path``, ``data.train`` and ``training.output_dir``::

    model:    {name_or_path: Qwen/Qwen2-VL-2B-Instruct}
    data:     {train: [{path: mmcr/310k, weight: 1.0}], eval_size: 200, max_length: 2048}
    finetune: {method: lora}
    training: {output_dir: runs/qwen2vl-mmcr}

Defaults and where they come from (the MMCR paper does not publish its hyper-parameters):

* LLaVA-1.5 visual instruction tuning (haotian-liu/LLaVA ``scripts/v1_5/finetune.sh``): full
  fine-tuning learning rate 2e-5, one epoch, weight decay 0, warm-up ratio 0.03, cosine schedule,
  ``model_max_length`` 2048, vision encoder frozen, projector trained.
* LLaVA-1.5 LoRA recipe (``scripts/v1_5/finetune_lora.sh``, ``llava/train/train.py``): LoRA rank
  128, alpha 256, dropout 0.05, learning rate 2e-4, projector learning rate 2e-5.
* transformers ``TrainingArguments``: gradient clipping 1.0, seed 42, AdamW betas/epsilon.
* [ours] batch size 4 per device with 4 accumulation steps, checkpoints every 500 steps keeping
  the last 2, evaluation at each checkpoint, logging every 10 steps.

Nothing here imports torch; the file can be loaded and checked without the ``[train]`` extra.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import MMCRError

__all__ = ["TrainConfig", "ModelSettings", "DataSource", "DataSettings", "FinetuneSettings", "LoraSettings",
           "TrainingSettings", "ConfigError", "load_config", "apply_overrides"]


class ConfigError(MMCRError, ValueError):
    """A training configuration is malformed (unknown key, wrong type, inconsistent values)."""


@dataclass
class ModelSettings:
    """The base model.

    ``name_or_path``: a local folder or a Hub id. ``processor``: where to load the processor from
    (default: the model's folder/id). ``formatter``: the chat-format id (default: derived from the
    model's ``model_type``, see :data:`~mmcr_datasets.train.model.FORMATTER_BY_MODEL_TYPE`).
    ``dtype``: ``auto`` (bf16 where the GPU supports it, else float32), ``float32``, ``bfloat16``,
    ``float16``. ``attn_implementation``: passed to ``from_pretrained`` (``sdpa``, ``flash_attention_2``).
    ``trust_remote_code``: for models whose code lives on the Hub (Ovis, InternVL).
    """

    name_or_path: str = ""
    processor: Optional[str] = None
    formatter: Optional[str] = None
    formatter_options: dict = field(default_factory=dict)
    system_prompt: Optional[str] = None
    dtype: str = "auto"
    attn_implementation: Optional[str] = None
    trust_remote_code: bool = False
    processor_kwargs: dict = field(default_factory=dict)


@dataclass
class DataSource:
    """One training source: a Hub id (``mmcr/310k``) or a Hub-layout folder, with its mixture weight.

    ``weight``: relative sampling probability when several sources are mixed (normalised to sum to
    one). ``config``/``split``: as in ``datasets.load_dataset``. ``data_dir``: a raw release folder
    or file (Ovis/LLaVA, MMDU, ShareGPT JSON) read through :func:`mmcr_datasets.load` instead, with
    ``format`` (detected when omitted) and ``image_root`` (where relative image paths point).
    """

    path: str = ""
    config: Optional[str] = None
    split: str = "train"
    weight: float = 1.0
    data_dir: Optional[str] = None
    format: Optional[str] = None
    image_root: Optional[str] = None


@dataclass
class DataSettings:
    """What to train and evaluate on.

    ``train``: one or more :class:`DataSource` (a bare string is a path). ``eval``: held-out
    sources; when empty, ``eval_size`` rows (or ``eval_fraction`` of them) are held out of the
    training data (map-style: a seeded random split; streaming: by ``id``, so no held-out row reaches
    any process; ``eval`` sources are read whole, not streamed). ``subset_size``:
    a balanced subset of this many training dialogues, stratified over ``subset_by`` (the paper's
    "less is more" finding: a small balanced subset beat larger ones). ``streaming``: read shards
    lazily; each process then reads its own shards (``split_dataset_by_node``) and
    ``training.max_steps`` must be set. ``max_length``/``truncation``: see
    :class:`~mmcr_datasets.train.collator.MMCRCollator` (2048 as LLaVA-1.5's ``model_max_length``).
    With ``truncation: drop``, a batch whose rows are all too long stops training with
    :class:`~mmcr_datasets.train.collator.BatchTooLongError`; ``turns`` only drops a row whose first
    turn alone does not fit.
    ``max_turns``: train on the first ``max_turns`` turns of each dialogue only (``None`` = all).
    ``literal_tokens``: the formatter policy for control tokens inside text.
    ``shuffle_buffer``: buffer of the streaming shuffle (0 = no shuffle).
    """

    train: list = field(default_factory=list)
    eval: list = field(default_factory=list)
    eval_size: Optional[int] = None
    eval_fraction: Optional[float] = None
    subset_size: Optional[int] = None
    subset_by: list = field(default_factory=lambda: ["domain", "dialogue_type"])
    streaming: bool = False
    shuffle_buffer: int = 1000
    max_length: Optional[int] = 2048
    truncation: str = "turns"
    max_turns: Optional[int] = None
    literal_tokens: str = "escape"
    seed: int = 42


@dataclass
class LoraSettings:
    """LoRA through peft. Defaults from LLaVA-1.5's LoRA recipe (r 128, alpha 256, dropout 0.05).

    ``target_modules``: ``"language_model"`` (default) = every attention and MLP projection of the
    language model and nothing of the vision tower; or a list of module names/suffixes, or a
    regular expression, or ``"all-linear"``, as peft accepts them.
    """

    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: Union[str, list] = "language_model"
    bias: str = "none"


@dataclass
class FinetuneSettings:
    """Which parameters train.

    ``method``: ``lora`` or ``full``. ``freeze_vision_tower`` (default true, as LLaVA-1.5) and
    ``freeze_projector`` (default false: the projector trains, fully, even under LoRA).
    ``learning_rate``: default 2e-4 for LoRA and 2e-5 for full fine-tuning (LLaVA-1.5).
    ``projector_learning_rate``: a separate rate for the projector (LLaVA-1.5 LoRA: 2e-5); ``None``
    uses ``learning_rate``.
    """

    method: str = "lora"
    lora: LoraSettings = field(default_factory=LoraSettings)
    freeze_vision_tower: bool = True
    freeze_projector: bool = False
    learning_rate: Optional[float] = None
    projector_learning_rate: Optional[float] = None
    gradient_checkpointing: bool = False


@dataclass
class TrainingSettings:
    """The loop: everything here maps onto ``transformers.TrainingArguments`` (or TRL's ``SFTConfig``).

    ``trainer``: ``transformers`` (plain ``Trainer``) or ``trl`` (``SFTTrainer``).
    ``resume_from_checkpoint``: ``true``/``"latest"`` (the newest checkpoint in ``output_dir``, if
    any) or a checkpoint folder. ``report_to``: ``auto`` = TensorBoard when installed, W&B when
    installed and configured (``WANDB_PROJECT``/``WANDB_API_KEY``/``WANDB_MODE`` set), or a list.
    ``deepspeed``/``fsdp``/``fsdp_config``: passed through unchanged (multi-GPU sharding).
    ``extra_args``: any other ``TrainingArguments`` field, passed through.
    ``record_ids``: write the ids of the rows each process trained on to
    ``output_dir/record_ids.rank<k>.txt`` (audits of data sharding).
    """

    output_dir: str = ""
    trainer: str = "transformers"
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    per_device_eval_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: Optional[int] = 2
    eval_steps: Optional[int] = None
    seed: int = 42
    resume_from_checkpoint: Union[bool, str, None] = None
    report_to: Union[str, list] = "auto"
    run_name: Optional[str] = None
    dataloader_num_workers: int = 0
    deepspeed: Optional[str] = None
    fsdp: Optional[str] = None
    fsdp_config: Optional[dict] = None
    disable_tqdm: Optional[bool] = None
    save_final: bool = True
    record_ids: bool = False
    extra_args: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    """The whole configuration; build it with :func:`load_config` or :meth:`from_dict`."""

    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "config") -> "TrainConfig":
        cfg = _build(cls, d or {}, where)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def learning_rate(self) -> float:
        if self.finetune.learning_rate is not None:
            return float(self.finetune.learning_rate)
        return 2e-4 if self.finetune.method == "lora" else 2e-5

    def validate(self) -> None:
        """Check values that a dataclass cannot: required keys, choices, consistency."""
        problems = []
        if not self.model.name_or_path:
            problems.append("model.name_or_path is required (a local folder or a Hub id)")
        if not self.data.train:
            problems.append("data.train needs at least one source")
        if not self.training.output_dir:
            problems.append("training.output_dir is required")
        if self.finetune.method not in ("lora", "full"):
            problems.append(f"finetune.method must be 'lora' or 'full', not {self.finetune.method!r}")
        if self.training.trainer not in ("transformers", "trl"):
            problems.append(f"training.trainer must be 'transformers' or 'trl', not {self.training.trainer!r}")
        if self.data.truncation not in ("turns", "drop"):
            problems.append(f"data.truncation must be 'turns' or 'drop', not {self.data.truncation!r}")
        if self.data.streaming and self.training.max_steps <= 0:
            problems.append("data.streaming needs training.max_steps (a stream has no length to count epochs by)")
        if self.data.streaming and self.data.subset_size:
            problems.append("data.subset_size needs the whole dataset to balance it; set data.streaming: false")
        if not 0 <= self.training.warmup_ratio < 1:
            problems.append("training.warmup_ratio must be in [0, 1)")
        if self.data.eval_fraction is not None and not 0 < self.data.eval_fraction < 1:
            problems.append("data.eval_fraction must be between 0 and 1")
        for s in self.data.train + self.data.eval:
            if not s.path and not s.data_dir:
                problems.append("every data source needs a path (a Hub id or a folder)")
            if s.weight <= 0:
                problems.append(f"data source {s.path!r}: weight must be positive")
        if problems:
            raise ConfigError("invalid training configuration:\n  " + "\n  ".join(problems))


_NESTED = {"model": ModelSettings, "data": DataSettings, "finetune": FinetuneSettings,
           "training": TrainingSettings, "lora": LoraSettings}


def _build(cls, d: Any, where: str):
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping, not {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in d if k not in names]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), names, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(hints)}; known: {', '.join(sorted(names))}")
    kwargs = {}
    for k, v in d.items():
        if k in _NESTED and cls is not DataSource:
            kwargs[k] = _build(_NESTED[k], v or {}, f"{where}.{k}")
        elif cls is DataSettings and k in ("train", "eval"):
            kwargs[k] = [_source(x, f"{where}.{k}[{i}]") for i, x in enumerate(v if isinstance(v, list) else [v])]
        else:
            kwargs[k] = _coerce(names[k], v, f"{where}.{k}")
    return cls(**kwargs)


def _source(x, where: str) -> DataSource:
    if isinstance(x, str):
        return DataSource(path=x)
    return _build(DataSource, x, where)


def _coerce(f: dataclasses.Field, v, where: str):
    """Light type checks: numbers written as strings in YAML ("2e-5") become numbers."""
    t = str(f.type)
    if v is None:
        return v
    if t in ("float", "Optional[float]") and isinstance(v, (int, float, str)) and not isinstance(v, bool):
        try:
            return float(v)
        except ValueError:
            raise ConfigError(f"{where} must be a number, not {v!r}") from None
    if t in ("int", "Optional[int]"):
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise ConfigError(f"{where} must be an integer, not {v!r}")
        try:
            return int(v)
        except ValueError:
            raise ConfigError(f"{where} must be an integer, not {v!r}") from None
    if t == "bool" and not isinstance(v, bool):
        raise ConfigError(f"{where} must be true or false, not {v!r}")
    return v


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a config mapping, in place."""
    import yaml

    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"an override must look like section.key=value, not {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = d
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot override {key!r}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return d


def load_config(path, overrides: Optional[list[str]] = None) -> TrainConfig:
    """Read a YAML training configuration; relative data/output paths stay relative to the CWD."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} does not exist")
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    apply_overrides(d, overrides or [])
    return TrainConfig.from_dict(d, where=str(path))
