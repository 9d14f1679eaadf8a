"""Rule-list tips (Bayesian Rule Lists): readable rules whose support and confidence check out, and that
enter the tip stage as candidates like any other tip."""

from __future__ import annotations

import numpy as np

from bpjax.data.players import generate_population
from bpjax.data.traces import validate_traces
from bpjax.solve.solver import ExactSolver
from bpjax.tips.optimum import ExactOptimum
from bpjax.tips.predicates import StateBatch, predicate_names, predicates
from bpjax.tips.rules import action_families, costly_decisions, family_label, rule_lists
from bpjax.tips.score import score_tips
from bpjax.tips.ticks import tick_table
from tests.conftest import spec_for


def test_rule_lists_are_sentences_with_honest_support_and_confidence():
    spec = spec_for()
    population = [{"kind": "chef_plates", "base": "greedy", "flaws": [["chef", "plate"]], "flaw_rate": 0.9,
                   "epsilon": 0.05}]
    frame, _ = generate_population(spec, population, n_players=10, rounds=3, seed=0)
    traces = validate_traces(frame)
    optimum = ExactOptimum(ExactSolver(spec))
    q = optimum.q_values(traces)
    lists = rule_lists(traces.states, q, traces.action, spec, max_iter=1000)
    assert lists and any(r.tips for r in lists)

    costly = costly_decisions(q, traces.action)
    features = predicates(StateBatch.from_reference([s for s, c in zip(traces.states, costly) if c], spec.n_slots),
                          spec)
    family, advice = action_families(spec, q[costly].argmax(axis=1))
    labels = [family_label(a, spec) for a in advice]
    names = predicate_names(spec)
    for rule_list in lists:
        target = family == labels.index(rule_list.family)
        for tip, support, confidence in zip(rule_list.tips, rule_list.support, rule_list.confidence):
            text = tip.text(spec)
            assert tip.kind == "rule" and text.startswith("If ") or not tip.condition
            # recompute what the tip covers from its own clauses (and the predicates its advice implies)
            covered = np.ones(len(target), bool)
            for p in tip.implied(spec):
                covered &= features[:, p]
            for clause in tip.condition:
                value = np.all([features[:, p] for p in clause.predicates], axis=0)
                covered &= ~value if clause.negated else value
                assert clause.text(names) in text
            assert abs(covered.mean() - support) < 1e-9
            assert abs(target[covered].mean() - confidence) < 1e-9
            assert confidence > target.mean()  # a rule is reported only where it beats the base rate
    # the rules are candidates: the tip stage scores them per decision tick like any other tip
    table = tick_table(traces, spec)
    scored = score_tips(table, [t for r in lists for t in r.tips], optimum)
    assert scored and all(s.tip.kind == "rule" and 0 < s.support <= 1 for s in scored)
