"""load_clip on real files: shapes, times, audio, rotation, sampling, ranges, decoders and errors."""

from __future__ import annotations

import numpy as np
import pytest

from affectreason.errors import MediaError, MediaTooLong
from affectreason.media import SAMPLE_RATE, is_media_file, load_clip, probe_duration, read_transcript

CHUNK = 1024  # one AAC frame: the tolerance on decoded audio length


def test_av_clip_frames_times_and_audio(clip_av):
    clip = load_clip(clip_av)
    assert clip.frames.shape == (16, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.frame_times.shape == (16,)
    assert clip.frame_times[0] == pytest.approx(0.0) and clip.frame_times[-1] == pytest.approx(1.9)
    assert np.all(np.diff(clip.frame_times) > 0)
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert abs(len(clip.audio) - 2 * SAMPLE_RATE) <= CHUNK and clip.sample_rate == SAMPLE_RATE
    assert clip.duration == pytest.approx(2.0) and clip.has_video and clip.has_audio
    assert 0.1 < np.abs(clip.audio).max() < 0.5  # the 0.3-amplitude tone survived encoding
    # The frame index is coded in the green channel of the bottom-right block: frames come in order.
    codes = clip.frames[:, -2, -2, 1].astype(int)
    assert np.all(np.diff(codes) > 0)


def test_silent_clip_has_no_audio(clip_silent):
    clip = load_clip(clip_silent)
    assert clip.audio is None and not clip.has_audio and clip.frames.shape[0] == 16


@pytest.mark.parametrize("fixture", ["audio_wav", "audio_m4a", "audio_mp3"])
def test_audio_only_files(fixture, request):
    clip = load_clip(request.getfixturevalue(fixture))
    assert clip.frames is None and clip.frame_times.size == 0 and not clip.has_video
    assert abs(len(clip.audio) - 2 * SAMPLE_RATE) <= 1200  # mp3 frames are 1152 samples
    assert clip.duration == pytest.approx(2.0, abs=0.1)


def test_rotated_clip_comes_out_portrait(clip_rotated):
    clip = load_clip(clip_rotated)
    assert clip.frames.shape == (16, 64, 48, 3)
    # Stored with a white block top-left; shown rotated 90 degrees clockwise, the block is top-right.
    frame = clip.frames[0].astype(int)
    assert frame[:5, -5:].min() > 200 and frame[:5, :5].max() < 200
    assert np.array_equal(clip.frames, load_clip(clip_rotated, decoder="pyav").frames)


def test_odd_dimensions(clip_odd):
    clip = load_clip(clip_odd)
    assert clip.frames.shape == (16, 49, 65, 3)
    pyav = load_clip(clip_odd, decoder="pyav").frames
    # decord and PyAV interpolate chroma differently on odd edges only.
    assert np.abs(clip.frames.astype(int) - pyav).mean() < 2.0


def test_vfr_times_are_irregular(clip_vfr):
    clip = load_clip(clip_vfr, frames=64)
    steps = np.diff(clip.frame_times)
    assert len(clip.frames) == 20 and steps.min() < 0.07 and steps.max() > 0.13
    assert np.array_equal(clip.frame_times, load_clip(clip_vfr, frames=64, decoder="pyav").frame_times)


def test_one_frame_clip(clip_one_frame):
    clip = load_clip(clip_one_frame)
    assert clip.frames.shape == (1, 48, 64, 3) and clip.frame_times.tolist() == [0.0]


def test_long_clip_keeps_all_audio(clip_long):
    clip = load_clip(clip_long, frames=8)
    assert len(clip.frames) == 8 and clip.frame_times[-1] == pytest.approx(39.5)
    assert abs(len(clip.audio) - 40 * SAMPLE_RATE) <= CHUNK
    assert probe_duration(clip_long) == pytest.approx(40.0, abs=0.1)


def test_fps_sampling_and_cap(clip_av):
    assert len(load_clip(clip_av, frames=None, fps=2).frames) == 4  # 0.0, 0.5, 1.0, 1.5 s
    clip = load_clip(clip_av, frames=None, fps=5)
    assert np.allclose(np.diff(clip.frame_times), 0.2)
    assert len(load_clip(clip_av, frames=None, fps=100).frames) == 20  # never more than the file has
    assert len(load_clip(clip_av, frames=None, fps=10, max_frames=6).frames) == 6
    assert len(load_clip(clip_av, frames=50, max_frames=8).frames) == 8


def test_no_video_requested(clip_av):
    clip = load_clip(clip_av, frames=None, fps=None)
    assert clip.frames is None and clip.has_audio


def test_max_pixels_downscales_keeping_aspect(clip_av):
    clip = load_clip(clip_av, max_pixels=32 * 24)
    assert clip.frames.shape[1:] == (24, 32, 3)
    pyav = load_clip(clip_av, max_pixels=32 * 24, decoder="pyav").frames
    assert pyav.shape == clip.frames.shape and np.abs(pyav.astype(int) - clip.frames).mean() < 3.0


def test_time_range_cuts_video_and_audio(clip_av):
    clip = load_clip(clip_av, start=0.5, end=1.5, frames=4)
    assert clip.frame_times[0] == pytest.approx(0.5) and clip.frame_times[-1] <= 1.5
    assert clip.start == 0.5 and clip.duration == pytest.approx(1.0)
    assert len(clip.audio) == SAMPLE_RATE
    full = load_clip(clip_av, frames=None)
    # Same samples once the resampler has warmed up after the seek.
    expected = full.audio[SAMPLE_RATE // 2 : SAMPLE_RATE // 2 + SAMPLE_RATE]
    assert np.allclose(clip.audio[256:], expected[256:], atol=0.02)


def test_decord_and_pyav_give_the_same_frames(clip_av):
    decord_clip = load_clip(clip_av, decoder="decord")
    pyav_clip = load_clip(clip_av, decoder="pyav")
    assert np.array_equal(decord_clip.frames, pyav_clip.frames)
    assert np.allclose(decord_clip.frame_times, pyav_clip.frame_times)
    assert np.array_equal(decord_clip.audio, pyav_clip.audio)


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("truncated_file", "invalid data"),
        ("not_media_file", "invalid data"),
        ("empty_file", "empty file"),
    ],
)
def test_bad_files_raise_one_line_media_error(fixture, reason, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(MediaError) as info:
        load_clip(path)
    message = str(info.value)
    assert "\n" not in message and path.name in message and reason in message.lower()


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match=r"^cannot decode '.*nope\.mp4': file not found$"):
        load_clip(tmp_path / "nope.mp4")
    with pytest.raises(MediaError, match="file not found"):
        probe_duration(tmp_path / "nope.mp4")


def test_start_past_the_end(clip_av):
    with pytest.raises(MediaError, match="empty time range"):
        load_clip(clip_av, start=5.0)


def test_clip_dir_and_is_media_file(clip_dir, not_media_file):
    files = sorted(p for p in clip_dir.iterdir() if is_media_file(p))
    assert len(files) == 3
    for path in files:
        clip = load_clip(path, frames=4)
        assert clip.frames.shape == (4, 32, 32, 3) and clip.has_audio
    assert is_media_file("a/b.WAV") and not is_media_file("notes.txt") and not is_media_file(".hidden.mp4")


def test_read_transcript(tmp_path):
    srt = tmp_path / "t.srt"
    srt.write_text(
        "1\n00:00:00,000 --> 00:00:01,000\nI can't believe it.\n\n2\n00:00:01,000 --> 00:00:02,000\nReally!\n"
    )
    vtt = tmp_path / "t.vtt"
    vtt.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHello there\n")
    assert read_transcript(str(srt)) == "I can't believe it. Really!"
    assert read_transcript(vtt) == "Hello there"
    assert read_transcript("just words") == "just words"
    assert read_transcript(None) is None and read_transcript("  ") is None


def test_transcript_stored_on_clip(clip_av):
    assert load_clip(clip_av, frames=2, transcript="hello").transcript == "hello"


def test_max_duration_refuses_long_media_from_the_header(clip_av, audio_wav):
    assert load_clip(clip_av, frames=2, max_duration=2.5).duration == pytest.approx(2.0, abs=0.1)
    for path in (clip_av, audio_wav):
        with pytest.raises(MediaTooLong, match="over the 0.5 s accepted") as caught:
            load_clip(path, frames=2, max_duration=0.5)
        assert caught.value.duration == pytest.approx(probe_duration(path))
