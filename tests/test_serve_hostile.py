"""Hostile and contract-breaking requests against the in-process server over real HTTP: every one is a
one-line JSON 4xx without server paths, and the server keeps serving (issue 13)."""

from __future__ import annotations

import base64
import logging

import httpx
import openai
import pytest

from affectreason.engines.wire import encode_wav
from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

KEY = "hostile-key"
MODEL = "tiny"


@pytest.fixture(scope="module")
def server(engine, media_dir):
    options = ServeOptions(api_key=KEY, served_model_name=MODEL, media_dir=media_dir, max_request_mb=2.0)
    with BackgroundServer(build_app(engine, options)) as srv:
        yield srv


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)


def _post(server, raw: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    return httpx.post(f"{server.url}/chat/completions", content=raw, headers=headers, timeout=60)


def _wav_b64() -> str:
    return base64.b64encode(encode_wav([0.0] * 1600, 16000)).decode()


def _user(content) -> str:
    import json

    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 2})


_TEXT = {"type": "text", "text": "hi"}
_WAV = _wav_b64()
HOSTILE = {
    "deep_nested_json": ('{"model": "tiny", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(),
    "deep_nested_option": (
        '{"model": "tiny", "messages": [], "x": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}"
    ).encode(),
    "lone_surrogate_model": b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}',
    "lone_surrogate_text": _user([{"type": "text", "text": "\\ud83d"}])
    .replace("\\\\ud83d", "\\ud83d")
    .encode(),
    "nul_in_mime": _user(
        [{"type": "audio_url", "audio_url": {"url": "data:audio/w\u0000av;base64," + _WAV}}]
    ).encode(),
    "long_mime": _user(
        [{"type": "audio_url", "audio_url": {"url": "data:audio/" + "x" * 300 + ";base64," + _WAV}}]
    ).encode(),
    "nul_in_file_url": _user([{"type": "video_url", "video_url": {"url": "file:///a\u0000b.mp4"}}]).encode(),
    "long_filename": _user(
        [{"type": "video_url", "video_url": {"url": "file:///" + "a" * 300 + ".mp4"}}]
    ).encode(),
    "long_relative_name": _user([{"type": "video_url", "video_url": {"url": "b" * 5000}}]).encode(),
    "bool_segment": _user([_TEXT])
    .replace('"max_tokens"', '"affectreason": {"segment": [true, 2]}, "max_tokens"')
    .encode(),
    "nan_segment": _user([_TEXT])
    .replace('"max_tokens"', '"affectreason": {"segment": [0, NaN]}, "max_tokens"')
    .encode(),
    "infinite_temperature": _user([_TEXT])
    .replace('"max_tokens": 2', '"max_tokens": 2, "temperature": Infinity')
    .encode(),
    "list_role": b'{"model": "tiny", "messages": [{"role": ["user"], "content": "hi"}]}',
    "list_part_type": _user([{"type": ["text"], "text": "hi"}]).encode(),
    "list_modality": _user([_TEXT])
    .replace('"max_tokens"', '"affectreason": {"modalities": [["video"]]}, "max_tokens"')
    .encode(),
    "object_format": _user(
        [{"type": "input_audio", "input_audio": {"data": _WAV, "format": {"a": 1}}}]
    ).encode(),
    "huge_integer": _user([_TEXT]).replace('"max_tokens": 2', '"max_tokens": ' + "9" * 5000).encode(),
    "invalid_utf8": b'{"model": "tiny\xff\xfe", "messages": []}',
    "nul_model": b'{"model": "ti\\u0000ny", "messages": [{"role": "user", "content": "hi"}]}',
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_is_a_one_line_4xx_without_server_paths(case, server, client, media_dir, caplog):
    with caplog.at_level(logging.INFO, logger="affectreason.serve"):
        response = _post(server, HOSTILE[case])
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] == response.status_code and error["message"] and "\n" not in error["message"]
    assert str(media_dir) not in response.text and "/tmp" not in response.text
    assert "Traceback" not in caplog.text
    ok = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert ok.choices[0].message.content is not None


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--api-key", ""], {}, "--api-key is empty"),
        (["--api-key", "  "], {}, "--api-key is empty"),
        ([], {"AFFECTREASON_API_KEY": ""}, "AFFECTREASON_API_KEY is set but empty"),
        (["--host", "0.0.0.0"], {}, "--host 0.0.0.0 exposes the server without a key"),
        (["--host", "::"], {}, "--host :: exposes the server without a key"),
        (["--max-frames", "0"], {}, "--max-frames 0 is out of range"),
        (["--max-request-mb", "-1"], {}, "--max-request-mb -1 is out of range"),
        (["--max-batch-size", "0"], {}, "--max-batch-size 0 is out of range"),
        (["--batch-wait-ms", "nan"], {}, "--batch-wait-ms nan is out of range"),
        (["--max-duration", "0"], {}, "--max-duration 0 is out of range"),
        (["--max-text-kb", "-5"], {}, "--max-text-kb -5 is out of range"),
        (["--media-workers", "-1"], {}, "--media-workers -1 is out of range"),
        (["--max-prefill-tokens", "0"], {}, "--max-prefill-tokens 0 is out of range"),
    ],
)
def test_serve_refuses_setups_that_switch_auth_off_or_make_no_sense(args, env, message, capsys, monkeypatch):
    from affectreason.cli import main

    monkeypatch.delenv("AFFECTREASON_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--model", "never-loaded", "--engine", "hf", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and message in err, err


def test_a_public_host_with_a_key_or_insecure_passes_the_checks():
    from affectreason.serve.server import ServeOptions

    ServeOptions(host="0.0.0.0", api_key="k").validate()
    ServeOptions(host="0.0.0.0", insecure=True).validate()
    ServeOptions(host="::1").validate()


def test_text_beyond_the_cap_is_refused_before_tokenising(server):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x" * (300 * 1024)}],
        "max_tokens": 2,
    }
    import json

    response = _post(server, json.dumps(body).encode())
    assert response.status_code == 413 and "characters" in response.json()["error"]["message"]
