"""Learning the planted flaw: over several seeds the top recommended tip names the flaw planted in synthetic
trainees, following it really helps those trainees, and flawless trainees get no tip."""

from __future__ import annotations

import pytest

from bpjax.tips.recommend import TipSettings
from bpjax.tips.recovery import recover

# smaller than the benchmark's defaults (40 players x 5 rounds, 10 tips simulated), for CI
SETTINGS = TipSettings(rule_lists=False, simulate=6, eval_trainees=16)
SEEDS = (0, 1, 2)


@pytest.mark.slow
@pytest.mark.parametrize("population", ["chef_plates", "server_never_cooks"])
def test_the_top_recommended_tip_names_the_planted_flaw(population):
    results = [recover(population, seed, players=24, rounds=4, settings=SETTINGS, true_trainees=12)
               for seed in SEEDS]
    assert sum(r["named"] for r in results) >= len(SEEDS) - 1, [r["top"] for r in results]
    for r in results:  # what is recommended helps the real (synthetic) trainees
        assert r["top"] is None or r["top_true_gain"] > 0, r
        assert r["true_significantly_negative"] == 0, r


@pytest.mark.slow
def test_flawless_trainees_get_no_tip():
    for seed in SEEDS[:2]:
        result = recover("flawless_full", seed, players=16, rounds=3, settings=SETTINGS)
        assert result["top"] is None and result["recommended"] == [], result
