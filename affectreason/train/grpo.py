"""GRPO with emotion-wheel rewards on video + audio: the `grpo` recipe and the `train grpo` entry.

Reads top to bottom: seed, data, backbone, LoRA policy, rewards, trainer, train, save. The trainer itself
(`affectreason.train.grpo_trainer`) carries each clip's media into generation and every log-prob pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.train.config import Recipe


def reward_functions(recipe: Recipe) -> list[Any]:
    """trl reward callables for the recipe's `rewards.funcs` (registry names or `module:function`)."""
    from affectreason.train.rewards import trl_reward

    section = recipe.rewards
    weights = recipe.args.reward_weights
    if not section.funcs:
        raise AffectReasonError("rewards.funcs is empty: name at least one reward")
    if weights is not None and len(weights) != len(section.funcs):
        raise AffectReasonError(f"reward_weights has {len(weights)} values for {len(section.funcs)} rewards")
    options = {"emotion_wheel": {"level": section.wheel_level}}
    return [trl_reward(name, **options.get(name, {})) for name in section.funcs]


def rl_rows(examples: list[Any], prompt: str) -> list[dict[str, Any]]:
    """Dataset rows for GRPO: media paths, the prompt, and the reference fields the rewards read."""
    from affectreason.train.rewards import reference_of

    rows = []
    for example in examples:
        reference = reference_of(example)
        if not reference["emotions"]:
            raise AffectReasonError(f"row {example.row} ({example.id}): GRPO needs reference emotions")
        rows.append(
            {
                "id": example.id,
                "video": example.video,
                "audio": example.audio,
                "subtitle": example.subtitle,
                "prompt": prompt,
                **reference,
            }
        )
    return rows


def reward_curves(log_history: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-step reward means (per function and total), KL and parse rate from the trainer's log history."""
    keys = [k for k in dict.fromkeys(k for row in log_history for k in row) if k.startswith("rewards/")]
    keys += ["reward", "reward_group_std", "kl", "completions/parse_rate", "completions/mean_length"]
    return {
        k: [row[k] for row in log_history if k in row] for k in keys if any(k in row for row in log_history)
    }


def curve_summary(curves: dict[str, list[float]], points: int = 5) -> dict[str, str]:
    """Short `first → … → last` renderings of the curves for the model card."""
    out = {}
    for key, values in curves.items():
        if key.endswith("/std") or not values:
            continue
        step = max(1, (len(values) - 1) // (points - 1))
        picked = values[::step][: points - 1] + [values[-1]]
        # a step where a reward returned None for every completion logs None (e.g. no checkable cue)
        out[f"curve {key}"] = " → ".join("n/a" if v is None else f"{v:.3g}" for v in picked)
    return out


def build_grpo_trainer(recipe: Recipe) -> tuple[Any, Any, list[Any]]:
    """The multimodal GRPO trainer, the LoRA-wrapped backbone and the caption rows, ready to `train()`."""
    import datasets
    from transformers import set_seed

    from affectreason.prompts import load_prompt
    from affectreason.train.artifacts import checkpoint_callback
    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.data import load_captions
    from affectreason.train.grpo_trainer import MultimodalGRPOTrainer, vllm_suppression
    from affectreason.train.sft import load_training_backbone

    set_seed(recipe.args.seed)
    prompt = load_prompt(recipe.data.prompt).text
    rewards = reward_functions(recipe)
    examples = load_captions(_data_path(recipe))
    dataset = datasets.Dataset.from_list(rl_rows(examples, prompt))
    eval_examples = load_captions(recipe.data.eval_path) if recipe.data.eval_path else []
    # An existing adapter (e.g. from SFT) is trained further; trl copies it to a frozen `ref` adapter for the KL term.
    backbone = load_training_backbone(recipe)
    args = recipe.trainer_args()
    # a random or young policy samples media placeholder tokens, which break the next forward; trl hands these
    # to HF generate or to vLLM's SamplingParams, whichever samples
    suppressed = backbone.suppress_token_ids()
    args.generation_kwargs = {
        **(args.generation_kwargs or {}),
        **(vllm_suppression(suppressed) if args.use_vllm else {"suppress_tokens": suppressed}),
    }
    trainer = MultimodalGRPOTrainer(
        model=backbone.model,
        args=args,
        reward_funcs=rewards,
        train_dataset=dataset,
        eval_dataset=datasets.Dataset.from_list(rl_rows(eval_examples, prompt)) if eval_examples else None,
        processing_class=backbone.processor,
        backbone=backbone,
        collator=MultimodalCollator(backbone, recipe.data, prompt=prompt, response_key=None),
        callbacks=[checkpoint_callback(recipe)],
    )
    if eval_examples:  # EW-F1, hit rate and parse rate beside trl's eval rewards
        from affectreason.train.eval_callback import EmotionEvalCallback

        EmotionEvalCallback.attach(trainer, backbone, eval_examples, recipe.data, prompt)
    return trainer, backbone, examples


def train_grpo(recipe: Recipe) -> Path:
    """Run GRPO from a recipe; returns the output folder with the adapter, model card and manifest."""
    import json

    from affectreason.train.artifacts import resume_checkpoint, save_artifacts
    from affectreason.train.data import data_summary

    checkpoint = resume_checkpoint(recipe)
    trainer, backbone, examples = build_grpo_trainer(recipe)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    curves = reward_curves(trainer.state.log_history)
    out = save_artifacts(
        trainer, backbone, recipe, data_summary(examples), {**result.metrics, **curve_summary(curves)}
    )
    if trainer.is_world_process_zero():
        (out / "reward_curves.json").write_text(json.dumps(curves, indent=1) + "\n", encoding="utf-8")
    return out


def _data_path(recipe: Recipe) -> str:
    if not recipe.data.path:
        raise AffectReasonError("the recipe has no data.path: pass data.path=labels.csv")
    return recipe.data.path
