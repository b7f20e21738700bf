"""Default wheel, lexicon normalisation, families/valence, label extraction, and the OV-MER parity tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectreason.errors import AffectReasonError
from affectreason.taxonomy import (
    analyse_labels,
    arousal_of,
    extract_labels,
    families,
    family_of,
    load_wheel,
    match_label,
    normalise_labels,
    sentiment_of,
    valence_of,
)
from affectreason.taxonomy.ovmer import COLUMNS, build_table, load_ovmer, string_to_list

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data"
WHEEL_DIR = SHARED / "ovmer_emotion_wheel"
needs_shared = pytest.mark.skipif(not WHEEL_DIR.is_dir(), reason="shared reference data absent")


def test_default_wheel_is_consistent():
    wheel = load_wheel()
    assert set(wheel.families) == {
        "joy",
        "love",
        "surprise",
        "anger",
        "disgust",
        "sadness",
        "fear",
        "neutral",
    }
    assert wheel.families["neutral"].valence == 0.0
    assert all(-1 <= f.valence <= 1 and 0 <= f.arousal <= 1 for f in wheel.families.values())
    for form, word in wheel.forms.items():  # every form reaches exactly one word, group and family
        assert wheel.cluster(word, 1) in wheel.families, form
    for antonym in ("fearless", "unafraid", "cheerless", "joyless", "unavailable"):
        assert antonym not in wheel.forms


@pytest.mark.parametrize(
    ("label", "word"),
    [
        ("happiness", "happiness"),
        ("Happily", "happiness"),
        ("HAPPY.", "happiness"),
        ("  happy  ", "happiness"),
        ("angered", "anger"),
        ("angrily", "anger"),
        ("terrified", "terror"),
        ("worried", "worry"),
        ("nervousness", "nervousness"),
        ("annoyedly", "annoyance"),
        ("let down", "disappointment"),
        ("very nervous", "nervousness"),
        ("a bit of frustration", "frustration"),
        ("mildly amused", "amusement"),
        ("glad", "happiness"),
        ("tension", "anxiety"),
        ("surprise", "surprise"),
        ("surprised", "surprise"),
        ("neutral", "neutral"),
    ],
)
def test_lexicon_normalises_without_embeddings(label, word):
    assert match_label(label, semantic=False).word == word


def test_negation_lists_and_apostrophes():
    assert normalise_labels("not happy", semantic=False) == []
    assert match_label("not happy", semantic=False).negated
    assert match_label("isn't angry", semantic=False).negated
    assert normalise_labels("[happy; sad and angry]", semantic=False) == ["happiness", "sadness", "anger"]
    assert normalise_labels(["happy, glad", "joyful"], semantic=False) == ["happiness", "joy"]
    assert [m.key for m in analyse_labels("[self-conscious, don't care]", semantic=False)] == [
        "self-conscious",
        "don't care",
    ]
    assert normalise_labels("no emotion", semantic=False) == ["neutral"]


def test_antonyms_never_map_to_their_stem():
    for label in ("fearless", "unafraid", "joyless", "cheerless"):
        assert match_label(label, semantic=False).word is None
        assert match_label(label, semantic=True).word is None  # guarded before the embedding fallback


def test_families_valence_arousal_sentiment():
    assert family_of("furious") == "anger"
    assert family_of("furious", level=2) == "rage"
    assert family_of("furious", level=3) == "rage"
    assert family_of("anger", level=2) == "rage"  # a family word has an explicit group, no alphabetical pick
    assert family_of("fear", semantic=False) == "fear"
    assert family_of("not happy", semantic=False) is None
    assert families("happy, joyful, furious, calm", semantic=False) == ["joy", "anger", "neutral"]
    assert valence_of("sad", semantic=False) < 0 < valence_of("delighted", semantic=False)
    assert arousal_of("terrified", semantic=False) > arousal_of("bored", semantic=False)
    assert sentiment_of(["happy", "excited"], semantic=False) == "positive"
    assert sentiment_of("angry; sad", semantic=False) == "negative"
    assert sentiment_of("surprised", semantic=False) == "neutral"
    assert sentiment_of([], semantic=False) == "neutral"
    assert sentiment_of("Positive") == "positive"


def test_extract_labels_prefers_canonical_answer():
    text = "<think>\nVisual: smile\n</think>\n<answer>\nEmotions: happy, excited\n</answer>"
    assert extract_labels(text) == ["happy", "excited"]


def test_extract_labels_from_free_text_is_deterministic():
    text = (
        "She smiles happily but is not angry; her voice sounds nervous and a bit frustrated. He looks down."
    )
    assert extract_labels(text) == ["happily", "nervous", "frustrated"]
    assert extract_labels(text) == extract_labels(text)
    assert extract_labels("") == [] and extract_labels(None) == []


def test_semantic_fallback_maps_near_synonyms_and_reports_the_rest():
    melancholia = match_label("melancholia")
    assert melancholia.how == "semantic" and load_wheel().cluster(melancholia.word, 1) == "sadness"
    assert family_of("unsettled") == "fear" and family_of("grumpy-ish") == "anger"
    table = match_label("table")
    assert table.word is None and table.how == "unmapped"


def test_string_to_list_matches_reference_vectors():
    vectors = json.loads((SHARED / "ewmetric_vectors_dev.json").read_text()) if SHARED.is_dir() else None
    cases = (
        vectors["string_to_list"] if vectors else [{"input": "[happy, sad, ]", "output": ["happy", "sad"]}]
    )
    for case in cases:
        assert string_to_list(case["input"]) == case["output"]


@needs_shared
def test_ovmer_table_matches_reference_mappings_entry_by_entry():
    derived = json.loads((WHEEL_DIR / "ew_mappings_derived.json").read_text())
    table = build_table(WHEEL_DIR)
    assert len(table) == len(derived["label_to_cluster"]) == 7386
    assert list(COLUMNS[2:]) == derived["label_to_cluster_columns"]
    for label, clusters in derived["label_to_cluster"].items():
        expected = (
            derived["case1_label_to_canonical"][label],
            derived["case2_label_to_canonical"][label],
            *clusters,
        )
        assert table[label] == expected, label


@needs_shared
def test_ovmer_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTREASON_CACHE", str(tmp_path))
    load_ovmer.cache_clear()
    first = load_ovmer(WHEEL_DIR)
    cached = list(tmp_path.glob("ovmer-*.json"))
    assert len(cached) == 1
    load_ovmer.cache_clear()
    second = load_ovmer(WHEEL_DIR)
    assert second.table == first.table and second.sha256 == first.sha256
    load_ovmer.cache_clear()


def test_ovmer_bad_dir_is_a_clear_error(tmp_path):
    with pytest.raises(AffectReasonError, match="lacks wheel1.xlsx"):
        load_ovmer(tmp_path)
