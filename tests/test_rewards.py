"""Golden values for the reward registry, R1-Omni parity on the shared vectors, and the trl wrapper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectreason.errors import AffectReasonError
from affectreason.rationale import Rationale, render_canonical
from affectreason.train import rewards

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data"


def _completion(
    emotions: list[str], reasoning: str = "The voice rises and the face beams.", valence=None
) -> str:
    return render_canonical(
        Rationale(
            emotions=emotions,
            visual_cues=["wide smile"],
            acoustic_cues=["rising pitch"],
            reasoning=reasoning,
            valence=valence,
        )
    )


@pytest.fixture(scope="module")
def r1_vectors() -> list[dict]:
    path = SHARED / "ewmetric_vectors_dev.json"
    if not path.exists():
        pytest.skip("shared reference data not present")
    return json.loads(path.read_text())["r1omni_rewards"]


def test_r1omni_format_and_accuracy_parity(r1_vectors):
    for case in r1_vectors:
        fmt = rewards.format_reward(case["completion"])
        acc = rewards.accuracy(case["completion"], {"solution": case["solution"]})
        assert fmt == case["format_reward"], case["id"]
        assert acc == case["accuracy_reward"], case["id"]
        assert fmt + acc == case["total"], case["id"]


def test_format_strict_prefers_canonical():
    assert rewards.format_reward(_completion(["happy"]), strict=True) == 1.0
    assert rewards.format_reward("<think>x</think><answer>happy</answer>", strict=True) == 0.5
    assert rewards.format_reward("happy", strict=True) == 0.0


def test_emotion_wheel_golden():
    ref = {"emotions": ["happy"]}
    assert rewards.emotion_wheel(_completion(["joyful"]), ref) == pytest.approx(1.0)
    assert rewards.emotion_wheel(_completion(["angry"]), ref) == pytest.approx(0.0)
    # one right family out of two answered: precision 1/2, recall 1 -> F1 2/3
    assert rewards.emotion_wheel(_completion(["happy", "angry"]), ref) == pytest.approx(2 / 3)
    assert rewards.emotion_wheel("no tags at all", ref) == 0.0
    assert rewards.emotion_wheel(_completion(["happy"]), {"emotions": []}) is None


def test_think_answer_consistency():
    agree = _completion(["happy"], reasoning="She sounds happy and cheerful.")
    clash = _completion(["happy"], reasoning="He is furious and angry.")
    silent = _completion(["happy"], reasoning="Nothing to say.")
    assert rewards.think_answer_consistency(agree) == pytest.approx(1.0)
    assert rewards.think_answer_consistency(clash) == pytest.approx(0.0)
    assert rewards.think_answer_consistency(silent) == 0.0


def test_length_penalty():
    ref = {"emotions": ["happy"]}
    assert rewards.length_penalty(_completion(["happy", "joyful"]), ref) == 0.0
    assert rewards.length_penalty(_completion(["happy", "joyful", "calm", "proud"]), ref) == pytest.approx(
        -0.5
    )
    long = _completion(["happy"], reasoning=" ".join(["word"] * 300))
    assert rewards.length_penalty(long, ref, max_think_words=100) == pytest.approx(-0.5)


def test_valence_sign():
    assert rewards.valence(_completion(["happy"], valence=0.8), {"valence": 0.5}) == 1.0
    assert rewards.valence(_completion(["happy"], valence=0.8), {"valence": -0.5}) == 0.0
    assert (
        rewards.valence(_completion(["sad"]), {"emotions": ["angry"]}) == 1.0
    )  # both negative, from the words
    assert rewards.valence(_completion(["happy"]), {}) is None


def test_cue_grounding_semantic():
    ref = {"visual_cues": ["a broad smile"], "acoustic_cues": ["pitch rising"]}
    near = rewards.cue_grounding(_completion(["happy"]), ref)
    far = rewards.cue_grounding(
        render_canonical(Rationale(emotions=["happy"], visual_cues=["a red car"], acoustic_cues=["traffic"])),
        ref,
    )
    assert 0.0 <= far < near <= 1.0
    assert rewards.cue_grounding(_completion(["happy"]), {"emotions": ["happy"]}) is None


def test_registry_and_dotted_path():
    assert rewards.get_reward("emotion_wheel") is rewards.emotion_wheel
    assert rewards.get_reward("affectreason.train.rewards:valence") is rewards.valence
    with pytest.raises(AffectReasonError, match="unknown reward"):
        rewards.get_reward("nope")
    with pytest.raises(AffectReasonError, match="cannot import"):
        rewards.get_reward("no_such_pkg.mod:fn")


def test_trl_wrapper_reads_columns_and_score_completion():
    fn = rewards.trl_reward("emotion_wheel")
    completions = [[{"role": "assistant", "content": _completion(["happy"])}], _completion(["angry"])]
    out = fn(
        prompts=["p", "p"],
        completions=completions,
        completion_ids=[[1], [2]],
        emotions=[["happy"], ["happy"]],
        trainer_state=None,
    )
    assert out == [pytest.approx(1.0), pytest.approx(0.0)]
    assert fn.__name__ == "emotion_wheel"
    scores = rewards.score_completion(
        _completion(["happy"]), {"emotions": ["happy"]}, {"emotion_wheel": 1.0, "format": 0.5}
    )
    assert scores["total"] == pytest.approx(1.5)
