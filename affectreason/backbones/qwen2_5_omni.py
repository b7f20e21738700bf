"""Qwen2.5-Omni thinker: native audio-in-video; its processor pads or truncates audio to a 30 s window."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

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

    def audio_kwargs(self, audio: np.ndarray) -> dict[str, Any]:
        """Zero-pad a short clip to its own length plus one analysis window, not to the 30 s window.

        The model reads only the frames under `feature_attention_mask`, and those are bit-identical to the 30 s
        padding's: every frame touching the audio still sees zeros after it, so the log-mel maximum (and the
        clamp it sets) is unchanged. A 2 s clip's features cost 1 ms instead of 9 and are 15x smaller."""
        extractor = self.processor.feature_extractor
        hop, window = extractor.hop_length, extractor.n_fft
        padded = -(-(len(audio) + window) // hop) * hop
        return {"max_length": min(padded, extractor.n_samples)}
