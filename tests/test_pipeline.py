"""The study end to end on a small population: files written, the top tip names the planted flaw and
following it gains what its score promises; the baseline ranks tips differently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_pipeline_end_to_end(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bpjax.pipeline", f"hydra.run.dir={tmp_path}", "n_players=24", "rounds=3",
         "tips.top=3", "tips.eval_trainees=8", "tips.compliance=[1.0]"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    tips = json.loads((tmp_path / "tips.json").read_text())
    assert json.loads(result.stdout.strip().splitlines()[-1]) == tips[0]
    for name in ("report.md", "tip_effect.png", "traces.parquet", "players.json", "rule_lists.json",
                 "conditional_tips.json"):
        assert (tmp_path / name).is_file(), name
    top = tips[0]
    assert {"text", "score", "support", "simulated_gain"} <= set(top)
    # the study population plants "the chef plates": the algorithm's top tip names it, and following it helps
    assert top["text"] == "The chef should never plate."
    assert top["score"] > 0 and top["simulated_gain_ci"][0] > 0
    # the state-action-count baseline does not put it first (the two rankings disagree)
    assert top["baseline_rank"] > 1
    assert "The chef should never plate." in (tmp_path / "report.md").read_text()
