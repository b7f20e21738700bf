"""MME-Emotion and EmoBench-M through `affectreason bench`: small local copies of each released layout (real
annotation rows, clips made with PyAV), checked, run with a tiny random Qwen2.5-Omni thinker, killed and resumed,
sharded and merged, and judged by our own server."""

import json
from pathlib import Path

import pytest

from affectreason.bench.options import BenchOptions
from affectreason.bench.runner import run_bench
from affectreason.cli import main
from affectreason.describe import DescribeOptions, describe_clips
from affectreason.engines import create_engine
from affectreason.synth import write_emotion_clip

FAST = ["--max-new-tokens", "8", "--frames", "2", "--batch-size", "2", "--quiet"]

IEMOCAP = ["Anger", "Sadness", "Surprise", "Happiness", "Excited", "Fear", "Frustration", "Neutral"]
MAFW = [
    "disappointment", "fear", "contempt", "disgust", "sadness", "anger", "anxiety", "happiness", "surprise",
    "helplessness",
]  # fmt: skip
FG_SA = [
    "very strong negative", "strong negative", "negative", "weak negative", "neutral", "weak positive",
    "positive", "strong positive", "very strong positive",
]  # fmt: skip
INTENTS = [
    "neutral",
    "questioning",
    "consoling",
    "suggesting",
    "encouraging",
    "agreeing",
    "wishing",
    "acknowledging",
]

# Rows as released in FunAudioLLM/MME-Emotion (question files and ER-Lab's audio clues, clue texts shortened).
MME = {
    "ER-Lab": [
        ("IEMOCAP/video/Ses05M_script01_1_F034.mp4", "Anger", IEMOCAP),
        ("IEMOCAP/video/Ses05M_script02_2_F031.mp4", "Sadness", IEMOCAP),
        ("IEMOCAP/video/Ses05M_impro02_F001.mp4", "Surprise", IEMOCAP),
    ],
    "ML-ER": [
        ("MAFW/video/03419.mp4", "anger,disgust", MAFW),
        ("MAFW/video/00343.mp4", "fear,surprise", MAFW),
        ("MAFW/video/00205.mp4", "fear,sadness", MAFW),
    ],
    "FG-SA": [
        ("CMU-MOSI/video/c7UH_rxdZv4_20.mp4", "negative", FG_SA),
        ("CMU-MOSI/video/c7UH_rxdZv4_7.mp4", "very strong negative", FG_SA),
    ],
    "IR": [
        ("MC-EIU/video/dia_349_utt_6_ch.mkv", "neutral", INTENTS),
        ("MC-EIU/video/dia_896_utt_17_ch.mkv", "questioning", INTENTS),
    ],
}
CLUES = {
    "IEMOCAP/video/Ses05M_script01_1_F034.mp4": "The speaker's tone is raised and forceful, indicating anger.",
    "IEMOCAP/video/Ses05M_script02_2_F031.mp4": "The slow pace and low pitch of her voice carry sadness.",
}
MME_DATASETS = ["er_lab", "ml_er", "fg_sa", "ir"]

# EmoBench-M's layout as its evaluation scripts read it; the question and the laughter reference are the
# repository's own examples (`Need output example/`).
SIMS_Q = (
    "The person in video says: When you die, I'll burn paper to tell you. Goodbye, bastard. Determine the emotion "
    "conveyed. Do not provide any additional explanations or extra content. Choose one of the following labels as "
    "your final answer: neutral, negative, positive. Respond in the format: {'emotion': 'label'}."
)
SMILE_Q = (
    "Reasoning task: You are to answer why the audience laughed given the video clip. Explain why audience laughed "
    "given the conversation, at most 40 words, starting with 'The audience laughed because '."
)
SMILE_REF = (
    "The audience laughed because Raj sarcastically pretended a smashed iPod could be sold as slightly used, which "
    "is absurdly funny."
)
EIU_Q = (
    "The person in video says: -Hey. -Thanks for letting me come over. Analyze the emotion and intent. Choose one "
    "emotion: happy, surprise, sad, disgust, anger, fear, and neutral. Choose one intent: questioning, agreeing, "
    "acknowledging, encouraging, consoling, suggesting, wishing, and neutral. Respond in the format: "
    "{'emotion label': 'label', 'intent label': 'label'}."
)
EMOBENCH = {
    "MC-EIU-test_500.json": [
        ("mc-eiu/dia_1_utt_0.mp4", EIU_Q, "{'emotion label': 'happy', 'intent label': 'encouraging'}"),
        ("mc-eiu/dia_1_utt_1.mp4", EIU_Q, "{'emotion label': 'sad', 'intent label': 'questioning'}"),
        ("mc-eiu/dia_1_utt_2.mp4", EIU_Q, "{'emotion label': 'bored', 'intent label': 'joking'}"),  # left out
    ],
    "ch-simsv2s_test_500.json": [
        ("ch-simsv2s/video_0001.mp4", SIMS_Q, "Negative"),
        ("ch-simsv2s/video_0002.mp4", SIMS_Q, "neutral"),
        ("ch-simsv2s/video_0003.mp4", SIMS_Q, "positive"),
    ],
    "MUSTARD_500.json": [
        ("mustard/1_60.mp4", "Is the person being sarcastic? Answer true or false.", "true"),
        ("mustard/1_70.mp4", "Is the person being sarcastic? Answer true or false.", "false"),
    ],
    "SMILE_test.json": [("smile/bbt_001.mp4", SMILE_Q, SMILE_REF), ("smile/bbt_002.mp4", SMILE_Q, SMILE_REF)],
}
EMOBENCH_DATASETS = ["ch_simsv2s", "mustard", "mc_eiu", "smile"]
SUITES = {"mme-emotion": (MME_DATASETS, 10), "emobench-m": (EMOBENCH_DATASETS, 9)}


def _clip(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_emotion_clip(path, ["angry", "sad", "happy"][i % 3], seed=i, duration=1.0)


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    mme = tmp_path_factory.mktemp("mme")
    n = 0
    for task, rows in MME.items():
        tag = task.replace("-", "_")
        items = [{"video_id": v, "label": label, "label_set": options} for v, label, options in rows]
        _write_json(mme / "MME-Emotion-Dataset" / task / "question" / f"{tag}.json", items)
        for video_id, _, _ in rows:
            _clip(mme / video_id, n)
            n += 1
    clues = [{"video_id": v, "ground_truth": "", "audio_clue": c} for v, c in CLUES.items()]
    _write_json(
        mme / "MME-Emotion-Dataset" / "ER-Lab" / "audio_clue" / "ER_Lab_qwen2_audio_clues.json", clues
    )
    emobench = tmp_path_factory.mktemp("emobench")
    for name, rows in EMOBENCH.items():
        items = [
            {
                "video": v,
                "conversations": [{"from": "human", "value": f"<video>\n{q}"}, {"from": "gpt", "value": a}],
            }
            for v, q, a in rows
        ]
        _write_json(emobench / "benchmark_json" / name, items)
        for video, _, _ in rows:
            _clip(emobench / "datasets" / video, n)
            n += 1
    return {"mme-emotion": mme, "emobench-m": emobench}


def _args(suite: str, model, root: Path, out: Path, *extra) -> list[str]:
    datasets = ",".join(SUITES[suite][0])
    return ["bench", suite, "--data-root", str(root), "--model", str(model), "--out", str(out), "--datasets",
            datasets, *FAST, *extra]  # fmt: skip


def _predictions(out: Path) -> dict:
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    keyed = {(r["dataset"], r["id"]): r for r in lines}
    assert len(keyed) == len(lines), "a prediction was written twice"
    return keyed


def _texts(out: Path) -> dict:
    return {k: (r["raw"], r["emotions"]) for k, r in _predictions(out).items()}


def _scores(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {"mean": results["mean"], **{n: d["scores"] for n, d in results["datasets"].items()}}


@pytest.fixture(scope="module")
def reference_runs(tiny_qwen2_5_omni, roots, tmp_path_factory) -> dict[str, Path]:
    outs = {}
    for suite in SUITES:
        outs[suite] = tmp_path_factory.mktemp(f"{suite}-ref")
        assert main(_args(suite, tiny_qwen2_5_omni, roots[suite], outs[suite])) == 0
    return outs


@pytest.mark.parametrize("suite", list(SUITES))
def test_check_lists_every_dataset_and_counts_what_is_missing(suite, roots, capsys, tmp_path):
    datasets, total = SUITES[suite]
    assert (
        main(["bench", "check", suite, "--data-root", str(roots[suite]), "--datasets", ",".join(datasets)])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    counts = {line.split()[1]: int(line.split()[2]) for line in lines}
    assert list(counts) == datasets and sum(counts.values()) == total
    # Every other dataset of the suite is reported missing, with its released path.
    assert main(["bench", "check", suite, "--data-root", str(roots[suite])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "annotation" in err and "not found" in err


def test_a_missing_video_is_counted_in_one_line(roots, tmp_path, capsys):
    import shutil

    broken = tmp_path / "mme"
    shutil.copytree(roots["mme-emotion"], broken)
    (broken / "MAFW" / "video" / "00343.mp4").unlink()
    assert (
        main(["bench", "check", "mme-emotion", "--data-root", str(broken), "--datasets", "er_lab,ml_er"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ml_er: 1 of 3 videos missing" in err and "00343.mp4" in err


def test_hostile_annotations_fail_in_one_line(roots, tmp_path, capsys):
    import shutil

    broken = tmp_path / "mme"
    shutil.copytree(roots["mme-emotion"], broken)
    question = broken / "MME-Emotion-Dataset" / "FG-SA" / "question" / "FG_SA.json"
    question.write_text(json.dumps({"video_id": "x"}))
    ir = broken / "MME-Emotion-Dataset" / "IR" / "question" / "IR.json"
    ir.write_text(json.dumps([{"video_id": "../../etc/passwd", "label": "neutral", "label_set": INTENTS}]))
    assert main(["bench", "check", "mme-emotion", "--data-root", str(broken), "--datasets", "fg_sa,ir"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "FG_SA.json is not a JSON list of objects" in err and "ir: 1 of 1 videos missing" in err


def test_mme_emotion_run_scores_recognition_offline(reference_runs, tiny_qwen2_5_omni):
    out = reference_runs["mme-emotion"]
    predictions = _predictions(out)
    assert len(predictions) == 10
    record = predictions[("er_lab", "IEMOCAP/video/Ses05M_script01_1_F034.mp4")]
    assert record["reference"]["label"] == "Anger" and record["reference"]["label_set"] == IEMOCAP
    assert record["reference"]["clue"] == CLUES["IEMOCAP/video/Ses05M_script01_1_F034.mp4"]
    assert record["prompt_version"] == "mme_emotion@1"
    assert predictions[("ir", "MC-EIU/video/dia_349_utt_6_ch.mkv")]["source"].endswith("dia_349_utt_6_ch.mkv")
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["datasets"]) == sorted(MME_DATASETS) and results["mean_over"] == "samples"
    for name, d in results["datasets"].items():
        scores = d["scores"]["affectreason"]
        assert d["metric"] == "recognition" and 0.0 <= d["main"] <= 1.0 and "judge" not in scores
        assert scores["n"] == d["n"] == len(MME[{"er_lab": "ER-Lab", "ml_er": "ML-ER", "fg_sa": "FG-SA",
                                                "ir": "IR"}[name]])  # fmt: skip
    assert "f1" in results["datasets"]["ml_er"]["scores"]["affectreason"]
    assert results["datasets"]["er_lab"]["scores"]["affectreason"]["clue_match"]["acoustic"]["n"] == 2
    pooled = sum(d["main"] * d["n"] for d in results["datasets"].values()) / 10
    assert results["mean"] == pytest.approx(pooled)
    table = (out / "results.md").read_text()
    assert "| best of 20 MLLMs (GPT-4o-judged recognition, arXiv 2508.09210 abstract) (published) |" in table
    assert "pooled over samples" in table and "Plotly.newPlot" in (out / "report.html").read_text()
    assert "## Reasoning proxy" in table and "| ER-Lab |" in table


def test_emobench_m_run_scores_accuracy_weighted_f1_and_reason_similarity(reference_runs):
    out = reference_runs["emobench-m"]
    predictions = _predictions(out)
    assert len(predictions) == 9
    eiu = predictions[("mc_eiu", "mc-eiu/dia_1_utt_1.mp4")]["reference"]
    assert eiu["label"] == "sad" and eiu["intent"] == "questioning" and "intent_set" in eiu
    assert (
        "mc_eiu",
        "mc-eiu/dia_1_utt_2.mp4",
    ) not in predictions  # no emotion named: left out, as the reference
    assert predictions[("mc_eiu", "mc-eiu/dia_1_utt_0.mp4")]["prompt_version"] == "emobench_m_joint@1"
    record = predictions[("ch_simsv2s", "ch-simsv2s/video_0001.mp4")]
    assert record["reference"]["label"] == "negative" and record["reference"]["question"] == SIMS_Q
    assert predictions[("smile", "smile/bbt_001.mp4")]["reference"]["description"] == SMILE_REF
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["datasets"]) == sorted(EMOBENCH_DATASETS)
    sims = results["datasets"]["ch_simsv2s"]["scores"]["affectreason"]
    assert {"accuracy", "weighted_f1", "first_match"} <= set(sims) and sims["n"] == 3
    joint = results["datasets"]["mc_eiu"]["scores"]["affectreason"]
    assert {"emotion", "intent", "joint", "first_match"} <= set(joint) and joint["n"] == 2
    assert results["manifest"]["dataset_prompts"] == {"mc_eiu": "emobench_m_joint@1"}
    assert results["datasets"]["smile"]["metric"] == "similarity"
    assert 0.0 <= results["datasets"]["smile"]["main"] <= 1.0


def test_prompts_carry_each_sample_label_set_and_question(tiny_qwen2_5_omni, roots, tmp_path):
    seen: list[str] = []

    def capture(clips, engine, options, prompt):
        seen.append(prompt.text)
        return describe_clips(clips, engine, options, prompt)

    options = BenchOptions(
        describe=DescribeOptions(frames=2, max_new_tokens=4, batch_size=4),
        datasets=["fg_sa", "ir"],
        progress=False,
    )
    factory = lambda: create_engine("hf", model=str(tiny_qwen2_5_omni), device="cpu")  # noqa: E731
    run_bench("mme-emotion", roots["mme-emotion"], factory, tmp_path / "a", options, describe_batch=capture)
    assert len(seen) == 2 and ", ".join(FG_SA) in seen[0] and ", ".join(INTENTS) in seen[1]
    assert all("{label_set}" not in text for text in seen)
    seen.clear()
    options.datasets = ["ch_simsv2s", "mc_eiu"]
    run_bench("emobench-m", roots["emobench-m"], factory, tmp_path / "b", options, describe_batch=capture)
    assert len(seen) == 2 and seen[0].startswith(SIMS_Q) and "neutral, negative, positive" in seen[0]
    assert seen[1].startswith(EIU_Q) and "one intent from: questioning, agreeing" in seen[1]


@pytest.mark.parametrize("suite", list(SUITES))
def test_a_killed_run_resumes_to_the_same_predictions(
    suite, reference_runs, tiny_qwen2_5_omni, roots, tmp_path, kill_midway
):
    args = _args(suite, tiny_qwen2_5_omni, roots[suite], tmp_path)
    assert 2 <= kill_midway(args, tmp_path) < SUITES[suite][1]
    assert main(args) == 0
    assert _texts(tmp_path) == _texts(reference_runs[suite])
    assert _scores(tmp_path) == _scores(reference_runs[suite])


@pytest.mark.parametrize("suite", list(SUITES))
def test_shards_merge_into_the_unsharded_run(suite, reference_runs, tiny_qwen2_5_omni, roots, tmp_path):
    for i in (1, 2):
        assert (
            main(_args(suite, tiny_qwen2_5_omni, roots[suite], tmp_path / f"s{i}", "--shard", f"{i}/2")) == 0
        )
    merged = tmp_path / "merged"
    assert main(["bench", "merge", str(merged), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    assert _texts(merged) == _texts(reference_runs[suite])
    assert _scores(merged) == _scores(reference_runs[suite])


@pytest.fixture(scope="module")
def judge_server(tiny_qwen2_5_omni):
    from affectreason.backbones import load_backbone
    from affectreason.engines.hf import HFEngine
    from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

    engine = HFEngine(load_backbone(str(tiny_qwen2_5_omni), device="cpu"), batch_size=4)
    with BackgroundServer(build_app(engine, ServeOptions(served_model_name="judge"))) as server:
        yield server


def test_the_judge_path_keeps_raw_replies_and_scores_them_as_the_official_scripts(
    tiny_qwen2_5_omni, roots, judge_server, tmp_path, capsys
):
    from affectreason.judge import Judge, JudgeOptions
    from affectreason.metrics import cot_scores, laughter_scores
    from affectreason.prompts import load_prompt

    judged = ["--judge-endpoint", judge_server.url, "--judge-model", "judge", "--judge-max-tokens", "24"]
    mme = _args("mme-emotion", tiny_qwen2_5_omni, roots["mme-emotion"], tmp_path / "mme", *judged)
    mme[mme.index("--datasets") + 1] = "er_lab"
    assert main(mme) == 0
    manifest = json.loads((tmp_path / "mme" / "run.json").read_text())
    assert manifest["judge"] == {
        "endpoint": judge_server.url,
        "model": "judge",
        "temperature": 0.0,
        "max_tokens": 24,
    }
    records = list(_predictions(tmp_path / "mme").values())
    assert len(records) == 3 and all(set(r["judge"]) == {"model", "steps", "score"} for r in records)
    judge = Judge(JudgeOptions(judge_server.url, "judge", max_tokens=24))
    first = records[0]
    # The stored replies are the judge's own, at temperature 0: asking again gives the same text.
    assert first["judge"]["steps"] == judge.ask(
        load_prompt("judge_mme_steps").fill({"response": first["raw"]}).text
    )
    results = json.loads((tmp_path / "mme" / "results.json").read_text())
    expected = cot_scores([r["judge"]["score"] for r in sorted(records, key=lambda r: r["id"])])
    assert results["datasets"]["er_lab"]["scores"]["affectreason"]["judge"] == expected
    assert results["judge"] == expected and expected["n"] + expected["unparsed"] == 3
    assert "## Judged scores (judge `judge`" in (tmp_path / "mme" / "results.md").read_text()
    # Resuming the judged run without the judge is refused rather than mixing judged and unjudged records.
    plain = [a for a in mme if a not in judged]
    assert main(plain) == 2 and "judge" in capsys.readouterr().err
    # An unreachable judge is a one-line error before the model loads or anything is written.
    closed = ["--judge-endpoint", "http://127.0.0.1:9/v1", "--judge-model", "judge"]
    assert main([*plain[: plain.index("--out") + 1], str(tmp_path / "none"), *plain[plain.index("--out") + 2 :],
                 *closed]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the judge" in err
    assert not (tmp_path / "none" / "predictions.jsonl").exists()

    emobench = _args("emobench-m", tiny_qwen2_5_omni, roots["emobench-m"], tmp_path / "eb", *judged)
    emobench[emobench.index("--datasets") + 1] = "mustard,smile"
    assert main(emobench) == 0
    records = _predictions(tmp_path / "eb")
    assert "judge" not in records[("mustard", "mustard/1_60.mp4")]  # classification needs no judge
    smile = [r for (d, _), r in sorted(records.items()) if d == "smile"]
    assert all(set(r["judge"]) == {"model", "logical", "multimodal"} for r in smile)
    results = json.loads((tmp_path / "eb" / "results.json").read_text())
    assert results["datasets"]["smile"]["scores"]["affectreason"]["judge"] == laughter_scores(
        [r["judge"] for r in smile]
    )


def test_limit_and_attribution_work_on_the_new_suites(tiny_qwen2_5_omni, roots, tmp_path):
    args = _args(
        "mme-emotion", tiny_qwen2_5_omni, roots["mme-emotion"], tmp_path, "--limit", "1", "--attribution"
    )
    args[args.index("--datasets") + 1] = "er_lab,ml_er"
    assert main(args) == 0
    records = _predictions(tmp_path)
    assert sorted(records) == [
        ("er_lab", "IEMOCAP/video/Ses05M_script01_1_F034.mp4"),
        ("ml_er", "MAFW/video/03419.mp4"),
    ]
    assert all(record["attribution"]["modalities"] for record in records.values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["manifest"]["limit"] == 1 and {d["n"] for d in results["datasets"].values()} == {1}
    assert results["attribution"] and "## Modality attribution" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("suite", list(SUITES))
def test_synthetic_data_roots_cover_every_dataset_of_the_new_suites(suite, tmp_path):
    from affectreason.bench.adapters import check_data
    from affectreason.bench.suites import load_suite
    from affectreason.bench.synthetic import write_data_root

    spec = load_suite(suite)
    scans = check_data(list(spec.datasets), write_data_root(spec, tmp_path, n=2))
    assert [(s.spec.name, len(s.samples)) for s in scans] == [(d.name, 2) for d in spec.datasets]
    assert all(s.samples[0].video is not None and s.samples[0].video.is_file() for s in scans)
