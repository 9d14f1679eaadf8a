"""Kitchens beyond 32 subtask slots (several uint32 words per slot set) through everything downstream of the
env: the solver (exact where small enough, refused by its state budget otherwise), synthetic players and
their traces, the tip stage's state batches and simulations, and the game. (The env itself is compared with
the reference on such kitchens in test_env_vs_reference.py.)"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from bpjax.data.players import PlayerProfile, SyntheticPlayer, generate_population
from bpjax.data.traces import validate_traces
from bpjax.env import bitset
from bpjax.env.config import KitchenSpec
from bpjax.env.convert import from_reference_batch
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from bpjax.play.game import GameSetup, Participant
from bpjax.solve.bound import lower_bound_ticks
from bpjax.solve.solver import ExactSolver, SolverBudgetExceeded, solve
from bpjax.tips.candidates import Tip
from bpjax.tips.predicates import StateBatch
from bpjax.tips.simulate import PlayerChooser, play_rounds, random_streams
from tests.conftest import spec_for

GREEDY_POPULATION = [{"kind": "greedy", "base": "greedy", "epsilon": 0.1, "share": 1},
                     {"kind": "busy_server_cooks", "base": "keep_busy", "flaws": [["server", "cook"]],
                      "flaw_rate": 0.9, "epsilon": 0.05, "share": 1}]


def twelve_burgers() -> KitchenSpec:
    spec = spec_for("kitchen/orders=twelve_burgers")
    assert spec.n_slots == 36 and bitset.n_words(spec.n_slots) == 2
    return spec


def one_cook_many_dishes() -> KitchenSpec:
    """36 slots (1 pasta + 8 salads, 4 slots each, mostly padding) and one worker: small enough to solve, and
    with one worker the optimum is exactly the total work (every subtask's ticks plus its hand-off)."""
    kitchen = spec_for().to_dict()
    kitchen["dishes"]["salad"] = [{"name": "toss salad", "type": "chop", "after": []}]
    kitchen["dishes"]["pasta"] = [{"name": "chop vegetables", "type": "chop", "after": []},
                                  {"name": "cook sauce", "type": "cook", "after": ["chop vegetables"]},
                                  {"name": "boil pasta", "type": "cook", "after": []},
                                  {"name": "plate pasta", "type": "plate", "after": ["cook sauce", "boil pasta"]}]
    kitchen["skills"] = {"chef": [1, 2, 1]}
    kitchen["scenario"] = {"name": "alone", "workers": ["chef"]}
    kitchen["orders"] = [{"dish": "pasta", "arrival": 0}] + [{"dish": "salad", "arrival": 2 * i} for i in range(8)]
    kitchen["max_ticks"] = 100
    return KitchenSpec.from_dict(kitchen)


def test_solver_solves_a_small_36_slot_kitchen_and_refuses_a_large_one_by_budget():
    spec = one_cook_many_dishes()
    assert spec.n_slots == 36
    total_work = (1 + 2 + 2 + 1) + 8 * 1 + 12 * spec.handoff  # pasta, 8 salads, a hand-off per subtask
    assert solve(spec).optimal_ticks == total_work == lower_bound_ticks(spec)
    with pytest.raises(SolverBudgetExceeded):
        ExactSolver(twelve_burgers(), max_states=2_000).solve()


def test_players_write_valid_traces_of_a_36_slot_kitchen():
    spec = twelve_burgers()
    frame, truth = generate_population(spec, GREEDY_POPULATION, n_players=4, rounds=1, seed=0)
    traces = validate_traces(frame)
    assert len(truth) == 4 and len(traces.obs) == len(frame)
    assert traces.obs.shape[1] == 3 * 36 + 3 * (3 + 2) + 1
    # every round ends with all 36 subtasks done (the greedy players finish within the horizon)
    assert frame.groupby("episode_id").size().min() >= 36


def test_state_batches_of_multi_word_sets_read_as_the_reference_states():
    spec = twelve_burgers()
    ref = ReferenceKitchen(spec.to_dict())
    rng, state, states = random.Random(0), ref.reset(), []
    while not any(ref.is_over(state)):
        states.append(state)
        state = ref.step(state, rng.choice(ref.legal_actions(state)))[0]
    env_states = from_reference_batch(states)
    assert env_states.done_slots.shape == (len(states), 2)
    from_bits = StateBatch.from_bits(np.asarray(env_states.tick), np.asarray(env_states.worker_slot),
                                     np.asarray(env_states.done_slots), spec.n_slots)
    expected = StateBatch.from_reference(states, spec.n_slots)
    np.testing.assert_array_equal(from_bits.done, expected.done)
    assert expected.done[-1, 32:].any()  # the second word is really used


def test_tip_simulation_runs_on_a_36_slot_kitchen_and_the_tip_is_followed():
    spec = twelve_burgers()
    env, params = make_kitchen(spec)
    server, cook = [w.name for w in spec.workers].index("server"), spec.task_types.index("cook")
    never = Tip("count", "times", server, cook, 0)
    profile = PlayerProfile(kind="busy", base="keep_busy", epsilon=0.0)
    n = 4
    players = [SyntheticPlayer(profile, ExactSolver(spec), random.Random(i)) for i in range(n)]
    u_decision, u_tick = random_streams(spec, n, seed=0)
    played = play_rounds(env, params, spec, PlayerChooser(players + players, spec.n_slots), [None] * n + [never] * n,
                         np.ones(2 * n), np.tile(u_decision, (2, 1)), np.tile(u_tick, (2, 1)),
                         np.tile(np.arange(n), 2), np.ones(2 * n, int))
    ref = ReferenceKitchen(spec.to_dict())
    cooked_by_server = []
    for i, actions in enumerate(played.actions):
        state, ticks = ref.reset(), 0
        for action in actions:
            state, reward, *_ = ref.step(state, action)
            ticks -= reward
        assert ticks == played.ticks[i] and ref.is_over(state)[0]  # replayed: same ticks, every order done
        cooked_by_server.append(sum(1 for a in actions if a != ref.end_tick_action and a // ref.n_slots == server
                                    and ref.slot_type[a % ref.n_slots] == cook))
    assert sum(cooked_by_server[:n]) > 0 and sum(cooked_by_server[n:]) == 0  # habit without, tip followed with


def test_the_game_plays_a_36_slot_round_and_records_it(tmp_path):
    spec = twelve_burgers()
    participant = Participant("big-p1", GameSetup(spec, 1, tmp_path))
    participant.register()
    participant.start_round()
    ref = ReferenceKitchen(spec.to_dict())
    names = [w.name for w in spec.workers]
    while participant.state is not None:
        state = participant.state
        legal = [a for a in ref.legal_actions(state) if a != ref.end_tick_action]
        if legal:
            participant.assign(names[legal[-1] // ref.n_slots], legal[-1] % ref.n_slots, state.tick)
        else:
            participant.next_tick(state.tick)
    assert participant.history[-1]["finished"]
    frame = pd.read_csv(tmp_path / "big-p1.csv")
    assert validate_traces(frame).obs.shape[1] == 3 * 36 + 3 * (3 + 2) + 1
    assert (frame["slot"] >= 32).any()
