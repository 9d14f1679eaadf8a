"""Rule-list tips (Bayesian Rule Lists): readable rules whose support and confidence check out."""

from __future__ import annotations

import re

import numpy as np

from bpjax.data import read_traces, write_traces
from bpjax.data.players import generate_population
from bpjax.tips import decision_table
from bpjax.tips.rules import action_families, brl_tips, state_predicates
from tests.conftest import spec_for


def test_brl_tips_are_sentences_with_honest_support_and_confidence(tmp_path):
    spec = spec_for()
    population = [{"kind": "chef_plates", "base": "greedy", "flaws": [["chef", "plate"]], "flaw_rate": 0.9,
                   "epsilon": 0.05}]
    frame, _ = generate_population(spec, population, n_players=10, rounds=3, seed=0)
    traces = read_traces(write_traces(frame, tmp_path / "t.parquet"))
    table = decision_table(traces, spec)
    tips = brl_tips(traces.states, table["q"], table["action"], spec, max_iter=1000)
    assert tips and any(tip.rules for tip in tips)

    costly = table["q"][np.arange(len(table["action"])), table["action"]] < table["q"].max(axis=1)
    features, names = state_predicates([s for s, c in zip(traces.states, costly) if c], spec)
    family, labels = action_families(spec, table["q"][costly].argmax(axis=1))
    for tip in tips:
        target = family == labels.index(tip.family)
        for rule, support, confidence in zip(tip.rules, tip.support, tip.confidence):
            assert rule.startswith("If ") and rule.endswith(f", then {tip.family}.")
            condition = rule[3:-len(f", then {tip.family}.")]
            # recompute coverage from the sentence itself: "A and B and not (C) and not (D and E)"
            positive, *negatives = re.split(r" and not \(", condition)
            covered = np.all([features[:, names.index(p)] == 1 for p in positive.split(" and ")], axis=0)
            for negative in negatives:
                parts = negative.rstrip(")").split(" and ")
                covered &= ~np.all([features[:, names.index(p)] == 1 for p in parts], axis=0)
            assert abs(covered.mean() - support) < 1e-9
            assert abs(target[covered].mean() - confidence) < 1e-9
            assert confidence > target.mean()  # a rule is reported only where it beats the base rate
