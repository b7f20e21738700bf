"""The openai client engine and the wire contract it shares with the server (no model needed)."""

from __future__ import annotations

import base64
import socket

import numpy as np
import pytest

from affectreason.engines.openai import OpenAIEngine, user_text
from affectreason.engines.wire import chat_body, encode_mp4, encode_wav, parse_data_url
from affectreason.errors import AffectReasonError
from affectreason.media import load_clip
from affectreason.prompts import load_prompt
from affectreason.request import Request
from affectreason.serve.limits import Limits, ProtocolError
from affectreason.serve.protocol import parse_chat

PROMPT = "Describe the emotion."


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_user_text_puts_the_transcript_above_the_prompt_only_with_text(clip_av):
    clip = load_clip(clip_av, frames=2, transcript="  thank you so much ")
    assert user_text(Request(clip, PROMPT)) == f'Transcript: "thank you so much"\n{PROMPT}'
    assert user_text(Request(clip, PROMPT, modalities=frozenset({"video", "audio"}))) == PROMPT


def test_chat_body_sends_video_and_audio_as_separate_parts(clip_av, tmp_path):
    clip = load_clip(clip_av, frames=5)
    messages, options = chat_body(Request(clip, PROMPT), PROMPT)
    parts = messages[0]["content"]
    assert [p["type"] for p in parts] == ["video_url", "input_audio", "text"]
    assert options == {"frames": 5, "modalities": ["audio", "text", "video"]}
    mime, video = parse_data_url(parts[0]["video_url"]["url"])
    assert mime == "video/mp4"
    (tmp_path / "v.mp4").write_bytes(video)
    back = load_clip(tmp_path / "v.mp4", frames=5)
    assert back.frames.shape == clip.frames.shape and back.audio is None
    assert np.abs(back.frames.astype(int) - clip.frames.astype(int)).mean() < 4
    (tmp_path / "a.wav").write_bytes(base64.b64decode(parts[1]["input_audio"]["data"]))
    assert np.abs(load_clip(tmp_path / "a.wav", frames=None).audio - clip.audio).max() < 1e-3
    video_only, _ = chat_body(Request(clip, PROMPT, modalities=frozenset({"video"})), PROMPT)
    assert [p["type"] for p in video_only[0]["content"]] == ["video_url", "text"]


def test_encode_mp4_pads_odd_sizes_and_keeps_the_frame_rate(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 47, 63, 3), dtype=np.uint8)
    (tmp_path / "o.mp4").write_bytes(encode_mp4(frames, np.array([0.0, 0.5, 1.0])))
    back = load_clip(tmp_path / "o.mp4", frames=3)
    assert back.frames.shape == (3, 48, 64, 3)
    assert np.allclose(back.frame_times, [0.0, 0.5, 1.0])
    with pytest.raises(AffectReasonError, match="cannot encode"):
        encode_mp4(np.zeros((0, 4, 4, 3), np.uint8), np.zeros(0))


def test_encode_wav_is_16_bit_pcm_at_the_given_rate():
    data = encode_wav(np.array([0.0, 1.0, -1.0, 2.0], np.float32), 16000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert np.frombuffer(data[-8:], "<i2").tolist() == [0, 32767, -32767, 32767]


@pytest.mark.parametrize("url", ["data:video/mp4,abc", "video/mp4;base64,AAAA", "data:video/mp4;base64,@@@"])
def test_parse_data_url_rejects_malformed_urls(url):
    with pytest.raises(AffectReasonError):
        parse_data_url(url)


def test_unreachable_endpoint_is_a_one_line_error():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(AffectReasonError, match="cannot reach") as info:
        OpenAIEngine(url, max_retries=0, timeout=5)
    assert "\n" not in str(info.value)
    with pytest.raises(AffectReasonError, match="concurrency"):
        OpenAIEngine(url, model="m", concurrency=0)


def _parse(body, limits: Limits | None = None):
    return parse_chat(body, {"m": None}, limits or Limits(), load_prompt("describe"))


def test_parse_chat_defaults_prompt_and_greedy_sampling():
    call = _parse({"model": "m", "messages": [{"role": "user", "content": []}]})
    assert call.request.prompt == load_prompt("describe").text and call.prompt_version == "describe@1"
    assert call.sampling.greedy and call.sampling.max_new_tokens == 512
    system = {"role": "system", "content": "Be brief."}
    call = _parse(
        {"model": "m", "messages": [system, {"role": "user", "content": "Why?"}], "max_tokens": 9, "n": 2}
    )
    assert call.request.prompt == "Be brief.\n\nWhy?" and call.prompt_version is None
    assert call.sampling.max_new_tokens == 9 and call.sampling.num_return_sequences == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([], 400, "JSON object"),
        ({"model": 3, "messages": []}, 400, "'model'"),
        ({"model": "m", "messages": []}, 400, "non-empty list"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, 400, "role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, 400, "content"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 99}, 400, "'n'"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6},
            400,
            "max_tokens",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 400, "stream"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "affectreason": {"frame": 3}},
            400,
            "frames",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "affectreason": {"segment": [5, 1]},
            },
            400,
            "segment",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "affectreason": {"modalities": ["smell"]},
            },
            400,
            "modalities",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "!!"}}]}
                ],
            },
            400,
            "base64",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "video_url", "video_url": {"url": "/etc/passwd"}}]}
                ],
            },
            403,
            "--media-dir",
        ),
    ],
)
def test_parse_chat_rejects_bad_bodies_with_their_status(body, status, message):
    with pytest.raises(ProtocolError, match=message) as info:
        _parse(body)
    assert info.value.status == status and info.value.body()["error"]["code"] == status


def test_media_dir_confines_local_paths(tmp_path, clip_av):
    inside = tmp_path / "clips"
    inside.mkdir()
    (inside / "a.mp4").write_bytes(clip_av.read_bytes())
    limits = Limits(media_dir=inside)

    def video(url: str) -> dict:
        return {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}}]}],
        }

    assert _parse(video("a.mp4"), limits).clip_info["frames"] == 16
    assert _parse(video((inside / "a.mp4").as_uri()), limits).request.clip.has_audio
    for escape in ("../a.mp4", (tmp_path / "a.mp4").as_uri(), "file:///etc/hostname"):
        with pytest.raises(ProtocolError) as info:
            _parse(video(escape), limits)
        assert info.value.status == 403
    with pytest.raises(ProtocolError) as info:
        _parse(video("missing.mp4"), limits)
    assert info.value.status == 404
