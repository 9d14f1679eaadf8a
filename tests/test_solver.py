"""Tests of the exact solver (bpjax/solve/solver.py).

* hand-checkable optima on tiny kitchens (numbers derived in each docstring from the rules);
* an independent brute force over full reference states (absolute tick included, no symmetry or time-shift
  reduction) on tiny instances, fixed and hypothesis-drawn, must agree with ``ExactSolver``;
* Q* / V* consistency on the paper kitchen; the identical-order symmetry of the canonical key;
* the JSON solution replays through the JAX env; no baseline beats the optimum; a short horizon truncates.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from bpjax.agents.baselines import BASELINES
from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import RefState, ReferenceKitchen
from bpjax.env.rollout import run_episodes
from bpjax.solve.solver import ExactSolver, solve
from tests.kitchens import (BURGER, PAPER_SKILLS, SALAD, SOUP, TACOS, brute_force_finish, brute_force_ticks, kitchen,
                            spec_of, tiny_kitchens)

@functools.lru_cache(maxsize=None)
def config_spec(*overrides: str) -> KitchenSpec:
    return KitchenSpec.from_dict(compose_config(list(overrides)).kitchen)


@functools.lru_cache(maxsize=None)
def paper_solver(*overrides: str) -> tuple[ExactSolver, Any]:
    """(solver, solution) per paper config, solved once per test session (the memo is reused)."""
    solver = ExactSolver(config_spec(*overrides))
    return solver, solver.solve()


# ---- hand-checkable optima -------------------------------------------------------------------------

@pytest.mark.parametrize("handoff, expected", [(1, 14), (0, 11), (2, 17)])
def test_one_burger_one_worker(handoff, expected):
    """The chef alone, skills chop 1 / cook 4 / plate 6, does the three sequential subtasks back to back:
    (1 + h) + (4 + h) + (6 + h) = 11 + 3h -> 14, 11, 17 for hand-off 1, 0, 2."""
    k = kitchen(["chef"], {"chef": [1, 4, 6]}, [("burger", 0)], handoff=handoff)
    solution = solve(spec_of(k))
    assert solution.optimal_ticks == expected
    assert solution.screen_tick == expected + 1
    assert not solution.truncated
    assert [(t.worker, t.start, t.finish) for t in solution.schedule] == [
        ("chef", 0, 1 + handoff), ("chef", 1 + handoff, 5 + 2 * handoff), ("chef", 5 + 2 * handoff, expected)]


def test_one_burger_fast_worker_does_everything():
    """fast = [1, 1, 1], slow = [3, 3, 3], hand-off 1. The burger is strictly sequential, so a second worker
    cannot run anything in parallel; each subtask costs 2 with `fast` and 4 with `slow`. All by `fast`:
    2 + 2 + 2 = 6; any subtask given to `slow` adds 2 -> at least 8. Optimum 6, every task by `fast`."""
    k = kitchen(["slow", "fast"], {"slow": [3, 3, 3], "fast": [1, 1, 1]}, [("burger", 0)])
    solution = solve(spec_of(k))
    assert solution.optimal_ticks == 6
    assert {t.worker for t in solution.schedule} == {"fast"}
    assert brute_force_ticks(k) == 6


def test_one_burger_split_between_two_workers():
    """chef = [1, 4, 6], server = [3, 12, 1], hand-off 1. Per subtask the cheaper worker: chop chef 1+1 = 2
    (server 4), cook chef 4+1 = 5 (server 13), plate server 1+1 = 2 (chef 7). Sequential, so the optimum is
    2 + 5 + 2 = 9 (the chef alone would need 14): chef chops and cooks, the server plates."""
    k = kitchen(["chef", "server"], {"chef": [1, 4, 6], "server": [3, 12, 1]}, [("burger", 0)])
    solution = solve(spec_of(k))
    assert solution.optimal_ticks == 9
    assert [(t.worker, t.task_type, t.start, t.finish) for t in solution.schedule] == [
        ("chef", "chop", 0, 2), ("chef", "cook", 2, 7), ("server", "plate", 7, 9)]
    assert brute_force_ticks(k) == 9


def test_two_one_step_dishes_in_parallel():
    """salad = one chop, soup = one cook; a = [2, 9, 9], b = [9, 5, 9], hand-off 1. In parallel a tosses
    the salad (2+1 = 3) while b simmers the soup (5+1 = 6): max(3, 6) = 6. Anything else is slower
    (a doing both: 3 + 10 = 13; swapped roles: max(10, 10) = 10)."""
    k = kitchen(["a", "b"], {"a": [2, 9, 9], "b": [9, 5, 9]}, [("salad", 0), ("soup", 0)],
                dishes={"salad": SALAD, "soup": SOUP})
    solution = solve(spec_of(k))
    assert solution.optimal_ticks == 6
    assert sorted((t.worker, t.label, t.start, t.finish) for t in solution.schedule) == [
        ("a", "salad #1: toss salad", 0, 3), ("b", "soup #2: simmer soup", 0, 6)]
    assert brute_force_ticks(k) == 6


def test_late_arrival_shifts_the_optimum():
    """Chef alone, one burger arriving at tick 5: nothing can start before 5, then 14 as above -> 19.
    Two one-step dishes with the soup arriving at 5: b starts it at 5 and finishes at 5 + 6 = 11, while a's
    salad is long done (3) -> 11."""
    burger = kitchen(["chef"], {"chef": [1, 4, 6]}, [("burger", 5)])
    assert solve(spec_of(burger)).optimal_ticks == 19
    assert solve(spec_of(burger)).schedule[0].start == 5
    dishes = kitchen(["a", "b"], {"a": [2, 9, 9], "b": [9, 5, 9]}, [("salad", 0), ("soup", 5)],
                     dishes={"salad": SALAD, "soup": SOUP})
    assert solve(spec_of(dishes)).optimal_ticks == 11
    assert brute_force_ticks(burger) == 19
    assert brute_force_ticks(dishes) == 11


# ---- brute force agreement ------------------------------------------------------------------------

BRUTE_FORCE_CASES = {
    "2 burgers, chef + server": kitchen(["chef", "server"], PAPER_SKILLS, [("burger", 0)] * 2),
    "2 burgers, sous_chef + server": kitchen(["sous_chef", "server"], PAPER_SKILLS, [("burger", 0)] * 2),
    "2 burgers, chef + sous_chef": kitchen(["chef", "sous_chef"], PAPER_SKILLS, [("burger", 0)] * 2),
    "3 burgers, chef + server": kitchen(["chef", "server"], PAPER_SKILLS, [("burger", 0)] * 3),
    "tacos + burger, chef + server": kitchen(["chef", "server"], PAPER_SKILLS, [("tacos", 0), ("burger", 0)],
                                             dishes={"burger": BURGER, "tacos": TACOS}),
    "burger + burger at tick 3": kitchen(["chef", "sous_chef"], PAPER_SKILLS, [("burger", 0), ("burger", 3)]),
    "burger at 3 + tacos, handoff 2": kitchen(["sous_chef", "server"], PAPER_SKILLS,
                                              [("burger", 3), ("tacos", 0)], handoff=2,
                                              dishes={"burger": BURGER, "tacos": TACOS}),
    "2 burgers, handoff 0": kitchen(["chef", "server"], PAPER_SKILLS, [("burger", 0)] * 2, handoff=0),
    "2 burgers, 3 workers, handoff 0": kitchen(["chef", "sous_chef", "server"], PAPER_SKILLS,
                                               [("burger", 0)] * 2, handoff=0),
}


@pytest.mark.parametrize("name", list(BRUTE_FORCE_CASES))
def test_solver_matches_brute_force(name):
    k = BRUTE_FORCE_CASES[name]
    solution = solve(spec_of(k))
    assert solution.optimal_ticks == brute_force_ticks(k)
    assert not solution.truncated


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_kitchens())
def test_solver_matches_brute_force_random_kitchens(k):
    assert solve(spec_of(k)).optimal_ticks == brute_force_ticks(k)


def random_states(sim: ReferenceKitchen, rng: random.Random, n_episodes: int) -> list[RefState]:
    """Every non-final state along `n_episodes` random legal plays (the reference env, with its horizon)."""
    states = []
    for _ in range(n_episodes):
        state = sim.reset()
        while not any(sim.is_over(state)):
            states.append(state)
            state = sim.step(state, rng.choice(sim.legal_actions(state)))[0]
    return states


@pytest.mark.parametrize("name", ["2 burgers, chef + server", "burger at 3 + tacos, handoff 2"])
def test_ticks_to_go_and_q_match_brute_force_along_random_play(name):
    """At states along random plays, ticks_to_go and Q*(s, a) = -(elapsed + ticks to go after a) agree with
    the brute force started from the state (or its successor), pure waits included."""
    k = BRUTE_FORCE_CASES[name]
    solver = ExactSolver(spec_of(k))
    sim = ReferenceKitchen(k)
    states = random_states(sim, random.Random(7), 3)[::4]
    assert len(states) >= 5
    for state in states:
        assert solver.ticks_to_go(state) == brute_force_finish(k, state) - state.tick, state
        q = solver.q_values(state, horizon=False)
        for action in sim.legal_actions(state):
            nxt = sim.step(state, action)[0]
            assert q[action] == -(brute_force_finish(k, nxt) - state.tick), (state, action)


def test_q_of_pure_wait_is_one_tick_plus_value():
    """Ending the tick at the start of the full paper kitchen (all idle, all orders in) just shifts time:
    Q*(s0, end) = -(1 + optimum) = -20 (clipping at max_ticks = 50 does not bind)."""
    solver, solution = paper_solver("kitchen/scenario=full")
    start = solver.sim.reset()
    end = solver.sim.end_tick_action
    assert solver.q_values(start, horizon=False)[end] == -(1 + solution.optimal_ticks)
    assert solver.q_values(start)[end] == -(1 + solution.optimal_ticks)


# ---- Q* consistency on the paper kitchen ----------------------------------------------------------

@pytest.mark.parametrize("scenario", ["full", "understaffed"])
def test_q_star_consistency_paper_kitchen(scenario):
    solver, solution = paper_solver(f"kitchen/scenario={scenario}")
    sim = solver.sim
    start = sim.reset()
    mask = np.array(sim.action_mask(start))

    # start state: max legal Q = V = -optimum; illegal actions -inf
    q = solver.q_values(start)
    assert q.shape == (sim.n_actions,)
    assert np.all(q[~mask] == -np.inf)
    assert np.all(np.isfinite(q[mask]))
    assert q[mask].max() == solver.value(start) == -solution.optimal_ticks
    assert solver.ticks_to_go(start) == solution.optimal_ticks

    # greedy in Q* from the start reaches the optimum
    state, steps = start, 0
    while not sim.is_over(state)[0]:
        action = int(np.argmax(solver.q_values(state)))
        state, _, _, _, info = sim.step(state, action)
        assert not info["illegal_action"]
        steps += 1
        assert steps < 200
    assert state.tick == solution.optimal_ticks

    # along random legal plays (env with its horizon): max Q == V, every Q <= V, illegal -inf
    env = ReferenceKitchen(solver.spec.to_dict())
    states = random_states(env, random.Random(0), 4)[::3]
    assert len(states) >= 8
    for state in states:
        q = solver.q_values(state)
        value = solver.value(state)
        legal = np.array(env.action_mask(state))
        assert np.all(q[~legal] == -np.inf)
        assert q[legal].max() == value, state
        assert np.all(q[legal] <= value)
        assert -value <= solver.max_ticks - state.tick


# ---- symmetry of identical orders ------------------------------------------------------------------

def swap_orders(state: RefState, first: int, second: int, per_order: int) -> RefState:
    """The state with orders `first` and `second` exchanged (slot contents and the workers holding them)."""
    def partner(slot: int) -> int:
        order, index = divmod(slot, per_order)
        order = second if order == first else first if order == second else order
        return order * per_order + index

    return RefState(state.tick, tuple(state.done[partner(s)] for s in range(len(state.done))),
                    tuple(None if s is None else partner(s) for s in state.worker_slot), state.worker_finish)


def test_identical_burger_swap_same_key_and_value():
    """Paper kitchen (4 identical burgers at tick 0): the chef chops burger #1, the sous-chef burger #2, the
    server burger #3 (time jumps to tick 2, the chef is free), the chef cooks burger #1, the sous-chef (free at
    tick 3) cooks burger #2. At every asymmetric state on the way, swapping burgers #1/#2 or #1/#4 gives a
    different RefState with the same canonical key and the same ticks to go (for #1/#2 after tick 0 also from
    a fresh solver, whose memo starts at the swapped state)."""
    solver, _ = paper_solver("kitchen/scenario=full")
    spec = solver.spec
    sim = ReferenceKitchen(spec.to_dict())
    S = sim.n_slots
    state = sim.reset()
    checked = 0
    for action in [0 * S + 0, 1 * S + 3, 2 * S + 6, 0 * S + 1, sim.end_tick_action, 1 * S + 4]:
        state, _, _, _, info = sim.step(state, action)
        assert not info["illegal_action"]
        for first, second in [(0, 1), (0, 3)]:
            swapped = swap_orders(state, first, second, sim.slots_per_order)
            if swapped == state:
                continue
            assert solver.key(state) == solver.key(swapped)
            assert solver.ticks_to_go(swapped) == solver.ticks_to_go(state)
            if first == 0 and second == 1 and state.tick > 0:  # a fresh memo, computed from the swapped state
                assert ExactSolver(spec).ticks_to_go(swapped) == solver.ticks_to_go(state)
            checked += 1
    assert state.worker_slot == (1, 4, None) and state.done[0] and state.done[3] and state.done[6]
    assert checked >= 8


def test_identical_burger_swap_brute_force():
    """On a tiny kitchen the swapped states also have equal brute-force ticks to go, equal to the solver's."""
    k = BRUTE_FORCE_CASES["2 burgers, chef + server"]
    solver = ExactSolver(spec_of(k))
    sim = ReferenceKitchen(k)
    for state in random_states(sim, random.Random(3), 2)[1::3]:
        swapped = swap_orders(state, 0, 1, sim.slots_per_order)
        assert solver.key(state) == solver.key(swapped)
        expected = brute_force_finish(k, state) - state.tick
        assert brute_force_finish(k, swapped) - state.tick == expected == solver.ticks_to_go(swapped)


def test_orders_with_different_pending_arrivals_are_not_merged():
    """Same dish but one order still to arrive: the two are not interchangeable, so the keys differ."""
    k = kitchen(["chef", "server"], PAPER_SKILLS, [("burger", 0), ("burger", 3)])
    solver = ExactSolver(spec_of(k))
    sim = ReferenceKitchen(k)
    state = sim.step(sim.reset(), 0)[0]  # chef chops burger #1 at tick 0
    swapped = swap_orders(state, 0, 1, sim.slots_per_order)
    assert solver.key(state) != solver.key(swapped)


# ---- the JSON solution replays through the JAX env -------------------------------------------------

@pytest.mark.parametrize("overrides", [("kitchen/scenario=full",), ("kitchen/scenario=understaffed",),
                                       pytest.param(("kitchen/orders=pasta_mix",), marks=pytest.mark.slow)])
def test_solution_json_replays_in_jax_env(overrides):
    spec = config_spec(*overrides)
    _, solution = paper_solver(*overrides)
    payload = json.loads(json.dumps(solution.to_json()))
    assert payload["optimal_ticks"] == solution.optimal_ticks
    assert payload["screen_tick"] == solution.optimal_ticks + 1
    assert payload["truncated"] is False
    assert len(payload["schedule"]) == sum(spec.slot_subtask(s) is not None for s in range(spec.n_slots))
    assert payload["actions"] == list(solution.actions)

    env, params = make_kitchen(spec)
    step = jax.jit(lambda state, action: env.step_env(None, state, action, params))
    mask_of = jax.jit(lambda state: env.action_mask(state, params))
    reference = ReferenceKitchen(spec.to_dict())
    ref_state = reference.reset()
    state = env.reset_env(None, params)
    for i, action in enumerate(payload["actions"]):
        assert bool(mask_of(state)[action]), f"action {i} ({action}) not legal"
        state, reward, terminated, truncated, info = step(state, action)
        ref_state = reference.step(ref_state, action)[0]
        assert not bool(info["illegal_action"])
        assert int(state.tick) == ref_state.tick
        assert not bool(truncated)
        assert bool(terminated) == (i == len(payload["actions"]) - 1)
    assert int(state.tick) == solution.optimal_ticks
    assert bool(env.is_terminal(state, params))


# ---- no baseline beats the optimum -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("overrides", [("kitchen/scenario=full",), ("kitchen/scenario=understaffed",),
                                       ("kitchen/orders=pasta_mix",)])
def test_optimum_never_worse_than_baselines(overrides):
    spec = config_spec(*overrides)
    _, solution = paper_solver(*overrides)
    env, params = make_kitchen(spec)
    for name, make_policy in BASELINES.items():
        result = run_episodes(env, params, make_policy(env), jax.random.key(0), 64)
        assert int(result.ticks.min()) >= solution.optimal_ticks, name
        assert int(result.illegal.sum()) == 0, name
        assert bool(result.terminated.all()), name


# ---- horizon ----------------------------------------------------------------------------------------

def test_short_horizon_truncates():
    """The full paper kitchen needs more than 10 ticks: with max_ticks = 10 the optimum is truncated."""
    spec = config_spec("kitchen/scenario=full", "kitchen.max_ticks=10")
    solver = ExactSolver(spec)
    solution = solver.solve()
    assert solution.truncated
    assert solution.optimal_ticks == 10
    assert solution.screen_tick == 11
    assert solver.ticks_to_go(solver.sim.reset()) > 10
    assert solver.value(solver.sim.reset()) == -10.0


def test_horizon_equal_to_optimum_is_not_truncated():
    """Finishing exactly at max_ticks counts as finished."""
    _, full = paper_solver("kitchen/scenario=full")
    spec = config_spec("kitchen/scenario=full", f"kitchen.max_ticks={full.optimal_ticks}")
    solution = solve(spec)
    assert not solution.truncated
    assert solution.optimal_ticks == full.optimal_ticks
