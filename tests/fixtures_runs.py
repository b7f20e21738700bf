"""A bench run killed part-way: `affectreason bench` in a child process, SIGKILLed once it has written two
predictions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def kill_midway() -> Callable[[list[str], Path], int]:
    """`kill_midway(args, out)`: run `affectreason *args`, SIGKILL it after two predictions in `out`, and
    return how many predictions it left."""

    def run(args: list[str], out: Path) -> int:
        process = subprocess.Popen([sys.executable, "-m", "affectreason", *args])
        predictions = out / "predictions.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if predictions.is_file() and predictions.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return predictions.read_bytes().count(b"\n")

    return run
