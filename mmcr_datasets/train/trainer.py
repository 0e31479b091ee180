"""Supervised fine-tuning on MMCR data: :func:`train` (the Python API behind ``mmcr train``).

It wires the pieces together -- model and processor (:mod:`.model`), data (:mod:`.data`),
collator (:mod:`.collator`) -- into the transformers ``Trainer`` or TRL's ``SFTTrainer``, then
saves the result with a small ``mmcr_train.json`` that :func:`load_finetuned` reads back.

Processes and machines: run the same command under ``accelerate launch`` or ``torchrun``; DDP is
set up by transformers (NCCL on GPUs, gloo on CPUs). DeepSpeed and FSDP are enabled by passing
their settings through ``training.deepspeed`` / ``training.fsdp`` + ``training.fsdp_config``
exactly as ``TrainingArguments`` takes them. With ``data.streaming``, each process reads its own
shards (see :mod:`.data`); the dataloader is then *not* re-sharded by accelerate.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import MMCRError, require
from .config import TrainConfig

torch = require("torch", feature="mmcr train", extra="train")
transformers = require("transformers", feature="mmcr train", extra="train")

from .collator import MMCRCollator  # noqa: E402
from .data import build_datasets  # noqa: E402
from .model import (  # noqa: E402
    apply_lora,
    count_parameters,
    freeze_parts,
    load_model,
    load_processor,
    model_parts,
    resolve_formatter,
)

logger = logging.getLogger(__name__)

__all__ = ["train", "TrainResult", "build_trainer", "load_finetuned", "generate_reply", "RUN_FILE"]

RUN_FILE = "mmcr_train.json"


@dataclass
class TrainResult:
    """What a run produced: steps, losses, eval metrics, the saved folder and the collator's counts."""

    global_step: int
    train_loss: Optional[float]
    log_history: list
    eval_metrics: dict = field(default_factory=dict)
    final_dir: Optional[str] = None
    collator_stats: dict = field(default_factory=dict)
    resumed_from: Optional[str] = None
    notes: tuple = ()

    def losses(self) -> list[float]:
        """Training losses in logging order."""
        return [h["loss"] for h in self.log_history if "loss" in h]


def _dist() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _has_accelerator() -> bool:
    if torch.cuda.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


def _report_to(value) -> list[str]:
    if value != "auto":
        return [value] if isinstance(value, str) else list(value)
    import importlib.util

    out = []
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        out.append("tensorboard")
    if importlib.util.find_spec("wandb") and any(os.environ.get(k) for k in ("WANDB_PROJECT", "WANDB_API_KEY", "WANDB_MODE")):
        out.append("wandb")
    return out or ["none"]


def _args_kwargs(cfg: TrainConfig, has_eval: bool, quiet: bool, iterable: bool = False) -> dict:
    t = cfg.training
    kw = dict(
        output_dir=t.output_dir, num_train_epochs=t.num_train_epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps, learning_rate=cfg.learning_rate,
        weight_decay=t.weight_decay, warmup_steps=t.warmup_ratio, lr_scheduler_type=t.lr_scheduler_type,
        max_grad_norm=t.max_grad_norm, logging_steps=t.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=t.save_total_limit, seed=t.seed,
        report_to=_report_to(t.report_to), run_name=t.run_name, dataloader_num_workers=t.dataloader_num_workers,
        remove_unused_columns=False,
        disable_tqdm=quiet if t.disable_tqdm is None else t.disable_tqdm,
        bf16=cfg.model.dtype == "bfloat16" or (cfg.model.dtype == "auto" and torch.cuda.is_available()
                                                and torch.cuda.is_bf16_supported()),
        fp16=cfg.model.dtype == "float16",
    )
    if _dist()[1] > 1 and not _has_accelerator():
        # several processes and no GPU: DDP over gloo on the CPU (accelerate needs to be told)
        kw["use_cpu"] = True
    if iterable:
        # Qwen-style pixel inputs are flat over all images of a batch: accelerate's batch
        # dispatching would slice them by row count, so every process builds its own batches.
        kw["accelerator_config"] = {"dispatch_batches": False}
    if has_eval:
        kw.update(eval_strategy="steps", eval_steps=t.eval_steps or t.save_steps, prediction_loss_only=True)
    if t.deepspeed:
        kw["deepspeed"] = t.deepspeed
    if t.fsdp:
        kw["fsdp"] = t.fsdp
        kw["fsdp_config"] = t.fsdp_config
    if cfg.finetune.gradient_checkpointing:
        kw["gradient_checkpointing"] = True
        kw["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    kw.update(t.extra_args or {})
    return kw


class _MMCRTrainerMixin:
    """Three changes to the stock trainers: a per-process stream is not re-sharded, full-model
    checkpoints resume with their weights, and the projector can have its own learning rate."""

    mmcr_split_by_node: bool = False
    mmcr_projector_lr: Optional[float] = None
    mmcr_projector_prefixes: tuple = ()

    def get_train_dataloader(self):
        if not (self.mmcr_split_by_node and self.args.world_size > 1):
            return super().get_train_dataloader()
        from accelerate.data_loader import prepare_data_loader
        from torch.utils.data import DataLoader

        loader = DataLoader(self.train_dataset, batch_size=self._train_batch_size, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory)
        # The stream was divided with split_dataset_by_node already: prepare it as a single process
        # would, so accelerate moves batches to the device but does not divide the data again.
        loader = prepare_data_loader(loader, device=self.accelerator.device, num_processes=1, process_index=0,
                                     put_on_device=True, dispatch_batches=False)
        self.accelerator._dataloaders.append(loader)
        return loader

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        """Full-model checkpoints are written in the Hub key layout (``save_pretrained`` maps the
        module names of several VLMs back to their original checkpoint names), which a plain
        ``load_state_dict`` does not undo: it would resume from the *base* weights with only a
        warning. Load them the way ``from_pretrained`` does instead."""
        target = model if model is not None else self.model
        unwrapped = self.accelerator.unwrap_model(target)
        ckpt = Path(resume_from_checkpoint)
        has_full = (ckpt / "model.safetensors").is_file() or (ckpt / "model.safetensors.index.json").is_file()
        if (not has_full or self.is_fsdp_enabled or self.is_deepspeed_enabled or hasattr(unwrapped, "peft_config")
                or not hasattr(type(unwrapped), "from_pretrained")):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(unwrapped.parameters()).dtype
        fresh = type(unwrapped).from_pretrained(str(ckpt), dtype=dtype)
        unwrapped.load_state_dict(fresh.state_dict(), strict=True)
        del fresh
        logger.info("loaded the model weights of %s", ckpt)

    def create_optimizer(self, *args, **kwargs):
        if self.mmcr_projector_lr is None or self.optimizer is not None:
            return super().create_optimizer(*args, **kwargs)
        model = self.model
        decay = set(self.get_decay_parameter_names(model))
        groups: dict = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            is_proj = any(f".{q}." in f".{name}" for q in self.mmcr_projector_prefixes)
            lr = self.mmcr_projector_lr if is_proj else self.args.learning_rate
            wd = self.args.weight_decay if name in decay else 0.0
            groups.setdefault((lr, wd), []).append(p)
        params = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
        cls, kw = transformers.Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        kw.pop("lr", None)
        self.optimizer = cls(params, lr=self.args.learning_rate, **kw)
        return self.optimizer


class CollatorReportCallback(transformers.TrainerCallback):
    """Logs the collator's truncation/drop counts at every log step and at the end of training."""

    def __init__(self, collator: MMCRCollator):
        self.collator = collator

    def on_log(self, args, state, control, logs=None, **kwargs):
        s = self.collator.stats
        if logs is not None and "loss" in logs:
            logs["rows_truncated"] = s.truncated_rows
            logs["rows_dropped"] = s.dropped_too_long + s.dropped_no_labels

    def on_train_end(self, args, state, control, **kwargs):
        s = self.collator.stats
        level = logging.WARNING if (s.truncated_rows or s.dropped_too_long or s.dropped_no_labels) else logging.INFO
        logger.log(level, "collator: %s", s.format_text())


def _trainer_classes(kind: str):
    if kind == "trl":
        trl = require("trl", feature="training with TRL's SFTTrainer", extra="train")
        return type("MMCRSFTTrainer", (_MMCRTrainerMixin, trl.SFTTrainer), {}), trl.SFTConfig
    return type("MMCRTrainer", (_MMCRTrainerMixin, transformers.Trainer), {}), transformers.TrainingArguments


def _prepare_model(cfg: TrainConfig):
    m, f = cfg.model, cfg.finetune
    processor = load_processor(m.processor or m.name_or_path, trust_remote_code=m.trust_remote_code)
    model = load_model(m.name_or_path, dtype=m.dtype, attn_implementation=m.attn_implementation,
                       trust_remote_code=m.trust_remote_code)
    formatter = resolve_formatter(model, m.formatter)
    if f.method == "full":
        freeze_parts(model, vision=f.freeze_vision_tower, projector=f.freeze_projector)
    else:
        model = apply_lora(model, f.lora, train_projector=not f.freeze_projector,
                           train_vision=not f.freeze_vision_tower)
    if f.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    trainable, total = count_parameters(model)
    logger.info("%s: %s fine-tuning, %d of %d parameters trainable (%.2f%%), formatter %s", m.name_or_path,
                f.method, trainable, total, 100.0 * trainable / max(total, 1), formatter)
    return model, processor, formatter


def build_trainer(cfg: TrainConfig, *, quiet: bool = False, callbacks=None):
    """``(trainer, collator, data)`` for ``cfg`` without starting to train."""
    rank, world = _dist()
    model, processor, formatter = _prepare_model(cfg)
    data = build_datasets(cfg.data, rank=rank, world_size=world)
    for note in data.notes:
        logger.info("%s", note)
    d = cfg.data
    collator = MMCRCollator(processor, formatter, max_length=d.max_length, truncation=d.truncation,
                            system=cfg.model.system_prompt, literal_tokens=d.literal_tokens,
                            processor_kwargs=cfg.model.processor_kwargs,
                            formatter_options=cfg.model.formatter_options, record_ids=cfg.training.record_ids,
                            max_turns=d.max_turns)
    trainer_cls, args_cls = _trainer_classes(cfg.training.trainer)
    kwargs = _args_kwargs(cfg, data.eval is not None, quiet, iterable=cfg.data.streaming)
    if cfg.training.trainer == "trl":
        kwargs.update(dataset_kwargs={"skip_prepare_dataset": True}, max_length=None)
    args = args_cls(**kwargs)
    trainer = trainer_cls(model=model, args=args, train_dataset=data.train, eval_dataset=data.eval,
                          data_collator=collator, processing_class=processor,
                          callbacks=[CollatorReportCallback(collator)] + list(callbacks or []))
    trainer.mmcr_split_by_node = data.split_by_node
    if cfg.finetune.projector_learning_rate is not None:
        trainer.mmcr_projector_lr = float(cfg.finetune.projector_learning_rate)
        trainer.mmcr_projector_prefixes = tuple(p.rsplit(".", 1)[-1] for p in model_parts(model)["projector"])
    trainer.mmcr_formatter = formatter
    trainer.mmcr_processor = processor
    return trainer, collator, data


def _resume_path(value, output_dir: str) -> Optional[str]:
    if value in (None, False, ""):
        return None
    if value is True or value == "latest":
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if last is None:
            logger.info("no checkpoint in %s yet; starting from the beginning", output_dir)
        return last
    if not Path(value).is_dir():
        raise MMCRError(f"training.resume_from_checkpoint: {value} is not a checkpoint folder")
    return str(value)


def train(cfg: TrainConfig, *, quiet: bool = False, callbacks=None) -> TrainResult:
    """Fine-tune as configured; returns a :class:`TrainResult`. Saves the final adapter/model, the
    processor's tokenizer and ``mmcr_train.json`` to ``output_dir/final`` (main process only)."""
    trainer, collator, data = build_trainer(cfg, quiet=quiet, callbacks=callbacks)
    resume = _resume_path(cfg.training.resume_from_checkpoint, cfg.training.output_dir)
    if resume:
        logger.info("resuming from %s", resume)
    output = trainer.train(resume_from_checkpoint=resume)
    eval_metrics = {}
    if data.eval is not None:
        eval_metrics = trainer.evaluate()
    out_dir = Path(cfg.training.output_dir)
    final_dir = None
    if cfg.training.save_final:
        final_dir = out_dir / "final"
        trainer.save_model(str(final_dir))
        if trainer.is_world_process_zero():
            tok = getattr(trainer.mmcr_processor, "tokenizer", trainer.mmcr_processor)
            tok.save_pretrained(final_dir)
            m = cfg.model
            run = {"base_model": str(m.name_or_path), "processor": str(m.processor or m.name_or_path),
                   "formatter": trainer.mmcr_formatter, "formatter_options": m.formatter_options,
                   "system_prompt": m.system_prompt, "method": cfg.finetune.method, "dtype": m.dtype,
                   "global_step": trainer.state.global_step, "config": cfg.to_dict()}
            (final_dir / RUN_FILE).write_text(json.dumps(run, indent=2, default=str) + "\n")
    if cfg.training.record_ids:
        rank, _ = _dist()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"record_ids.rank{rank}.txt").write_text("".join(f"{i}\n" for i in collator.seen_ids))
    return TrainResult(global_step=trainer.state.global_step, train_loss=getattr(output, "training_loss", None),
                       log_history=list(trainer.state.log_history), eval_metrics=dict(eval_metrics),
                       final_dir=str(final_dir) if final_dir else None, collator_stats=collator.stats.as_dict(),
                       resumed_from=resume, notes=data.notes)


# -- using the result ---------------------------------------------------------------------------

def load_finetuned(path, *, dtype: Optional[str] = None):
    """``(model, processor, formatter)`` from a folder written by :func:`train` (``output_dir/final``).

    A LoRA run is loaded as the base model with its adapter merged in; a full run as is.
    """
    path = Path(path)
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise MMCRError(f"{path} has no {RUN_FILE}; pass the 'final' folder that `mmcr train` wrote")
    run = json.loads(run_file.read_text())
    processor = load_processor(run["processor"])
    dtype = dtype or run.get("dtype", "auto")
    if run["method"] == "lora":
        peft = require("peft", feature="loading a LoRA adapter", extra="train")
        base = load_model(run["base_model"], dtype=dtype)
        model = peft.PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    else:
        model = load_model(str(path), dtype=dtype)
    return model.eval(), processor, run["formatter"]


def generate_reply(model, processor, formatter: str, row: dict, *, max_new_tokens: int = 32,
                   system: Optional[str] = None, **generate_kwargs) -> str:
    """The model's answer to the last user turn of ``row`` (later assistant turns are ignored)."""
    from ..formatters import format_dialogue
    from ..labels import load_image

    messages = list(row["messages"])
    while messages and messages[-1]["role"] != "user":
        messages.pop()
    if not messages:
        raise MMCRError("the row has no user turn to answer")
    prompt_row = dict(row, messages=messages)
    f = format_dialogue(prompt_row, formatter, add_generation_prompt=True, system=system, literal_tokens="escape")
    images = [load_image(i) for i in f.images] or None
    enc = processor(text=[f.text], images=[images] if images else None, add_special_tokens=False,
                    return_tensors="pt")
    enc = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in enc.items()}
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, **generate_kwargs)
    new = out[0, enc["input_ids"].shape[1]:]
    tok = getattr(processor, "tokenizer", processor)
    return tok.decode(new, skip_special_tokens=True)
