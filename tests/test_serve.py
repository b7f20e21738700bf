"""The in-process OpenAI-compatible server on a tiny Qwen2.5-Omni thinker, called with the official client."""

from __future__ import annotations

import base64
import io
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from affectreason.decoding import SamplingParams
from affectreason.engines.openai import OpenAIEngine, user_text
from affectreason.engines.wire import clip_parts, data_url, encode_mp4, encode_wav
from affectreason.errors import AffectReasonError
from affectreason.media import load_clip
from affectreason.rationale import parse_rationale
from affectreason.request import Request
from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

KEY = "test-key"
MODEL = "tiny"
PROMPT = "Describe the emotion."
TOKENS = 12


@pytest.fixture(scope="module")
def server(engine, media_dir, clip_av):
    options = ServeOptions(
        api_key=KEY,
        served_model_name=MODEL,
        media_dir=media_dir,
        max_request_mb=1.0,
        max_frames=16,
        max_duration=30.0,
        max_batch_size=8,
    )
    with BackgroundServer(build_app(engine, options)) as srv:
        yield srv


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)


def _ask(client: openai.OpenAI, content: list[dict], **kwargs):
    kwargs.setdefault("max_tokens", TOKENS)
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], **kwargs
    )


def _roundtrip(clip):
    """The clip the server decodes from what the client engine sends: frames and audio through mp4 and wav."""
    with tempfile.TemporaryDirectory() as tmp:
        video, audio = Path(tmp) / "v.mp4", Path(tmp) / "a.wav"
        video.write_bytes(encode_mp4(clip.frames, clip.frame_times))
        audio.write_bytes(encode_wav(clip.audio, clip.sample_rate))
        decoded = load_clip(video, frames=len(clip.frames), audio=False)
        decoded.audio = load_clip(audio, frames=None).audio
    return decoded


def test_video_and_audio_parts_give_the_model_text_and_its_parsed_copy(client, clip_av):
    clip = load_clip(clip_av, frames=8)
    content = [*clip_parts(clip, frozenset({"video", "audio"})), {"type": "text", "text": PROMPT}]
    response = _ask(client, content, extra_body={"affectreason": {"frames": 8}})
    text = response.choices[0].message.content
    extra = response.model_extra["affectreason"]
    assert isinstance(text, str) and text
    assert extra["rationale"] == parse_rationale(text).to_dict()
    assert extra["format_version"] == "ar-1"
    assert extra["clip"]["frames"] == 8
    assert extra["clip"]["audio_seconds"] == pytest.approx(2.0, abs=0.05)


def test_server_output_equals_in_process_generation_for_the_same_file(client, engine, clip_av):
    response = _ask(
        client,
        [{"type": "video_url", "video_url": {"url": clip_av.as_uri()}}, {"type": "text", "text": PROMPT}],
        extra_body={"affectreason": {"frames": 6}},
    )
    local = engine.generate(
        [Request(load_clip(clip_av, frames=6), PROMPT)], SamplingParams(max_new_tokens=TOKENS)
    )
    assert response.choices[0].message.content == local[0]


def test_openai_engine_sends_what_the_server_decodes_back(server, engine, clip_av):
    clip = load_clip(clip_av, frames=8, transcript="I cannot believe it")
    request = Request(clip, PROMPT)
    remote = OpenAIEngine(server.url, api_key=KEY).generate([request], SamplingParams(max_new_tokens=TOKENS))
    decoded = _roundtrip(clip)
    local = engine.generate([Request(decoded, user_text(request))], SamplingParams(max_new_tokens=TOKENS))
    assert remote == local


def test_openai_engine_picks_the_served_model_and_returns_n_sequences(server, clip_av):
    remote = OpenAIEngine(server.url, api_key=KEY)
    assert remote.model_id == MODEL
    sampling = SamplingParams(temperature=1.0, max_new_tokens=6, seed=3, num_return_sequences=2)
    texts = remote.generate([Request(load_clip(clip_av, frames=4), PROMPT)] * 2, sampling)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)


def test_32_concurrent_requests_all_succeed_in_batches(client, server, clip_av):
    clip = load_clip(clip_av, frames=4)
    content = [*clip_parts(clip, frozenset({"video", "audio"})), {"type": "text", "text": PROMPT}]
    batcher = server.app.state.batcher
    before = len(batcher.batches)
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda _: _ask(client, content, max_tokens=4), range(32)))
    texts = {r.choices[0].message.content for r in responses}
    assert len(responses) == 32 and len(texts) == 1  # greedy: identical requests, identical answers
    sizes = list(batcher.batches)[before:]
    # every job ran; a job that started alone may have yielded to the queue and run again (time slicing)
    assert sum(sizes) >= 32 and max(sizes) > 1


def test_streaming_returns_the_same_text(client, clip_av):
    content = [
        {"type": "video_url", "video_url": {"url": clip_av.as_uri()}},
        {"type": "text", "text": PROMPT},
    ]
    whole = _ask(client, content).choices[0].message.content
    pieces = [c.choices[0].delta.content or "" for c in _ask(client, content, stream=True) if c.choices]
    assert "".join(pieces) == whole


def _post(server, body, key: str = KEY, raw: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    data = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.url}/chat/completions", content=data, headers=headers, timeout=60)


def _body(content, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}


def _wav_part(seconds: float) -> dict:
    audio = np.zeros(int(16000 * seconds), np.float32)
    return {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(encode_wav(audio, 16000)).decode()},
    }


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad_json", 400),
        ("unknown_model", 404),
        ("wrong_key", 401),
        ("oversize", 413),
        ("outside_dir", 403),
        ("too_many_frames", 400),
        ("too_long", 413),
        ("not_media", 400),
        ("remote_url", 400),
        ("image_part", 400),
        ("bad_temperature", 400),
        ("two_videos", 400),
        ("assistant_turn", 400),
    ],
)
def test_bad_requests_get_a_json_4xx_and_the_server_keeps_serving(
    case, status, server, client, clip_av, clip_long, not_media_file
):
    video = {"type": "video_url", "video_url": {"url": clip_av.as_uri()}}
    text = {"type": "text", "text": PROMPT}
    if case == "bad_json":
        response = _post(server, None, raw=b'{"model": "tiny", "messages": [')
    elif case == "unknown_model":
        response = _post(server, {**_body([text]), "model": "nope"})
    elif case == "wrong_key":
        response = _post(server, _body([text]), key="wrong")
    elif case == "oversize":
        response = _post(server, _body([_wav_part(40.0), text]))  # ~1.3 MB of base64 wav over a 1 MB limit
    elif case == "outside_dir":
        outside = Path(tempfile.mkdtemp()) / "x.mp4"
        outside.write_bytes(clip_av.read_bytes())
        response = _post(server, _body([{"type": "video_url", "video_url": {"url": outside.as_uri()}}, text]))
    elif case == "too_many_frames":
        response = _post(server, _body([video, text], affectreason={"frames": 500}))
    elif case == "too_long":
        response = _post(
            server, _body([{"type": "video_url", "video_url": {"url": clip_long.as_uri()}}, text])
        )
    elif case == "not_media":
        response = _post(
            server, _body([{"type": "video_url", "video_url": {"url": not_media_file.as_uri()}}])
        )
    elif case == "remote_url":
        response = _post(
            server, _body([{"type": "video_url", "video_url": {"url": "http://example.com/a.mp4"}}])
        )
    elif case == "image_part":
        response = _post(
            server, _body([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}])
        )
    elif case == "bad_temperature":
        response = _post(server, _body([text], temperature="hot"))
    elif case == "two_videos":
        response = _post(server, _body([video, video, text]))
    else:
        messages = [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
        response = _post(server, {"model": MODEL, "messages": messages})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["message"] and "\n" not in error["message"]
    assert _ask(client, [video, text], max_tokens=2).choices[0].message.content is not None


def test_local_files_need_a_media_dir(engine, clip_av):
    with BackgroundServer(build_app(engine, ServeOptions(served_model_name=MODEL))) as srv:
        url_client = openai.OpenAI(base_url=srv.url, api_key="anything", max_retries=0)
        with pytest.raises(openai.PermissionDeniedError, match="--media-dir"):
            _ask(url_client, [{"type": "video_url", "video_url": {"url": clip_av.as_uri()}}])
        # without --api-key the server takes any key; a text-only request uses the packaged prompt
        response = _ask(url_client, [{"type": "text", "text": "hello"}])
        assert response.model_extra["affectreason"]["clip"]["frames"] == 0


def test_client_engine_retries_5xx_then_succeeds(engine, clip_av):
    failures = {"left": 2}
    app = build_app(engine, ServeOptions(served_model_name=MODEL))

    @app.middleware("http")
    async def flaky(request, call_next):
        if request.url.path.endswith("/chat/completions") and failures["left"] > 0:
            failures["left"] -= 1
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"message": "try again"}}, status_code=503)
        return await call_next(request)

    request = Request(load_clip(clip_av, frames=4), PROMPT)
    with BackgroundServer(app) as srv:
        assert (
            len(OpenAIEngine(srv.url, max_retries=3).generate([request], SamplingParams(max_new_tokens=4)))
            == 1
        )
        assert failures["left"] == 0
        failures["left"] = 5
        with pytest.raises(AffectReasonError, match="answered 503: try again"):
            OpenAIEngine(srv.url, model=MODEL, max_retries=1).generate(
                [request], SamplingParams(max_new_tokens=4)
            )


def test_an_audio_only_request_uses_the_audio_part(client, audio_wav):
    wav = load_clip(audio_wav, frames=None)
    response = _ask(client, [_wav_part_from(wav.audio), {"type": "text", "text": PROMPT}])
    assert response.model_extra["affectreason"]["clip"]["audio_seconds"] == pytest.approx(
        len(wav.audio) / 16000
    )
    assert response.model_extra["affectreason"]["clip"]["frames"] == 0


def _wav_part_from(audio: np.ndarray) -> dict:
    buffer = io.BytesIO(encode_wav(audio, 16000))
    return {"type": "audio_url", "audio_url": {"url": data_url("audio/wav", buffer.getvalue())}}


def test_connections_send_without_nagle_delay(server, client):
    """Kept-alive connections answer without Nagle's algorithm: the response's headers and body go out as
    separate writes, and with Nagle on the body waited for the client's delayed ACK (40 ms per request)."""
    import socket

    _ask(client, [{"type": "text", "text": "Hello?"}], max_tokens=1)
    connections = server._server.server_state.connections
    sockets = [c.transport.get_extra_info("socket") for c in connections]
    assert sockets and all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)


def test_requests_are_prepared_in_media_worker_processes_that_come_back_after_a_crash(
    server, client, clip_av
):
    """The default server decodes and processes media in worker processes; when one dies (a decoder crash on a
    hostile file), the pool is replaced and requests go on."""
    import multiprocessing

    content = [
        *clip_parts(load_clip(clip_av, frames=4), frozenset({"video", "audio"})),
        {"type": "text", "text": PROMPT},
    ]
    before = _ask(client, content).choices[0].message.content
    workers = multiprocessing.active_children()
    assert workers  # the server's media workers are this test process's children
    for process in workers:
        process.kill()
        process.join()
    assert _ask(client, content).choices[0].message.content == before
    assert multiprocessing.active_children() and not set(multiprocessing.active_children()) & set(workers)


def test_metrics_count_engine_calls_and_jobs(server, client):
    def counters() -> dict[str, float]:
        text = httpx.get(
            server.url.removesuffix("/v1") + "/metrics", headers={"authorization": f"Bearer {KEY}"}
        ).text
        return {name: float(value) for name, value in (line.split() for line in text.splitlines())}

    before = counters()
    _ask(client, [{"type": "text", "text": "Hello?"}], max_tokens=2)
    after = counters()
    assert after["affectreason_engine_jobs_total"] == before["affectreason_engine_jobs_total"] + 1
    assert after["affectreason_engine_calls_total"] >= before["affectreason_engine_calls_total"] + 1
    assert after["affectreason_media_workers"] >= 1 and after["affectreason_queued_jobs"] == 0
    assert after["affectreason_media_workers_encoding"] == 1  # a CPU model: its vision encoders run there
    assert httpx.get(server.url.removesuffix("/v1") + "/metrics").status_code == 401


def test_silent_audio_only_and_broken_files_sent_together(
    server, clip_av, clip_silent, audio_wav, truncated_file
):
    """Real files of every shape at once through the media workers: each good one gets the answer it gets
    alone (they share engine calls and resumed caches), the truncated one a one-line 400."""
    parts = {
        "av": {"type": "video_url", "video_url": {"url": clip_av.as_uri()}},
        "silent": {"type": "video_url", "video_url": {"url": clip_silent.as_uri()}},
        "audio": {"type": "audio_url", "audio_url": {"url": audio_wav.as_uri()}},
        "broken": {"type": "video_url", "video_url": {"url": truncated_file.as_uri()}},
    }

    def send(name: str) -> httpx.Response:
        return _post(server, _body([parts[name], {"type": "text", "text": PROMPT}], max_tokens=TOKENS))

    alone = {name: send(name) for name in parts}
    assert alone["broken"].status_code == 400 and "\n" not in alone["broken"].json()["error"]["message"]
    names = [name for name in parts for _ in range(3)]
    with ThreadPoolExecutor(len(names)) as pool:
        together = list(pool.map(send, names))
    for name, response in zip(names, together, strict=True):
        assert response.status_code == alone[name].status_code
        if name != "broken":
            text = response.json()["choices"][0]["message"]["content"]
            assert text == alone[name].json()["choices"][0]["message"]["content"]
    clips = {name: alone[name].json()["affectreason"]["clip"] for name in ("av", "silent", "audio")}
    assert clips["silent"]["audio_seconds"] == 0 and clips["audio"]["frames"] == 0
