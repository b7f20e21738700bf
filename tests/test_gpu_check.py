"""`eval/gpu/check.sh --cpu-smoke`: the prepared GPU check runs end to end on tiny models and prints its table."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_smoke(tmp_path):
    out = tmp_path / "rows.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        "bash",
        str(ROOT / "eval/gpu/check.sh"),
        "--cpu-smoke",
        "--workdir",
        str(tmp_path / "w"),
        "--json",
        str(out),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert not [name for name, values in rows.items() if "error" in values]
    measured = {name: values for name, values in rows.items() if "note" not in values}
    assert sum("SFT" in name and values["step_s"] > 0 for name, values in measured.items()) == 2
    assert any("GRPO" in name and values["step_s"] > 0 for name, values in measured.items())
    assert sum(values.get("clips_per_s", 0) > 0 for values in measured.values()) == 2
    assert any("extrapolated" in name for name in measured)
    assert "refused" in rows["Qwen3-Omni-30B-A3B 4-bit"]["note"]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == len(rows) + 1  # header + one line per row
