"""Self-built preference pairs: the pure choice, weights parsing, and `data pairs` on a tiny model."""

from __future__ import annotations

import json
import re

import pytest
from test_grpo import write_labels

from affectreason.cli import main
from affectreason.errors import AffectReasonError
from affectreason.rationale import Rationale, render_canonical
from affectreason.train.pairs import choose_pair, parse_weights


def test_choose_pair_best_vs_worst_with_margin():
    good = render_canonical(Rationale(emotions=["happy"], reasoning="bright"))
    half = render_canonical(Rationale(emotions=["happy", "angry"], reasoning="mixed"))
    bad = "angry"
    pair = choose_pair([half, bad, good], {"emotions": ["happy"]}, {"emotion_wheel": 1.0, "format": 0.5}, 0.2)
    assert pair["keep"] and pair["chosen"] == good and pair["rejected"] == bad
    assert pair["chosen_score"] == pytest.approx(1.5) and pair["rejected_score"] == pytest.approx(0.0)
    assert [s["total"] for s in pair["scores"]] == pytest.approx([0.5 + 2 / 3, 0.0, 1.5])
    same = choose_pair([good, good], {"emotions": ["happy"]}, {"emotion_wheel": 1.0}, 0.2)
    assert not same["keep"] and same["gap"] == 0.0


def test_parse_weights():
    assert parse_weights("emotion_wheel=1, format=0.5") == {"emotion_wheel": 1.0, "format": 0.5}
    with pytest.raises(AffectReasonError, match="unknown reward"):
        parse_weights("bogus=1")
    with pytest.raises(AffectReasonError, match="not name=number"):
        parse_weights("format=x")


def test_data_pairs_cli(tiny_qwen2_5_omni, tmp_path):
    labels = write_labels(tmp_path / "data", count=2)
    out = tmp_path / "pairs.jsonl"
    args = ["data", "pairs", str(tiny_qwen2_5_omni), str(labels), "--out", str(out), "--n", "3"]
    assert main([*args, "--margin=-1", "--frames", "2", "--max-new-tokens", "6"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert len(line["scores"]) == 3 and line["chosen_score"] >= line["rejected_score"]
        assert line["video"].endswith(".mp4") and line["emotions"]
    assert main([*args, "--n", "1"]) == 2


def test_data_pairs_says_why_it_kept_no_pairs(capsys, tiny_qwen2_5_omni, tmp_path):
    labels = write_labels(tmp_path / "data", count=2)
    out = tmp_path / "pairs.jsonl"
    args = ["data", "pairs", str(tiny_qwen2_5_omni), str(labels), "--out", str(out), "--n", "2"]
    assert main([*args, "--margin", "100", "--frames", "2", "--max-new-tokens", "4"]) == 0
    captured = capsys.readouterr()
    assert out.read_text() == "" and captured.out.startswith("0 pairs from 2 clips")
    (line,) = [ln for ln in captured.err.splitlines() if ln.startswith("warning:")]
    assert line.startswith("warning: no pairs kept from 2 clips: ")
    counted = re.findall(
        r"(\d+) had (?:all 2 responses scored alike|a best-worst gap under --margin 100 )", line
    )
    assert sum(map(int, counted)) == 2, line
