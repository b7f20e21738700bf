"""`affectreason score` on the record shapes our own commands write (describe, bench), failed predictions in
sentiment, the released `label-*.npz` as a reference, and unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectreason.bench.suites import load_suite
from affectreason.bench.synthetic import write_data_root
from affectreason.cli import main
from affectreason.rationale import Rationale, parse_rationale, render_canonical
from affectreason.scoring import score_files, score_records

FAST = ["--max-new-tokens", "8", "--frames", "2"]
ANSWER = Rationale(
    emotions=["happy", "grateful"],
    visual_cues=["she smiles broadly", "her eyes light up"],
    acoustic_cues=["her voice sounds cheerful and bright"],
    lexical_cues=["she says thank you so much"],
    reasoning="The smile and the bright voice show joy at a gift.",
    valence=0.8,
    arousal=0.6,
    confidence=0.9,
)
REASON = (
    "She smiles broadly and her eyes light up. Her voice sounds cheerful and bright. "
    'She says "thank you so much", so she is happy.'
)


def _json(capsys, argv) -> dict:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def describe_records(tiny_qwen2_5_omni, clip_av, tmp_path_factory):
    """Records as `describe` writes them: a real CLI run (JSON list file) on the tiny model, plus records
    built by describe's own record builders from a canonical answer and from a segmented timeline."""
    from affectreason.describe import (
        DescribeOptions,
        load_for_describe,
        record_from_rationale,
        record_from_text,
        summarise_timeline,
    )
    from affectreason.engines import create_engine
    from affectreason.prompts import load_prompt

    folder = tmp_path_factory.mktemp("described")
    listed = folder / "described.json"
    code = main(["describe", str(clip_av), "--model", str(tiny_qwen2_5_omni), "--out", str(listed), *FAST])
    assert code == 0
    options = DescribeOptions(frames=2, max_new_tokens=8)
    engine = create_engine("hf", model=str(tiny_qwen2_5_omni))
    clip = load_for_describe(clip_av, options)
    prompt = load_prompt(options.prompt)
    canonical = record_from_text(clip, render_canonical(ANSWER), engine, options, prompt)
    segmented = record_from_rationale(
        clip, summarise_timeline([parse_rationale(render_canonical(ANSWER))]), engine, options, prompt
    )
    return {"file": listed, "canonical": canonical, "segmented": segmented, "id": canonical["id"]}


def _emer_ref(folder: Path, sample_id: str) -> Path:
    path = folder / "gt-eng.csv"  # EMER v1 layout: names, emotions, subtitles, reasons
    path.write_text(
        f'names,emotions,subtitles,reasons\n{sample_id},"[\'happy\']",Thank you so much!,"{REASON.replace(chr(34), chr(34) * 2)}"\n',
        encoding="utf-8",
    )
    return path


def test_emer_scores_describe_records_from_their_structured_fields(describe_records, tmp_path, capsys):
    sample_id = describe_records["id"]
    ref = _emer_ref(tmp_path, sample_id)
    canonical = describe_records["canonical"]
    assert canonical["visual_cues"] and canonical["raw"]  # the shape under test
    argv = ["score", "--task", "emer", "--ref", str(ref), "--json", "--no-semantic"]
    scored = _json(capsys, [*argv, "--pred", str(_write_jsonl(tmp_path / "p.jsonl", [canonical]))])
    for modality in ("visual", "acoustic", "lexical"):
        assert scored["cues"][modality]["n"] == 1
        assert scored["cues"][modality]["soft"]["f1"] > 0.5, modality
    assert scored["cues"]["visual"]["matched"]["f1"] > 0.5
    assert scored["ew"]["level1"]["fscore"] == 1.0

    renamed = {("text" if k == "raw" else k): v for k, v in canonical.items()}
    again = _json(capsys, [*argv, "--pred", str(_write_jsonl(tmp_path / "r.jsonl", [renamed]))])
    assert (
        again["cues"] == scored["cues"]
    )  # the same record scores the same whatever its text field is called

    segmented = describe_records["segmented"]
    assert segmented["raw"] == "" and segmented["visual_cues"]
    seg = _json(capsys, [*argv, "--pred", str(_write_jsonl(tmp_path / "s.jsonl", [segmented]))])
    assert seg["cues"] == scored["cues"]


def test_emer_reads_describe_json_list_output(describe_records, tmp_path, capsys):
    ref = _emer_ref(tmp_path, describe_records["id"])
    argv = ["score", "--task", "emer", "--ref", str(ref), "--pred", str(describe_records["file"])]
    result = _json(capsys, [*argv, "--json", "--no-semantic"])
    assert result["n"] == 1 and result["missing"] == []


def test_bench_emer_scores_structured_cues(describe_records):
    from affectreason.bench.results import score_dataset

    spec = load_suite("emer").dataset("emer_v1")
    record = dict(describe_records["segmented"])
    record.update(dataset=spec.name, id="x", reference={"emotions": ["happy"], "description": REASON})
    scores = score_dataset(spec, [record], "affectreason", None)["affectreason"]
    assert scores["cues"]["visual"]["soft"]["f1"] > 0.5


# Sentiment: a failed prediction is wrong for every class (default), negative under parity (and says so).
SENT_REFS = {"a": 1.2, "b": -0.8, "c": 2.0, "d": -1.5}


@pytest.mark.parametrize("failed", [[], "", None, ["xqzzyv"]])
def test_failed_sentiment_predictions_get_no_credit(failed):
    preds = dict.fromkeys(SENT_REFS, failed)
    result = score_records("sentiment", SENT_REFS, preds, semantic=False)
    assert result["weighted_f1"] == 0.0 and result["accuracy"] == 0.0
    assert result["failed"] == 4 and result["failed_counted_as"] == "wrong"


def test_parity_keeps_the_reference_reading_of_failed_predictions_and_says_so(capsys, tmp_path):
    preds = dict.fromkeys(SENT_REFS, [])
    result = score_records("sentiment", SENT_REFS, preds, protocol="mer-unibench", semantic=False)
    assert result["accuracy"] == 0.5 and result["failed"] == 4 and result["failed_counted_as"] == "negative"
    ref, pred = tmp_path / "ref.csv", tmp_path / "pred.jsonl"
    ref.write_text("name,valence\n" + "".join(f"{k},{v}\n" for k, v in SENT_REFS.items()))
    _write_jsonl(pred, [{"id": k, "emotions": []} for k in SENT_REFS])
    argv = [
        "score",
        "--task",
        "sentiment",
        "--ref",
        str(ref),
        "--pred",
        str(pred),
        "--protocol",
        "mer-unibench",
    ]
    assert main(argv) == 0
    assert "4 failed predictions counted as negative" in capsys.readouterr().out


def test_sentiment_accepts_valence_predictions(tmp_path, capsys):
    ref, pred = tmp_path / "ref.csv", tmp_path / "pred.jsonl"
    ref.write_text("name,valence\n" + "".join(f"{k},{v}\n" for k, v in SENT_REFS.items()))
    _write_jsonl(pred, [{"id": k, "valence": 0.5 if v > 0 else -0.5} for k, v in SENT_REFS.items()])
    result = _json(capsys, ["score", "--task", "sentiment", "--ref", str(ref), "--pred", str(pred), "--json"])
    assert result["weighted_f1"] == 1.0 and result["failed"] == 0


@pytest.fixture(scope="module")
def released_root(tmp_path_factory):
    suite = load_suite("mer-unibench")
    return write_data_root(
        suite, tmp_path_factory.mktemp("released") / "dataset", n=4, datasets=["mer2023", "mosi"]
    )


def test_released_label_npz_is_a_discrete_and_sentiment_reference(released_root, tmp_path, capsys):
    from affectreason.bench.adapters import load_label_corpus

    labels = released_root / "mer2023-dataset-process" / "label-6way.npz"
    corpus = load_label_corpus(labels, "test1_corpus")
    pred = _write_jsonl(tmp_path / "p.jsonl", [{"id": k, "emotions": [v["emo"]]} for k, v in corpus.items()])
    result = _json(
        capsys, ["score", "--task", "discrete", "--ref", str(labels), "--pred", str(pred), "--json"]
    )
    assert result["hit_rate"] == 1.0 and result["n"] == len(corpus) == 4

    mosi = released_root / "cmumosi-process" / "label.npz"
    values = load_label_corpus(mosi, "test_corpus")
    spred = _write_jsonl(
        tmp_path / "s.jsonl", [{"id": k, "valence": v["val"]} for k, v in values.items() if v["val"]]
    )
    result = score_files("sentiment", mosi, spred)
    assert result["weighted_f1"] == 1.0 and result["missing"] == []


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"name,openset\na,caf\xe9\n", b"PK\x03\x04garbage"],
)
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".npz"])
def test_binary_or_invalid_utf8_is_one_error_line(tmp_path, capsys, content, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(content)
    good = tmp_path / "good.csv"
    good.write_text("name,openset\na,happy\n")
    for argv in (["--ref", str(bad), "--pred", str(good)], ["--ref", str(good), "--pred", str(bad)]):
        assert main(["score", "--task", "discrete", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
        assert str(bad) in err
