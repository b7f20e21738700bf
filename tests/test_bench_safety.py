"""`affectreason bench` against planted and broken files, through the CLI (issue 13): pickled payloads in the
label files, invalid predictions/run.json lines, resume identity by content, failed-clip retries, one run per
--out."""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest

from affectreason.bench.suites import load_suite
from affectreason.bench.synthetic import write_data_root
from affectreason.cli import main


class _Payload:
    """What an attacker plants: unpickling it creates a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _meld_root(tmp_path):
    return write_data_root(load_suite("mer-unibench"), tmp_path / "dataset", n=2, datasets=["meld"])


def test_a_planted_pickle_in_a_label_file_never_runs(tmp_path, capsys):
    root = _meld_root(tmp_path)
    marker = tmp_path / "pwned"
    corpus = {"meld_000": {"emo": 1, "val": 0.0}, "meld_001": {"emo": _Payload(str(marker)), "val": 0.0}}
    np.savez(root / "meld-process" / "label.npz", test_corpus=np.array(corpus, dtype=object))
    assert main(["bench", "check", "mer-unibench", "--data-root", str(root), "--datasets", "meld"]) == 2
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert len(err.splitlines()) == 1 and "posix.system" in err and "Traceback" not in err


def _npy_protocol2_numpy1(array: np.ndarray) -> bytes:
    """An object array as numpy 1.x under Python 2 wrote it: protocol 2, `numpy.core` names."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(array))
    body = pickle.dumps(array, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return out.getvalue() + body


def test_released_label_files_in_old_and_new_numpy_pickles_still_load(tmp_path, capsys):
    import zipfile

    root = _meld_root(tmp_path)
    labels = root / "meld-process" / "label.npz"
    corpus = {"meld_000": {"emo": np.int64(1), "val": np.float64(0.5)}, "meld_001": {"emo": 2, "val": 0.0}}
    with zipfile.ZipFile(labels, "w") as archive:
        archive.writestr("test_corpus.npy", _npy_protocol2_numpy1(np.array(corpus, dtype=object)))
        archive.writestr("train_corpus.npy", _npy_protocol2_numpy1(np.array({"x": {"emo": 0}}, dtype=object)))
    assert main(["bench", "check", "mer-unibench", "--data-root", str(root), "--datasets", "meld"]) == 0
    assert "2 samples" in capsys.readouterr().out


FAST = ["--max-new-tokens", "4", "--frames", "2", "--batch-size", "2", "--quiet"]


@pytest.fixture
def meld_root(tmp_path):
    return write_data_root(load_suite("mer-unibench"), tmp_path / "dataset", n=3, datasets=["meld"])


def _bench(model, root, out, *extra) -> list[str]:
    args = ["bench", "mer-unibench", "--data-root", str(root), "--model", str(model), "--out", str(out)]
    return [*args, "--datasets", "meld", *FAST, *extra]


def _records(out) -> dict:
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in lines}  # later lines win, as the store reads them


def _one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("predictions.jsonl", b"\xff\xfe garbage\n", "line 4 is not valid UTF-8"),
        ("predictions.jsonl", b"[1, 2]\n", "line 4 is not a prediction record"),
        ("predictions.jsonl", b'"text"\n', "line 4 is not a prediction record"),
        ("run.json", b"\xff\xfe", "run.json is not valid UTF-8"),
        ("run.json", b"[1, 2]", "run.json is not a run manifest"),
        ("run.json", b"[" * 100_000, "run.json is not valid JSON"),
    ],
)
def test_broken_run_files_are_one_line_errors(
    file, content, message, tiny_qwen2_5_omni, meld_root, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 0
    capsys.readouterr()
    with (out / file).open("ab" if file.endswith("jsonl") else "wb") as handle:
        handle.write(content)
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 2
    _one_line_error(capsys, message)
    if file == "run.json":
        assert main(["bench", "merge", str(tmp_path / "merged"), str(out)]) == 2
        _one_line_error(capsys, message)


def test_resume_follows_the_model_content_not_its_path(
    tiny_qwen2_5_omni, meld_root, tmp_path, capsys, monkeypatch
):
    import shutil

    from safetensors.torch import load_file, save_file

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_qwen2_5_omni, tmp_path / "tiny")
    out = tmp_path / "run"
    assert main(_bench("./tiny", meld_root, out, "--limit", "2")) == 0
    assert main(_bench(tmp_path / "tiny", meld_root, out)) == 0  # the same model by its absolute path
    assert len(_records(out)) == 3
    capsys.readouterr()

    weights = next((tmp_path / "tiny").glob("*.safetensors"))
    tensors = load_file(weights)
    save_file({k: v + 1 if v.is_floating_point() else v for k, v in tensors.items()}, weights)
    assert main(_bench("./tiny", meld_root, out)) == 2
    _one_line_error(capsys, "other settings (model_fingerprint:")
    assert main(["bench", "merge", str(tmp_path / "merged"), str(out), str(tmp_path / "other")]) == 2
    capsys.readouterr()

    other = tmp_path / "other"
    assert main(_bench("./tiny", meld_root, other, "--limit", "1")) == 0
    capsys.readouterr()
    assert main(["bench", "merge", str(tmp_path / "merged"), str(out), str(other)]) == 2
    _one_line_error(capsys, "cannot merge", "model_fingerprint")

    (out / "run.json").unlink()
    assert main(_bench("./tiny", meld_root, out)) == 2
    _one_line_error(capsys, "no run.json")
    assert main(_bench("./tiny", meld_root, out, "--no-resume")) == 0


def test_failed_clips_are_retried_on_resume_and_counted_with_their_reason(
    tiny_qwen2_5_omni, meld_root, tmp_path, capsys
):
    video = next((meld_root / "meld-process" / "subvideo").glob("meld_001.*"))
    good = video.read_bytes()
    video.write_bytes(b"not a video")
    out = tmp_path / "run"
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 0
    assert _records(out)["meld_001"]["attempts"] == 1
    results = json.loads((out / "results.json").read_text())["datasets"]["meld"]
    assert results["errors"] == 1 and len(results["error_reasons"]) == 1
    for attempt in (2, 3):  # still broken: each resume tries again, up to 3 attempts
        assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 0
        assert _records(out)["meld_001"]["attempts"] == attempt
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 0
    assert _records(out)["meld_001"]["attempts"] == 3
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out, "--retry-failed")) == 0
    assert _records(out)["meld_001"]["attempts"] == 4

    video.write_bytes(good)
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out, "--retry-failed")) == 0
    record = _records(out)["meld_001"]
    assert "error" not in record and record["raw"]
    results = json.loads((out / "results.json").read_text())["datasets"]["meld"]
    assert results["errors"] == 0 and results["n"] == 3


def test_a_second_run_on_the_same_out_is_refused_in_one_line(tiny_qwen2_5_omni, meld_root, tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from affectreason.bench.store import RunLock\n"
         f"with RunLock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 2
        _one_line_error(capsys, f"pid {holder.pid}", "another bench process")
        assert main(["bench", "merge", str(out), str(tmp_path / "x")]) == 2
        _one_line_error(capsys, "another bench process")
    finally:
        holder.kill()
        holder.wait()
    assert main(_bench(tiny_qwen2_5_omni, meld_root, out)) == 0  # a killed holder leaves no stale lock
