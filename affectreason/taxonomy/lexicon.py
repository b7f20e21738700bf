"""Open-vocabulary label normalisation onto a wheel: case, punctuation, inflection, derivation, lists, negation,
modifiers, and a sentence-embedding fallback for words outside the lexicon."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from affectreason.taxonomy.wheel import Wheel, load_wheel

# An out-of-lexicon word is placed when its best family's score (mean cosine of the family's 5 nearest exemplars,
# all-MiniLM-L6-v2; see taxonomy.semantic) reaches SEMANTIC_THRESHOLD and beats the runner-up family by
# SEMANTIC_MARGIN. Chosen on the even rows of eval/oov_emotion_words.csv (the most coverage at precision >= 0.8).
SEMANTIC_THRESHOLD = 0.54
SEMANTIC_MARGIN = 0.02
# Bump when the reading rules below change: readings of unknown labels are cached on disk under this version.
_RULES_VERSION = 1

_LIST_SPLIT_RE = re.compile(r"\s*(?:[,;/|\n]|\s&\s|\band\b|\bor\b)\s*")
_PUNCT_RE = re.compile(r"[^\w\s'\-]+")
_NEGATORS = frozenset(
    {
        "not",
        "no",
        "never",
        "without",
        "hardly",
        "barely",
        "neither",
        "nor",
        "lack",
        "lacking",
        "absence",
        "non",
    }
)
_MODIFIERS = frozenset(
    "a an the of some very slightly somewhat little bit extremely quite rather mildly deeply really so too more most "
    "mostly highly overly utterly totally completely much pretty fairly increasingly visibly clearly obviously "
    "genuinely truly heavily mild slight intense great deep sense feeling feel feels felt seems seem seemingly "
    "looks look appears appear being is was am are be kind sort state mood expression".split()
)
# Prefixes and suffixes that reverse a word's meaning: such words never inherit the stem's emotion.
_ANTONYM_AFFIXES = (("un", ""), ("in", ""), ("im", ""), ("dis", ""), ("non", ""), ("", "less"), ("", "free"))


@dataclass(frozen=True)
class LabelMatch:
    """How one label was read: `word` is the wheel's emotion word, or None when negated or unmapped."""

    label: str
    key: str
    word: str | None
    how: str  # "lexicon", "form", "modifier", "semantic", "negated", "unmapped"
    similarity: float | None = None

    @property
    def negated(self) -> bool:
        return self.how == "negated"


def clean_label(label: str) -> str:
    """Lower case, punctuation (except inner hyphens and apostrophes) removed, whitespace collapsed."""
    text = _PUNCT_RE.sub(" ", str(label).lower().replace("_", " "))
    return " ".join(t.strip("-'") for t in text.split() if t.strip("-'"))


def split_labels(labels: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Split a label list given as a list or a string (`[a, b]`, `a; b`, `a and b`) into single labels."""
    if labels is None:
        return []
    items = [labels] if isinstance(labels, str) else [str(x) for x in labels]
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item.startswith("[") and item.endswith("]"):
            item = item[1:-1]
        for piece in _LIST_SPLIT_RE.split(item):
            piece = piece.strip().strip("\"'`[]().").strip()
            if piece:
                out.append(piece)
    return out


def _derivations(word: str) -> list[str]:
    """Candidate base forms of one word: the word, derivational stems, then their lemmas (lemminflect)."""
    stems = [word]
    for suffix, repl in (
        ("ily", "y"),
        ("ly", ""),
        ("iness", "y"),
        ("ness", ""),
        ("ment", ""),
        ("ed", ""),
        ("ing", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stems.append(word[: -len(suffix)] + repl)
    from lemminflect import getAllLemmas  # 70 ms import; only needed for words outside the lexicon

    out = list(stems)
    for stem in stems:
        for lemmas in getAllLemmas(stem).values():
            out.extend(lemmas)
    return out


def _lookup_form(wheel: Wheel, phrase: str) -> str | None:
    word = wheel.forms.get(phrase)
    if word is not None or " " in phrase:
        return word
    for candidate in _derivations(phrase):
        word = wheel.forms.get(candidate)
        if word is not None:
            return word
    return None


def _is_antonym_form(wheel: Wheel, phrase: str) -> bool:
    for prefix, suffix in _ANTONYM_AFFIXES:
        if phrase.startswith(prefix) and phrase.endswith(suffix):
            stem = phrase[len(prefix) : len(phrase) - len(suffix)].strip("-")
            if len(stem) >= 3 and stem != phrase and _lookup_form(wheel, stem) is not None:
                return True
    return False


def _cache_tag(semantic: bool) -> str:
    rules = f"semantic {SEMANTIC_THRESHOLD} {SEMANTIC_MARGIN}" if semantic else "lexicon only"
    return f"rules {_RULES_VERSION}, {rules}"


def _fallback_phrase(key: str) -> str:
    """What the embedding fallback embeds for a label key: the key without modifier words."""
    return " ".join(t for t in key.split() if t not in _MODIFIERS) or key


@lru_cache(maxsize=65536)
def _match_key(key: str, wheel_name: str, semantic: bool) -> tuple[str | None, str, float | None]:
    wheel = load_wheel(wheel_name)
    if not key:
        return None, "unmapped", None
    word = wheel.forms.get(key)
    if word is not None:
        return word, "lexicon", None
    tokens = key.split()
    if any(t in _NEGATORS or t.endswith("n't") for t in tokens):
        return None, "negated", None
    from affectreason.taxonomy.semantic import recall_resolved, remember_resolved

    tag = _cache_tag(semantic)
    known = recall_resolved(wheel_name, tag, key)
    if known is not None:
        return known[0], known[1], known[2]
    result = _read_unknown(wheel, key, tokens, wheel_name, semantic)
    remember_resolved(wheel_name, tag, key, list(result))
    return result


def _read_unknown(
    wheel: Wheel, key: str, tokens: list[str], wheel_name: str, semantic: bool
) -> tuple[str | None, str, float | None]:
    """A label that is no surface form: derivations, modifiers, head words, then the semantic fallback."""
    word = _lookup_form(wheel, key)
    if word is not None:
        return word, "form", None
    content = [t for t in tokens if t not in _MODIFIERS]
    if content and content != tokens:
        word = _lookup_form(wheel, " ".join(content))
        if word is not None:
            return word, "modifier", None
    if len(content) > 1:  # a head noun or adjective inside a longer phrase ("mild frustration building up")
        for token in reversed(content):
            word = _lookup_form(wheel, token)
            if word is not None:
                return word, "modifier", None
    phrase = _fallback_phrase(key)
    if semantic and not _is_antonym_form(wheel, phrase):
        from affectreason.taxonomy.semantic import nearest_form

        form, similarity, margin = nearest_form(wheel_name, phrase)
        if form is not None and similarity >= SEMANTIC_THRESHOLD and margin >= SEMANTIC_MARGIN:
            return wheel.forms[form], "semantic", similarity
    return None, "unmapped", None


@lru_cache(maxsize=65536)
def match_label(label: str, wheel: str = "default", semantic: bool = True) -> LabelMatch:
    """Read one label onto the wheel's emotion words (cached per label)."""
    key = clean_label(label)
    word, how, similarity = _match_key(key, wheel, semantic)
    return LabelMatch(label=label, key=key, word=word, how=how, similarity=similarity)


def analyse_labels(
    labels: str | list[str] | None, wheel: str = "default", semantic: bool = True
) -> list[LabelMatch]:
    """Split and read every label; negated and unmapped labels are kept (flagged) so callers can count them."""
    key = labels if labels is None or isinstance(labels, str) else tuple(str(x) for x in labels)
    return list(_analyse(key, wheel, semantic))


@lru_cache(maxsize=65536)
def _analyse(labels: str | tuple[str, ...] | None, wheel: str, semantic: bool) -> tuple[LabelMatch, ...]:
    # scorers read each label list once per level and side: split and clean it once
    return tuple(match_label(label, wheel, semantic) for label in split_labels(labels))


def read_many(label_lists: list, wheel: str = "default", semantic: bool = True) -> None:
    """Read the labels of many label lists ahead of scoring, embedding every label that needs the semantic
    fallback in one batch (a corpus with hundreds of unknown words costs one batched pass, not one per word)."""
    if semantic:
        from affectreason.taxonomy.semantic import embed, recall_resolved

        w, tag = load_wheel(wheel), _cache_tag(True)
        keys = {clean_label(x) for labels in label_lists for x in split_labels(labels)}
        pending = [
            _fallback_phrase(k)
            for k in sorted(keys)
            if k not in w.forms
            and _match_key(k, wheel, False)[1] == "unmapped"  # lexicon only: cheap, and cached
            and recall_resolved(wheel, tag, k) is None
            and not _is_antonym_form(w, _fallback_phrase(k))
        ]
        if pending:
            embed(pending)  # fills the embedder's per-phrase cache
    for labels in label_lists:
        analyse_labels(labels, wheel, semantic)
