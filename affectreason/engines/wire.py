"""The HTTP wire contract shared by the client engine and the server: clips as OpenAI content parts.

A clip travels as at most one video part and one audio part, in the forms `vllm serve` accepts too:

- video: ``{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,..."}}``: the sampled frames
  re-encoded as a small H.264 mp4 at their own frame rate (or a ``file://`` URL inside the server's media dir);
- audio: ``{"type": "input_audio", "input_audio": {"data": "<base64 wav>", "format": "wav"}}``: the clip's
  16 kHz mono track as its own part, because `vllm serve` does not take audio out of a video part.

Options the OpenAI schema has no field for travel in the request's extra top-level `affectreason` object.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from fractions import Fraction
from typing import Any

import numpy as np

from affectreason.errors import AffectReasonError
from affectreason.media import Clip
from affectreason.request import Request

EXTRA_FIELD = "affectreason"


def encode_mp4(frames: np.ndarray, frame_times: np.ndarray) -> bytes:
    """Frames `(T,H,W,3) uint8` as an H.264 mp4 whose constant frame rate spans their timestamps."""
    import av

    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise AffectReasonError(f"cannot encode frames of shape {tuple(frames.shape)} as video")
    # yuv420p needs even sides: repeat the last row/column rather than resample.
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    span = float(frame_times[-1] - frame_times[0]) if len(frame_times) > 1 else 0.0
    fps = (len(frames) - 1) / span if span > 0 else 1.0
    rate = Fraction(min(max(fps, 0.01), 240.0)).limit_denominator(1000)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for image in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24"))
            )
        container.mux(stream.encode(None))
    return buffer.getvalue()


def encode_wav(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio in [-1, 1] as a 16-bit PCM wav."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def data_url(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def b64decode(text: str, what: str) -> bytes:
    """Strict base64 (whitespace tolerated); a one-line AffectReasonError naming `what` otherwise."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise AffectReasonError(f"{what} is not valid base64") from None


def parse_data_url(url: str) -> tuple[str, bytes]:
    """`data:<mime>;base64,<payload>` -> (mime, bytes)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise AffectReasonError("a data URL must look like data:<mime>;base64,<payload>")
    return header[5:-7].lower(), b64decode(payload, "the data URL payload")


def clip_parts(clip: Clip, modalities: frozenset[str]) -> list[dict[str, Any]]:
    """The video and audio content parts for a decoded clip (only the modalities asked for)."""
    parts: list[dict[str, Any]] = []
    if "video" in modalities and clip.has_video:
        video = encode_mp4(clip.frames, clip.frame_times)
        parts.append({"type": "video_url", "video_url": {"url": data_url("video/mp4", video)}})
    if "audio" in modalities and clip.has_audio:
        audio = base64.b64encode(encode_wav(clip.audio, clip.sample_rate)).decode("ascii")
        parts.append({"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}})
    return parts


def chat_body(request: Request, user_text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The `messages` for one request and its `affectreason` options (the frame count sent, so a server
    samples back exactly those frames, and the modalities)."""
    content = [*clip_parts(request.clip, request.modalities), {"type": "text", "text": user_text}]
    options: dict[str, Any] = {"modalities": sorted(request.modalities)}
    if "video" in request.modalities and request.clip.has_video:
        options["frames"] = len(request.clip.frames)
    return [{"role": "user", "content": content}], options
