"""The recipe's shape as data: our sections (model, data, lora, rewards), the training methods and the trl
defaults we set, with no torch or trl import. Read by `train.recipe_checks` and `train.config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class ModelSection:
    """The backbone to fine-tune: a hub id or local checkpoint, optionally an adapter to continue from."""

    name_or_path: str = "Qwen/Qwen2.5-Omni-7B"
    adapter: str | None = None
    dtype: str = "auto"
    quantization: Literal["4bit", "8bit"] | None = None  # "4bit": QLoRA with NF4
    trust_remote_code: bool = False
    finetuning: Literal["lora", "full"] = "lora"  # full: every weight outside the frozen towers trains
    freeze: list[Literal["vision", "audio"]] = field(default_factory=lambda: ["vision", "audio"])


@dataclass
class DataSection:
    """The caption file and how each clip is sampled before it reaches the processor."""

    path: str = ""
    eval_path: str | None = None
    frames: int | None = 8
    fps: float | None = None
    max_frames: int = 64
    max_pixels: int = 360 * 640
    prompt: str = "describe"
    target_format: Literal["any", "canonical"] = "any"  # canonical: every target must already be in it
    eval_max_new_tokens: int = 256  # answer length when the eval set is described during training


@dataclass
class LoraSection:
    """peft LoRA settings; `target_modules: null` uses the backbone's language-model-only default."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


@dataclass
class RewardsSection:
    """GRPO reward functions (registry names or `module:function`); their weights are trl's `reward_weights`."""

    funcs: list[str] = field(default_factory=lambda: ["emotion_wheel", "format"])
    wheel_level: int = 1  # emotion-wheel level the emotion_wheel reward compares at


SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "data": DataSection,
    "lora": LoraSection,
    "rewards": RewardsSection,
}


@dataclass(frozen=True)
class Method:
    """A training method: its trl config class and the sections its recipes carry."""

    config: str  # class name in `trl`
    sections: tuple[str, ...]
    defaults: dict[str, Any]  # where our default differs from trl's (the recipe may still set them)


SHARED_DEFAULTS: dict[str, Any] = {
    "logging_first_step": True,
    "ddp_find_unused_parameters": False,
    "activation_checkpointing_kwargs": {"use_reentrant": False},
    "report_to": "auto",
}
METHODS: dict[str, Method] = {
    # max_length None: keep whole samples; media tokens cannot be cut (the collator refuses such a cut)
    "sft": Method("SFTConfig", ("model", "data", "lora"), {"max_length": None}),
    "grpo": Method(
        "GRPOConfig",
        ("model", "data", "lora", "rewards"),
        {"dataloader_num_workers": 0, "vllm_mode": "colocate"},
    ),
    "dpo": Method(
        "DPOConfig", ("model", "data", "lora"), {"max_length": None, "precompute_ref_log_probs": False}
    ),
}
# Fields the multimodal collators depend on: a recipe may not change them.
FIXED: dict[str, Any] = {"remove_unused_columns": False}
