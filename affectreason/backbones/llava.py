"""LLaVA-NeXT-Video (a LLaMA language model): video-only; the audio reaches it as text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from affectreason.backbones.base import LANGUAGE_MODEL_LINEAR, Backbone, Media
from affectreason.engines.base import Request
from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from transformers import BatchFeature


class LlavaNextVideoBackbone(Backbone):
    family: ClassVar[str] = "llava_next_video"
    model_types: ClassVar[tuple[str, ...]] = ("llava_next_video",)
    native_audio: ClassVar[bool] = False
    lora_target_modules: ClassVar[str] = LANGUAGE_MODEL_LINEAR
    model_class: ClassVar[str] = "LlavaNextVideoForConditionalGeneration"
    tower_paths: ClassVar[dict[str, str]] = {"vision": "model.vision_tower"}

    def batch_key(self, request: Request) -> Any:
        """Frame tensors are stacked per batch, so clips in one batch share their frame count."""
        media = self.media(request)
        return None if media.frames is None else len(media.frames)

    def process_one(self, text: str, media: Media) -> BatchFeature:
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if media.frames is not None:
            kwargs["videos"] = [media.frames]
            kwargs["videos_kwargs"] = {"do_sample_frames": False}
        return self.processor(text=[text], **kwargs)

    def vllm_processor_kwargs(self, media: Media) -> dict[str, Any]:
        """The HF path's video kwargs: the loader's frames as they are (the processor fixes the size)."""
        return {} if media.frames is None else {"do_sample_frames": False}

    def collate(self, samples: list[BatchFeature], padding_side: str) -> BatchFeature:
        counts = {s["pixel_values_videos"].shape[1] for s in samples if "pixel_values_videos" in s}
        if len(counts) > 1:
            raise AffectReasonError(
                f"{self.family} batches need clips with the same number of frames, got {sorted(counts)}"
            )
        return super().collate(samples, padding_side)
