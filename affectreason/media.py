"""The Clip type and `load_clip`: the one loader that turns a media file into frames, timestamps and 16 kHz audio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Clip:
    """Decoded media: RGB frames `(T,H,W,3) uint8` (None for audio-only), their times, mono 16 kHz audio."""

    frames: np.ndarray | None
    frame_times: np.ndarray
    audio: np.ndarray | None
    duration: float
    source: str = ""
    transcript: str | None = None
    sample_rate: int = SAMPLE_RATE
    start: float = 0.0

    @property
    def id(self) -> str:
        return Path(self.source).stem if self.source else "clip"

    @property
    def has_video(self) -> bool:
        return self.frames is not None and len(self.frames) > 0

    @property
    def has_audio(self) -> bool:
        return self.audio is not None and len(self.audio) > 0


def load_clip(
    path: str | Path,
    *,
    frames: int | None = 16,
    fps: float | None = None,
    max_frames: int = 64,
    max_pixels: int = 360 * 640,
    start: float | None = None,
    end: float | None = None,
    audio: bool = True,
    transcript: str | None = None,
) -> Clip:
    raise NotImplementedError  # being written
