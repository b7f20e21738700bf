"""Synthetic media writers: what they write reads back with the properties asked for."""

from __future__ import annotations

import av
import numpy as np
import pytest

from affectreason import synth
from affectreason.acoustics import acoustic_descriptors
from affectreason.media import load_clip


def test_write_clip_streams_and_rotation_matrix(tmp_path):
    path = synth.write_clip(tmp_path / "r.mp4", duration=1.0, fps=10, size=(64, 48), rotation=-90)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 64, 48)
        assert audio.codec_context.name == "aac" and audio.sample_rate == 16_000
        first = next(container.decode(video))
        assert first.rotation == -90  # the display matrix is in the file
        assert sum(1 for _ in container.decode(video)) + 1 == 10


def test_odd_size_is_written(tmp_path):
    path = synth.write_clip(tmp_path / "odd.mp4", size=(65, 49), audio=False)
    with av.open(str(path)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (65, 49)


@pytest.mark.parametrize("suffix", [".wav", ".m4a", ".mp3", ".flac", ".ogg"])
def test_write_audio_formats_carry_the_tone(tmp_path, suffix):
    clip = load_clip(synth.write_audio(tmp_path / f"a{suffix}", tone_hz=150.0))
    assert acoustic_descriptors(clip.audio)["pitch_hz"] == pytest.approx(150.0, rel=0.03)


def test_write_audio_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="no audio encoder"):
        synth.write_audio(tmp_path / "a.xyz")


def test_pitch_contour_is_followed(tmp_path):
    path = synth.write_clip(tmp_path / "glide.mp4", pitch_contour=lambda t: 120.0 * 2**t, audio_codec="aac")
    audio = load_clip(path, frames=None).audio
    early = acoustic_descriptors(audio[:8000])["pitch_hz"]
    late = acoustic_descriptors(audio[-8000:])["pitch_hz"]
    assert early == pytest.approx(120 * 2**0.25, rel=0.08) and late == pytest.approx(120 * 2**1.75, rel=0.08)


def test_emotion_families_differ_in_signal_and_seed_adds_distractors(tmp_path):
    stats = {}
    for family in synth.EMOTION_FAMILIES:
        clip = load_clip(synth.write_emotion_clip(tmp_path / f"{family}.mp4", family, seed=3), frames=4)
        d = acoustic_descriptors(clip.audio)
        stats[family] = (d["pitch_hz"], d["loudness_dbfs"], tuple(clip.frames[:, 24, 4].mean(axis=0).round()))
    assert len({s[2] for s in stats.values()}) == len(synth.EMOTION_FAMILIES)  # distinct colours
    assert stats["angry"][1] > stats["sad"][1] + 6  # louder
    assert stats["surprised"][0] > stats["neutral"][0]
    a = load_clip(synth.write_emotion_clip(tmp_path / "a.mp4", "sad", seed=1), frames=2).frames
    b = load_clip(synth.write_emotion_clip(tmp_path / "b.mp4", "sad", seed=2), frames=2).frames
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="unknown emotion family"):
        synth.write_emotion_clip(tmp_path / "x.mp4", "bored", seed=0)
