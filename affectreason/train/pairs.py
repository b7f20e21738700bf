"""Self-built preference pairs (`affectreason data pairs`): sample N responses per clip with the current model,
score each with the reward registry, keep best vs worst when their gap exceeds a margin.

Every kept pair is one JSONL line with the clip, both responses and the scores of all N samples, so the choice
can be audited; `affectreason train dpo` reads the file as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectreason.decoding import SamplingParams
from affectreason.engines.base import Engine
from affectreason.errors import AffectReasonError
from affectreason.request import Request
from affectreason.train.rewards import get_reward, reference_of, score_completion


@dataclass
class PairOptions:
    """What `data pairs` samples per clip and which pairs it keeps."""

    n: int = 8
    margin: float = 0.2
    weights: dict[str, float] = field(default_factory=lambda: {"emotion_wheel": 1.0, "format": 0.5})
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    frames: int = 8
    prompt: str = "describe"
    seed: int = 0
    batch_size: int = 4
    prefer_faithful: bool = False

    def sampling(self) -> SamplingParams:
        """`n` sampled responses per clip."""
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            num_return_sequences=self.n,
        )


def parse_weights(text: str) -> dict[str, float]:
    """`emotion_wheel=1,format=0.5` -> {"emotion_wheel": 1.0, "format": 0.5}; names are checked against the registry."""
    weights: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value) if value else 1.0
        except ValueError:
            raise AffectReasonError(f"reward weight {item!r} is not name=number") from None
        get_reward(name.strip())
    if not weights:
        raise AffectReasonError("no rewards given (e.g. --rewards emotion_wheel=1,format=0.5)")
    return weights


def choose_pair(
    responses: list[str],
    reference: dict[str, Any],
    weights: dict[str, float],
    margin: float,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every response; the best and worst by total, and whether their gap exceeds `margin`.

    With the clip's `evidence` (`data pairs --prefer-faithful`, after AVEm-DPO): among responses within `margin`
    of the best score, the one with the fewest contradicted cues is chosen, and a response of similar score
    that cites more contradicted cues is rejected (such a pair is kept whatever the score gap).
    """
    scores = [score_completion(text, reference, weights) for text in responses]
    totals = [s["total"] for s in scores]
    best = max(range(len(totals)), key=totals.__getitem__)
    worst = min(range(len(totals)), key=totals.__getitem__)
    extra: dict[str, Any] = {}
    keep_anyway = False
    if evidence is not None:
        from affectreason.rationale import parse_rationale
        from affectreason.verify import verify_rationale

        checks = [verify_rationale(parse_rationale(text), evidence) for text in responses]
        bad = [len(c.contradicted) for c in checks]
        similar = max(margin, 0.0)
        near = [i for i, total in enumerate(totals) if total >= totals[best] - similar]
        best = min(near, key=lambda i: (bad[i], -totals[i]))
        rivals = [i for i, t in enumerate(totals) if bad[i] > bad[best] and abs(t - totals[best]) <= similar]
        if rivals:
            worst, keep_anyway = max(rivals, key=lambda i: (bad[i], -totals[i])), True
        extra = {
            "contradicted": [c.contradicted for c in checks],
            "faithfulness": [c.faithfulness for c in checks],
        }
    gap = totals[best] - totals[worst]
    return {
        "keep": keep_anyway or gap > margin,
        "chosen": responses[best],
        "rejected": responses[worst],
        "chosen_score": totals[best],
        "rejected_score": totals[worst],
        "gap": gap,
        "scores": scores,
        **extra,
    }


def build_pairs(
    engine: Engine,
    examples: list[Any],
    out: str | Path,
    options: PairOptions,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Sample, score and write the kept pairs for caption rows (`CaptionExample`); returns counts, including
    why clips gave no pair (`tied`: every response scored alike; `under_margin`: best - worst <= margin).
    `progress(done, total)` is called after each batch of clips."""
    from affectreason.prompts import load_prompt
    from affectreason.train.collator import load_row_clip
    from affectreason.train.sections import DataSection

    if options.n < 2:
        raise AffectReasonError("--n must be at least 2 to form a pair")
    prompt = load_prompt(options.prompt)
    data = DataSection(frames=options.frames, prompt=options.prompt)
    sampling = options.sampling()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept, tied, under_margin, largest_gap = 0, 0, 0, 0.0
    evidence = None
    if options.prefer_faithful:
        from affectreason.verify import EvidenceCache

        evidence = EvidenceCache()
    with out.open("w", encoding="utf-8") as handle:
        for start in range(0, len(examples), options.batch_size):
            chunk = examples[start : start + options.batch_size]
            rows = [{"id": e.id, "video": e.video, "audio": e.audio, "subtitle": e.subtitle} for e in chunk]
            requests = [Request(clip=load_row_clip(row, data), prompt=prompt.text) for row in rows]
            texts = engine.generate(requests, sampling)
            for i, (row, example) in enumerate(zip(rows, chunk, strict=True)):
                reference = reference_of(example)
                measured = evidence.get(str(row["video"] or row["audio"])) if evidence else None
                pair = choose_pair(
                    texts[i * options.n : (i + 1) * options.n],
                    reference,
                    options.weights,
                    options.margin,
                    measured,
                )
                largest_gap = max(largest_gap, pair["gap"])
                if not pair.pop("keep"):
                    tied += pair["gap"] == 0
                    under_margin += pair["gap"] != 0
                    continue
                kept += 1
                record = {**row, "emotions": reference["emotions"], "prompt": prompt.id, **pair}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            if progress:
                progress(start + len(chunk), len(examples))
    return {
        "clips": len(examples),
        "pairs": kept,
        "tied": tied,
        "under_margin": under_margin,
        "largest_gap": round(largest_gap, 4),
        "out": str(out),
    }


def why_no_pairs(summary: dict[str, Any], options: PairOptions) -> str:
    """One line saying why no clip gave a pair, and what to change."""
    reasons = []
    if summary["tied"]:
        reasons.append(
            f"{summary['tied']} had all {options.n} responses scored alike (raise --temperature or --n, "
            "or check that the model's output parses)"
        )
    if summary["under_margin"]:
        reasons.append(
            f"{summary['under_margin']} had a best-worst gap under --margin {options.margin:g} "
            f"(largest gap {summary['largest_gap']:g}: lower --margin)"
        )
    return f"no pairs kept from {summary['clips']} clips: " + ("; ".join(reasons) or "no clips to sample")


def pairs_from_files(
    model: str,
    clips: str | Path,
    out: str | Path,
    options: PairOptions,
    base: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """`data pairs`: load the model (an adapter folder resolves to its base + adapter) and build pairs for a caption file."""
    from affectreason.engines import create_engine
    from affectreason.train.data import load_captions

    examples = load_captions(clips)
    adapter = None
    if (Path(model) / "adapter_config.json").is_file():
        adapter, model = model, base
    engine = create_engine("hf", model=model, adapter=adapter, batch_size=options.batch_size)
    return build_pairs(engine, examples, out, options, progress)
