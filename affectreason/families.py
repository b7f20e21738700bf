"""What a model family cannot do, known from its `model_type` without importing torch (recipe checks, loading)."""

from __future__ import annotations

import json
from pathlib import Path

# MoE thinkers whose experts are fused 3-D parameters: bitsandbytes quantises nn.Linear layers only, so a
# "4-bit" load would leave most of the weights (29 B of 32 B on Qwen3-Omni-30B-A3B) in full precision.
FUSED_EXPERT_MODEL_TYPES = frozenset({"qwen3_omni_moe", "qwen3_omni_moe_thinker"})
# Hub ids whose config is not on disk yet: the published checkpoints of those families, by name prefix.
_HUB_PREFIXES = {"qwen/qwen3-omni-": "qwen3_omni_moe"}


def model_type_of(name_or_path: str) -> str | None:
    """The `model_type` of a local checkpoint, a cached hub id, or a known hub name; None when unknown offline."""
    config = Path(name_or_path) / "config.json"
    if not config.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name_or_path, "config.json")
        except Exception:  # not a valid repo id: nothing cached under it
            cached = None
        config = Path(cached) if isinstance(cached, str) else config
    if config.is_file():
        try:
            value = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            value = None
        if isinstance(value, str):
            return value
    lowered = name_or_path.lower()
    return next((kind for prefix, kind in _HUB_PREFIXES.items() if lowered.startswith(prefix)), None)


def quantization_refusal(model_type: str, quantization: str | None) -> str | None:
    """Why `quantization` cannot be used on this model type (None when it can)."""
    if quantization is None or model_type not in FUSED_EXPERT_MODEL_TYPES:
        return None
    return (
        f"{model_type} cannot load in {quantization}: bitsandbytes quantises nn.Linear layers only and this "
        "family's MoE experts are fused 3-D parameters, which would stay in full precision; "
        "train it with LoRA in bf16 (model.quantization=null)"
    )
