"""benchmarks/gpu.py runs on CPU at tiny sizes (--quick) and writes its JSON (no speed is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_quick_writes_its_report(tmp_path):
    out = tmp_path / "gpu.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] and report["device"]["platform"] in ("cpu", "gpu", "cuda", "rocm", "tpu")
    assert sorted(int(b) for b in report["env_state_steps_per_s"]) == [16, 32, 64]
    assert all(rate > 0 for rate in report["env_state_steps_per_s"].values())
    ppo = report["ppo"]
    assert ppo["optimal_ticks"] == 19 and len(ppo["greedy_ticks"]) == 2 and ppo["updates"] >= 1
    assert ppo["time_to_optimum_s"] is None or ppo["time_to_optimum_s"] > 0
