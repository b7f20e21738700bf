"""Shared logic of the Qwen omni thinkers: native audio, interleaved with the video when both are present."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from affectreason.backbones.base import Backbone, Media, clip_fps
from affectreason.errors import AffectReasonError
from affectreason.request import Request

if TYPE_CHECKING:
    from transformers import BatchFeature


class OmniBackbone(Backbone):
    """A Qwen omni thinker: frames and 16 kHz audio go to the model as they are (audio-in-video layout)."""

    native_audio: ClassVar[bool] = True
    # Audio features are padded per sample to its own clip; a batch pads them again to its longest.
    pad_keys: ClassVar[frozenset[str]] = frozenset({"input_features", "feature_attention_mask"})
    tower_paths: ClassVar[dict[str, str]] = {"vision": "model.visual", "audio": "model.audio_tower"}

    def media(self, request: Request) -> Media:
        clip, allowed = request.clip, request.modalities
        with_video = "video" in allowed and clip.has_video
        with_audio = "audio" in allowed and clip.has_audio
        if with_audio and clip.sample_rate != self.processor.feature_extractor.sampling_rate:
            raise AffectReasonError(
                f"audio must be sampled at {self.processor.feature_extractor.sampling_rate} Hz, "
                f"got {clip.sample_rate} Hz"
            )
        parts: list[dict[str, str]] = []
        if with_video:
            parts.append({"type": "video"})  # its audio track is interleaved in the same placeholder
        elif with_audio:
            parts.append({"type": "audio"})
        return Media(
            parts=parts + self.text_parts(request),
            frames=clip.frames if with_video else None,
            fps=clip_fps(clip.frame_times, clip.duration) if with_video else None,
            audio=np.asarray(clip.audio, dtype=np.float32) if with_audio else None,
            audio_in_video=with_video and with_audio,
            duration=clip.duration,
        )

    def batch_key(self, request: Request) -> bool:
        return self.media(request).audio_in_video

    def align_batch(self, media: list[Media]) -> list[Media]:
        """The model takes one audio-in-video flag per batch: give silent videos a silent track when mixed."""
        if not any(m.audio_in_video for m in media):
            return media
        sample_rate = self.processor.feature_extractor.sampling_rate
        for m in media:
            if m.frames is not None and not m.audio_in_video:
                seconds = m.duration or len(m.frames) / (m.fps or 1.0)
                m.audio = np.zeros(max(int(seconds * sample_rate), sample_rate // 10), dtype=np.float32)
                m.audio_in_video = True
        return media

    def process_one(self, text: str, media: Media) -> BatchFeature:
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if media.frames is not None:
            kwargs["videos"] = [media.frames]
            kwargs["videos_kwargs"] = self.video_kwargs(media.frames, media.fps)
        if media.audio is not None:
            kwargs["audio"] = [media.audio]
            kwargs["audio_kwargs"] = self.audio_kwargs(media.audio)
        if media.audio_in_video:
            kwargs.update(load_audio_from_video=True, audio_from_video_indices=[0])
        batch = self.processor(text=[text], **kwargs)
        batch["use_audio_in_video"] = media.audio_in_video
        return batch

    def audio_kwargs(self, audio: np.ndarray) -> dict[str, Any]:
        """Extra feature-extractor arguments for one clip's audio (none: the processor's own padding)."""
        return {}

    def collate(self, samples: list[BatchFeature], padding_side: str) -> BatchFeature:
        """One padded batch; the samples are left as they are (a trainer may collate them again)."""
        flags = [bool(s.get("use_audio_in_video", False)) for s in samples]
        if any(flags) and any("video_grid_thw" in s and not f for s, f in zip(samples, flags, strict=True)):
            raise AffectReasonError(
                "a silent video cannot share a batch with audio-in-video clips unless align_batch gave it a track"
            )
        rest = [{k: v for k, v in s.items() if k != "use_audio_in_video"} for s in samples]
        batch = super().collate(rest, padding_side)
        if any(flags):
            batch["use_audio_in_video"] = True  # align_batch made the layout uniform
        return batch

    def placeholder_token_names(self) -> tuple[str, ...]:
        return (
            "image_token",
            "video_token",
            "audio_token",
            "vision_bos_token",
            "vision_eos_token",
            "audio_bos_token",
            "audio_eos_token",
        )

    def vllm_processor_kwargs(self, media: Media) -> dict[str, Any]:
        kwargs = super().vllm_processor_kwargs(media)
        if media.audio_in_video:
            kwargs["use_audio_in_video"] = True
        return kwargs
