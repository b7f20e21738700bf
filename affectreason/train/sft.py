"""Supervised fine-tuning, top to bottom: seed, data, backbone, LoRA, collator, trl SFTTrainer, artifacts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.train.config import Recipe

log = logging.getLogger("affectreason")


def load_training_backbone(recipe: Any) -> Any:
    """The backbone made trainable (LoRA, or full fine-tuning), on this process's device (the local rank under
    accelerate)."""
    import torch

    from affectreason.backbones import load_backbone
    from affectreason.train.tuning import prepare_for_training

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
    prepare_for_training(backbone, recipe.model, recipe.lora)
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


def build_sft_trainer(recipe: Recipe) -> tuple[Any, Any, list[Any]]:
    """The trl `SFTTrainer`, the LoRA-wrapped backbone and the caption rows, ready to `train()`."""
    import datasets
    from transformers import set_seed
    from trl import SFTTrainer

    from affectreason.train.artifacts import checkpoint_callback
    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.data import load_captions, training_rows

    if not recipe.data.path:
        raise AffectReasonError("the recipe has no data.path: pass data.path=captions.csv")
    set_seed(recipe.args.seed)
    canonical = recipe.data.target_format == "canonical"
    examples = load_captions(recipe.data.path, canonical)
    eval_examples = load_captions(recipe.data.eval_path, canonical) if recipe.data.eval_path else []

    # The model is loaded before the trainer arguments exist, so ZeRO-3 partitions it after loading.
    backbone = load_training_backbone(recipe)
    args = recipe.trainer_args()
    # the collator builds every batch (media included); trl must not tokenise the rows itself
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    collator = MultimodalCollator(backbone, recipe.data, max_length=args.max_length)
    trainer = SFTTrainer(
        model=backbone.model,
        args=args,
        train_dataset=datasets.Dataset.from_list(training_rows(examples)),
        eval_dataset=datasets.Dataset.from_list(training_rows(eval_examples)) if eval_examples else None,
        data_collator=collator,
        processing_class=backbone.processor,
        callbacks=[checkpoint_callback(recipe)],
    )
    if eval_examples:  # EW-F1, hit rate and parse rate beside the eval loss
        from affectreason.train.eval_callback import EmotionEvalCallback

        EmotionEvalCallback.attach(trainer, backbone, eval_examples, recipe.data, collator.prompt)
    return trainer, backbone, examples


def run_sft(recipe: Recipe) -> Path:
    """Train a LoRA adapter on the recipe's captions; returns `output_dir` holding the adapter."""
    from affectreason.train.artifacts import resume_checkpoint, save_artifacts
    from affectreason.train.data import data_summary

    checkpoint = resume_checkpoint(recipe)
    trainer, backbone, examples = build_sft_trainer(recipe)
    metrics = train_clearly(trainer, checkpoint, recipe.data.path)
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    return save_artifacts(trainer, backbone, recipe, data_summary(examples), metrics)
