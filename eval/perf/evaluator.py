"""Evaluator speed: the whole `affectreason score --protocol mer-unibench` command cold, the default-protocol
command cold on 10,000 OV samples with 15% out-of-vocabulary words (semantic fallback on, torch must stay out),
the scoring call alone, and cue matching pairs/s (cold and warm embedding cache) on 1,000 rationale pairs.

Usage: python eval/perf/evaluator.py --wheel-dir ../shared/reference-data/ovmer_emotion_wheel
Prints measured figures next to the reference implementation's (measured on a similar 2-core machine) as ratios.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_COLD_S = 3.5  # import + load wheel files + score 10,000 samples at level 1
REFERENCE_SCORE_S = 0.65  # scoring 10,000 samples at level 1
OOV = ["glad", "tension", "happy.", "blah", "unsettled", "heartsick", "grumpy-ish", "meh"]


def _samples(n: int, vocabulary: list[str], rng: random.Random, oov: list[str] = OOV) -> dict[str, str]:
    out = {}
    for i in range(n):
        labels = [
            rng.choice(oov) if rng.random() < 0.15 else rng.choice(vocabulary)
            for _ in range(rng.randint(1, 4))
        ]
        out[f"s{i:05d}"] = "[" + ", ".join(labels) + "]"
    return out


def _write(path: Path, rows: dict[str, str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "openset"])
        writer.writerows(rows.items())


_CHILD = (
    "import sys; from affectreason.cli import main; rc = main(sys.argv[1:]); "
    "heavy = sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)); "
    "print('HEAVY', heavy, file=sys.stderr); sys.exit(rc)"
)


def _held_out_words() -> list[str]:
    path = Path(__file__).resolve().parents[1] / "oov_emotion_words.csv"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [row["word"] for row in csv.DictReader(lines)]


def _default_protocol_cold(
    n: int, rng: random.Random, unknown: list[str], tmp: Path
) -> tuple[float, float, str]:
    """Cold `score --task ov` (default protocol, semantic fallback) with `unknown` words as the 15%: seconds with
    an empty cache dir, seconds with the earlier runs' readings cached, and the heavy modules imported."""
    import os

    from affectreason.taxonomy import load_wheel

    vocabulary = sorted(load_wheel().word_group)
    refs, preds = _samples(n, vocabulary, rng, unknown), _samples(n, vocabulary, rng, unknown)
    ref_path, pred_path = tmp / "dref.csv", tmp / "dpred.csv"
    _write(ref_path, refs)
    _write(pred_path, preds)
    cmd = [sys.executable, "-c", _CHILD, "score", "--task", "ov", "--ref", str(ref_path)]
    cmd += ["--pred", str(pred_path), "--json"]

    def run(cache: Path) -> tuple[float, str]:
        env = {**os.environ, "AFFECTREASON_CACHE": str(cache)}
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        return time.perf_counter() - start, proc.stderr.strip().splitlines()[-1]

    # best of 3 each: every empty-cache run gets a fresh cache dir; the cached runs reuse the last one
    empty = [run(tmp / f"cache-{len(unknown)}-{i}") for i in range(3)]
    cached = [run(tmp / f"cache-{len(unknown)}-2") for _ in range(3)]
    heavy = " ".join(sorted({h for _, h in empty + cached}))
    return min(t for t, _ in empty), min(t for t, _ in cached), heavy


def _best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel-dir", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args()

    from affectreason.metrics import score_ov
    from affectreason.metrics.ov import _score_ov_parity
    from affectreason.taxonomy.ovmer import load_ovmer

    tables = load_ovmer(args.wheel_dir)  # also fills the on-disk cache the cold command reads
    rng = random.Random(0)
    vocabulary = sorted(tables.table)
    refs, preds = _samples(args.n, vocabulary, rng), _samples(args.n, vocabulary, rng)

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, pred_path = Path(tmp) / "ref.csv", Path(tmp) / "pred.csv"
        _write(ref_path, refs)
        _write(pred_path, preds)
        cmd = [sys.executable, "-m", "affectreason", "score", "--task", "ov", "--ref", str(ref_path)]
        cmd += [
            "--pred",
            str(pred_path),
            "--protocol",
            "mer-unibench",
            "--wheel-dir",
            args.wheel_dir,
            "--json",
        ]
        cold = []
        for _ in range(3):
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            cold.append(time.perf_counter() - start)
        cli_result = json.loads(proc.stdout)

        for label, unknown in (
            ("the OOV pool above", OOV),
            ("145 held-out OOV emotion words", _held_out_words()),
        ):
            first, second, heavy = _default_protocol_cold(args.n, random.Random(1), unknown, Path(tmp))
            print(
                f"default protocol, 15% unknown from {label} (best of 3): cold {first:.3f} s (empty cache), "
                f"{second:.3f} s (readings cached)   goal < 1.5 s   {heavy} (goal: HEAVY [])"
            )

    # The wheel tables are loaded once per process (that cost is in the cold command); time the scoring
    # itself, best of 3, as the reference's 0.65 s is its scoring loop alone.
    result = score_ov(refs, preds, protocol="mer-unibench", wheel_dir=args.wheel_dir)
    assert result["ew"] == cli_result["ew"], "CLI and library disagree"
    score_all = _best_of(3, lambda: score_ov(refs, preds, protocol="mer-unibench", wheel_dir=args.wheel_dir))
    score_twelve = _best_of(3, lambda: _score_ov_parity(refs, preds, tables))

    cold_s = min(cold)
    print(f"OV samples: {args.n}")
    print(
        f"cold command (best of 3): {cold_s:.3f} s   reference {REFERENCE_COLD_S:.2f} s   ratio {REFERENCE_COLD_S / cold_s:.1f}x (goal < 1.5 s)"
    )
    print(
        f"scoring call (best of 3), all 12 metrics + averages: {score_all:.3f} s (core {score_twelve:.3f} s)   reference "
        f"{REFERENCE_SCORE_S:.2f} s for 5 level-1 metrics   ratio {REFERENCE_SCORE_S / score_all:.1f}x (goal >= 5x)"
    )
    print(f"level1 F/P/R: {result['ew']['level1']}")

    from affectreason.metrics import get_embedder, score_cues

    start = time.perf_counter()
    embedder = get_embedder()
    load_s = time.perf_counter() - start
    visual = [
        "she smiles broadly",
        "her eyes are wet",
        "he frowns",
        "she looks away",
        "he clenches his fists",
    ]
    acoustic = [
        "her voice trembles",
        "he speaks loudly",
        "a long sigh",
        "the tone is flat",
        "she laughs softly",
    ]
    lexical = ["she says she misses him", "he asks why", "she thanks them", "he refuses", "she apologises"]
    pairs = []

    def pick(pool: list[str], k: int, tag: int) -> list[str]:
        return [
            f"{rng.choice(pool)} {tag}" for _ in range(k)
        ]  # numbered phrases: the first pass is really cold

    for i in range(args.pairs):
        tag = i % 97
        ref = {
            "visual": pick(visual, 2, tag),
            "acoustic": pick(acoustic, 1, tag),
            "lexical": pick(lexical, 1, tag),
        }
        pred = {
            "visual": pick(visual, 2, tag),
            "acoustic": pick(acoustic, 2, tag),
            "lexical": pick(lexical, 1, tag),
        }
        pairs.append((ref, pred))
    start = time.perf_counter()
    score_cues(pairs, embedder=embedder)
    cold_pairs = time.perf_counter() - start
    start = time.perf_counter()
    score_cues(pairs, embedder=embedder)
    warm_pairs = time.perf_counter() - start
    print(f"embedder load: {load_s:.2f} s (numpy MiniLM: tokenizer and safetensors weights)")
    print(
        f"cue matching, {args.pairs} pairs: cold cache {args.pairs / cold_pairs:.0f} pairs/s, "
        f"warm cache {args.pairs / warm_pairs:.0f} pairs/s (goal >= 200 warm)"
    )


if __name__ == "__main__":
    main()
