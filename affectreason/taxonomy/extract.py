"""Emotion labels from model output: the canonical `<answer>` when present, else deterministic lexicon extraction
from free text (the optional LLM extractor lives in `affectreason.llm_labels`)."""

from __future__ import annotations

import re

from affectreason.rationale import parse_rationale
from affectreason.taxonomy.lexicon import NEGATORS, lookup_form
from affectreason.taxonomy.wheel import load_wheel

_WORD_RE = re.compile(r"[a-z][a-z'\-]*")
_CLAUSE_BREAK_RE = re.compile(r"[.;:!?,\n]|\bbut\b|\bwhile\b|\bhowever\b|\balthough\b")
_MAX_NGRAM = 3
_NEGATION_WINDOW = 3


def _clause_labels(clause: str, wheel_name: str) -> list[str]:
    wheel = load_wheel(wheel_name)
    tokens = _WORD_RE.findall(clause)
    found: list[str] = []
    i = 0
    while i < len(tokens):
        for n in range(min(_MAX_NGRAM, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + n])
            if phrase in wheel.free_text_stoplist:
                continue
            word = wheel.forms.get(phrase) if n > 1 else lookup_form(wheel, phrase)
            if word is None:
                continue
            window = tokens[max(0, i - _NEGATION_WINDOW) : i]
            if not any(t in NEGATORS or t.endswith("n't") for t in window):
                found.append(phrase)
            i += n - 1
            break
        i += 1
    return found


def extract_labels(text: str, wheel: str = "default") -> list[str]:
    """Emotion labels in `text`: the `<answer>` list when present, else lexicon words in order of first mention
    (one per emotion word, negated mentions skipped). Deterministic; never raises on odd input."""
    text = text if isinstance(text, str) else ""
    if "<answer>" in text.lower():
        return parse_rationale(text).emotions
    wheel_obj = load_wheel(wheel)
    labels: list[str] = []
    seen: set[str] = set()
    for clause in _CLAUSE_BREAK_RE.split(text.lower()):
        for phrase in _clause_labels(clause, wheel):
            word = wheel_obj.forms.get(phrase) or lookup_form(wheel_obj, phrase)
            if word not in seen:
                seen.add(word)
                labels.append(phrase)
    return labels
