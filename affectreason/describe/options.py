"""`DescribeOptions`: how clips are sampled and decoded and which prompt asks, checked before any model loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from affectreason.decoding import SamplingParams
from affectreason.errors import AffectReasonError
from affectreason.media import TRANSCRIPT_SUFFIXES


@dataclass
class DescribeOptions:
    """How clips are sampled and decoded, and which prompt is used; checked when made (before any model loads)."""

    frames: int | None = 16
    fps: float | None = None
    max_frames: int = 64
    max_pixels: int = 360 * 640
    segment: float | None = None
    subtitle: str | None = None
    prompt: str = "describe"
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    seed: int | None = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        checks = (
            ("frames", self.frames is None or self.frames >= 1, "at least 1"),
            ("fps", self.fps is None or self.fps > 0, "above 0"),
            ("max-frames", self.max_frames >= 1, "at least 1"),
            ("max-pixels", self.max_pixels >= 1, "at least 1"),
            ("segment", self.segment is None or self.segment > 0, "a positive number of seconds"),
            ("batch-size", self.batch_size >= 1, "at least 1"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise AffectReasonError(
                    f"--{name} must be {expected}, got {getattr(self, name.replace('-', '_'))}"
                )
        check_subtitle(self.subtitle)
        self.sampling()

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            **{f.name: getattr(self, f.name) for f in fields(SamplingParams) if hasattr(self, f.name)}
        )

    def decoding(self) -> dict[str, Any]:
        """The decoding parameters recorded with every prediction."""
        return self.sampling().record()

    def with_decoding(self, settings: dict[str, Any], where: str = "generation_kwargs") -> DescribeOptions:
        """These options with decoding `settings` applied (a suite's `generation_kwargs`, or explicit flags)."""
        updated = asdict(self.sampling().updated(settings, where))
        return replace(self, **{k: v for k, v in updated.items() if hasattr(self, k)})


def check_subtitle(value: str | None) -> None:
    """A `--subtitle` value that names a file (a transcript suffix or a folder in it) must exist; otherwise
    the path itself would silently become the transcript."""
    if value is None:
        return
    path = Path(value)
    separator = any(sep in value for sep in ("/", "\\")) and not any(c.isspace() for c in value)
    looks_like_path = path.suffix.lower() in TRANSCRIPT_SUFFIXES or separator
    if looks_like_path and "\n" not in value and len(value) < 4096 and not path.is_file():
        raise AffectReasonError(
            f"subtitle file not found: '{value}' (pass the transcript text itself, or an existing file)"
        )
