"""The study's tip algorithm on synthetic trainees with a planted flaw."""

from __future__ import annotations

import numpy as np
import pytest

from bpjax.data import read_traces, write_traces
from bpjax.data.players import generate_population
from bpjax.tips import decision_table, score_count_tips
from bpjax.tips.study import Tip, tip_actions
from tests.conftest import spec_for


@pytest.fixture(scope="module")
def chef_plates(tmp_path_factory):
    """Trainees who otherwise play optimally but let the chef plate whenever it is idle with a plate open."""
    spec = spec_for()
    population = [{"kind": "chef_plates", "base": "optimal", "flaws": [["chef", "plate"]], "flaw_rate": 0.9,
                   "epsilon": 0.0}]
    frame, _ = generate_population(spec, population, n_players=10, rounds=3, seed=0)
    traces = read_traces(write_traces(frame, tmp_path_factory.mktemp("t") / "t.parquet"))
    return spec, traces, decision_table(traces, spec)


def test_top_tip_names_the_planted_flaw(chef_plates):
    spec, traces, table = chef_plates
    kept = [r for r in score_count_tips(table, spec) if r.kept]
    assert kept[0].text == "The chef should never plate."
    assert kept[0].score > 1.0 and kept[0].disagreement == 0.0


def test_tips_never_recommend_an_illegal_action(chef_plates):
    spec, traces, table = chef_plates
    for w in range(spec.n_workers):
        for k in range(len(spec.task_types)):
            for times in range(4):
                chosen, applies, _ = tip_actions(table, spec, Tip(w, k, times))
                assert table["mask"][np.arange(len(chosen)), chosen][applies].all()


def test_counts_are_per_round_and_before_the_decision(chef_plates):
    spec, traces, table = chef_plates
    count = table["count"]
    first = np.r_[True, table["round"][1:] != table["round"][:-1]]
    assert (count[first] == 0).all()  # nothing done before a round's first decision
    assert (np.diff(count.sum(axis=(1, 2)))[~first[1:]] >= 0).all()  # counts only grow within a round
    # at a round's last decision, the counts equal the assignments made before it in that round
    last_round = table["round"] == table["round"].max()
    assignments = (table["action"][last_round] < spec.end_tick_action).sum()
    final_count = count[last_round][-1].sum() + int(table["action"][last_round][-1] < spec.end_tick_action)
    assert final_count == assignments


def test_following_the_top_tip_saves_what_the_score_promises(chef_plates):
    """Full compliance with the top tip: the simulated gain has the first-order score's sign, the CI excludes
    zero, the rate of suboptimal decisions falls, and less compliance saves less."""
    from bpjax.data.players import SyntheticPlayer, profiles_from_config
    from bpjax.solve.solver import ExactSolver
    from bpjax.tips.evaluate import evaluate_tip

    spec, traces, table = chef_plates
    top = [r for r in score_count_tips(table, spec) if r.kept][0]
    [(profile, _)] = profiles_from_config(
        [{"kind": "chef_plates", "base": "greedy", "flaws": [["chef", "plate"]], "flaw_rate": 0.9, "epsilon": 0.05}],
        spec)
    solver = ExactSolver(spec)
    full, half = evaluate_tip(solver, lambda i, rng: SyntheticPlayer(profile, solver, rng), 8, top.tip,
                              compliances=(1.0, 0.5), rounds=2)
    assert np.sign(full.saved) == np.sign(top.score) == 1
    assert full.saved_ci[0] > 0
    assert full.tip_suboptimal < full.control_suboptimal
    assert 0 < half.saved < full.saved


def test_state_conditioned_tips_find_the_flaw_and_stay_legal(chef_plates):
    """'If a plate subtask is open, leave the chef idle' (or an equivalent condition) tops the conditional
    tips for chef-plates trainees, and every kept tip reads as a sentence."""
    from bpjax.tips.conditional import score_conditional_tips

    spec, traces, table = chef_plates
    kept = [r for r in score_conditional_tips(table, traces.states, spec) if r.kept]
    assert kept[0].tip.advice == "leave the chef idle" and kept[0].score > 1.0
    assert any("plate subtask is open" in p for p in kept[0].tip.condition)
    for r in kept:
        assert r.text.startswith("If ") and r.text.endswith(".")
