"""`affectreason score` behind the CLI: read reference and prediction files (released CSV forms, JSONL, npz),
find each record's labels / text / valence fields, score them with `affectreason.metrics` (the pure metric
functions), and render the result as JSON or a readable table."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError

TASKS = ("ov", "discrete", "sentiment", "emer", "choice", "multilabel", "joint", "reason")
_ID_FIELDS = ("id", "name", "names")
_LABEL_FIELDS = ("emotions", "openset", "labels", "label", "emo", "emotion")
_TEXT_FIELDS = ("text", "description", "reason", "reasons", "english", "response", "raw", "reasoning")
_CUE_FIELDS = ("visual_cues", "acoustic_cues", "lexical_cues")
_BINARY_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")  # control characters no text file of ours holds
_VALENCE_FIELDS = ("valence", "val", "label")


def _read_text(path: Path, role: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AffectReasonError(f"cannot read {role} {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AffectReasonError(
            f"cannot read {role} {path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    binary = _BINARY_RE.search(text)
    if binary:
        raise AffectReasonError(
            f"cannot read {role} {path}: binary data, not text (byte 0x{ord(binary.group()):02x})"
        )
    return text


def _json_rows(text: str, path: Path, role: str) -> list[Any]:
    """JSONL, or (for `.json`) one JSON list of objects as `describe --out x.json` writes it."""
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except (ValueError, RecursionError):
            raise AffectReasonError(f"{role} {path} is not a JSON list") from None
        for number, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise AffectReasonError(f"{role} {path} item {number} is not a JSON object")
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise AffectReasonError(f"{role} {path} line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise AffectReasonError(f"{role} {path} line {number} is not a JSON object")
        rows.append(row)
    return rows


def _npz_rows(path: Path, role: str, ids: Collection[str] | None) -> list[dict[str, Any]]:
    """A released `label*.npz` (split -> name -> {emo, val}) as rows: the split that holds the prediction ids."""
    import zipfile

    import numpy as np

    from affectreason.bench.adapters import load_label_corpus

    try:
        with np.load(path, allow_pickle=False) as data:  # lists the splits without unpickling anything
            splits = list(data.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise AffectReasonError(
            f"cannot read {role} {path}: not a .npz label file ({exc})".splitlines()[0]
        ) from None
    if not splits:
        raise AffectReasonError(f"{role} {path} holds no splits")
    corpora = {split: load_label_corpus(path, split) for split in splits}
    wanted = set(ids or ())
    split = max(splits, key=lambda s: (len(wanted & corpora[s].keys()), s.startswith("test")))
    return [{"name": name, **entry} for name, entry in corpora[split].items()]


def read_records(
    path: str | Path, role: str = "file", ids: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """id -> row from a CSV (header row), JSONL, a JSON list, or a released `label*.npz` (the split holding
    `ids`); one-line errors for unreadable files and bad rows."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        rows = _npz_rows(path, role, ids)
    elif suffix in {".jsonl", ".json", ".ndjson"}:
        rows = _json_rows(_read_text(path, role), path, role)
    elif suffix in {".csv", ".tsv"}:
        text = _read_text(path, role)
        try:
            rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        except csv.Error as exc:
            raise AffectReasonError(f"cannot read {role} {path}: {exc}") from None
    else:
        raise AffectReasonError(f"{role} {path}: expected a .csv, .jsonl, .json or label .npz file")
    records: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, 1):
        key = next((f for f in _ID_FIELDS if row.get(f) not in (None, "")), None)
        if key is None:
            raise AffectReasonError(
                f"{role} {path} row {number} has no id (a column named {'/'.join(_ID_FIELDS)})"
            )
        sample_id = str(row[key])
        if sample_id in records:
            raise AffectReasonError(f"{role} {path} has the id {sample_id!r} twice")
        records[sample_id] = row
    return records


def _field(row: Any, fields: tuple[str, ...]) -> tuple[str | None, Any]:
    if not isinstance(row, dict):
        return "value", row
    for name in fields:
        if name in row and row[name] is not None:
            return name, row[name]
    return None, None


Extractor = Callable[[str], list[str]]


def _labels(row: Any, role: str, sample_id: str, extractor: Extractor | None = None) -> Any:
    """A label list (or list string) from `emotions`/`openset`/..., else labels extracted from a text field
    (by the lexicon, or by `extractor` for predictions when one is given)."""
    from affectreason.taxonomy import extract_labels

    name, value = _field(row, _LABEL_FIELDS)
    if isinstance(value, int) and not isinstance(value, bool):
        raise AffectReasonError(
            f"{role} {sample_id!r} has the label index {value}, not a label name (MELD and IEMOCAP release "
            "indices into their label space: score those with `affectreason bench`)"
        )
    if name is not None:
        return value
    name, value = _field(row, _TEXT_FIELDS)
    if name is not None:
        if extractor is not None and role == "prediction":
            return extractor(str(value))
        return extract_labels(str(value))
    raise AffectReasonError(
        f"{role} {sample_id!r} has no labels (fields: {', '.join(_LABEL_FIELDS + _TEXT_FIELDS)})"
    )


def _text_record(row: Any, role: str, sample_id: str) -> dict[str, Any]:
    """The explanation text, labels and, for rows with `visual_cues`/`acoustic_cues`/`lexical_cues` (what
    `describe` and `bench` write), the cues from those fields; otherwise cues come from the text."""
    from affectreason.metrics import cue_phrases
    from affectreason.rationale import Rationale

    if not isinstance(row, dict):
        return {"text": str(row)}
    _, text = _field(row, _TEXT_FIELDS)
    _, emotions = _field(row, _LABEL_FIELDS)
    if text is None and emotions is None:
        raise AffectReasonError(
            f"{role} {sample_id!r} has no explanation (fields: {', '.join(_TEXT_FIELDS)})"
        )
    record = {"text": "" if text is None else str(text), "emotions": emotions}
    if any(isinstance(row.get(f), list) and row[f] for f in _CUE_FIELDS):
        rationale = Rationale(**{f: [str(c) for c in row.get(f) or []] for f in _CUE_FIELDS})
        record["cues"] = cue_phrases(rationale)
    return record


def _valence(row: Any, sample_id: str) -> float:
    name, value = _field(row, _VALENCE_FIELDS)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AffectReasonError(
            f"reference {sample_id!r} has no numeric valence (fields: {', '.join(_VALENCE_FIELDS)})"
        ) from None


def _sentiment(row: Any, sample_id: str, extractor: Extractor | None = None) -> Any:
    """A prediction's sentiment: a `sentiment` string, else its emotion labels (or labels in its text), else
    the sign of a numeric `valence`; None when it has none of these."""
    if not isinstance(row, dict):
        return row
    if row.get("sentiment") is not None:
        return row["sentiment"]
    name, value = _field(row, _LABEL_FIELDS)
    if name is not None and value not in ([], ""):
        return value
    valence = row.get("valence")
    if isinstance(valence, (int, float)) and not isinstance(valence, bool) and math.isfinite(valence):
        return "positive" if valence > 0 else "negative" if valence < 0 else "neutral"
    if name is None and _field(row, _TEXT_FIELDS)[0] is not None:
        return _labels(row, "prediction", sample_id, extractor)
    return value


def score_records(
    task: str,
    refs: dict[str, Any],
    preds: dict[str, Any],
    protocol: str = "affectreason",
    wheel_dir: str | Path | None = None,
    semantic: bool = True,
    extractor: Extractor | None = None,
) -> dict:
    """Score in-memory records: id -> a row dict with the file field names (`emotions`, `openset`, `label`,
    `valence`, `sentiment`, `text`, `description`, ...) or a bare value. Returns exactly the CLI's `--json`
    object. Ids missing from `preds` count as empty predictions and are listed under `missing`.
    `extractor` turns free-text predictions into labels instead of the lexicon (e.g. an LLM, as the reference)."""
    from affectreason import metrics

    if task not in TASKS:
        raise AffectReasonError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    unknown = [i for i in preds if i not in refs]
    if unknown:
        raise AffectReasonError(f"{len(unknown)} prediction id(s) not in the reference, e.g. {unknown[0]!r}")
    if not refs:
        raise AffectReasonError("the reference has no samples")
    missing = [i for i in refs if i not in preds]
    if task in ("ov", "discrete"):
        ref_values = {i: _labels(r, "reference", i) for i, r in refs.items()}
        pred_values = {i: _labels(p, "prediction", i, extractor) for i, p in preds.items()}
        scorer = metrics.score_ov if task == "ov" else metrics.score_discrete
        result = scorer(ref_values, pred_values, protocol=protocol, wheel_dir=wheel_dir, semantic=semantic)
    elif task == "sentiment":
        ref_values = {i: _valence(r, i) for i, r in refs.items()}
        pred_values = {i: _sentiment(p, i, extractor) for i, p in preds.items()}
        result = metrics.score_sentiment(ref_values, pred_values, protocol=protocol, semantic=semantic)
    elif task in ("choice", "multilabel", "joint"):
        result = _score_closed(task, refs, preds, semantic)
    elif task == "reason":
        ref_values = {i: str(_text_record(r, "reference", i)["text"]) for i, r in refs.items()}
        result = metrics.score_reason(ref_values, {i: _reason_text(p) for i, p in preds.items()})
    else:
        ref_values = {i: _text_record(r, "reference", i) for i, r in refs.items()}
        pred_values = {i: _text_record(p, "prediction", i) for i, p in preds.items()}
        result = metrics.score_emer(
            ref_values, pred_values, protocol=protocol, wheel_dir=wheel_dir, semantic=semantic
        )
    result["missing"] = missing
    return result


def _reason_text(row: Any) -> str:
    if not isinstance(row, dict):
        return str(row)
    return str(row.get("reasoning") or _text_record(row, "prediction", "?")["text"] or "")


def _score_closed(task: str, refs: dict[str, Any], preds: dict[str, Any], semantic: bool) -> dict:
    """Closed label-set tasks: `label` (+ `label_set`) references; predictions give `emotions` (answers) and
    `text`. With `clue` texts in the references (MME-Emotion's audio clues), also the offline reasoning proxy:
    acoustic cue matching of each prediction against its clue."""
    from affectreason import metrics
    from affectreason.rationale import parse_rationale

    ref_values, pred_values = {}, {}
    for i, r in refs.items():
        if not isinstance(r, dict) or not r.get("label"):
            raise AffectReasonError(f"reference {i!r} has no 'label'")
        ref_values[i] = {"label": r["label"], "label_set": list(r.get("label_set") or [])}
        if task == "joint":
            if not r.get("intent") or not r.get("intent_set"):
                raise AffectReasonError(f"reference {i!r} has no 'intent' and 'intent_set'")
            ref_values[i].update(intent=r["intent"], intent_set=list(r["intent_set"]))
    for i, p in preds.items():
        row = p if isinstance(p, dict) else {"text": str(p)}
        answers = row.get("emotions")
        text = str(row.get("text") or row.get("raw") or "")
        if answers is None:  # free text: its canonical answer, else the whole text as one answer
            answers = parse_rationale(text).emotions or ([text] if text else [])
        pred_values[i] = {"emotions": [str(a) for a in answers], "text": text}
    scorer = {"choice": metrics.score_choice, "multilabel": metrics.score_multilabel}.get(
        task, metrics.score_joint
    )
    result = scorer(ref_values, pred_values)
    result["protocol"] = "affectreason"  # one protocol: the reference's own extraction is under `first_match`
    clued = [i for i, r in refs.items() if isinstance(r, dict) and r.get("clue")]
    if clued and semantic:
        pairs = [
            (
                metrics.cue_phrases(refs[i]["clue"]),
                metrics.cue_phrases(pred_values.get(i, {}).get("text", "")),
            )
            for i in clued
        ]
        result["clue_match"] = metrics.score_cues(pairs, categories=("acoustic",))
        result["reasoning_proxy"] = result["clue_match"]["acoustic"]["soft"]["f1"]
    return result


def score_files(
    task: str,
    ref_path: str | Path,
    pred_path: str | Path,
    protocol: str = "affectreason",
    wheel_dir: str | Path | None = None,
    semantic: bool = True,
    extractor: Extractor | None = None,
) -> dict:
    """Read REF and PRED files and score them (the library function behind `affectreason score`)."""
    if Path(ref_path).suffix.lower() == ".npz":  # the split to score is the one holding the predictions
        preds = read_records(pred_path, "prediction")
        refs = read_records(ref_path, "reference", ids=preds)
    else:
        refs = read_records(ref_path, "reference")
        preds = read_records(pred_path, "prediction")
    return score_records(
        task, refs, preds, protocol=protocol, wheel_dir=wheel_dir, semantic=semantic, extractor=extractor
    )


def to_json(result: dict) -> str:
    """One-line JSON; any NaN left becomes null."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(result), allow_nan=False)


def _fmt(value: Any) -> str:
    return "nan" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def render_table(task: str, result: dict) -> str:
    """A plain-text table of the main numbers."""
    lines = [f"task {task}  protocol {result.get('protocol')}  n {result.get('n')}"]
    if "ew" in result:
        lines.append(f"{'metric':<22}{'F':>9}{'P':>9}{'R':>9}")
        rows = [("level1", result["ew"]["level1"]), ("level2", result["ew"]["level2"])]
        rows += list(result["ew"]["per_metric"].items())
        for name, m in rows:
            lines.append(f"{name:<22}{_fmt(m['fscore']):>9}{_fmt(m['precision']):>9}{_fmt(m['recall']):>9}")
        lines.append(f"{'m_avg':<22}{_fmt(result['ew']['m_avg']):>9}")
    if "hit_rate" in result:
        lines.append(f"{'hit_rate':<22}{_fmt(result['hit_rate']):>9}")
        for name, m in result["per_wheel"].items():
            lines.append(f"  {name:<20}{_fmt(m['hit_rate']):>9}")
    if "weighted_f1" in result:
        lines.append(f"{'weighted_f1':<22}{_fmt(result['weighted_f1']):>9}")
        lines.append(f"{'accuracy':<22}{_fmt(result['accuracy']):>9}")
        if result.get("failed"):
            how = (
                "as negative (the reference's reading)"
                if result["failed_counted_as"] == "negative"
                else "wrong"
            )
            lines.append(f"{result['failed']} failed predictions counted {how}")
    if "recognition" in result:
        lines.append(f"{'recognition':<22}{_fmt(result['recognition']):>9}")
        if "f1" in result:
            lines.append(f"{'f1':<22}{_fmt(result['f1']):>9}")
        if "first_match" in result:
            first = result["first_match"]
            lines.append(
                f"{'first-match accuracy':<22}{_fmt(first['accuracy']):>9}  ({first['invalid']} invalid)"
            )
    if "similarity" in result:
        lines.append(f"{'similarity':<22}{_fmt(result['similarity']):>9}")
    if "cues" in result:
        lines.append(f"{'cues':<22}{'soft F1':>9}{'match P':>9}{'match R':>9}{'match F1':>9}{'n':>6}")
        for name, m in result["cues"].items():
            hard = m["matched"]
            lines.append(
                f"  {name:<20}{_fmt(m['soft']['f1']):>9}{_fmt(hard['precision']):>9}"
                f"{_fmt(hard['recall']):>9}{_fmt(hard['f1']):>9}{m['n']:>6}"
            )
    if result.get("unmapped"):
        shown = ", ".join(result["unmapped"][:10])
        lines.append(f"unmapped labels ({len(result['unmapped'])}): {shown}")
    if result.get("missing"):
        lines.append(
            f"missing predictions ({len(result['missing'])}), scored as empty: {', '.join(result['missing'][:10])}"
        )
    return "\n".join(lines)
