"""Cue verification on real signals: espeak-ng speech and a real smiling photograph, through `describe` and `verify`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_grpo import GRPO_FIELDS, write_labels, write_recipe

from affectreason import synth
from affectreason.cli import main
from affectreason.evidence import evidence_for_path
from affectreason.rationale import Rationale, render_canonical
from affectreason.train.data import load_captions
from affectreason.train.grpo import rl_rows
from affectreason.train.pairs import choose_pair
from affectreason.train.rewards import trl_reward
from affectreason.verify import verify_cue

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SENTENCE = "I told you already, this is not what we agreed on, and I am tired of waiting."


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="module")
def quiet_low_clip(tmp_path_factory, astronaut):
    """The smiling astronaut with a quiet (-a 20), low-pitched (-p 10) espeak-ng voice."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    speech = synth.speak(SENTENCE, pitch=10, amplitude=20)
    return synth.write_photo_clip(
        tmp_path_factory.mktemp("verify") / "quiet_low.mp4", astronaut, signal=speech
    )


@pytest.fixture(scope="module")
def faceless_silent_clip(tmp_path_factory, astronaut):
    """The photograph upside down (no face found) and no audio track."""
    path = tmp_path_factory.mktemp("verify") / "upside_down.mp4"
    upside_down = np.ascontiguousarray(astronaut[::-2, ::2])
    return synth.write_clip(path, size=(256, 256), fps=4, frame_fn=lambda i, t: upside_down, audio=False)


@needs_espeak
def test_describe_then_verify_checks_each_cue(tiny_qwen2_5_omni, quiet_low_clip, tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    args = ["describe", str(quiet_low_clip), "-m", str(tiny_qwen2_5_omni), "--frames", "2"]
    assert main([*args, "--max-new-tokens", "4", "--format", "jsonl", "--out", str(pred)]) == 0
    capsys.readouterr()
    record = json.loads(pred.read_text())
    record["visual_cues"] = ["smiling", "frowning", "tears on the cheeks"]
    record["acoustic_cues"] = ["loud, high-pitched shouting", "quiet, low voice"]
    pred.write_text(json.dumps(record) + "\n")

    assert main(["verify", str(pred), "--json", "--no-semantic"]) == 0
    result = json.loads(capsys.readouterr().out)
    check = result["records"][0]["verification"]
    verdicts = {c["cue"]: c["verdict"] for c in check["cues"]}
    assert verdicts == {
        "smiling": "supported",
        "frowning": "contradicted",
        "tears on the cheeks": "unverifiable",
        "loud, high-pitched shouting": "contradicted",
        "quiet, low voice": "supported",
    }
    assert check["faithfulness"] == pytest.approx(0.5) and result["summary"]["faithfulness"] == pytest.approx(
        0.5
    )
    assert check["contradicted_cues"] == ["frowning", "loud, high-pitched shouting"]
    shouting = next(c for c in check["cues"] if c["cue"].startswith("loud"))
    measured = {c["measure"]: c for c in shouting["claims"]}
    assert measured["loudness"]["found"] == "low" and measured["loudness"]["value"] < -35
    assert measured["pitch"]["found"] == "low" and measured["pitch"]["value"] < 120

    assert main(["verify", str(pred), "--no-semantic"]) == 0
    text = capsys.readouterr().out
    assert "faithfulness 0.50" in text and "x acoustic loud, high-pitched shouting  <- loudness" in text


@needs_espeak
def test_describe_verify_puts_verdicts_in_records_and_text(
    tiny_qwen2_5_omni, quiet_low_clip, tmp_path, capsys
):
    pred = tmp_path / "pred.jsonl"
    args = ["describe", str(quiet_low_clip), "-m", str(tiny_qwen2_5_omni), "--frames", "2", "--verify"]
    assert main([*args, "--max-new-tokens", "4", "--out", str(pred)]) == 0
    text = capsys.readouterr().out
    record = json.loads(pred.read_text())
    # a random model cites no measurable cue: nothing to check, but the check ran on the clip
    assert {"faithfulness", "supported", "contradicted", "cues"} <= set(record["verification"])
    assert "cue check  faithfulness" in text


def test_face_absent_and_no_audio_contradict_face_and_voice_cues(faceless_silent_clip):
    evidence = evidence_for_path(str(faceless_silent_clip))
    assert evidence["face"].level == "low" and evidence["smile"].value is None
    assert evidence["speech"].level == "low" and evidence["loudness"].value is None
    assert verify_cue("visual", "smiling", evidence).verdict == "contradicted"
    assert verify_cue("visual", "avoids eye contact", evidence).verdict == "unverifiable"
    assert verify_cue("acoustic", "shouting", evidence).verdict == "contradicted"
    assert verify_cue("acoustic", "silent", evidence).verdict == "supported"
    assert verify_cue("acoustic", "no shouting", evidence).verdict == "unverifiable"


@needs_espeak
def test_negation_and_contradict_only_phrases(quiet_low_clip):
    evidence = evidence_for_path(str(quiet_low_clip))
    assert verify_cue("visual", "no smile at all", evidence).verdict == "contradicted"
    assert verify_cue("acoustic", "speaks without shouting", evidence).verdict == "supported"
    assert verify_cue("visual", "maintains eye contact", evidence).verdict == "supported"
    assert verify_cue("visual", "avoids eye contact", evidence).verdict == "contradicted"
    few_pauses = verify_cue("acoustic", "fast-paced speech with few pauses", evidence)
    assert {c["measure"]: c["expects"] for c in few_pauses.claims} == {"pace": ["high"], "pauses": ["low"]}
    louder = verify_cue("acoustic", "louder towards the end", evidence, semantic=False)
    assert [c["measure"] for c in louder.claims] == ["loudness_variation"]  # a change, not a level
    assert verify_cue("acoustic", "quick breaths", evidence, semantic=False).claims == []
    # "frowning" can only be contradicted (no smile detected would not prove a frown)
    assert verify_cue("visual", "frowning", evidence).claims[0]["expects"] == []


@needs_espeak
def test_embedding_fallback_maps_unseen_phrases(quiet_low_clip):
    evidence = evidence_for_path(str(quiet_low_clip))
    gaze = verify_cue("visual", "gaze directed elsewhere", evidence)  # the astronaut faces the camera
    assert gaze.verdict == "contradicted" and gaze.claims[0]["via"] == "embedding"
    assert verify_cue("visual", "a happy expression", evidence).verdict == "unverifiable"


def test_bad_inputs_get_one_line(tmp_path, capsys, faceless_silent_clip):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "source": "x.mp4"}\n{not json\n')
    assert main(["verify", str(broken)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {broken} line 2 is not valid JSON"
    mixed = tmp_path / "mixed.jsonl"
    rows = [
        {"id": "ok", "source": faceless_silent_clip.name, "visual_cues": ["smiling"]},
        {"id": "nested", "source": str(faceless_silent_clip), "visual_cues": {"a": ["smiling"]}},
        {"id": "gone", "source": "missing.mp4", "visual_cues": ["smiling"]},
        {"id": "nul", "source": "a\x00b.mp4"},
        {"id": "long", "source": faceless_silent_clip.name, "visual_cues": ["smile " * 20_000]},
    ]
    shutil.copy(
        faceless_silent_clip, tmp_path / faceless_silent_clip.name
    )  # relative to the predictions file
    mixed.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["verify", str(mixed), "--json", "--no-semantic"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["records"][0]["verification"]["contradicted_cues"] == ["smiling"]
    long_cue = result["records"][-1]["verification"]["cues"][0]
    assert (
        long_cue["verdict"] == "contradicted" and len(long_cue["claims"]) == 2
    )  # smile, and the absent face
    errors = [r.get("error", "") for r in result["records"][1:-1]]
    assert errors[0] == "'visual_cues' is not a list of strings"
    assert errors[1] == "source not found: 'missing.mp4'" and errors[2].startswith("source not found: 'a")
    assert "Traceback" not in captured.err and captured.err.count("error:") == 3


def test_verify_imports_no_torch_without_the_fallback(faceless_silent_clip, tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps({"id": "a", "source": str(faceless_silent_clip), "visual_cues": ["smiling"]}))
    code = (
        "import sys; from affectreason.cli import main; "
        f"assert main(['verify', {str(pred)!r}]) == 0; "
        "heavy = {'torch', 'transformers', 'sentence_transformers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def _completion(visual: list[str], acoustic: list[str]) -> str:
    return render_canonical(Rationale(emotions=["happy"], visual_cues=visual, acoustic_cues=acoustic))


@needs_espeak
def test_cue_faithfulness_reward_on_grpo_rows(quiet_low_clip, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"video,emotions\n{quiet_low_clip},happy\n")
    rows = rl_rows(load_captions(labels), "describe")
    reward = trl_reward("cue_faithfulness", semantic=False)
    completions = [
        _completion(["smiling"], ["quiet, low voice"]),
        _completion(["frowning"], ["loud, high-pitched shouting"]),
        _completion(["smiling"], ["shouting"]),
        _completion(["tears"], []),
    ]
    columns = {key: [rows[0][key]] * len(completions) for key in rows[0]}
    assert reward(["p"] * len(completions), completions, **columns) == [1.0, 0.0, 0.5, None]


def test_cue_faithfulness_reward_through_grpo_cli(tiny_qwen2_5_omni, tmp_path):
    labels = write_labels(tmp_path / "data", count=2)
    out = tmp_path / "run"
    fields = {
        **GRPO_FIELDS,
        "rewards": {"funcs": ["format", "cue_faithfulness"]},
        "reward_weights": [1.0, 1.0],
    }
    recipe = write_recipe(tmp_path / "grpo.yaml", "grpo", tiny_qwen2_5_omni, labels, out, **fields)
    assert (
        main(
            [
                "train",
                "grpo",
                str(recipe),
                "max_steps=1",
                "num_generations=2",
                "per_device_train_batch_size=2",
            ]
        )
        == 0
    )
    curves = json.loads((out / "reward_curves.json").read_text())
    # a random model cites no measurable cue, so the reward is None (left out of the mean) but is computed
    assert len(curves["rewards/cue_faithfulness/mean"]) == 1


@needs_espeak
def test_prefer_faithful_rejects_the_response_with_contradicted_cues(quiet_low_clip):
    evidence = evidence_for_path(str(quiet_low_clip))
    faithful = _completion(["smiling"], ["quiet voice"])
    hallucinating = _completion(["frowning"], ["shouting"])
    other = _completion([], [])
    weights = {"emotion_wheel": 1.0}
    plain = choose_pair([hallucinating, faithful, other], {"emotions": ["happy"]}, weights, 0.2)
    assert not plain["keep"]  # every response names the right emotion: no score gap
    pair = choose_pair([hallucinating, faithful, other], {"emotions": ["happy"]}, weights, 0.2, evidence)
    assert pair["keep"] and pair["chosen"] == faithful and pair["rejected"] == hallucinating
    assert pair["contradicted"] == [["frowning", "shouting"], [], []]
    assert pair["faithfulness"] == [0.0, 1.0, None]
    # a much better-scoring response still wins over a faithful but wrong one
    wrong = render_canonical(Rationale(emotions=["angry"], visual_cues=["smiling"]))
    pair = choose_pair([hallucinating, wrong], {"emotions": ["happy"]}, weights, 0.2, evidence)
    assert pair["chosen"] == hallucinating and pair["rejected"] == wrong


def test_data_pairs_prefer_faithful_cli(tiny_qwen2_5_omni, tmp_path):
    labels = write_labels(tmp_path / "data", count=2)
    out = tmp_path / "pairs.jsonl"
    args = ["data", "pairs", str(tiny_qwen2_5_omni), str(labels), "--out", str(out), "--n", "3"]
    assert main([*args, "--margin=-1", "--frames", "2", "--max-new-tokens", "6", "--prefer-faithful"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert len(line["contradicted"]) == 3 and len(line["faithfulness"]) == 3
        assert line["chosen_score"] >= line["rejected_score"]


def test_bench_results_carry_a_faithfulness_column(tiny_qwen2_5_omni, tmp_path):
    from affectreason.bench.options import BenchOptions
    from affectreason.bench.runner import run_bench
    from affectreason.bench.suites import load_suite
    from affectreason.bench.synthetic import write_data_root
    from affectreason.describe import DescribeOptions, describe_clips
    from affectreason.engines import create_engine

    suite = load_suite("mer-unibench")
    root = write_data_root(suite, tmp_path / "dataset", n=2, datasets=["mer2023"])

    def describe_then_cite(clips, engine, options, prompt):
        # the bench clips are colour fields with a tone: no face, so "face not visible" holds and "smiling" not
        records = describe_clips(clips, engine, options, prompt)
        for record in records:
            record["visual_cues"] = ["face not visible", "smiling"]
        return records

    options = BenchOptions(
        describe=DescribeOptions(frames=2, max_new_tokens=4, batch_size=2),
        datasets=["mer2023"],
        progress=False,
    )
    results = run_bench(
        suite,
        root,
        lambda: create_engine("hf", model=str(tiny_qwen2_5_omni)),
        tmp_path / "run",
        options,
        describe_batch=describe_then_cite,
    )
    row = results["datasets"]["mer2023"]
    assert row["faithfulness"] == pytest.approx(0.5) and row["faithfulness_n"] == 2
    assert row["contradicted_cues"] == 2
    table = (tmp_path / "run" / "results.md").read_text()
    assert "Cue faithfulness (n) |" in table and "| 50.00 (2) |" in table
    assert "<th>Cue faithfulness</th>" in (tmp_path / "run" / "report.html").read_text()
