"""`bench --attribution`: per-sample ablations and the corpus view in results.json, results.md and report.html."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from affectreason.bench.suites import load_suite
from affectreason.bench.synthetic import write_data_root
from affectreason.cli import main

FAST = ["--max-new-tokens", "6", "--frames", "2", "--batch-size", "2", "--quiet"]
DATASETS = ["mer2023", "ovmerd_plus"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribution-bench") / "dataset"
    return write_data_root(load_suite("mer-unibench"), root, n=2, datasets=DATASETS)


def _args(model, data_root, out, *extra):
    return [
        "bench", "mer-unibench", "--data-root", str(data_root), "--model", str(model), "--out", str(out),
        "--datasets", ",".join(DATASETS), *FAST, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def attributed_run(tiny_qwen2_5_omni, data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-attribution")
    assert main(_args(tiny_qwen2_5_omni, data_root, out, "--attribution")) == 0
    return out


def test_every_prediction_carries_its_ablations(attributed_run):
    lines = [json.loads(line) for line in (attributed_run / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * len(DATASETS)
    for record in lines:
        assert set(record["variants"]) | set(record["attribution"]["skipped"]) == {
            "video_only",
            "audio_only",
            "text_only",
        }
        assert record["attribution"]["modalities"]


def test_corpus_view_in_results_json_uses_the_bench_scoring(attributed_run):
    results = json.loads((attributed_run / "results.json").read_text())
    view = results["attribution"]
    assert set(view) == set(DATASETS)
    for name in DATASETS:
        dataset = view[name]
        assert dataset["n"] == 2
        assert sum(dataset["dominant"].values()) == pytest.approx(1.0)
        # the full run's accuracy is the benchmark's own main metric for that dataset
        assert dataset["accuracy"]["full"]["score"] == pytest.approx(results["datasets"][name]["main"])
        for variant, entry in dataset["accuracy"].items():
            if variant != "full":
                assert 0.0 <= entry["score"] <= 1.0 and entry["n"] >= 1
    assert json.loads((attributed_run / "run.json").read_text())["attribution"] is True


def test_corpus_view_in_results_md_and_report(attributed_run):
    markdown = (attributed_run / "results.md").read_text()
    assert "## Modality attribution" in markdown
    assert any(line.startswith("| mer2023 |") for line in markdown.splitlines())
    page = (attributed_run / "report.html").read_text()
    start = page.index('<section id="attribution">')
    section = page[start : page.index("</section>", start) + len("</section>")]
    ElementTree.fromstring(section)
    assert section.count("<svg") == 2


def test_attribution_and_plain_runs_do_not_mix(attributed_run, tiny_qwen2_5_omni, data_root, capsys):
    code = main(_args(tiny_qwen2_5_omni, data_root, attributed_run))
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error:") and "attribution" in err and err.count("\n") == 1
