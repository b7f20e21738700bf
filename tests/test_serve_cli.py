"""`affectreason serve` as users run it, and `describe --endpoint` / `bench --endpoint` against a live server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from affectreason.backbones import load_backbone
from affectreason.bench.suites import load_suite
from affectreason.bench.synthetic import write_data_root
from affectreason.cli import main
from affectreason.engines.hf import HFEngine
from affectreason.rationale import parse_rationale
from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

KEY = "cli-key"
FAST = ["--max-new-tokens", "8", "--frames", "4"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.fixture(scope="module")
def endpoint(tiny_qwen2_5_omni):
    engine = HFEngine(load_backbone(str(tiny_qwen2_5_omni), device="cpu"), batch_size=4)
    with BackgroundServer(build_app(engine, ServeOptions(api_key=KEY, served_model_name="emo"))) as srv:
        yield srv.url


def test_describe_endpoint_writes_records_from_the_server(endpoint, clip_dir, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    args = [
        "describe",
        str(clip_dir),
        "--endpoint",
        endpoint,
        "--api-key",
        KEY,
        "--adapter",
        "emo",
        "-o",
        str(out),
    ]
    assert main([*args, "--format", "jsonl", *FAST]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == sorted(p.stem for p in clip_dir.iterdir())
    for record in records:
        assert record["engine"] == "openai" and record["model"] == "emo"
        assert record["emotions"] == parse_rationale(record["raw"]).emotions


def test_describe_endpoint_with_a_wrong_key_is_one_error_line(endpoint, clip_av, capsys):
    assert main(["describe", str(clip_av), "--endpoint", endpoint, "--api-key", "nope", *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "401" in err and "\n" not in err


def test_bench_endpoint_runs_a_suite_against_the_server(endpoint, tmp_path):
    root = write_data_root(load_suite("mer-unibench"), tmp_path / "dataset", n=3, datasets=["mer2023"])
    out = tmp_path / "run"
    args = ["bench", "mer-unibench", "--data-root", str(root), "--endpoint", endpoint, "--api-key", KEY]
    assert main([*args, "--out", str(out), "--datasets", "mer2023", "--quiet", *FAST]) == 0
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 3 and all(p["engine"] == "openai" for p in predictions)
    assert "mer2023" in json.loads((out / "results.json").read_text())["datasets"]


@pytest.mark.slow  # a fresh interpreter loading torch and the model: 10-40 s on a busy 2-core machine
def test_serve_command_serves_the_official_client_and_stops_on_sigint(tiny_qwen2_5_omni, clip_av):
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "affectreason",
        "serve",
        "--model",
        str(tiny_qwen2_5_omni),
        "--engine",
        "hf",
    ]
    command += [
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--media-dir",
        str(clip_av.parent),
        "--served-model-name",
        "emo",
    ]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    try:
        lines = iter(process.stderr.readline, "")
        assert any(f"listening on http://127.0.0.1:{port}/v1" in line for line in lines)
        _wait(f"http://127.0.0.1:{port}/health", process)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == ["emo"]
        content = [
            {"type": "video_url", "video_url": {"url": clip_av.as_uri()}},
            {"type": "text", "text": "Why?"},
        ]
        response = client.chat.completions.create(
            model="emo", messages=[{"role": "user", "content": content}], max_tokens=4
        )
        assert response.model_extra["affectreason"]["clip"]["frames"] == 16
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_refuses_bad_setups_in_one_line(tiny_qwen2_5_omni, tmp_path, capsys):
    assert main(["serve", "--model", str(tiny_qwen2_5_omni), "--media-dir", str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["serve", "--model", "m", "--engine", "tpu"]) == 2
    assert "unknown serve engine" in capsys.readouterr().err
    assert main(["serve", "--model", "m", "--engine", "hf", "--adapter", "a=x", "--adapter", "b=y"]) == 2
    assert "one adapter" in capsys.readouterr().err


def test_launcher_waits_for_health_and_forwards_sigterm(tmp_path):
    """`run_child` with a real child process (a static file server whose /health file answers 200)."""
    (tmp_path / "health").write_text("ok")
    port = _free_port()
    child = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tmp_path),
    ]
    script = (
        "import sys; from affectreason.serve.launch import run_child; "
        f"sys.exit(0 if run_child({child!r}, 'http://127.0.0.1:{port}/health', ready_timeout=30) == -15 else 1)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        lines = iter(parent.stderr.readline, "")  # the child's access log shares the stream
        assert any(line.startswith(f"ready: http://127.0.0.1:{port}/v1") for line in lines)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0  # the child got the SIGTERM and run_child returned its code
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_launcher_reports_a_child_that_dies_before_it_is_ready(capsys):
    from affectreason.errors import AffectReasonError
    from affectreason.serve.launch import run_child

    with pytest.raises(AffectReasonError, match="exited with code 3 before it was ready"):
        run_child([sys.executable, "-c", "raise SystemExit(3)"], f"http://127.0.0.1:{_free_port()}/health")
    with pytest.raises(AffectReasonError, match="was not found"):
        run_child([str(Path("/nonexistent/vllm"))], "http://127.0.0.1:1/health")
