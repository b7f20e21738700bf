"""Modality attribution: single-modality ablations of each clip, which modality drove the answer, conflicts.

Every clip is described four times in one engine call, from one decoded `Clip`:

- `full`: everything the clip has (frames, audio, transcript);
- `video_only`: frames only; `audio_only`: audio only; `text_only`: the transcript only.

Each ablation keeps exactly one modality (the transcript is a modality of its own, so "video only" means
frames without audio and without transcript). Ablations are `Request.modalities`; the backbone decides what
that means for its inputs. A variant is skipped, with the reason recorded, when the clip lacks that
modality, or when it is the clip's only modality (the ablation would be the full input again).

The summary compares each ablation's answer with the full answer using the `score` library (emotion-wheel
F1 at family level, valence agreement); see `summarise_attribution` for the exact rules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectreason.engines.base import Engine
from affectreason.errors import AffectReasonError
from affectreason.media import Clip
from affectreason.rationale import Rationale, parse_rationale
from affectreason.request import Request

# variant name -> the one modality it keeps
VARIANTS: dict[str, str] = {"video_only": "video", "audio_only": "audio", "text_only": "text"}
MODALITY_NAMES = tuple(VARIANTS.values())
# Engine requests per clip at most (full + ablations): the CLI widens engine batches by this, so a clip's
# ablations share its batch instead of costing extra generation loops.
RUNS_PER_CLIP = 1 + len(VARIANTS)
# cue kind of the rationale -> input modalities that can ground it (speech content is heard in the audio too)
CUE_SOURCES: dict[str, frozenset[str]] = {
    "visual": frozenset({"video"}),
    "acoustic": frozenset({"audio"}),
    "lexical": frozenset({"text", "audio"}),
}
_LABELS = {name: name.replace("_", "-") for name in VARIANTS}
_MISSING = {"video": "no video frames", "audio": "no audio track", "text": "no transcript"}


def clip_modalities(clip: Clip) -> frozenset[str]:
    """The modalities a decoded clip actually has."""
    present = set()
    if clip.has_video:
        present.add("video")
    if clip.has_audio:
        present.add("audio")
    if clip.transcript and clip.transcript.strip():
        present.add("text")
    return frozenset(present)


def plan_variants(clip: Clip) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """The ablations to run for a clip (name -> modalities) and the ones skipped (name -> why)."""
    present = clip_modalities(clip)
    run: dict[str, frozenset[str]] = {}
    skipped: dict[str, str] = {}
    for name, modality in VARIANTS.items():
        if modality not in present:
            skipped[name] = _MISSING[modality]
        elif present == {modality}:
            skipped[name] = f"{modality} is the clip's only modality: same input as the full run"
        else:
            run[name] = frozenset({modality})
    return run, skipped


def _label_agreement(pred: list[str], ref: list[str]) -> dict[str, float]:
    from affectreason.metrics import ew_f1, valence_agreement

    return {
        "family_f1": round(float(ew_f1(pred, ref, level=1)), 4),
        "valence_agree": round(float(valence_agreement(pred, ref)), 4),
    }


def _unchanged(agreement: dict[str, float]) -> bool:
    return agreement["family_f1"] >= 1.0 and agreement["valence_agree"] >= 1.0


def _conflict(video: Rationale | None, audio: Rationale | None) -> bool | None:
    """Video-only and audio-only answers share no emotion family, or fall on different sides of valence."""
    if video is None or audio is None or not video.emotions or not audio.emotions:
        return None
    from affectreason.taxonomy import sentiment_of

    agreement = _label_agreement(video.emotions, audio.emotions)
    return agreement["family_f1"] == 0.0 or sentiment_of(video.emotions) != sentiment_of(audio.emotions)


def summarise_attribution(
    full: Rationale,
    variants: dict[str, Rationale],
    skipped: dict[str, str],
    present: frozenset[str],
) -> dict[str, Any]:
    """The per-clip attribution summary.

    - `agreement[m]`: the `m`-only answer against the full answer: `family_f1` (emotion-wheel F1 at family
      level) and `valence_agree` (valence agreement), both from `affectreason.metrics`.
    - `scores[m]`: the mean of the two; `dominant`: the modality with the single highest score (above 0);
      `None` on a tie or when no ablation shares anything with the full answer. A clip with one modality is
      dominated by it.
    - `conflict`: the video-only and audio-only answers share no family or differ in sentiment (positive /
      negative / neutral); `None` when either is missing or names no emotion.
    - `decorative_cues[kind]`: cues the full rationale cites (`visual`, `acoustic`, `lexical`) although no input
      that could ground them was needed: an ablation without any of their sources (`CUE_SOURCES`) gives the
      same answer (family F1 1 and valence agreement 1), or the clip has none of those sources at all.
      `decorative_why[kind]` says which.
    - `skipped`: ablations not run and why.
    """
    agreement = {VARIANTS[name]: _label_agreement(r.emotions, full.emotions) for name, r in variants.items()}
    scores = {m: round((a["family_f1"] + a["valence_agree"]) / 2, 4) for m, a in agreement.items()}
    best = max(scores.values(), default=0.0)
    leaders = [m for m, s in scores.items() if s == best]
    dominant = leaders[0] if best > 0 and len(leaders) == 1 else None
    if len(present) == 1:
        dominant = next(iter(present))

    decorative: dict[str, list[str]] = {}
    why: dict[str, str] = {}
    for kind, sources in CUE_SOURCES.items():
        cues = full.cues(kind)
        if not cues:
            continue
        if not sources & present:
            reason = f"the clip has no {' or '.join(sorted(sources))}"
        else:
            same = [
                n
                for n, r in variants.items()
                if VARIANTS[n] not in sources and _unchanged(agreement[VARIANTS[n]])
            ]
            reason = (
                f"the {_LABELS[same[0]]} run gives the same answer without them"
                if same and full.emotions
                else ""
            )
        if reason:
            decorative[kind], why[kind] = list(cues), reason
    return {
        "modalities": sorted(present),
        "agreement": agreement,
        "scores": scores,
        "dominant": dominant,
        "conflict": _conflict(variants.get("video_only"), variants.get("audio_only")),
        "decorative_cues": decorative,
        "decorative_why": why,
        "skipped": skipped,
    }


def _variant_fields(rationale: Rationale, modalities: frozenset[str]) -> dict[str, Any]:
    from affectreason.taxonomy import family_of

    fields = rationale.to_dict()
    fields["families"] = [family_of(e) for e in rationale.emotions]
    fields["modalities"] = sorted(modalities)
    return fields


def attribute_clips(
    clips: list[Clip],
    engine: Engine,
    options: Any,
    prompt: Any = None,
) -> list[dict[str, Any]]:
    """Describe each clip with all its ablations in ONE engine call; a describe record per clip with
    `variants` (each a full rationale) and `attribution` (see `summarise_attribution`)."""
    from affectreason.describe import record_from_text
    from affectreason.prompts import load_prompt

    prompt = prompt or load_prompt(options.prompt)
    plans = [plan_variants(c) for c in clips]
    # Variant-major order keeps requests with the same input layout next to each other in engine batches.
    jobs: list[tuple[int, str | None, Request]] = [
        (i, None, Request(clip=c, prompt=prompt.text)) for i, c in enumerate(clips)
    ]
    for name in VARIANTS:
        for i, (clip, (run, _)) in enumerate(zip(clips, plans, strict=True)):
            if name in run:
                jobs.append((i, name, Request(clip=clip, prompt=prompt.text, modalities=run[name])))
    texts = engine.generate([job[2] for job in jobs], options.sampling()) if jobs else []
    if len(texts) != len(jobs):
        raise AffectReasonError(f"the engine returned {len(texts)} texts for {len(jobs)} requests")

    records: list[dict[str, Any]] = []
    variants: list[dict[str, Rationale]] = [{} for _ in clips]
    for (i, name, _), text in zip(jobs, texts, strict=True):
        if name is None:
            records.append(record_from_text(clips[i], text, engine, options, prompt))
        else:
            variants[i][name] = parse_rationale(text)
    for record, clip, found, (run, skipped) in zip(records, clips, variants, plans, strict=True):
        ordered = {name: found[name] for name in VARIANTS if name in found}
        record["variants"] = {name: _variant_fields(r, run[name]) for name, r in ordered.items()}
        record["attribution"] = summarise_attribution(
            Rationale.from_dict(record), ordered, skipped, clip_modalities(clip)
        )
    return records


def write_attribution_html(record: dict[str, Any], out_dir: str | Path) -> Path:
    """Write a self-contained HTML page (bar chart + variants) for one attributed record; returns its path."""
    from affectreason.attribution_report import render_attribution_page, safe_name

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(record.get('id') or 'clip')}.attribution.html"
    path.write_text(render_attribution_page(record), encoding="utf-8")
    return path


def corpus_attribution(
    records: list[dict[str, Any]],
    score: Callable[[str, list[dict[str, Any]]], float | None] | None = None,
) -> dict[str, Any]:
    """The corpus view, per dataset (`record["dataset"]`, else "all"), over records carrying `attribution`.

    `dominant`: the share of clips each modality dominates (`none` for ties and no agreement);
    `conflict_rate` over the clips where a conflict could be judged (`conflict_n` of them); `agreement`: mean
    family F1 / valence agreement of each ablation with the full answer; `decorative_rate`: the share of clips
    with decorative cues of each kind. With `score(dataset, records) -> float` (the benchmark's own scorer),
    `accuracy[variant]` is the variant's predictions scored against the reference, next to the full run's
    score on the same clips (`full`) and their ratio (`relative`); `accuracy["full"]` covers every clip.
    """
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "attribution" in record:
            by_dataset.setdefault(str(record.get("dataset") or "all"), []).append(record)
    return {name: _dataset_view(name, rows, score) for name, rows in by_dataset.items()}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _as_variant(record: dict[str, Any], name: str) -> dict[str, Any]:
    """The record with the variant's prediction in place of the full one (same id, dataset, reference)."""
    return {**record, **{k: v for k, v in record["variants"][name].items() if k != "modalities"}}


def _dataset_view(
    dataset: str,
    rows: list[dict[str, Any]],
    score: Callable[[str, list[dict[str, Any]]], float | None] | None,
) -> dict[str, Any]:
    n = len(rows)
    summaries = [r["attribution"] for r in rows]
    dominant = {m: 0 for m in (*MODALITY_NAMES, "none")}
    for s in summaries:
        dominant[s.get("dominant") or "none"] += 1
    judged = [s["conflict"] for s in summaries if s.get("conflict") is not None]
    agreement = {}
    for m in MODALITY_NAMES:
        values = [s["agreement"][m] for s in summaries if m in s.get("agreement", {})]
        if values:
            agreement[m] = {
                "family_f1": _mean([v["family_f1"] for v in values]),
                "valence_agree": _mean([v["valence_agree"] for v in values]),
                "n": len(values),
            }
    view: dict[str, Any] = {
        "n": n,
        "dominant": {m: round(c / n, 4) for m, c in dominant.items()},
        "conflict_rate": _mean([float(c) for c in judged]),
        "conflict_n": len(judged),
        "agreement": agreement,
        "decorative_rate": {
            kind: round(sum(1 for s in summaries if kind in s.get("decorative_cues", {})) / n, 4)
            for kind in CUE_SOURCES
        },
    }
    if score is not None:
        view["accuracy"] = _accuracy(dataset, rows, score)
    return view


def _accuracy(
    dataset: str, rows: list[dict[str, Any]], score: Callable[[str, list[dict[str, Any]]], float | None]
) -> dict[str, Any]:
    accuracy: dict[str, Any] = {"full": {"score": score(dataset, rows), "n": len(rows)}}
    for name in VARIANTS:
        subset = [r for r in rows if name in r.get("variants", {})]
        if not subset:
            continue
        variant_score = score(dataset, [_as_variant(r, name) for r in subset])
        full_score = score(dataset, subset)
        relative = round(variant_score / full_score, 4) if variant_score is not None and full_score else None
        accuracy[name] = {"score": variant_score, "full": full_score, "relative": relative, "n": len(subset)}
    return accuracy
