"""GRPO with emotion-wheel rewards on video + audio: the `grpo` recipe and the `train grpo` entry.

Reads top to bottom: seed, data, backbone, LoRA policy, rewards, trainer, train, save. The trainer itself
(`affectreason.train.grpo_trainer`) carries each clip's media into generation and every log-prob pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.train.config import Recipe, register_recipe


@dataclass
class GRPOSection:
    """Group sampling, the clipped objective and the rewards (names follow trl's GRPOConfig)."""

    num_generations: int = 8  # completions per clip (the group)
    max_completion_length: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.04  # KL coefficient against the reference (the starting policy)
    epsilon: float = 0.2  # clipping range
    epsilon_high: float | None = None
    num_iterations: int = 1
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    rewards: list[str] = field(default_factory=lambda: ["emotion_wheel", "format"])
    reward_weights: list[float] = field(default_factory=lambda: [1.0, 0.5])
    wheel_level: int = 1  # emotion-wheel level the emotion_wheel reward compares at
    use_vllm: bool = False  # vLLM rollouts (Qwen2.5-Omni, GPU, vllm installed), colocated with training
    vllm_gpu_memory_utilization: float = 0.3
    log_completions: bool = False


@dataclass
class GRPORecipe(Recipe):
    grpo: GRPOSection = field(default_factory=GRPOSection)


register_recipe("grpo", GRPORecipe)


def reward_functions(section: GRPOSection) -> list[Any]:
    """trl reward callables for the recipe's rewards (registry names or `module:function`)."""
    from affectreason.train.rewards import trl_reward

    if not section.rewards:
        raise AffectReasonError("grpo.rewards is empty: name at least one reward")
    if len(section.reward_weights) != len(section.rewards):
        raise AffectReasonError(
            f"grpo.reward_weights has {len(section.reward_weights)} values for {len(section.rewards)} rewards"
        )
    options = {"emotion_wheel": {"level": section.wheel_level}}
    return [trl_reward(name, **options.get(name, {})) for name in section.rewards]


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


def train_grpo(recipe: GRPORecipe) -> Path:
    """Run GRPO from a recipe; returns the output folder with the adapter, model card and manifest."""
    import json

    import datasets
    from transformers import set_seed
    from trl import GRPOConfig

    from affectreason.prompts import load_prompt
    from affectreason.train.artifacts import save_artifacts
    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.data import data_summary, load_captions
    from affectreason.train.grpo_trainer import MultimodalGRPOTrainer
    from affectreason.train.sft import load_training_backbone, resume_checkpoint, trainer_arguments

    section = recipe.grpo
    set_seed(recipe.train.seed)
    prompt = load_prompt(recipe.data.prompt).text
    rewards = reward_functions(section)
    examples = load_captions(_data_path(recipe))
    dataset = datasets.Dataset.from_list(rl_rows(examples, prompt))
    checkpoint = resume_checkpoint(recipe.train)
    # An existing adapter (e.g. from SFT) is trained further; trl copies it to a frozen `ref` adapter for the KL term.
    backbone = load_training_backbone(recipe)
    args = GRPOConfig(
        **trainer_arguments(recipe.train, num_workers=0),
        num_generations=section.num_generations,
        max_completion_length=section.max_completion_length,
        temperature=section.temperature,
        top_p=section.top_p,
        beta=section.beta,
        epsilon=section.epsilon,
        epsilon_high=section.epsilon_high,
        num_iterations=section.num_iterations,
        loss_type=section.loss_type,
        scale_rewards=section.scale_rewards,
        reward_weights=section.reward_weights,
        use_vllm=section.use_vllm,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=section.vllm_gpu_memory_utilization,
        log_completions=section.log_completions,
        generation_kwargs={"suppress_tokens": backbone.suppress_token_ids()},
    )
    trainer = MultimodalGRPOTrainer(
        model=backbone.model,
        args=args,
        reward_funcs=rewards,
        train_dataset=dataset,
        processing_class=backbone.processor,
        backbone=backbone,
        collator=MultimodalCollator(backbone, recipe.data, prompt=prompt, response_key=None),
    )
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
