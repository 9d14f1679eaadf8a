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
