"""Agreement of the semantic fallback with a held-out list of out-of-vocabulary emotion words.

Usage: python eval/oov_fallback.py [--words eval/oov_emotion_words.csv] [--wheel default] [--show-errors]
Prints coverage (share of words the fallback maps at all) and precision (share of mapped words that land in an
acceptable level-1 family), overall, per source of the expected families, and per half (the even rows chose
the fallback's threshold and margin; the odd rows did not).
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

WORDS = Path(__file__).resolve().parent / "oov_emotion_words.csv"


def read_words(path: Path) -> list[tuple[str, set[str], str]]:
    """(word, acceptable families, source) rows; `#` lines are comments."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [
        (row["word"], set(row["families"].split(";")), row["source"].split(":")[0])
        for row in csv.DictReader(lines)
    ]


def evaluate(rows: list[tuple[str, set[str], str]], wheel: str = "default") -> dict:
    """Coverage and precision overall and per source; the misses and wrong families by word."""
    from affectreason.taxonomy import load_wheel, match_label

    w = load_wheel(wheel)
    in_lexicon = [word for word, _, _ in rows if match_label(word, wheel, semantic=False).word is not None]
    if in_lexicon:
        raise SystemExit(f"not held out: the lexicon maps {', '.join(in_lexicon)}")
    counts: Counter = Counter()
    wrong, unmapped = [], []
    for number, (word, families, source) in enumerate(rows):
        match = match_label(word, wheel)
        keys = ("all", source, "even rows" if number % 2 == 0 else "odd rows")
        for key in keys:
            counts[key, "n"] += 1
        if match.word is None:
            unmapped.append(word)
            continue
        family = w.cluster(match.word, 1)
        for key in keys:
            counts[key, "mapped"] += 1
            counts[key, "correct"] += family in families
        if family not in families:
            wrong.append(f"{word} -> {match.word} ({family}; expected {'/'.join(sorted(families))})")
    summary = {}
    for key in dict.fromkeys(k for k, _ in counts):
        n, mapped, correct = counts[key, "n"], counts[key, "mapped"], counts[key, "correct"]
        summary[key] = {
            "n": n,
            "coverage": mapped / n,
            "precision": correct / mapped if mapped else 0.0,
            "recall": correct / n,
        }
    return {"summary": summary, "wrong": wrong, "unmapped": unmapped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=Path, default=WORDS)
    parser.add_argument("--wheel", default="default")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    result = evaluate(read_words(args.words), args.wheel)
    print(f"{'words':<12}{'n':>5}{'coverage':>10}{'precision':>11}{'correct/n':>11}")
    for key, m in result["summary"].items():
        print(f"{key:<12}{m['n']:>5}{m['coverage']:>10.3f}{m['precision']:>11.3f}{m['recall']:>11.3f}")
    if args.show_errors:
        print("wrong family:", "; ".join(result["wrong"]) or "-")
        print("unmapped:", ", ".join(result["unmapped"]) or "-")


if __name__ == "__main__":
    main()
