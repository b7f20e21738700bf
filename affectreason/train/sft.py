"""Supervised fine-tuning, top to bottom: seed, data, backbone, LoRA, collator, trl SFTTrainer, artifacts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.train.config import SFTRecipe, TrainSection

log = logging.getLogger("affectreason")


def report_to(value: str | list[str]) -> list[str] | str:
    """`auto`: TensorBoard when installed, W&B when installed and configured (API key or WANDB_MODE)."""
    if value != "auto":
        return value
    import importlib.util

    found = []
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        found.append("tensorboard")
    if importlib.util.find_spec("wandb") and (
        os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")
    ):
        found.append("wandb")
    return found or "none"


def _bf16(value: bool | str) -> bool:
    if value != "auto":
        return bool(value)
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def trainer_arguments(train: TrainSection, num_workers: int) -> dict[str, Any]:
    """trl/transformers training arguments for a recipe's `train` section (shared by every method)."""
    import torch

    return dict(
        output_dir=train.output_dir,
        max_steps=train.max_steps,
        num_train_epochs=train.num_train_epochs,
        learning_rate=train.learning_rate,
        lr_scheduler_type=train.lr_scheduler_type,
        warmup_steps=train.warmup_steps,
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        per_device_train_batch_size=train.per_device_train_batch_size,
        per_device_eval_batch_size=train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        activation_checkpointing=train.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if train.gradient_checkpointing else None,
        bf16=_bf16(train.bf16),
        save_strategy="steps",
        save_steps=train.save_steps,
        save_total_limit=train.save_total_limit,
        logging_steps=train.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if train.eval_steps else "no",
        eval_steps=train.eval_steps,
        seed=train.seed,
        data_seed=train.seed,
        report_to=report_to(train.report_to),
        remove_unused_columns=False,  # the collator needs the media paths
        # more decoding workers than cores only thrashes (the recipes assume a GPU host with many cores)
        dataloader_num_workers=min(num_workers, os.cpu_count() or 1),
        dataloader_pin_memory=torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
    )


def load_training_backbone(recipe: Any) -> Any:
    """The backbone with LoRA applied, on this process's device (the local rank under accelerate)."""
    import torch

    from affectreason.backbones.base import load_backbone
    from affectreason.train.lora import apply_lora

    device = None
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    backbone = load_backbone(
        recipe.model.name_or_path,
        adapter=recipe.model.adapter,
        dtype=recipe.model.dtype,
        quantization=recipe.model.quantization,
        device=device,
        trust_remote_code=recipe.model.trust_remote_code,
    )
    apply_lora(backbone, recipe.lora)
    return backbone


def train_clearly(trainer: Any, checkpoint: str | None, data_path: str) -> dict[str, Any]:
    """`trainer.train()`, with a media error raised in a dataloader worker brought back to one line."""
    try:
        return dict(trainer.train(resume_from_checkpoint=checkpoint).metrics)
    except AffectReasonError as exc:
        # torch re-raises worker errors with the worker's traceback in the message; its last line is ours
        last = str(exc).strip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        message = last.removeprefix(prefix)
        raise type(exc)(f"{message} (check the data first: affectreason data validate {data_path})") from None


def build_sft_trainer(recipe: SFTRecipe) -> tuple[Any, Any, list[Any]]:
    """The trl `SFTTrainer`, the LoRA-wrapped backbone and the caption rows, ready to `train()`."""
    import datasets
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from affectreason.train.artifacts import checkpoint_callback
    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.data import load_captions, training_rows

    if not recipe.data.path:
        raise AffectReasonError("the recipe has no data.path: pass data.path=captions.csv")
    set_seed(recipe.train.seed)
    examples = load_captions(recipe.data.path)
    eval_rows = training_rows(load_captions(recipe.data.eval_path)) if recipe.data.eval_path else None

    # The model is loaded before the trainer arguments exist, so ZeRO-3 partitions it after loading.
    backbone = load_training_backbone(recipe)
    args = SFTConfig(
        **trainer_arguments(recipe.train, recipe.data.num_workers),
        max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True},
    )
    trainer = SFTTrainer(
        model=backbone.model,
        args=args,
        train_dataset=datasets.Dataset.from_list(training_rows(examples)),
        eval_dataset=datasets.Dataset.from_list(eval_rows) if eval_rows else None,
        data_collator=MultimodalCollator(backbone, recipe.data, max_length=recipe.sft.max_length),
        processing_class=backbone.processor,
        callbacks=[checkpoint_callback(recipe)],
    )
    return trainer, backbone, examples


def run_sft(recipe: SFTRecipe) -> Path:
    """Train a LoRA adapter on the recipe's captions; returns `train.output_dir` holding the adapter."""
    from affectreason.train.artifacts import resume_checkpoint, save_artifacts
    from affectreason.train.data import data_summary

    checkpoint = resume_checkpoint(recipe)
    trainer, backbone, examples = build_sft_trainer(recipe)
    metrics = train_clearly(trainer, checkpoint, recipe.data.path)
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    return save_artifacts(trainer, backbone, recipe, data_summary(examples), metrics)
