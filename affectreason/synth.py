"""Synthetic media written with PyAV: test clips, audio files and emotion-coded clips for learning checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

PitchContour = Callable[[np.ndarray], np.ndarray]
EMOTION_FAMILIES = ("happy", "sad", "angry", "fearful", "surprised", "neutral")
_AUDIO_ENCODERS = {
    ".wav": ("pcm_s16le", "wav"),
    ".m4a": ("aac", "mp4"),
    ".aac": ("aac", "adts"),
    ".mp3": ("libmp3lame", "mp3"),
    ".flac": ("flac", "flac"),
    ".ogg": ("libopus", "ogg"),
    ".opus": ("libopus", "ogg"),
}


def tone(
    duration: float,
    sample_rate: int = 16_000,
    tone_hz: float = 220.0,
    pitch_contour: PitchContour | None = None,
    amplitude: float = 0.3,
) -> np.ndarray:
    """A voiced-like float32 tone (fundamental plus two harmonics); `pitch_contour(t)` gives Hz over time."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    f0 = pitch_contour(t) if pitch_contour is not None else np.full_like(t, tone_hz)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    return (amplitude * wave / 1.75).astype(np.float32)


def _add_audio_stream(container, codec: str, sample_rate: int):
    stream = container.add_stream(codec, rate=sample_rate)
    stream.layout = "mono"
    return stream


def _mux_audio(container, stream, signal: np.ndarray, sample_rate: int) -> None:
    import av

    chunk = 1024
    for k in range(0, len(signal), chunk):
        frame = av.AudioFrame.from_ndarray(signal[None, k : k + chunk], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = k
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _picture(
    i: int, t: float, size: tuple[int, int], colour: Sequence[int] | None, motion: float
) -> np.ndarray:
    """Background colour, a white block in the top-left corner (orientation), a moving square, frame-coded."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = colour if colour is not None else (40, 90, 160)
    img[: max(h // 4, 1), : max(w // 4, 1)] = 255
    side = max(min(w, h) // 4, 1)
    x = int((w - side) * (0.5 + 0.5 * np.sin(2 * np.pi * motion * t)))
    y = (h - side) // 2
    img[y : y + side, x : x + side] = (255 - np.asarray(img[y, x])).clip(0, 255)
    img[-max(h // 8, 1) :, -max(w // 8, 1) :, 1] = (i * 8) % 256  # frame index, readable after decoding
    return img


def write_clip(
    path: str | Path,
    *,
    duration: float = 2.0,
    fps: float = 10,
    size: tuple[int, int] = (64, 48),
    audio: bool = True,
    sample_rate: int = 16_000,
    rotation: int = 0,
    vfr: bool = False,
    tone_hz: float = 220.0,
    pitch_contour: PitchContour | None = None,
    colour: Sequence[int] | None = None,
    motion: float = 0.0,
    codec: str = "h264",
    audio_codec: str = "aac",
    amplitude: float = 0.3,
    frame_fn: Callable[[int, float], np.ndarray] | None = None,
    signal: np.ndarray | None = None,
) -> Path:
    """Write an mp4 (or any container the suffix names) with a `size=(width, height)` picture and a tone.

    `signal` (mono float at `sample_rate`) replaces the tone; the clip then lasts as long as the signal.

    `rotation` stores a display matrix (counter-clockwise degrees, as PyAV's `VideoFrame.rotation` reads it
    back; a phone's portrait video is -90). `vfr` writes irregular frame times. H.264 needs even sizes, so
    odd sizes are written with MPEG-4 Part 2. `frame_fn(i, t)` overrides the picture.
    """
    import av

    path = Path(path)
    w, h = size
    encoder = {"h264": "libx264"}.get(codec, codec)
    if encoder == "libx264" and (w % 2 or h % 2):
        encoder = "mpeg4"
    if signal is not None:
        duration = len(signal) / sample_rate
    n = max(int(round(duration * fps)), 1)
    rng = np.random.default_rng(0)
    steps = rng.uniform(0.4, 1.6, n) if vfr else np.ones(n)
    times = np.concatenate([[0.0], np.cumsum(steps[:-1])]) / fps
    with av.open(str(path), "w") as container:
        vstream = container.add_stream(encoder, rate=int(round(fps)) if not vfr else None)
        vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
        vstream.time_base = vstream.codec_context.time_base = Fraction(1, 1000)
        if encoder == "libx264":
            vstream.options = (
                {"preset": "ultrafast", "tune": "zerolatency"} if vfr else {"preset": "ultrafast"}
            )
        if rotation:
            vstream.set_display_rotation(rotation)
        astream = _add_audio_stream(container, audio_codec, sample_rate) if audio else None
        for i, t in enumerate(times):
            img = frame_fn(i, t) if frame_fn is not None else _picture(i, t, size, colour, motion)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        if astream is not None:
            if signal is None:
                signal = tone(duration, sample_rate, tone_hz, pitch_contour, amplitude)
            _mux_audio(container, astream, np.asarray(signal, np.float32), sample_rate)
    return path


def write_audio(
    path: str | Path,
    duration: float = 2.0,
    sample_rate: int = 16_000,
    tone_hz: float = 220.0,
    *,
    pitch_contour: PitchContour | None = None,
    amplitude: float = 0.3,
    signal: np.ndarray | None = None,
) -> Path:
    """Write an audio-only file (.wav, .m4a, .aac, .mp3, .flac, .ogg, .opus) with a tone or the given float signal."""
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _AUDIO_ENCODERS:
        raise ValueError(f"no audio encoder for {suffix!r}; use one of {sorted(_AUDIO_ENCODERS)}")
    codec, fmt = _AUDIO_ENCODERS[suffix]
    if signal is None:
        signal = tone(duration, sample_rate, tone_hz, pitch_contour, amplitude)
    with av.open(str(path), "w", format=fmt) as container:
        stream = _add_audio_stream(container, codec, sample_rate)
        _mux_audio(container, stream, np.asarray(signal, np.float32), sample_rate)
    return path


def _family_style(family: str, rng: np.random.Generator):
    """Pitch contour (Hz over t), amplitude, colour and motion that carry one emotion family."""
    base = 170.0 * rng.uniform(0.9, 1.1)  # distractor: speaker pitch
    styles = {
        "happy": (lambda t: base * (1.2 + 0.5 * t), 0.35, (235, 200, 40), 2.0),
        "sad": (lambda t: base * (1.0 - 0.35 * t), 0.12, (40, 60, 150), 0.2),
        "angry": (
            lambda t: base * 1.3 * (1 + 0.03 * np.sign(np.sin(2 * np.pi * 9 * t))),
            0.7,
            (200, 30, 30),
            4.0,
        ),
        "fearful": (lambda t: base * 1.5 * (1 + 0.08 * np.sin(2 * np.pi * 12 * t)), 0.2, (90, 40, 120), 3.0),
        "surprised": (lambda t: base * np.where(t < 0.3, 1.0, 1.9), 0.45, (245, 245, 245), 1.0),
        "neutral": (lambda t: np.full_like(t, base), 0.25, (128, 128, 128), 0.0),
    }
    if family not in styles:
        raise ValueError(f"unknown emotion family {family!r}; choose from {', '.join(EMOTION_FAMILIES)}")
    return styles[family]


def write_emotion_clip(
    path: str | Path,
    family: str,
    seed: int,
    *,
    duration: float = 1.0,
    fps: float = 8,
    size: tuple[int, int] = (32, 32),
) -> Path:
    """A clip whose emotion family is carried only by the signal: pitch contour, loudness, colour, motion.

    `seed` adds distractors that do not depend on the family: speaker pitch, colour jitter, motion phase.
    """
    rng = np.random.default_rng(seed)
    contour, amplitude, colour, motion = _family_style(family, rng)
    jitter = rng.integers(-20, 21, 3)
    tinted = tuple(int(c) for c in np.clip(np.asarray(colour) + jitter, 0, 255))
    return write_clip(
        path,
        duration=duration,
        fps=fps,
        size=size,
        pitch_contour=contour,
        colour=tinted,
        motion=motion * rng.uniform(0.8, 1.2),
        amplitude=amplitude * rng.uniform(0.85, 1.15),
    )


def speak(
    text: str,
    *,
    pitch: int = 50,
    rate: int = 175,
    amplitude: int = 100,
    voice: str = "en",
    ssml: bool = False,
) -> np.ndarray:
    """16 kHz speech from the espeak-ng binary at a controlled pitch (-p 0-99), rate (-s wpm) and amplitude
    (-a 0-200); `ssml` reads `text` as SSML (e.g. `<break time="900ms"/>`)."""
    import shutil
    import subprocess
    import tempfile

    from affectreason.media import load_clip

    binary = shutil.which("espeak-ng")
    if binary is None:
        raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        args = ["-v", voice, "-p", str(pitch), "-s", str(rate), "-a", str(amplitude), "-w", str(wav)]
        subprocess.run([binary, *args, *(["-m"] if ssml else []), text], check=True, capture_output=True)
        return load_clip(wav).audio


def write_photo_clip(
    path: str | Path,
    image: np.ndarray,
    *,
    signal: np.ndarray | None = None,
    duration: float = 2.0,
    fps: float = 8,
    shift_px: int = 0,
) -> Path:
    """A clip of a still RGB photograph (even-sized crop), optionally panned `shift_px` pixels per frame."""
    h, w = (s - s % 2 for s in image.shape[:2])
    image = np.ascontiguousarray(image[:h, :w, :3])

    def frame(i: int, t: float) -> np.ndarray:
        return np.roll(image, i * shift_px, axis=1) if shift_px else image

    return write_clip(
        path, duration=duration, fps=fps, size=(w, h), frame_fn=frame, signal=signal, audio=True
    )
