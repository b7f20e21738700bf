"""`affectreason score`: the CLI contract (JSON shape, file forms, one-line errors) and no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from affectreason.cli import main
from affectreason.scoring import score_files, score_records

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data"
WHEEL_DIR = SHARED / "ovmer_emotion_wheel"
needs_shared = pytest.mark.skipif(not WHEEL_DIR.is_dir(), reason="shared reference data absent")


@pytest.fixture()
def ov_files(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text('name,openset\ns1,"[happy, excited]"\ns2,"angry, frustrated"\ns3,sad\n')
    pred = tmp_path / "pred.csv"
    pred.write_text('name,openset\ns1,"[joyful]"\ns2,"[annoyed, xqzzyv]"\n')
    return ref, pred


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@needs_shared
def test_ov_parity_json_contract(ov_files, capsys, tmp_path):
    ref, pred = ov_files
    out = tmp_path / "result.json"
    argv = ["score", "--task", "ov", "--ref", str(ref), "--pred", str(pred), "--protocol", "mer-unibench"]
    result = _json(capsys, [*argv, "--wheel-dir", str(WHEEL_DIR), "--json", "--out", str(out)])
    assert set(result["ew"]) == {"level1", "level2", "m_avg", "per_metric"}
    assert set(result["ew"]["level1"]) == {"fscore", "precision", "recall"}
    expected = {"case1", "case2"} | {f"wheel{k}_level{lv}" for k in range(1, 6) for lv in (1, 2)}
    assert set(result["ew"]["per_metric"]) == expected
    assert result["ew"]["per_metric"]["case1"]["fscore"] is None  # the reference's NaN is written as null
    assert result["n"] == 3 and result["missing"] == ["s3"] and result["unmapped"] == ["xqzzyv"]
    assert json.loads(out.read_text()) == result
    assert result == json.loads(json.dumps(score_files("ov", ref, pred, "mer-unibench", WHEEL_DIR)))


def test_ov_default_table_and_jsonl(ov_files, capsys, tmp_path):
    ref, _ = ov_files
    pred = tmp_path / "pred.jsonl"
    pred.write_text(
        json.dumps({"id": "s1", "emotions": ["joyful"]})
        + "\n"
        + json.dumps({"id": "s2", "text": "He is clearly annoyed and frustrated, not happy at all."})
        + "\n"
    )
    assert main(["score", "--task", "ov", "--ref", str(ref), "--pred", str(pred), "--no-semantic"]) == 0
    table = capsys.readouterr().out
    assert "default_level1" in table and "missing predictions (1)" in table
    result = score_records("ov", {"s1": {"openset": "[happy]"}}, {"s1": ["glad"]}, semantic=False)
    assert result["ew"]["level1"]["fscore"] == 1.0


def test_discrete_sentiment_emer(tmp_path, capsys):
    ref = tmp_path / "ref.csv"
    ref.write_text("name,openset\na,happy\nb,neutral\nc,angry\n")
    pred = tmp_path / "pred.jsonl"
    pred.write_text(
        "\n".join(json.dumps({"id": i, "emotions": e}) for i, e in [("a", ["joy"]), ("b", ["calm"])])
    )
    result = _json(capsys, ["score", "--task", "discrete", "--ref", str(ref), "--pred", str(pred), "--json"])
    assert (
        result["hit_rate"] == pytest.approx(2 / 3) and result["n"] == 3 and "default" in result["per_wheel"]
    )

    sref, spred = tmp_path / "sref.csv", tmp_path / "spred.csv"
    sref.write_text("name,valence\na,1.5\nb,-0.4\nc,0\n")
    spred.write_text("name,sentiment\na,positive\nb,negative\nc,positive\n")
    result = _json(
        capsys, ["score", "--task", "sentiment", "--ref", str(sref), "--pred", str(spred), "--json"]
    )
    assert result == {
        "weighted_f1": 1.0,
        "accuracy": 1.0,
        "n": 2,
        "failed": 0,
        "failed_counted_as": "wrong",
        "protocol": "affectreason",
        "missing": [],
    }

    eref, epred = tmp_path / "eref.jsonl", tmp_path / "epred.jsonl"
    eref.write_text(
        json.dumps({"id": "x", "description": "She smiles broadly. Her voice is cheerful; she is happy."})
    )
    epred.write_text(
        json.dumps({"id": "x", "text": "She smiles widely. Her voice sounds cheerful, she seems happy."})
    )
    argv = ["score", "--task", "emer", "--ref", str(eref), "--pred", str(epred), "--json", "--no-semantic"]
    result = _json(capsys, argv)
    assert set(result["cues"]) == {"visual", "acoustic", "lexical", "overall"}
    assert result["cues"]["visual"]["soft"]["f1"] > 0.7 and result["ew"]["level1"]["fscore"] == 1.0


@pytest.mark.parametrize(
    ("ref_text", "pred_text", "message"),
    [
        ("name,other\na,happy\n", "name,openset\na,happy\n", "has no labels"),
        ("name,openset\na,happy\n", "name,openset\nzz,happy\n", "not in the reference"),
        ("openset\nhappy\n", "name,openset\na,happy\n", "has no id"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, capsys, ref_text, pred_text, message):
    ref, pred = tmp_path / "r.csv", tmp_path / "p.csv"
    ref.write_text(ref_text)
    pred.write_text(pred_text)
    assert main(["score", "--task", "ov", "--ref", str(ref), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_unreadable_file_and_parity_without_wheels(tmp_path, capsys):
    assert (
        main(["score", "--task", "ov", "--ref", str(tmp_path / "no.csv"), "--pred", str(tmp_path / "no.csv")])
        == 2
    )
    assert "cannot read reference" in capsys.readouterr().err
    ref = tmp_path / "r.csv"
    ref.write_text("name,openset\na,happy\n")
    assert (
        main(["score", "--task", "ov", "--ref", str(ref), "--pred", str(ref), "--protocol", "mer-unibench"])
        == 2
    )
    assert "needs --wheel-dir" in capsys.readouterr().err


@needs_shared
def test_score_runs_without_importing_torch(ov_files):
    ref, pred = ov_files
    code = (
        "import sys; from affectreason.cli import main; "
        f"rc = main(['score', '--task', 'ov', '--ref', {str(ref)!r}, '--pred', {str(pred)!r}, "
        f"'--protocol', 'mer-unibench', '--wheel-dir', {str(WHEEL_DIR)!r}, '--json']); "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
