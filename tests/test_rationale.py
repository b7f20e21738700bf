"""The canonical response format: round trip, tolerant parsing of whatever a model writes."""

import json

import pytest

from affectreason.rationale import (
    FORMAT_VERSION,
    RATIONALE_JSON_SCHEMA,
    Rationale,
    parse_rationale,
    render_canonical,
    render_text,
)

FULL = Rationale(
    emotions=["happy", "excited"],
    visual_cues=["broad smile", "raised cheeks"],
    acoustic_cues=["loud, fast voice"],
    lexical_cues=["says 'this is great'"],
    reasoning="Smile and lively voice agree on joy.",
    valence=0.8,
    arousal=0.7,
    confidence=0.9,
)


def test_round_trip_keeps_every_field():
    text = render_canonical(FULL)
    parsed = parse_rationale(text)
    assert parsed.parse_ok
    assert parsed.emotions == FULL.emotions
    assert parsed.visual_cues == FULL.visual_cues
    assert parsed.acoustic_cues == FULL.acoustic_cues
    assert parsed.lexical_cues == FULL.lexical_cues
    assert parsed.reasoning == FULL.reasoning
    assert (parsed.valence, parsed.arousal, parsed.confidence) == (0.8, 0.7, 0.9)
    assert parsed.raw == text


def test_matches_r1_format_regex():
    import re

    assert re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", render_canonical(FULL), re.S)
    assert FORMAT_VERSION


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "gibberish <|VIDEO|> tokens",
        "<think>half open",
        "<answer>",
        "{not json",
        "<think></think><answer></answer>",
    ],
)
def test_never_raises_and_flags_failure(text):
    parsed = parse_rationale(text)
    assert parsed.parse_ok is False
    assert isinstance(parsed.emotions, list)


def test_half_closed_answer_keeps_emotions_but_not_ok():
    parsed = parse_rationale("<think>Visual: frown</think><answer>Emotions: angry, annoyed")
    assert parsed.emotions == ["angry", "annoyed"]
    assert parsed.visual_cues == ["frown"]
    assert not parsed.parse_ok


def test_bare_answer_line_and_list_forms():
    parsed = parse_rationale("<think>He is tense.</think>\n<answer>[worried; nervous and tense]</answer>")
    assert parsed.parse_ok
    assert parsed.emotions == ["worried", "nervous", "tense"]
    assert parsed.reasoning == "He is tense."


def test_json_output_is_read_but_not_canonical():
    parsed = parse_rationale(json.dumps({"emotions": ["sad"], "valence": -3, "visual_cues": ["tears"]}))
    assert parsed.emotions == ["sad"]
    assert parsed.valence == -1.0  # clamped to the scale
    assert parsed.visual_cues == ["tears"]
    assert not parsed.parse_ok


def test_out_of_range_and_missing_numbers():
    parsed = parse_rationale("<think>x</think><answer>Emotions: calm\nValence: n/a\nArousal: 7\n</answer>")
    assert parsed.valence is None
    assert parsed.arousal == 1.0
    assert parsed.parse_ok


def test_renderers_and_schema():
    text = render_text(FULL, title="clip")
    assert "happy, excited" in text and "broad smile" in text
    assert set(RATIONALE_JSON_SCHEMA["required"]) <= set(FULL.to_dict())
    assert Rationale.from_dict({**FULL.to_dict(), "unknown": 1}) == FULL
