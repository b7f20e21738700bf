"""Session-scoped tiny random backbones of every family, built with `build_tiny_checkpoint` like `tiny-model`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FAMILIES = {
    "qwen2_5_omni": "qwen2_5_omni",
    "qwen3_omni": "qwen3_omni",
    "qwen_vl": "qwen2_5_vl",
    "llava": "llava_next_video",
}


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Fixture name → checkpoint folder, one per family (built once per session)."""
    from affectreason.backbones.tiny import build_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny-models")
    return {name: build_tiny_checkpoint(family, root / family) for name, family in FAMILIES.items()}


@pytest.fixture(scope="session")
def tiny_qwen2_5_omni(tiny_checkpoints) -> Path:
    return tiny_checkpoints["qwen2_5_omni"]


@pytest.fixture(scope="session")
def tiny_qwen3_omni(tiny_checkpoints) -> Path:
    return tiny_checkpoints["qwen3_omni"]


@pytest.fixture(scope="session")
def tiny_qwen_vl(tiny_checkpoints) -> Path:
    return tiny_checkpoints["qwen_vl"]


@pytest.fixture(scope="session")
def tiny_llava(tiny_checkpoints) -> Path:
    return tiny_checkpoints["llava"]


@pytest.fixture(scope="session")
def loaded_backbones(tiny_checkpoints) -> dict:
    """Fixture name → loaded Backbone (fp32 on CPU), shared by the session; do not modify the models."""
    from affectreason.backbones import load_backbone

    return {name: load_backbone(str(path), device="cpu") for name, path in tiny_checkpoints.items()}


@pytest.fixture(scope="module")
def engine(tiny_qwen2_5_omni):
    """The in-process HF engine (batch 8) on its own tiny Qwen2.5-Omni, per test module: what the server tests serve."""
    from affectreason.backbones import load_backbone
    from affectreason.engines.hf import HFEngine

    return HFEngine(load_backbone(str(tiny_qwen2_5_omni), device="cpu"), batch_size=8)


@pytest.fixture(params=sorted(FAMILIES))
def any_backbone(request, loaded_backbones):
    """Each family's loaded backbone in turn."""
    return loaded_backbones[request.param]


@pytest.fixture
def make_clip():
    """Build a Clip from random arrays: `make_clip(frames=4, seconds=2.0, audio=True, video=True, transcript=...)`."""
    from affectreason.media import Clip

    rng = np.random.default_rng(0)

    def make(
        frames: int = 4,
        seconds: float = 2.0,
        audio: bool = True,
        video: bool = True,
        transcript: str | None = "I can't believe it, thank you so much!",
        size: tuple[int, int] = (48, 64),
    ) -> Clip:
        pixels = rng.integers(0, 255, (frames, *size, 3), dtype=np.uint8) if video else None
        times = np.linspace(0.0, seconds, frames, endpoint=False) if video else np.zeros(0)
        t = np.arange(int(16_000 * seconds)) / 16_000
        sound = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        return Clip(
            frames=pixels,
            frame_times=times,
            audio=sound if audio else None,
            duration=seconds,
            transcript=transcript,
            source="clip.mp4",
        )

    return make
