"""Closed-set recognition scores and the judged scores against values worked out by hand."""

import json

import pytest

from affectreason.metrics import (
    cot_scores,
    laughter_scores,
    parse_step_scores,
    score_choice,
    score_joint,
    score_multilabel,
)
from affectreason.metrics.recognition import LabelSet
from affectreason.scoring import score_records

IEMOCAP = ["Anger", "Sadness", "Surprise", "Happiness", "Excited", "Fear", "Frustration", "Neutral"]
FG_SA = ["very strong negative", "strong negative", "negative", "weak negative", "neutral", "weak positive"]
MAFW = [
    "disappointment",
    "fear",
    "contempt",
    "disgust",
    "sadness",
    "anger",
    "anxiety",
    "happiness",
    "surprise",
]


def test_answers_map_onto_the_label_set_exactly_then_by_emotion_word():
    options = LabelSet(IEMOCAP)
    assert options.match("anger") == "Anger"
    assert options.match(" ANGRY. ") == "Anger"  # the lexicon's word for angry is anger
    assert options.match("happy") == "Happiness"
    assert options.match("excited") == "Excited"  # not merged into Happiness: each keeps its own word
    assert options.match("calm") == "Neutral"  # the lexicon reads calm as neutral
    assert options.match("contempt") is None  # not an option
    ravdess = LabelSet(["neutral", "calm", "happy", "sad"])
    assert ravdess.match("Calm") == "calm" and ravdess.match("neutral") == "neutral"
    assert ravdess.match("relaxed") is None  # neutral and calm share a word: only exact text reaches them
    assert options.match("the person looks quite angry and upset today") is None  # a sentence, not a label
    sentiment = LabelSet(FG_SA)
    assert sentiment.match("Very strong  negative!") == "very strong negative"
    assert sentiment.match("optimism") is None  # multi-word options never match by emotion word


def test_reference_extraction_takes_the_leftmost_option_preferring_the_longest():
    options = LabelSet(FG_SA)
    assert options.first_in_text("I'd say weak negative, not negative") == "weak negative"
    assert options.first_in_text("Negative overall.") == "negative"
    assert options.first_in_text("hard to tell") is None


def test_single_label_accuracy_and_weighted_f1_by_hand():
    refs = {
        "a": {"label": "Anger", "label_set": IEMOCAP},
        "b": {"label": "Anger", "label_set": IEMOCAP},
        "c": {"label": "Sadness", "label_set": IEMOCAP},
        "d": {"label": "Neutral", "label_set": IEMOCAP},
    }
    preds = {
        "a": {"emotions": ["angry"], "text": "<answer>Emotions: angry</answer>"},
        "b": {"emotions": ["sad"], "text": "it is sadness"},
        "c": {"emotions": ["sadness", "anger"], "text": ""},
        "d": {"emotions": ["bored"], "text": "neutral, I think"},
    }
    result = score_choice(refs, preds)
    # hits: a, c -> 2/4. Classes (true support): Anger 2, Sadness 1, Neutral 1.
    # Anger: tp 1, predicted 1, true 2 -> P 1, R 1/2, F1 2/3. Sadness: tp 1, predicted 2 (b, c), true 1 -> P 1/2,
    # R 1, F1 2/3. Neutral: tp 0 -> 0. Weighted: (2 * 2/3 + 1 * 2/3 + 0) / 4 = 1/2.
    assert result["recognition"] == result["accuracy"] == 0.5
    assert result["weighted_f1"] == pytest.approx(0.5)
    assert result["unmatched"] == 1 and result["n"] == 4
    # The reference protocol on the raw text: a names no option as a whole word ("angry") and c has no text,
    # both left out; b names "sadness" (wrong), d "neutral" (right). Accuracy 1/2; weighted F1 over the true
    # classes Anger (F1 0) and Neutral (F1 1), one sample each: 1/2.
    first = result["first_match"]
    assert first["n"] == 2 and first["invalid"] == 2
    assert first["accuracy"] == 0.5 and first["weighted_f1"] == pytest.approx(0.5)


def test_multi_label_set_match_and_f1_by_hand():
    refs = {
        "x": {"label": "anger,disgust", "label_set": MAFW},
        "y": {"label": "fear,surprise,anxiety", "label_set": MAFW},
        "z": {"label": "sadness", "label_set": MAFW},
    }
    preds = {
        "x": {"emotions": ["disgusted", "Anger"]},  # exact set: P 1, R 1, F1 1
        "y": {"emotions": ["fear", "happy"]},  # hits 1: P 1/2, R 1/3, F1 2/5
        "z": {"emotions": []},  # nothing: 0
    }
    result = score_multilabel(refs, preds)
    assert result["recognition"] == result["set_match"] == pytest.approx(1 / 3)
    assert result["precision"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert result["recall"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert result["f1"] == pytest.approx((1 + 2 / 5 + 0) / 3)
    assert result["unmatched"] == 1


def test_score_records_reads_bench_records_for_closed_tasks_and_rejects_a_missing_label():
    refs = {"a": {"label": "negative", "label_set": FG_SA}}
    result = score_records("choice", refs, {"a": {"emotions": ["Negative"], "text": ""}}, semantic=False)
    assert result["recognition"] == 1.0 and result["missing"] == []
    assert score_records("choice", refs, {}, semantic=False)["recognition"] == 0.0
    with pytest.raises(Exception, match="no 'label'"):
        score_records("choice", {"a": {"label_set": FG_SA}}, {}, semantic=False)


def test_step_scores_parse_as_the_official_overall_script():
    assert parse_step_scores("<score>Step 1: 1/1, Step 2: 0/1, Step 3: 1/1</score>") == [1.0, 0.0, 1.0]
    assert parse_step_scores("blah <score>Step 1: 1/2</score>") == [0.5]
    assert parse_step_scores("<score>Step 1: 3/0</score>") == [0.0]
    assert parse_step_scores("Step 1: 1/1") is None and parse_step_scores("<score>none</score>") is None
    assert parse_step_scores(None) is None


def test_cot_scores_by_hand():
    replies = [
        "<score>Step 1: 1/1, Step 2: 0/1, Step 3: 1/1</score>",  # recognition 1, reasoning 1/2, 3 steps
        "<score>Step 1: 0/1</score>",  # a single step: recognition 0, reasoning 0
        "no score block",  # left out
        "<score>Step 1: 1/1, Step 2: 1/1</score>",  # recognition 1, reasoning 1
    ]
    result = cot_scores(replies)
    assert result["n"] == 3 and result["unparsed"] == 1
    assert result["recognition"] == pytest.approx(2 / 3)
    assert result["reasoning"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert result["cot"] == pytest.approx(0.5 * 2 / 3 + 0.5 * 0.5)
    assert result["steps"] == pytest.approx(2.0)
    assert cot_scores([])["cot"] == 0.0


def test_laughter_scores_by_hand():
    replies = [
        {
            "logical": "Logical Judgment Dimension: 4",
            "multimodal": "multimodal content association dimension: 3",
        },
        {"logical": "I refuse", "multimodal": "Multimodal Content Association Dimension: 5"},
    ]
    assert laughter_scores(replies) == {"logical": 2.0, "multimodal": 4.0, "total": 6.0, "n": 2}


def test_the_score_command_reads_closed_set_files(tmp_path, capsys):
    from affectreason.cli import main

    ref, pred = tmp_path / "ref.jsonl", tmp_path / "pred.jsonl"
    rows = [
        {"id": "a", "label": "anger,disgust", "label_set": MAFW},
        {"id": "b", "label": "fear", "label_set": MAFW},
    ]
    ref.write_text("\n".join(json.dumps(r) for r in rows))
    preds = [
        {"id": "a", "emotions": ["angry", "disgusted"]},
        {"id": "b", "text": "It is hard to say. <answer>\nEmotions: fear, sadness\n</answer>"},
    ]
    pred.write_text("\n".join(json.dumps(r) for r in preds))
    assert main(["score", "--task", "multilabel", "--ref", str(ref), "--pred", str(pred), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # a: exact set; b: {fear, sadness} vs {fear}: P 1/2, R 1, F1 2/3.
    assert result["set_match"] == 0.5 and result["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert main(["score", "--task", "choice", "--ref", str(ref), "--pred", str(pred), "--no-semantic"]) == 0
    assert "first-match accuracy" in capsys.readouterr().out


def test_joint_emotion_and_intent_by_hand():
    emotions = ["happy", "surprise", "sad", "disgust", "anger", "fear", "neutral"]
    intents = [
        "questioning",
        "agreeing",
        "acknowledging",
        "encouraging",
        "consoling",
        "suggesting",
        "wishing",
        "neutral",
    ]
    ref = {"label_set": emotions, "intent_set": intents}
    refs = {
        "a": {**ref, "label": "happy", "intent": "encouraging"},
        "b": {**ref, "label": "neutral", "intent": "neutral"},
        "c": {**ref, "label": "sad", "intent": "questioning"},
    }
    preds = {
        "a": {"emotions": ["happiness", "encouraging"], "text": "happy and encouraging"},
        "b": {"emotions": ["neutral", "neutral"], "text": "neutral"},  # one word is both: emotion and intent
        "c": {"emotions": ["sad"], "text": "sad"},  # no intent
    }
    result = score_joint(refs, preds)
    # emotion: a, b, c right -> 1. intent: a right, b: the second answer "neutral" -> right, c none -> 2/3.
    assert result["emotion"]["accuracy"] == 1.0
    assert result["intent"]["accuracy"] == pytest.approx(2 / 3)
    assert result["joint"]["accuracy"] == result["recognition"] == pytest.approx(2 / 3)
    # joint weighted F1: classes happy_encouraging, neutral_neutral (F1 1 each), sad_questioning (F1 0): 2/3.
    assert result["joint"]["weighted_f1"] == pytest.approx(2 / 3)
    # The reference extraction on the text: a -> (happy, encouraging), b -> (neutral, neutral), c: no intent,
    # left out. Both kept samples right.
    assert result["first_match"]["n"] == 2 and result["first_match"]["invalid"] == 1
    assert result["first_match"]["joint"]["accuracy"] == 1.0
