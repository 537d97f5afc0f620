"""Timed child processes for the side-by-side benchmarks: one fresh process per run, so every
run pays its own imports and model load and no run inherits another's caches or threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load: printed beside every number, as the machine is
    shared and a figure means little without it."""
    return [round(x, 2) for x in os.getloadavg()]


def timed_child(module: str, *args: str) -> dict:
    """Run `python -m benchmarks.MODULE ARGS...`; its last stdout line is a JSON object, returned
    with the whole process's wall time and the load before and after."""
    before = load_average()
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
    )
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(process_wall_s=round(wall, 2), load_before=before, load_after=load_average())
    return result
