"""The published OV-MER emotion-wheel files (`wheel1..5.xlsx`, `synonym.xlsx`, `format.csv`) read exactly as the
reference implementation reads them, flattened into one label -> 12 clusters table, cached as JSON.

Columns: `case1` (surface form -> alphabetically first base word), `case2` (-> then alphabetically first wheel
word it is a synonym of) and `wheelK_levelL` (-> all base words -> all their wheel-word synonyms, sorted, first
one on wheel K's level-L map -> its cluster). `""` means the reference drops the label.

The parsed table is cached in `$AFFECTREASON_CACHE` (default `~/.cache/affectreason`) as
`ovmer-<sha256 of the seven files>.json`, so only the first run pays for openpyxl (about 1 s); a changed file
gets a new key. The files themselves are never copied anywhere.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from affectreason.errors import AffectReasonError
from affectreason.paths import cache_dir

WHEELS = ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5")
LEVELS = ("level1", "level2")
COLUMNS = ("case1", "case2", *(f"{w}_{lv}" for w in WHEELS for lv in LEVELS))
FILES = (*(f"{w}.xlsx" for w in WHEELS), "synonym.xlsx", "format.csv")
_CACHE_VERSION = 1
_SPLIT_RE = re.compile(r"[,'\"]")


def string_to_list(value: object) -> list[str]:
    """The reference's list parser: drop one leading `[` and one trailing `]`, split on `,` `'` `"`, trim, drop
    empties. Non-strings (None, NaN) give []."""
    if not isinstance(value, str):
        return []
    if value.startswith("["):
        value = value[1:]
    if value.endswith("]"):
        value = value[:-1]
    return [piece.strip() for piece in _SPLIT_RE.split(value) if piece.strip()]


@dataclass
class OvmerTables:
    """label (lower-cased, stripped) -> its 12 mapped clusters in `COLUMNS` order; `""` = dropped."""

    table: dict[str, tuple[str, ...]]
    sha256: str


def _xlsx_rows(path: Path) -> list[dict[str, object]]:
    import openpyxl  # 0.2 s import; only on a cache miss

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:] if any(c is not None for c in row)]


def _read_wheel(path: Path) -> dict[str, dict[str, list[str]]]:
    tree: dict[str, dict[str, list[str]]] = {}
    current = ["", "", ""]
    for row in _xlsx_rows(path):
        for i, key in enumerate(("level1", "level2", "level3")):
            if row.get(key) is not None:  # an empty cell repeats the cell above
                current[i] = str(row[key])
            current[i] = current[i].lower().strip()
        tree.setdefault(current[0], {}).setdefault(current[1], []).append(current[2])
    return tree


def _wheel_map(tree: dict[str, dict[str, list[str]]], level: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for l1, groups in tree.items():
        # reference quirk: at level 2 a level-1 word goes to its alphabetically first level-2 child
        out[l1] = l1 if level == "level1" else sorted(groups)[0]
        for l2, leaves in groups.items():
            out[l2] = l1 if level == "level1" else l2
            for l3 in leaves:
                out[l3] = l1 if level == "level1" else l2
    return out


def _synonyms(path: Path) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for row in _xlsx_rows(path):
        for run in range(1, 9):
            raw = str(row[f"word_run{run}"]).strip().lower()
            merged.setdefault(raw, set()).add(raw)
            for synonym in string_to_list(row[f"synonym_run{run}"]):
                merged.setdefault(synonym.strip().lower(), set()).add(raw)
    return merged


def _format_to_bases(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            raw = row["name"]
            for form in string_to_list(row["format"] or None):
                out.setdefault(form, []).append(raw)
            out.setdefault(raw, []).append(raw)
    return out


def build_table(wheel_dir: Path) -> dict[str, tuple[str, ...]]:
    """Parse the seven files and map every surface form of `format.csv` through the 12 reference variants."""
    bases = _format_to_bases(wheel_dir / "format.csv")
    synonyms = _synonyms(wheel_dir / "synonym.xlsx")
    maps = []
    for wheel in WHEELS:
        tree = _read_wheel(wheel_dir / f"{wheel}.xlsx")
        maps.extend(_wheel_map(tree, level) for level in LEVELS)
    table: dict[str, tuple[str, ...]] = {}
    for label, label_bases in bases.items():
        case1 = sorted(label_bases)[0]
        case2 = sorted(synonyms.get(case1, ()) or [""])[0]
        candidates = sorted(s for base in label_bases for s in synonyms.get(base, ()))
        clusters = []
        for wheel_map in maps:
            clusters.append(next((wheel_map[c] for c in candidates if c in wheel_map), ""))
        table[label.lower().strip()] = (case1, case2, *clusters)
    return table


def _files_sha256(wheel_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        path = wheel_dir / name
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            raise AffectReasonError(
                f"wheel dir {wheel_dir} lacks {name} (needs {', '.join(FILES)})"
            ) from None
    return digest.hexdigest()


@lru_cache(maxsize=4)
def load_ovmer(wheel_dir: str | Path) -> OvmerTables:
    """The OV-MER label table for a folder holding the published files; parsed once, then read from the cache."""
    wheel_dir = Path(wheel_dir).expanduser()
    if not wheel_dir.is_dir():
        raise AffectReasonError(f"wheel dir {wheel_dir} is not a folder")
    sha = _files_sha256(wheel_dir)
    cache = cache_dir() / f"ovmer-{sha[:32]}.json"
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("version") == _CACHE_VERSION and data.get("sha256") == sha:
            return OvmerTables({k: tuple(v) for k, v in data["table"].items()}, sha)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        table = build_table(wheel_dir)
    except (KeyError, IndexError, ValueError, OSError) as exc:
        raise AffectReasonError(f"cannot read the OV-MER wheel files in {wheel_dir}: {exc}") from None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"version": _CACHE_VERSION, "sha256": sha, "table": table}), encoding="utf-8"
        )
        tmp.replace(cache)
    except OSError:
        pass  # a read-only cache dir only costs speed
    return OvmerTables(table, sha)
