"""Qwen2.5-Omni thinker: native audio-in-video; its processor pads or truncates audio to a 30 s window."""

from __future__ import annotations

from typing import ClassVar

from affectreason.backbones.base import LANGUAGE_MODEL_LINEAR
from affectreason.backbones.omni import OmniBackbone


class Qwen2_5OmniBackbone(OmniBackbone):
    family: ClassVar[str] = "qwen2_5_omni"
    # A full `qwen2_5_omni` checkpoint (thinker + talker) is loaded as its thinker only.
    model_types: ClassVar[tuple[str, ...]] = ("qwen2_5_omni_thinker", "qwen2_5_omni")
    audio_window_seconds: ClassVar[float | None] = 30.0
    lora_target_modules: ClassVar[str] = LANGUAGE_MODEL_LINEAR
    model_class: ClassVar[str] = "Qwen2_5OmniThinkerForConditionalGeneration"
    thinker_of: ClassVar[str] = "qwen2_5_omni"
