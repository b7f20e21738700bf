"""Session-scoped media fixtures: real files written with PyAV (good, odd, rotated, broken)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectreason import synth


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_av(media_dir) -> Path:
    """2 s, 64x48 at 10 fps, H.264 + AAC 220 Hz tone."""
    return synth.write_clip(media_dir / "av.mp4")


@pytest.fixture(scope="session")
def clip_silent(media_dir) -> Path:
    """Video with no audio track."""
    return synth.write_clip(media_dir / "silent.mp4", audio=False)


@pytest.fixture(scope="session")
def audio_wav(media_dir) -> Path:
    return synth.write_audio(media_dir / "tone.wav")


@pytest.fixture(scope="session")
def audio_m4a(media_dir) -> Path:
    return synth.write_audio(media_dir / "tone.m4a")


@pytest.fixture(scope="session")
def audio_mp3(media_dir) -> Path:
    return synth.write_audio(media_dir / "tone.mp3")


@pytest.fixture(scope="session")
def clip_rotated(media_dir) -> Path:
    """Stored landscape 64x48 with a display matrix that shows it portrait (a phone's rotate=90)."""
    return synth.write_clip(media_dir / "rotated.mp4", rotation=-90)


@pytest.fixture(scope="session")
def clip_odd(media_dir) -> Path:
    """Odd dimensions, 65x49."""
    return synth.write_clip(media_dir / "odd.mp4", size=(65, 49))


@pytest.fixture(scope="session")
def clip_vfr(media_dir) -> Path:
    """Irregular frame times."""
    return synth.write_clip(media_dir / "vfr.mp4", vfr=True)


@pytest.fixture(scope="session")
def clip_one_frame(media_dir) -> Path:
    return synth.write_clip(media_dir / "one_frame.mp4", duration=0.1)


@pytest.fixture(scope="session")
def clip_long(media_dir) -> Path:
    """40 s (longer than Qwen2.5-Omni's 30 s audio window), tiny and at 2 fps so it writes fast."""
    return synth.write_clip(media_dir / "long.mp4", duration=40.0, fps=2, size=(32, 24))


@pytest.fixture(scope="session")
def truncated_file(media_dir, clip_av) -> Path:
    """A real mp4 cut in half."""
    data = clip_av.read_bytes()
    path = media_dir / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="session")
def not_media_file(media_dir) -> Path:
    path = media_dir / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 20)
    return path


@pytest.fixture(scope="session")
def empty_file(media_dir) -> Path:
    path = media_dir / "empty.mp4"
    path.write_bytes(b"")
    return path


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """A folder with three good clips of different emotion families."""
    folder = tmp_path_factory.mktemp("clips")
    for i, family in enumerate(("happy", "sad", "neutral")):
        synth.write_emotion_clip(folder / f"clip{i}_{family}.mp4", family, seed=i)
    return folder
