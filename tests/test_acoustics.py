"""Acoustic descriptors on synthetic signals with known pitch, loudness, pauses and pace."""

from __future__ import annotations

import re

import numpy as np
import pytest

from affectreason.acoustics import acoustic_descriptors, describe_acoustics
from affectreason.synth import tone

SR = 16_000


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def test_pitch_level_of_tones():
    assert acoustic_descriptors(tone(2, SR, 220.0))["pitch_hz"] == pytest.approx(220.0, rel=0.02)
    assert acoustic_descriptors(tone(2, SR, 110.0))["pitch_hz"] == pytest.approx(110.0, rel=0.02)


def test_gliding_pitch_has_larger_spread():
    flat = acoustic_descriptors(tone(2, SR, 180.0))
    glide = acoustic_descriptors(tone(2, SR, pitch_contour=lambda t: 150.0 * 2**t))  # one octave up
    assert flat["pitch_std_semitones"] < 0.2 < 3.0 < glide["pitch_std_semitones"]


def test_loud_vs_quiet():
    loud = acoustic_descriptors(tone(2, SR, 200.0, amplitude=0.8))
    quiet = acoustic_descriptors(tone(2, SR, 200.0, amplitude=0.02))
    assert loud["loudness_dbfs"] - quiet["loudness_dbfs"] == pytest.approx(20 * np.log10(40), abs=0.5)
    assert describe_acoustics(tone(2, SR, 200.0, amplitude=0.8)).startswith("Loud voice")
    assert describe_acoustics(tone(2, SR, 200.0, amplitude=0.02)).startswith("Quiet voice")


def test_pauses_of_known_length():
    speech = tone(1, SR, 200.0)
    audio = np.concatenate([speech, _silence(0.5), speech, _silence(0.8), speech, _silence(0.1), speech])
    d = acoustic_descriptors(audio)
    assert d["pause_count"] == 2  # the 0.1 s gap is too short to be a pause
    assert d["pause_total_s"] == pytest.approx(1.3, abs=0.03)
    assert d["pause_longest_s"] == pytest.approx(0.8, abs=0.03)
    assert d["pause_mean_s"] == pytest.approx(0.65, abs=0.03)
    assert d["voiced_fraction"] == pytest.approx(4 / 5.4, abs=0.03)


def test_pace_follows_syllable_rate():
    t = np.arange(3 * SR) / SR

    def syllables(rate: float) -> np.ndarray:
        return (tone(3, SR, 180.0) * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t))).astype(np.float32)

    assert acoustic_descriptors(syllables(2.0))["syllables_per_s"] == pytest.approx(2.0, abs=0.6)
    assert acoustic_descriptors(syllables(6.0))["syllables_per_s"] == pytest.approx(6.0, abs=1.0)


def test_silence_and_noise_are_not_speech():
    assert describe_acoustics(_silence(2)) == "No audible speech."
    assert describe_acoustics(None) == "No audible speech."
    noise = (0.1 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    assert acoustic_descriptors(noise)["pitch_hz"] is None
    assert acoustic_descriptors(_silence(1))["loudness_dbfs"] is None


def test_description_is_short_plain_and_deterministic():
    audio = np.concatenate(
        [tone(1, SR, 240.0), _silence(0.6), tone(1, SR, pitch_contour=lambda t: 200 + 150 * t)]
    )
    text = describe_acoustics(audio)
    assert text == describe_acoustics(audio.copy())
    assert "high pitch" in text and "1 pause (0.6 s in all)" in text and text.endswith(".")
    assert len(re.findall(r"\.(?:\s|$)", text)) <= 2 and len(text) < 250  # one or two sentences
