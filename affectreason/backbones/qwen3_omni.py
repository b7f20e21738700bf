"""Qwen3-Omni-MoE thinker: native audio-in-video with dynamic audio padding (no fixed audio window).

LoRA: the MoE experts are fused 3-D parameters that `target_modules` cannot reach, so the regex adapts the
language model's attention projections; peft's `target_parameters` can add the experts when needed.
The same fused experts are why 4-/8-bit loading is refused: bitsandbytes quantises `nn.Linear` only, so the
experts (~29 B of the 30B-A3B's parameters) would stay in bf16 and "QLoRA" would save almost nothing.
"""

from __future__ import annotations

from typing import ClassVar

from affectreason.backbones.base import LANGUAGE_MODEL_ATTENTION
from affectreason.backbones.omni import OmniBackbone


class Qwen3OmniBackbone(OmniBackbone):
    family: ClassVar[str] = "qwen3_omni"
    model_types: ClassVar[tuple[str, ...]] = ("qwen3_omni_moe_thinker", "qwen3_omni_moe")
    audio_window_seconds: ClassVar[float | None] = None
    lora_target_modules: ClassVar[str] = LANGUAGE_MODEL_ATTENTION
    model_class: ClassVar[str] = "Qwen3OmniMoeThinkerForConditionalGeneration"
    thinker_of: ClassVar[str] = "qwen3_omni_moe"
