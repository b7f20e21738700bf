"""Bench without a model: suite manifests, dataset adapters over mini data roots in the released formats, the
data check's errors, sample selection and shards, the prediction store, scoring and the Markdown table."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectreason.bench.adapters import check_data, resolve_data_root, scan_dataset
from affectreason.bench.options import parse_shard, select_samples
from affectreason.bench.report import plot_data, render_markdown
from affectreason.bench.results import compute_results, dataset_scorer
from affectreason.bench.store import PredictionStore, incompatibility
from affectreason.bench.suites import load_suite, suite_names
from affectreason.bench.synthetic import write_data_root
from affectreason.cli import main
from affectreason.errors import AffectReasonError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data"
WHEELS = SHARED / "ovmer_emotion_wheel"


@pytest.fixture(scope="module")
def mer_root(tmp_path_factory):
    return write_data_root(load_suite("mer-unibench"), tmp_path_factory.mktemp("mer") / "dataset", n=4)


@pytest.fixture(scope="module")
def emer_root(tmp_path_factory):
    return write_data_root(load_suite("emer"), tmp_path_factory.mktemp("emer"), n=3)


def _scans(suite, root, datasets=None):
    return {s.spec.name: s for s in check_data(load_suite(suite).select(datasets), root)}


def test_packaged_suites_load_with_their_datasets_and_published_rows():
    assert suite_names() == ["emer", "emobench-m", "mer-unibench", "mme-emotion", "ov-mer"]
    mer = load_suite("mer-unibench")
    assert [d.name for d in mer.datasets] == [
        "mer2023", "mer2024", "meld", "iemocap", "mosi", "mosei", "sims", "simsv2", "ovmerd_plus",
    ]  # fmt: skip
    assert {d.task for d in mer.datasets} == {"discrete", "sentiment", "ov"}
    assert mer.published["AffectGPT"]["mean"] == pytest.approx(74.77)
    assert mer.published["R1-Omni"] == {"mean": 59.61}
    assert [d.name for d in load_suite("emer").datasets] == ["emer_v1", "emer_fine"]
    assert load_suite("ov-mer").dataset("ovmerd").metric == "ew.m_avg"


def test_a_suite_yaml_with_a_typo_names_the_nearest_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndatasets:\n  - {name: a, folder: a, format: npz, annotaton: x.npz, task: ov}\n"
    )
    with pytest.raises(AffectReasonError, match="unknown key 'annotaton'.*did you mean 'annotation'"):
        load_suite(path)
    path.write_text(
        "name: mine\ndatasets:\n  - {name: a, folder: a, format: npz, annotation: x, task: ovv, metric: m}\n"
    )
    with pytest.raises(AffectReasonError, match="unknown task 'ovv'"):
        load_suite(path)
    with pytest.raises(AffectReasonError, match="unknown suite 'mer-unibnech'.*mer-unibench"):
        load_suite("mer-unibnech")


def test_released_formats_become_samples_with_references_and_transcripts(mer_root):
    scans = _scans("mer-unibench", mer_root)
    assert {name: len(s.samples) for name, s in scans.items()} == dict.fromkeys(scans, 4)
    meld = scans["meld"].samples
    # MELD releases label indices into anger, joy, sadness, neutral, ...
    assert [s.reference["label"] for s in meld] == ["anger", "joy", "sadness", "neutral"]
    assert [s.reference["label"] for s in scans["mer2023"].samples][:2] == ["neutral", "angry"]
    # IEMOCAP: only session 5 is the test split; the videos are .avi files in subvideo-tgt.
    iemocap = scans["iemocap"].samples
    assert all(s.id.startswith("Ses05") for s in iemocap)
    assert all(s.video.suffix == ".avi" and s.video.parent.name == "subvideo-tgt" for s in iemocap)
    mosei = scans["mosei"].samples
    assert all(isinstance(s.reference["valence"], float) for s in mosei)
    assert mosei[0].video.parent.name == "subvideo_new"
    ov = scans["ovmerd_plus"].samples
    assert ov[0].reference["emotions"] == ["happy", "excited"]
    assert ov[3].reference["emotions"] == ["neutral"]  # an empty openset cell means neutral
    assert all(s.transcript for s in meld + ov)
    # The parent of `dataset/` is accepted as the data root too.
    assert resolve_data_root(mer_root.parent, load_suite("mer-unibench").select(None)) == mer_root


def test_emer_formats_read_descriptions_labels_and_inline_subtitles(emer_root):
    scans = _scans("emer", emer_root)
    v1 = scans["emer_v1"].samples[0]
    assert v1.video.suffix == ".avi" and v1.transcript == "I can't believe it worked!"
    assert v1.reference["emotions"] == ["happy", "excited"] and "frowns" in v1.reference["description"]
    fine = scans["emer_fine"].samples[1]
    assert (
        fine.reference["emotions"] == ["sad", "disappointed"]
        and "raised voice" in fine.reference["description"]
    )


def test_alternative_folder_names_and_extensions_are_found(tmp_path):
    suite = load_suite("mer-unibench")
    root = write_data_root(suite, tmp_path, n=2, datasets=["mer2023", "simsv2"])
    videos = root / "mer2023-dataset-process" / "video"
    mp4 = videos / "mer2023_001.mp4"
    shutil.copyfile(mp4, videos / "mer2023_001.avi")
    mp4.unlink()  # MER2023: `.mp4`, else `.avi`
    (root / "simsv2-process" / "video_new").rename(root / "simsv2-process" / "video")
    scans = _scans("mer-unibench", root, ["mer2023", "simsv2"])
    assert scans["mer2023"].samples[1].video.name == "mer2023_001.avi"
    assert scans["mer2023"].samples[0].video.name == "mer2023_000.mp4"
    assert scans["simsv2"].samples[0].video.parent.name == "video"


def test_missing_files_are_listed_in_one_line_with_counts(tmp_path):
    root = write_data_root(load_suite("mer-unibench"), tmp_path, n=4, datasets=["mer2023", "meld", "mosi"])
    (root / "mer2023-dataset-process" / "label-6way.npz").unlink()
    for name in ("meld_001", "meld_003"):
        (root / "meld-process" / "subvideo" / f"{name}.mp4").unlink()
    shutil.rmtree(root / "cmumosi-process" / "subvideo")
    with pytest.raises(AffectReasonError) as info:
        check_data(load_suite("mer-unibench").select(["mer2023", "meld", "mosi"]), root)
    message = str(info.value)
    assert "\n" not in message
    assert "mer2023: annotation mer2023-dataset-process/label-6way.npz not found" in message
    assert "meld: 2 of 4 videos missing in meld-process/subvideo (e.g. meld_001, meld_003)" in message
    assert "mosi: 4 of 4 videos missing in cmumosi-process/{subvideo} (no such folder)" in message


def test_bad_npz_split_and_label_index_are_clear(tmp_path):
    suite = load_suite("mer-unibench")
    root = write_data_root(suite, tmp_path, n=2, datasets=["meld"])
    labels = root / "meld-process" / "label.npz"
    np.savez(labels, train_corpus=np.array({"a": {"emo": 1}}, dtype=object))
    assert (
        "label.npz has no 'test_corpus' (has: train_corpus)"
        in scan_dataset(suite.dataset("meld"), root).problems[0]
    )
    np.savez(labels, test_corpus=np.array({"meld_000": {"emo": 9}}, dtype=object))
    assert "label index 9 outside the label space" in scan_dataset(suite.dataset("meld"), root).problems[0]


def test_bench_check_cli_reports_ok_and_errors(mer_root, tmp_path, capsys):
    assert (
        main(["bench", "check", "mer-unibench", "--data-root", str(mer_root), "--datasets", "meld,mosi"]) == 0
    )
    out = capsys.readouterr().out
    assert "meld" in out and "4 samples" in out
    assert main(["bench", "check", "emer", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: data root")
        and "emer_v1: annotation ./EMER/dataset-v1/gt-eng.csv not found" in err
    )
    assert len(err.splitlines()) == 1
    assert main(["bench", "check", "emer", "--data-root", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["bench", "check", "mer-unibench", "--data-root", str(mer_root), "--datasets", "meldd"]) == 2
    assert "did you mean 'meld'" in capsys.readouterr().err


def test_limit_and_shards_split_deterministically(mer_root):
    scan = _scans("mer-unibench", mer_root, ["mer2023"])["mer2023"]
    whole = [s.id for _, s in select_samples(scan, 3, (1, 1))]
    assert whole == ["mer2023_000", "mer2023_001", "mer2023_002"]
    shards = [[s.id for _, s in select_samples(scan, 3, (i, 2))] for i in (1, 2)]
    assert shards == [["mer2023_000", "mer2023_002"], ["mer2023_001"]]
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(AffectReasonError, match="--shard"):
            parse_shard(bad)


def test_store_repairs_a_torn_line_and_never_duplicates(tmp_path):
    store = PredictionStore(tmp_path)
    assert (
        store.append([{"dataset": "d", "id": "a", "emotions": ["happy"]}, {"dataset": "d", "id": "b"}]) == 2
    )
    with store.path.open("a") as handle:
        handle.write('{"dataset": "d", "id": "c", "emot')  # a write cut short by SIGKILL
    again = PredictionStore(tmp_path)
    assert set(again.load()) == {("d", "a"), ("d", "b")}
    assert again.append([{"dataset": "d", "id": "a", "emotions": ["sad"]}, {"dataset": "d", "id": "c"}]) == 1
    lines = [json.loads(line) for line in store.path.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a", "b", "c"] and lines[0]["emotions"] == ["happy"]
    store.path.write_text(store.path.read_text() + "not json\n")
    with pytest.raises(AffectReasonError, match="line 4 is not a prediction record"):
        PredictionStore(tmp_path).load()


def test_manifests_must_agree_to_resume_or_merge():
    a = {
        "suite": "emer",
        "model_fingerprint": "sha256:m",
        "decoding": {"temperature": 0.0},
        "data_files": {"x.csv": "1", "y.csv": "2"},
    }
    assert incompatibility(a, dict(a, data_files={"x.csv": "1"})) is None
    assert (
        incompatibility(a, dict(a, model_fingerprint="sha256:n")) == "model_fingerprint: sha256:m vs sha256:n"
    )
    assert incompatibility(a, dict(a, model="/elsewhere/m")) is None  # the same content at another path
    assert incompatibility(a, dict(a, data_files={"y.csv": "3"})) == "data_files: y.csv changed"


def _perfect_records(scans):
    records = []
    for scan in scans.values():
        for sample in scan.samples:
            ref = sample.reference
            if "label" in ref:
                emotions = [ref["label"]]
            elif "valence" in ref:
                emotions = ["happy"] if ref["valence"] > 0 else ["sad"]
            else:
                emotions = list(ref["emotions"])
            records.append(
                {
                    "dataset": sample.dataset,
                    "id": sample.id,
                    "reference": ref,
                    "emotions": emotions,
                    "parse_ok": True,
                }
            )
    return records


def test_scores_go_through_the_score_library_per_dataset_and_suite_mean(mer_root):
    suite = load_suite("mer-unibench")
    scans = _scans("mer-unibench", mer_root)
    records = _perfect_records(scans)
    records[0] = dict(records[0], emotions=[], parse_ok=False)  # one miss on MER2023
    manifest = {"datasets": list(scans), "selected": dict.fromkeys(scans, 4), "model": "m"}
    results = compute_results(suite, records, manifest)
    ds = results["datasets"]
    assert ds["mer2023"]["main"] == pytest.approx(0.75) and ds["mer2023"]["parse_fail_rate"] == 0.25
    assert all(ds[n]["main"] == pytest.approx(1.0) for n in ds if n != "mer2023")
    assert results["mean"] == pytest.approx((8 + 0.75) / 9)
    assert results["complete"] and results["all_datasets"]
    table = render_markdown(suite, results)
    assert "| AffectGPT (published) | 78.54 | 78.80 | 55.65 |" in table
    assert "| **this run (affectreason)** | 75.00 | 100.00 |" in table
    data = plot_data(suite, results, records)
    # Reference family (rows) vs first predicted family: perfect but for the one empty prediction.
    assert data["confusion"] == {
        "anger|anger": 5,
        "joy|joy": 5,
        "neutral|neutral": 4,
        "neutral|none": 1,
        "sadness|sadness": 5,
    }
    assert data["frequency"][:2] == [("happy", 12), ("sad", 12)]
    score = dataset_scorer(suite)  # the same main metric, for callers scoring record subsets (attribution)
    assert score("mer2023", [r for r in records if r["dataset"] == "mer2023"]) == pytest.approx(0.75)


@pytest.mark.skipif(not WHEELS.is_dir(), reason="shared reference data not present")
def test_parity_protocol_scores_side_by_side(mer_root):
    suite = load_suite("mer-unibench")
    scans = _scans("mer-unibench", mer_root, ["mer2023", "ovmerd_plus"])
    manifest = {"datasets": list(scans), "selected": dict.fromkeys(scans, 4)}
    results = compute_results(suite, _perfect_records(scans), manifest, "mer-unibench", str(WHEELS))
    ov = results["datasets"]["ovmerd_plus"]
    assert set(ov["scores"]) == {"affectreason", "mer-unibench"}
    assert ov["main"] == ov["scores"]["mer-unibench"]["ew"]["level1"]["fscore"] == pytest.approx(1.0)
    assert not results["all_datasets"]
    assert "| this run (affectreason) |" in render_markdown(suite, results)
