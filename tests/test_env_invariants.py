"""Property tests (hypothesis) of the JAX env: random kitchens agree with the reference, and the rules'
invariants hold along random play."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from bpjax.agents.baselines import random_legal
from bpjax.env import bitset
from bpjax.env.config import KitchenSpec
from bpjax.config import compose_config
from bpjax.env.kitchen import make_kitchen
from tests.conftest import compare

RECIPES = compose_config().kitchen.dishes  # burger, pasta, tacos as shipped
TASK_TYPES = ["chop", "cook", "plate"]


@st.composite
def kitchens(draw) -> KitchenSpec:
    """Small random kitchens: 1-3 workers with random skills (some missing), 1-3 orders of the shipped
    dishes with random arrivals, random hand-off and horizon."""
    n_workers = draw(st.integers(1, 3))
    skills = {f"w{i}": [draw(st.one_of(st.none(), st.integers(1, 6))) for _ in TASK_TYPES]
              for i in range(n_workers)}
    for k in range(len(TASK_TYPES)):  # every task type needs someone able to do it
        if all(row[k] is None for row in skills.values()):
            skills["w0"][k] = draw(st.integers(1, 6))
    max_ticks = draw(st.integers(6, 40))
    orders = [{"dish": draw(st.sampled_from(sorted(RECIPES))), "arrival": draw(st.integers(0, min(5, max_ticks - 1)))}
              for _ in range(draw(st.integers(1, 3)))]
    kitchen = {"task_types": TASK_TYPES, "dishes": {k: list(v) for k, v in RECIPES.items()}, "skills": skills,
               "scenario": {"name": "random", "workers": list(skills)}, "orders": orders,
               "handoff": draw(st.integers(0, 2)), "max_ticks": max_ticks}
    return KitchenSpec.from_dict(OmegaConf.to_container(OmegaConf.create(kitchen)))


@pytest.mark.slow   # 15 random kitchens x 40 episodes against the reference
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=kitchens(), seed=st.integers(0, 2**31 - 1))
def test_random_kitchens_match_reference(spec, seed):
    compare(spec, n_episodes=40, seed=seed, illegal_rate=0.15)


def _random_trajectories(spec: KitchenSpec, seed: int, n_episodes: int = 64):
    """States before/after every step of random legal play (no auto-reset), as numpy arrays [N, T, ...]."""
    env, params = make_kitchen(spec)
    policy = random_legal(env)
    n_steps = env.n_slots + spec.max_ticks + 1

    def episode(key):
        def body(state, key):
            action = policy(key, state, params)
            next_state, reward, terminated, truncated, info = env.step_env(key, state, action, params)
            mask = env.action_mask(next_state, params)
            return next_state, (state, next_state, reward, terminated, truncated, info["illegal_action"], mask)
        _, trace = jax.lax.scan(body, env.reset_env(None, params), jax.random.split(key, n_steps))
        return trace

    trace = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(seed), n_episodes))
    return env, params, jax.tree.map(np.asarray, trace)


def _predecessors(spec: KitchenSpec) -> list[list[int]]:
    """Per slot, the slots that must be done before it, from the recipes."""
    out = []
    for slot in range(spec.n_slots):
        subtask, first = spec.slot_subtask(slot), slot - slot % spec.slots_per_order
        out.append([] if subtask is None else [first + p for p in subtask.after])
    return out


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=kitchens(), seed=st.integers(0, 2**31 - 1))
def test_invariants_along_random_play(spec, seed):
    env, params, (before, after, reward, terminated, truncated, illegal, mask) = _random_trajectories(spec, seed)
    real = bitset.unpack_host(np.asarray(params.real), spec.n_slots)
    predecessors = _predecessors(spec)
    done_before = bitset.unpack_host(before.done_slots, spec.n_slots)  # bool[N, T, S]
    done_after = bitset.unpack_host(after.done_slots, spec.n_slots)
    over_before = (done_before | ~real).all(axis=-1) | (before.tick >= spec.max_ticks)
    live = ~over_before  # steps taken on an episode still running
    assert not illegal[live].any(), "a masked random policy never plays an illegal action"
    assert (illegal[~live]).all(), "acting on an ended episode is a flagged no-op"

    # ticks never go back; reward is minus the ticks elapsed
    assert (after.tick >= before.tick).all()
    np.testing.assert_array_equal(reward, (before.tick - after.tick).astype(np.float32))
    # done is monotone (each subtask done at most once, never undone)
    assert not (done_before & ~done_after).any()
    slots = after.worker_slot
    busy = slots >= 0
    for n, t in zip(*np.nonzero(live)):
        held = slots[n, t][busy[n, t]]
        done = done_after[n, t]
        assert len(set(held.tolist())) == len(held), "no slot held by two workers"
        assert not done[held].any(), "a done subtask is never worked on again"
        started = done.copy()
        started[held] = True
        for s in np.flatnonzero(started):
            assert done[predecessors[s]].all(), f"slot {s} started before its predecessors were done"
        assert (after.worker_until[n, t][busy[n, t]] > after.tick[n, t]).all(), "busy workers finish later"
        all_done = bool(done[real].all())
        assert terminated[n, t] == all_done
        assert truncated[n, t] == (not all_done and after.tick[n, t] >= spec.max_ticks)
        if not (terminated[n, t] or truncated[n, t]):
            assert mask[n, t][:-1].any(), "after a step, the agent always has a real choice"
