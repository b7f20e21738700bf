"""Bench results: score each dataset's prediction records through the `score` library (plus judged scores and
cue faithfulness) and pool them into a suite's results, the data `bench.report` renders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from affectreason.bench.suites import DatasetSpec, Suite
from affectreason.errors import AffectReasonError

DEFAULT_PROTOCOL = "affectreason"


def _dig(result: dict[str, Any], path: str, dataset: str) -> float | None:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise AffectReasonError(f"dataset {dataset}: metric '{path}' is not in the score result")
        value = value[part]
    return None if value is None else float(value)


def _prediction(record: dict[str, Any]) -> dict[str, Any]:
    """What the score library reads from one prediction record: the record as written (emotions, structured
    cues, raw text, valence), without the reference."""
    pred = {k: v for k, v in record.items() if k != "reference"}
    pred["emotions"] = pred.get("emotions") or []
    return pred


def judged_scores(spec: DatasetSpec, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The judge's scores for a dataset whose records carry judge replies (`--judge-endpoint`), else None."""
    from affectreason.metrics import cot_scores, laughter_scores

    replies = [r["judge"] for r in records if isinstance(r.get("judge"), dict)]
    if not replies or spec.judge is None:
        return None
    if spec.judge == "mme_cot":
        return cot_scores([j.get("score") for j in replies])
    return laughter_scores(replies)


def score_dataset(
    spec: DatasetSpec, records: list[dict[str, Any]], protocol: str, wheel_dir: str | None
) -> dict[str, dict[str, Any]]:
    """Scores of one dataset's records: always the default protocol, plus the parity one when asked for."""
    from affectreason.scoring import score_records

    refs = {r["id"]: r["reference"] for r in records}
    preds = {r["id"]: _prediction(r) for r in records}
    scores = {DEFAULT_PROTOCOL: score_records(spec.task, refs, preds, protocol=DEFAULT_PROTOCOL)}
    if protocol != DEFAULT_PROTOCOL:
        scores[protocol] = score_records(spec.task, refs, preds, protocol=protocol, wheel_dir=wheel_dir)
    judged = judged_scores(spec, records)
    if judged is not None:
        for result in scores.values():
            result["judge"] = judged
    return scores


def dataset_scorer(
    suite: Suite, protocol: str = DEFAULT_PROTOCOL, wheel_dir: str | None = None
) -> Callable[[str, list[dict[str, Any]]], float | None]:
    """`score(dataset, records) -> main metric` for the suite's datasets (e.g. for the attribution corpus view,
    which scores each ablation's predictions with the benchmark's own metric)."""

    def score(dataset: str, records: list[dict[str, Any]]) -> float | None:
        spec = suite.dataset(dataset)
        return _dig(score_dataset(spec, records, protocol, wheel_dir)[protocol], spec.metric, spec.name)

    return score


def _mean(values: list[float | None], weights: list[int] | None = None) -> float | None:
    """The plain mean, or weighted (`weights`: samples per dataset, for a pooled suite score)."""
    if not values or any(v is None for v in values):
        return None
    weights = weights or [1] * len(values)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)  # type: ignore[operator]


def _judged_overall(suite: Suite, by_dataset: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """`{"judge": ...}`: MME-Emotion's overall judged scores pooled over every judged sample, else `{}`."""
    from affectreason.metrics import cot_scores

    replies = [
        r["judge"].get("score")
        for spec in suite.datasets
        if spec.judge == "mme_cot"
        for r in by_dataset.get(spec.name, [])
        if isinstance(r.get("judge"), dict)
    ]
    return {"judge": cot_scores(replies)} if replies else {}


def _faithfulness(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean cue faithfulness over the records with a checkable cue, and how many cues were contradicted."""
    checks = [r["verification"] for r in rows if isinstance(r.get("verification"), dict)]
    scores = [c["faithfulness"] for c in checks if c.get("faithfulness") is not None]
    return {
        "faithfulness": sum(scores) / len(scores) if scores else None,
        "faithfulness_n": len(scores),
        "contradicted_cues": sum(c.get("contradicted", 0) for c in checks),
    }


def compute_results(
    suite: Suite,
    records: list[dict[str, Any]],
    manifest: dict[str, Any],
    protocol: str = DEFAULT_PROTOCOL,
    wheel_dir: str | None = None,
) -> dict[str, Any]:
    """Per-dataset main metric (as the suite defines it) under `protocol` and the default protocol side by
    side, diagnostics, and the suite mean over the datasets run."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_dataset.setdefault(record["dataset"], []).append(record)
    selected = manifest.get("selected", {})
    datasets: dict[str, Any] = {}
    for spec in suite.datasets:
        rows = sorted(by_dataset.get(spec.name, []), key=lambda r: r["id"])
        if not rows:
            continue
        scores = score_dataset(spec, rows, protocol, wheel_dir)
        datasets[spec.name] = {
            "title": spec.display,
            "task": spec.task,
            "metric": spec.metric,
            "main": _dig(scores[protocol], spec.metric, spec.name),
            "main_default": _dig(scores[DEFAULT_PROTOCOL], spec.metric, spec.name),
            "n": len(rows),
            "selected": selected.get(spec.name, len(rows)),
            "parse_failures": sum(not r.get("parse_ok", False) for r in rows),
            "parse_fail_rate": sum(not r.get("parse_ok", False) for r in rows) / len(rows),
            "errors": sum(bool(r.get("error")) for r in rows),
            "error_reasons": dict(
                Counter(str(r["error"])[:200] for r in rows if r.get("error")).most_common(5)
            ),
            **_faithfulness(rows),
            "scores": scores,
        }
    weights = [d["n"] for d in datasets.values()] if suite.mean == "samples" else None
    complete = all(d["n"] >= d["selected"] for d in datasets.values()) and len(datasets) == len(
        manifest.get("datasets", datasets)
    )
    return {
        "suite": suite.name,
        "title": suite.title,
        "protocol": protocol,
        "datasets": datasets,
        **attribution_section(suite, records, protocol, wheel_dir),
        **_judged_overall(suite, by_dataset),
        "mean": _mean([d["main"] for d in datasets.values()], weights),
        "mean_default": _mean([d["main_default"] for d in datasets.values()], weights),
        "mean_over": suite.mean,
        "all_datasets": len(datasets) == len(suite.datasets),
        "complete": complete,
        "manifest": manifest,
    }


def attribution_section(
    suite: Suite, records: list[dict[str, Any]], protocol: str, wheel_dir: str | None
) -> dict[str, Any]:
    """`{"attribution": corpus view}` for runs with `--attribution` (each ablation scored with the dataset's
    main metric), else `{}`."""
    from affectreason.attribution import corpus_attribution

    if not any("attribution" in r for r in records):
        return {}

    def main_metric(dataset: str, rows: list[dict[str, Any]]) -> float | None:
        spec = suite.dataset(dataset)
        return _dig(score_dataset(spec, rows, protocol, wheel_dir)[protocol], spec.metric, dataset)

    return {"attribution": corpus_attribution(records, main_metric)}
