"""Levelled emotion wheels (family > group > emotion word) loaded from JSON data files, with valence and arousal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from affectreason.errors import AffectReasonError
from affectreason.paths import package_data_dir


@dataclass(frozen=True)
class Family:
    """A level-1 cluster: its name, valence sign/size in [-1, 1], arousal in [0, 1] and its level-2 groups."""

    name: str
    valence: float
    arousal: float
    groups: tuple[str, ...]


@dataclass
class Wheel:
    """An emotion wheel: every surface form maps to exactly one emotion word, which has one group and one family."""

    name: str
    families: dict[str, Family]
    word_group: dict[str, str]  # emotion word (level 3) -> group (level 2)
    group_family: dict[str, str]  # group -> family (level 1)
    forms: dict[str, str]  # surface form (lower case) -> emotion word, including each word itself
    free_text_stoplist: frozenset[str] = field(default_factory=frozenset)

    def cluster(self, word: str, level: int) -> str:
        """The level-`level` ancestor of an emotion word (3 = the word itself, 2 = its group, 1 = its family)."""
        if level == 3:
            return word
        group = self.word_group[word]
        if level == 2:
            return group
        if level == 1:
            return self.group_family[group]
        raise AffectReasonError(f"wheel level must be 1, 2 or 3, got {level}")

    def family(self, word: str) -> Family:
        return self.families[self.group_family[self.word_group[word]]]


def _parse(data: dict, source: str) -> Wheel:
    families: dict[str, Family] = {}
    word_group: dict[str, str] = {}
    group_family: dict[str, str] = {}
    forms: dict[str, str] = {}
    try:
        for fam_name, fam in data["families"].items():
            families[fam_name] = Family(
                fam_name, float(fam["valence"]), float(fam["arousal"]), tuple(fam["groups"])
            )
            for group, words in fam["groups"].items():
                group_family[group] = fam_name
                for word, word_forms in words.items():
                    word_group[word] = group
                    for form in (word, *word_forms):
                        key = form.lower().strip()
                        if forms.get(key, word) != word:
                            raise AffectReasonError(
                                f"{source}: form {key!r} maps to both {forms[key]!r} and {word!r}"
                            )
                        forms[key] = word
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AffectReasonError(f"{source}: not a wheel file ({type(exc).__name__}: {exc})") from None
    for fam_name in families:
        if fam_name not in word_group:
            raise AffectReasonError(
                f"{source}: family {fam_name!r} must also be an emotion word in one group"
            )
    return Wheel(
        name=str(data.get("name", Path(source).stem)),
        families=families,
        word_group=word_group,
        group_family=group_family,
        forms=forms,
        free_text_stoplist=frozenset(data.get("free_text_stoplist", ())),
    )


@lru_cache(maxsize=8)
def load_wheel(name: str = "default") -> Wheel:
    """A packaged wheel by name (`default`) or a wheel JSON file by path; cached."""
    path = Path(name) if name.endswith(".json") else package_data_dir() / f"{name}_wheel.json"
    if not path.is_file():
        raise AffectReasonError(f"unknown emotion wheel {name!r} (no file {path})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AffectReasonError(f"cannot read wheel file {path}: {exc}") from None
    return _parse(data, str(path))
