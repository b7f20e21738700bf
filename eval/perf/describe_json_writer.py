"""`describe --out x.json`: time to write N records with the record writer against rewriting the whole list
per record (the writer before issue 14, kept here only as the baseline). Goal: linear in N.

Run: python eval/perf/describe_json_writer.py [--records 2000] [--raw-chars 1500]
Records have the shape `describe` writes (the rationale fields, decoding, a raw model text of --raw-chars).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from affectreason.commands.describe_run import _RecordWriter
from affectreason.pipeline import DescribeOptions


def record(i: int, raw_chars: int) -> dict:
    return {
        "id": f"clips/{i:05d}",
        "source": f"/data/clips/{i:05d}.mp4",
        "emotions": ["surprised", "happy"],
        "families": ["surprise", "joy"],
        "visual_cues": ["raised eyebrows", "wide smile"],
        "acoustic_cues": ["high pitch"],
        "lexical_cues": ["I can't believe it"],
        "reasoning": "The raised eyebrows and the smile suggest a pleasant surprise.",
        "valence": 0.6,
        "arousal": 0.7,
        "confidence": 0.8,
        "parse_ok": True,
        "raw": "x" * raw_chars,
        "transcript": "I can't believe it",
        "model": "Qwen/Qwen2.5-Omni-3B",
        "adapter": None,
        "engine": "hf",
        "prompt_version": "describe@1",
        "decoding": DescribeOptions().decoding(),
    }


def rewrite_whole_list(path: Path, records: list[dict]) -> None:
    written: list[dict] = []
    for item in records:
        written.append(item)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(written, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)


def incremental(path: Path, records: list[dict]) -> None:
    writer = _RecordWriter(path, keep=False)
    for item in records:
        writer.write(item)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--raw-chars", type=int, default=1500)
    args = parser.parse_args()
    records = [record(i, args.raw_chars) for i in range(args.records)]
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, write in (("rewrite per record", rewrite_whole_list), ("record writer", incremental)):
            path = Path(folder) / f"{name.replace(' ', '-')}.json"
            start = time.perf_counter()
            write(path, records)
            times[name] = time.perf_counter() - start
            assert json.loads(path.read_text(encoding="utf-8")) == records
    for name, seconds in times.items():
        print(f"{name:<20} {seconds:8.2f} s  ({args.records} records)")
    print(f"speed-up: {times['rewrite per record'] / times['record writer']:.0f}x")


if __name__ == "__main__":
    main()
