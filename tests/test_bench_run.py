"""`affectreason bench` end to end through the CLI with a tiny random Qwen2.5-Omni thinker on mini data roots:
outputs, determinism, SIGKILL + resume, shards + merge, errors before the model loads, the HTML report."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from affectreason.bench.suites import load_suite
from affectreason.bench.synthetic import write_data_root
from affectreason.cli import main

FAST = ["--max-new-tokens", "8", "--frames", "2", "--batch-size", "2", "--quiet"]
DATASETS = ["mer2023", "mosi", "ovmerd_plus"]
PER_DATASET = 4


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-data") / "dataset"
    return write_data_root(load_suite("mer-unibench"), root, n=PER_DATASET, datasets=DATASETS)


def _args(model, data_root, out, *extra):
    return [
        "bench", "mer-unibench", "--data-root", str(data_root), "--model", str(model), "--out", str(out),
        "--datasets", ",".join(DATASETS), *FAST, *extra,
    ]  # fmt: skip


def _predictions(out: Path) -> dict:
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    keyed = {(r["dataset"], r["id"]): r for r in lines}
    assert len(keyed) == len(lines), "a prediction was written twice"
    return keyed


def _metrics(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {"mean": results["mean"], **{n: d["scores"] for n, d in results["datasets"].items()}}


def _texts(out: Path) -> dict:
    return {k: (r["raw"], r["emotions"]) for k, r in _predictions(out).items()}


@pytest.fixture(scope="module")
def reference_run(tiny_qwen2_5_omni, data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-ref")
    assert main(_args(tiny_qwen2_5_omni, data_root, out)) == 0
    return out


def test_a_run_writes_predictions_results_table_and_report(reference_run, tiny_qwen2_5_omni):
    predictions = _predictions(reference_run)
    assert len(predictions) == PER_DATASET * len(DATASETS)
    record = predictions[("mer2023", "mer2023_001")]
    assert record["reference"] == {"label": "angry"}
    assert record["model"] == str(tiny_qwen2_5_omni) and record["prompt_version"] == "mer_unibench@1"
    assert record["decoding"]["temperature"] == 0.0 and isinstance(record["raw"], str)
    results = json.loads((reference_run / "results.json").read_text())
    assert list(results["datasets"]) == DATASETS
    assert all(0.0 <= d["main"] <= 1.0 and d["n"] == PER_DATASET for d in results["datasets"].values())
    manifest = results["manifest"]
    assert manifest["model"] == str(tiny_qwen2_5_omni) and manifest["prompt_version"] == "mer_unibench@1"
    assert "mer2023-dataset-process/label-6way.npz" in manifest["data_files"]
    assert {"affectreason", "torch", "transformers"} <= set(manifest["packages"])
    table = (reference_run / "results.md").read_text()
    assert "| AffectGPT (published) | 78.54 |" in table and "**this run (affectreason)**" in table
    page = (reference_run / "report.html").read_text()
    assert "<script src=" not in page and "Plotly.newPlot" in page


def test_the_same_run_twice_gives_the_same_results(reference_run, tiny_qwen2_5_omni, data_root, tmp_path):
    assert main(_args(tiny_qwen2_5_omni, data_root, tmp_path)) == 0
    assert _texts(tmp_path) == _texts(reference_run)
    assert _metrics(tmp_path) == _metrics(reference_run)
    before = (tmp_path / "predictions.jsonl").read_bytes()
    assert main(_args(tiny_qwen2_5_omni, data_root, tmp_path)) == 0  # resumed: nothing left to do
    assert (tmp_path / "predictions.jsonl").read_bytes() == before


def test_a_run_killed_with_sigkill_resumes_with_nothing_lost_or_duplicated(
    reference_run, tiny_qwen2_5_omni, data_root, tmp_path, kill_midway
):
    args = _args(tiny_qwen2_5_omni, data_root, tmp_path)
    done = kill_midway(args, tmp_path)
    assert 2 <= done < PER_DATASET * len(DATASETS)
    assert not (tmp_path / "results.json").exists()
    assert main(args) == 0
    assert _texts(tmp_path) == _texts(reference_run)
    assert _metrics(tmp_path) == _metrics(reference_run)


def test_shards_merged_equal_the_unsharded_run(reference_run, tiny_qwen2_5_omni, data_root, tmp_path, capsys):
    for i in (1, 2):
        assert main(_args(tiny_qwen2_5_omni, data_root, tmp_path / f"shard{i}", "--shard", f"{i}/2")) == 0
    sizes = [len(_predictions(tmp_path / f"shard{i}")) for i in (1, 2)]
    assert sizes == [6, 6]  # every other sample of each dataset
    merged = tmp_path / "merged"
    assert main(["bench", "merge", str(merged), str(tmp_path / "shard1"), str(tmp_path / "shard2")]) == 0
    assert "mean" in capsys.readouterr().out
    assert set(_predictions(merged)) == set(_predictions(reference_run))
    assert _texts(merged) == _texts(reference_run)
    assert _metrics(merged) == _metrics(reference_run)
    results = json.loads((merged / "results.json").read_text())
    assert results["complete"] and results["manifest"]["shard"] == [1, 1]


def test_incompatible_runs_are_refused(reference_run, tiny_qwen2_5_omni, data_root, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(reference_run, out)
    assert main(_args(tiny_qwen2_5_omni, data_root, out, "--max-new-tokens", "9")) == 2
    assert "holds a run with other settings (decoding:" in capsys.readouterr().err
    manifest = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(dict(manifest, model_fingerprint="other")))
    assert main(["bench", "merge", str(tmp_path / "m"), str(reference_run), str(out)]) == 2
    assert "cannot merge" in capsys.readouterr().err


def test_bad_data_roots_fail_in_one_line_before_any_model_loads(data_root, tmp_path, capsys):
    broken = tmp_path / "dataset"
    shutil.copytree(data_root, broken)
    (broken / "cmumosi-process" / "label.npz").unlink()
    (broken / "mer2023-dataset-process" / "video" / "mer2023_002.mp4").unlink()
    assert main(_args(tmp_path / "no-such-model", broken, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: data root")
    assert (
        "mer2023: 1 of 4 videos missing" in err
        and "mosi: annotation cmumosi-process/label.npz not found" in err
    )
    assert not (tmp_path / "out").exists()


def test_emer_suite_runs_end_to_end(tiny_qwen2_5_omni, tmp_path):
    root = write_data_root(load_suite("emer"), tmp_path / "data", n=2)
    out = tmp_path / "out"
    args = ["bench", "emer", "--data-root", str(root), "--model", str(tiny_qwen2_5_omni), "--out", str(out)]
    assert main([*args, *FAST, "--limit", "1"]) == 0
    assert len(_predictions(out)) == 2
    limited = json.loads((out / "results.json").read_text())
    assert limited["manifest"]["limit"] == 1 and {d["n"] for d in limited["datasets"].values()} == {1}
    assert main([*args, *FAST]) == 0  # resumed without the limit: only the rest is generated
    assert len(_predictions(out)) == 4
    results = json.loads((out / "results.json").read_text())
    assert set(results["datasets"]) == {"emer_v1", "emer_fine"}
    assert {d["n"] for d in results["datasets"].values()} == {2} and results["complete"]
    assert "cues" in results["datasets"]["emer_v1"]["scores"]["affectreason"]
    assert _predictions(out)[("emer_v1", "emer_v1_000")]["reference"]["emotions"] == ["happy", "excited"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_the_report_renders_its_plots_in_headless_chromium(reference_run, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,2600",
            "--virtual-time-budget=15000", f"--screenshot={shot}", (reference_run / "report.html").as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    # Plotly's first trace colour (#636efa) fills the bars; a page whose plots did not render has none.
    bars = sum(count for count, rgb in colours if rgb == (99, 110, 250))
    assert bars > 5000
    assert len(colours) > 50
