"""Corpus emotion-wheel scores: open-vocabulary set precision/recall/F (`score_ov`) and hit rate
(`score_discrete`), under the `mer-unibench` parity protocol or the `affectreason` default protocol.

Both average per-sample precision and recall over samples and take F from the averages (as the reference does).
Parity reproduces the reference bit for bit, NaN included (0/0, a metric with no scorable sample, neutral and
out-of-vocabulary words dropped). The default protocol fixes those flaws: see `DEFAULT_PROTOCOL_FIXES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from affectreason.errors import AffectReasonError
from affectreason.metrics.sets import f_score, set_precision_recall, wheel_sets
from affectreason.taxonomy.lexicon import read_many
from affectreason.taxonomy.ovmer import COLUMNS, WHEELS, OvmerTables, load_ovmer, string_to_list

PROTOCOLS = ("affectreason", "mer-unibench")

DEFAULT_PROTOCOL_FIXES = (
    "0/0 is 0, not NaN: an empty prediction scores precision = recall = F = 0, an empty corpus scores 0",
    "neutral is a family of the default wheel, so neutral references are scored instead of skipped",
    "antonyms are never merged: no 'fearless' -> 'fear' forms, and un-/-less words never inherit the stem",
    "no alphabetical tie-break: every surface form maps to exactly one emotion word, group and family",
    "out-of-vocabulary words go to the nearest lexicon form by sentence embedding above a threshold; a label "
    "still unmapped stays in its set as '?word', so an unmappable prediction lowers precision",
    "lists split on ',', ';', '/', 'and', 'or'; an apostrophe never splits a label; case, punctuation, "
    "inflection, derivation and modifiers ('very', 'a bit of') are normalised; negated labels ('not happy') drop",
)

Values = dict[str, "str | list[str] | None"]


def check_protocol(
    protocol: str, wheel_dir: str | Path | None, need_wheels: bool = True
) -> OvmerTables | None:
    """Validate the protocol; for parity (and `need_wheels`), load the published wheel files."""
    if protocol not in PROTOCOLS:
        raise AffectReasonError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    if protocol == "mer-unibench" and need_wheels:
        if wheel_dir is None:
            raise AffectReasonError(
                "--protocol mer-unibench needs --wheel-dir (the folder with wheel1..5.xlsx)"
            )
        return load_ovmer(wheel_dir)
    return None


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _prf(precisions: list[float], recalls: list[float], parity: bool) -> dict:
    if (
        parity
    ):  # np.mean of an empty list is NaN in the reference; keep numpy's own summation for identical bits
        with np.errstate(invalid="ignore", divide="ignore"):
            p = float(np.mean(precisions)) if precisions else math.nan
            r = float(np.mean(recalls)) if recalls else math.nan
            f = 2 * (p * r) / (p + r) if (p + r) != 0 else math.nan
    else:
        p = float(np.mean(precisions)) if precisions else 0.0
        r = float(np.mean(recalls)) if recalls else 0.0
        f = f_score(p, r)
    return {"fscore": f, "precision": p, "recall": r, "n": len(precisions)}


def _parity_labels(value: str | list[str] | None) -> list[str]:
    items = value if isinstance(value, list) else string_to_list(value)
    return [str(item).lower().strip() for item in items]


def _parity_rows(tables: OvmerTables, labels: list[str], unmapped: set[str]) -> list[tuple[str, ...]]:
    rows = []
    for label in labels:
        row = tables.table.get(label)
        if row is None:
            unmapped.add(label)
        else:
            rows.append(row)
    return rows


class _PackedTables:
    """Each label's 12 clusters packed into one integer: column c owns a bit field at `fields[c]` with one bit
    per distinct cluster, so a sample's 12 cluster sets are the OR of its labels' integers and all 12
    intersections are a single AND (the parity metric's inner loop then costs a few integer operations)."""

    def __init__(self, tables: OvmerTables):
        clusters = [sorted({row[c] for row in tables.table.values()} - {""}) for c in range(len(COLUMNS))]
        self.fields: list[tuple[int, int]] = []
        bit_of: list[dict[str, int]] = []
        offset = 0
        for values in clusters:
            self.fields.append((offset, (1 << len(values)) - 1))
            bit_of.append({value: offset + i for i, value in enumerate(values)})
            offset += len(values)
        self.masks = {
            label: sum(1 << bit_of[c][value] for c, value in enumerate(row) if value)
            for label, row in tables.table.items()
        }

    def mask(self, value: str | list[str] | None, unmapped: set[str]) -> int:
        packed = 0
        for label in _parity_labels(value):
            bits = self.masks.get(label)
            if bits is None:
                unmapped.add(label)
            else:
                packed |= bits
        return packed


_PACKED_BY_SHA: dict[str, _PackedTables] = {}  # built once per distinct set of wheel files


def _packed(tables: OvmerTables) -> _PackedTables:
    if tables.sha256 not in _PACKED_BY_SHA:
        _PACKED_BY_SHA[tables.sha256] = _PackedTables(tables)
    return _PACKED_BY_SHA[tables.sha256]


def _score_ov_parity(refs: Values, preds: Values, tables: OvmerTables) -> dict:
    unmapped: set[str] = set()
    packed = _packed(tables)
    precisions: list[list[float]] = [[] for _ in COLUMNS]
    recalls: list[list[float]] = [[] for _ in COLUMNS]
    for sample_id, ref in refs.items():
        ref_mask = packed.mask(ref, unmapped)
        pred_mask = packed.mask(preds.get(sample_id), unmapped)
        common_mask = ref_mask & pred_mask
        for col, (offset, field) in enumerate(packed.fields):
            n_ref = ((ref_mask >> offset) & field).bit_count()
            if not n_ref:  # the reference skips samples whose ground truth maps to nothing
                continue
            n_pred = ((pred_mask >> offset) & field).bit_count()
            if n_pred:
                common = ((common_mask >> offset) & field).bit_count()
                precisions[col].append(common / n_pred)
                recalls[col].append(common / n_ref)
            else:
                precisions[col].append(0)
                recalls[col].append(0)
    per_metric = {name: _prf(precisions[i], recalls[i], parity=True) for i, name in enumerate(COLUMNS)}
    levels = {}
    for level in ("level1", "level2"):
        scores = [[per_metric[f"{w}_{level}"][k] for k in ("fscore", "precision", "recall")] for w in WHEELS]
        mean = np.mean(scores, axis=0).tolist()
        levels[level] = {"fscore": mean[0], "precision": mean[1], "recall": mean[2]}
    m_avg = float(np.mean([per_metric[name]["fscore"] for name in COLUMNS]))
    return {
        "levels": levels,
        "m_avg": m_avg,
        "per_metric": per_metric,
        "unmapped": sorted(unmapped),
        "negated": [],
    }


def _score_ov_default(refs: Values, preds: Values, wheel: str, semantic: bool) -> dict:
    read_many([*refs.values(), *preds.values()], wheel, semantic)
    unmapped: set[str] = set()
    negated: set[str] = set()
    names = {3: "word", 2: f"{wheel}_level2", 1: f"{wheel}_level1"}
    precisions: dict[int, list[float]] = {lv: [] for lv in names}
    recalls: dict[int, list[float]] = {lv: [] for lv in names}
    for sample_id, ref in refs.items():
        for level in names:
            ref_set, ref_unmapped, ref_negated = wheel_sets(ref, level, wheel, semantic)
            pred_set, pred_unmapped, pred_negated = wheel_sets(preds.get(sample_id), level, wheel, semantic)
            unmapped.update(ref_unmapped, pred_unmapped)
            negated.update(ref_negated, pred_negated)
            if not ref_set:
                continue
            p, r = set_precision_recall(ref_set, pred_set)
            precisions[level].append(p)
            recalls[level].append(r)
    per_metric = {name: _prf(precisions[lv], recalls[lv], parity=False) for lv, name in names.items()}
    levels = {
        f"level{lv}": {k: per_metric[names[lv]][k] for k in ("fscore", "precision", "recall")}
        for lv in (1, 2)
    }
    m_avg = float(np.mean([m["fscore"] for m in per_metric.values()]))
    return {
        "levels": levels,
        "m_avg": m_avg,
        "per_metric": per_metric,
        "unmapped": sorted(unmapped),
        "negated": sorted(negated),
    }


def score_ov(
    refs: Values,
    preds: Values,
    protocol: str = "affectreason",
    wheel_dir: str | Path | None = None,
    wheel: str = "default",
    semantic: bool = True,
) -> dict:
    """Corpus EW scores. `refs`/`preds`: id -> label list (a list, or a string such as "[happy, sad]"); ids
    missing from `preds` count as empty predictions. NaN (parity only) is returned as None."""
    result = _by_protocol(
        refs,
        preds,
        protocol,
        wheel_dir,
        _score_ov_parity,
        lambda: _score_ov_default(refs, preds, wheel, semantic),
    )
    levels = result["levels"]
    ew = {"level1": levels["level1"], "level2": levels["level2"], "m_avg": result["m_avg"]}
    out = {
        "ew": {**ew, "per_metric": result["per_metric"]},
        "n": result["n"],
        "protocol": protocol,
        "unmapped": result["unmapped"],
    }
    if result["negated"]:
        out["negated"] = result["negated"]
    return out


def _score_discrete_parity(refs: Values, preds: Values, tables: OvmerTables) -> dict:
    per_wheel = {}
    # the reference maps the distinct raw reference strings (not split, not lower-cased) as the candidate set
    candidate_rows = [tables.table[c] for c in {str(v) for v in refs.values()} if c in tables.table]
    for wheel in WHEELS:
        col = COLUMNS.index(f"{wheel}_level1")
        candidates = {row[col] for row in candidate_rows if row[col]}
        hits: list[int] = []
        mscores: list[float] = []
        for sample_id, ref in refs.items():
            ref_set = {row[col] for row in _parity_rows(tables, _parity_labels(ref), set()) if row[col]}
            if not ref_set:
                continue
            pred_set = {
                row[col]
                for row in _parity_rows(tables, _parity_labels(preds.get(sample_id)), set())
                if row[col]
            }
            hits.append(len(pred_set & ref_set))
            shown = len(pred_set & candidates)
            mscores.append(0 if shown == 0 else len(pred_set & ref_set) / shown)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_wheel[wheel] = {
                "hit_rate": float(np.mean(hits)) if hits else math.nan,
                "m_score": float(np.mean(mscores)) if mscores else math.nan,
                "n": len(hits),
            }
    mean = np.mean([[w["hit_rate"], w["m_score"]] for w in per_wheel.values()], axis=0).tolist()
    return {"hit_rate": mean[0], "m_score": mean[1], "per_wheel": per_wheel}


def score_discrete(
    refs: Values,
    preds: Values,
    protocol: str = "affectreason",
    wheel_dir: str | Path | None = None,
    wheel: str = "default",
    semantic: bool = True,
) -> dict:
    """Hit rate of basic-emotion references among predicted families. Parity: the five-wheel level-1 average
    (neutral references skipped); default: one wheel, neutral scored, samples whose reference maps to nothing
    skipped."""
    return _by_protocol(
        refs,
        preds,
        protocol,
        wheel_dir,
        _score_discrete_parity,
        lambda: _discrete_default(refs, preds, wheel, semantic),
    )


def _discrete_default(refs: Values, preds: Values, wheel: str, semantic: bool) -> dict:
    from affectreason.metrics.sets import hit

    hits = [
        hit(preds.get(i), ref, wheel, semantic)
        for i, ref in refs.items()
        if any(not c.startswith("?") for c in wheel_sets(ref, 1, wheel, semantic)[0])
    ]
    rate = float(np.mean(hits)) if hits else 0.0
    return {"hit_rate": rate, "per_wheel": {wheel: {"hit_rate": rate, "n": len(hits)}}}


def _clean(value: Any) -> Any:
    """NaN (the parity protocol's undefined scores) as None, through nested dicts."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return _nan_to_none(value)


def _by_protocol(
    refs: Values,
    preds: Values,
    protocol: str,
    wheel_dir: str | Path | None,
    parity: Callable[[Values, Values, OvmerTables], dict],
    default: Callable[[], dict],
) -> dict:
    """The protocol's scorer on refs / preds (parity needs the published wheel tables), NaN as None, with `n`
    and `protocol` recorded."""
    tables = check_protocol(protocol, wheel_dir)
    result = parity(refs, preds, tables) if tables is not None else default()
    return {**_clean(result), "n": len(refs), "protocol": protocol}
