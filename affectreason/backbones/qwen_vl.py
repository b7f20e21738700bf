"""Qwen2.5-VL: video-only; the audio reaches it as text (transcript and model-free acoustic descriptors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from affectreason.backbones.base import LANGUAGE_MODEL_LINEAR, Backbone, Media

if TYPE_CHECKING:
    from transformers import BatchFeature


class QwenVLBackbone(Backbone):
    family: ClassVar[str] = "qwen2_5_vl"
    model_types: ClassVar[tuple[str, ...]] = ("qwen2_5_vl",)
    native_audio: ClassVar[bool] = False
    lora_target_modules: ClassVar[str] = LANGUAGE_MODEL_LINEAR
    model_class: ClassVar[str] = "Qwen2_5_VLForConditionalGeneration"
    tower_paths: ClassVar[dict[str, str]] = {"vision": "model.visual"}

    def process_one(self, text: str, media: Media) -> BatchFeature:
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if media.frames is not None:
            kwargs["videos"] = [media.frames]
            kwargs["videos_kwargs"] = {
                **self.video_kwargs(media.frames, media.fps),
                # Temporal positions come from the metadata's frame rate (24 fps when it is absent).
                "video_metadata": [{"total_num_frames": len(media.frames), "fps": media.fps}],
            }
        return self.processor(text=[text], **kwargs)

    def placeholder_token_names(self) -> tuple[str, ...]:
        return ("image_token", "video_token", "vision_start_token", "vision_end_token")
