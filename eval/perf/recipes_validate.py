"""How fast a bad recipe is refused: `recipes validate` wall time on value problems and on an alias bomb, and the
bounded YAML reader against plain `yaml.safe_load` followed by one walk over the result (PyYAML shares aliased
objects, so the blow-up lands on whoever walks or rebuilds the data: a type coercer, a dump, a validator).

Run: python eval/perf/recipes_validate.py. Goals: a recipe with bad values or a YAML bomb refused by the CLI in
under a second (no torch import); the bounded reader refuses a 9-level bomb (9^9 leaves) in milliseconds,
faster than safe_load plus one walk handles a 6-level one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from affectreason.boundedyaml import load_yaml
from affectreason.errors import AffectReasonError

BAD_VALUES = """method: grpo
data: {path: nothere.csv, frames: 0}
rewards: {funcs: [emotion_wheel, nope]}
learning_rate: .nan
max_steps: -5
per_device_train_batch_size: 0
"""


def bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "method: sft\n" + "\n".join(lines) + "\n"


def cli_seconds(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "affectreason", "recipes", "validate", str(path)], capture_output=True
    )
    return time.perf_counter() - start, run.returncode


def best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def refused(text: str) -> None:
    try:
        load_yaml(text)
    except AffectReasonError:
        return
    raise SystemExit("the bomb was not refused")


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="recipes_validate_"))
    (root / "bad.yaml").write_text(BAD_VALUES)
    (root / "bomb.yaml").write_text(bomb(9))
    print(f"{'case':<44}{'seconds':>10}{'exit':>6}")
    for name in ("bad.yaml", "bomb.yaml"):
        seconds, code = cli_seconds(root / name)
        print(f"{'affectreason recipes validate ' + name:<44}{seconds:>10.3f}{code:>6}")
    small = bomb(6)  # 9^6 = 531441 leaves: safe_load can still build it
    ours, theirs = best(lambda: refused(small)), best(lambda: json.dumps(yaml.safe_load(small)), repeats=1)
    print(f"{'bounded load_yaml, 6-level bomb':<44}{ours:>10.4f}")
    print(f"{'yaml.safe_load + one walk, 6-level bomb':<44}{theirs:>10.4f}")
    print(f"{'ratio unbounded / bounded':<44}{theirs / ours:>10.0f}x")
    print(f"{'bounded load_yaml, 9-level bomb (9^9 leaves)':<44}{best(lambda: refused(bomb(9))):>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
