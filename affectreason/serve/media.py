"""Media parts of a chat request to a `Clip`: inline data URLs and base64 audio written to temporary files,
`file://` URLs only inside the allowed media folder, durations checked before decoding."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from affectreason.engines.wire import b64decode, parse_data_url
from affectreason.errors import AffectReasonError, MediaTooLong
from affectreason.media import Clip, load_clip
from affectreason.serve.limits import Limits, ProtocolError, bad

_AUDIO_FORMATS = {"wav", "mp3", "flac", "ogg", "m4a", "aac", "opus", "webm"}
_VIDEO_MIME_SUFFIX = {
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/avi": ".avi",
}
_AUDIO_MIME_SUFFIX = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/opus": ".opus",
    "audio/webm": ".webm",
}
_MAX_NAME = 255  # one path component, as most file systems allow
_MAX_PATH = 1024


def _local_path(url: str, limits: Limits, param: str) -> Path:
    """A `file://` URL (or bare path) resolved inside the allowed media folder, or a 403."""
    if limits.media_dir is None:
        raise ProtocolError(403, "local files are not served: start the server with --media-dir", param=param)
    raw = unquote(urlparse(url).path) if url.startswith("file:") else url
    if "\x00" in raw or len(raw) > _MAX_PATH or any(len(p) > _MAX_NAME for p in raw.split("/")):
        raise bad(f"{param}: the file name is not a valid path", param)
    root = limits.media_dir.resolve()
    try:
        path = Path(raw).resolve() if Path(raw).is_absolute() else (root / raw).resolve()
        if not path.is_relative_to(root):
            raise ProtocolError(403, f"{param}: the file is outside the allowed media folder", param=param)
        if not path.is_file():
            raise bad(f"{param}: the file does not exist in the media folder", param, status=404)
    except OSError:
        raise bad(f"{param}: the file cannot be opened", param) from None
    return path


class _Media:
    """Materialises media parts as files (temporary for inline data) for `load_clip`."""

    def __init__(self, limits: Limits, tmp: Path) -> None:
        self.limits, self.tmp = limits, tmp

    def _write(self, payload: bytes, suffix: str) -> Path:
        path = self.tmp / f"{uuid.uuid4().hex}{suffix}"
        path.write_bytes(payload)
        return path

    def video(self, part: dict[str, Any]) -> Path:
        url = (part.get("video_url") or {}).get("url") if isinstance(part.get("video_url"), dict) else None
        if not isinstance(url, str) or not url:
            raise bad("video_url.url must be a non-empty string", "video_url")
        if url.startswith("data:"):
            mime, payload = self._decode(url, "video_url")
            if mime not in _VIDEO_MIME_SUFFIX:
                raise bad(
                    f"video_url: the mime type must be one of {', '.join(_VIDEO_MIME_SUFFIX)}", "video_url"
                )
            return self._write(payload, _VIDEO_MIME_SUFFIX[mime])
        return self._url(url, "video_url")

    def audio(self, part: dict[str, Any]) -> Path:
        if part["type"] == "input_audio":
            spec = part.get("input_audio")
            if not isinstance(spec, dict) or not isinstance(spec.get("data"), str):
                raise bad("input_audio must be {data: base64, format: wav|mp3|...}", "input_audio")
            fmt = spec.get("format", "wav")
            if not isinstance(fmt, str) or fmt.lower() not in _AUDIO_FORMATS:
                raise bad(
                    f"input_audio.format must be one of {', '.join(sorted(_AUDIO_FORMATS))}", "input_audio"
                )
            fmt = fmt.lower()
            try:
                payload = b64decode(spec["data"], "input_audio.data")
            except AffectReasonError as exc:
                raise bad(str(exc), "input_audio") from None
            return self._write(payload, f".{fmt}")
        url = (part.get("audio_url") or {}).get("url") if isinstance(part.get("audio_url"), dict) else None
        if not isinstance(url, str) or not url:
            raise bad("audio_url.url must be a non-empty string", "audio_url")
        if url.startswith("data:"):
            mime, payload = self._decode(url, "audio_url")
            if mime not in _AUDIO_MIME_SUFFIX:
                raise bad(
                    f"audio_url: the mime type must be one of {', '.join(_AUDIO_MIME_SUFFIX)}", "audio_url"
                )
            return self._write(payload, _AUDIO_MIME_SUFFIX[mime])
        return self._url(url, "audio_url")

    def _decode(self, url: str, param: str) -> tuple[str, bytes]:
        try:
            return parse_data_url(url)
        except AffectReasonError as exc:
            raise bad(f"{param}: {exc}", param) from None

    def _url(self, url: str, param: str) -> Path:
        if url.startswith(("http://", "https://")):
            raise bad(f"{param}: remote URLs are not fetched; send the media inline as a data URL", param)
        return _local_path(url, self.limits, param)


def _scrub(message: str, *folders: str | Path | None) -> str:
    """A media error without the server's folders in it."""
    for folder in folders:
        if folder:
            message = message.replace(f"{folder}/", "").replace(str(folder), "")
    return message


def decode_clip(media_parts: list[dict[str, Any]], options: dict[str, Any], limits: Limits) -> Clip:
    """The Clip described by a message's media parts: frames (and audio) from the video part, audio from
    an audio part when one is sent (it replaces the video's own track)."""
    videos = [p for p in media_parts if p["type"] == "video_url"]
    audios = [p for p in media_parts if p["type"] != "video_url"]
    if len(videos) > 1 or len(audios) > 1:
        raise bad("send at most one video part and one audio part per request (one clip)", "messages")
    start, end = options["segment"] or (None, None)
    with tempfile.TemporaryDirectory(prefix="affectreason-serve-") as tmp:
        files = _Media(limits, Path(tmp))
        try:
            clip = None
            if videos:
                param = "video_url"
                path = files.video(videos[0])
                clip = load_clip(
                    path,
                    frames=None if options["fps"] else options["frames"],
                    fps=options["fps"],
                    max_frames=options["max_frames"],
                    start=start,
                    end=end,
                    audio=not audios,
                    max_duration=limits.max_duration,
                )
            if audios:
                param = audios[0]["type"]
                path = files.audio(audios[0])
                sound = load_clip(path, frames=None, start=start, end=end, max_duration=limits.max_duration)
                if clip is None:
                    clip = sound
                else:
                    clip.audio = sound.audio
        except ProtocolError:
            raise
        except MediaTooLong as exc:
            raise ProtocolError(
                413,
                f"{param} lasts {exc.duration:.1f} s; this server accepts at most {limits.max_duration:g} s",
                param=param,
            ) from None
        except AffectReasonError as exc:
            raise bad(_scrub(str(exc), tmp, limits.media_dir), "messages") from None
    if clip is None:
        clip = Clip(frames=None, frame_times=np.zeros(0), audio=None, duration=0.0, source="request")
    clip.source = "request"
    clip.transcript = options["transcript"]
    return clip
