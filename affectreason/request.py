"""The core request type: a decoded clip, a prompt and the modalities the model may see (light layer, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

from affectreason.media import Clip

__all__ = ["ALL_MODALITIES", "Request"]

ALL_MODALITIES: frozenset[str] = frozenset({"video", "audio", "text"})


@dataclass
class Request:
    """One generation request: a decoded clip, the user prompt, and the modalities the model may see.

    `modalities` drives ablations: without "video" no frames reach the model, without "audio" no audio,
    without "text" no transcript. The backbone decides how each is fed (native or textualised).
    """

    clip: Clip
    prompt: str
    modalities: frozenset[str] = field(default_factory=lambda: ALL_MODALITIES)
    adapter: str | None = None
