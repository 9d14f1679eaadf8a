"""Tests of the baseline policies (bpjax/agents/baselines.py): greedy's rule and determinism, keep_busy never
idling while an assignment is legal, random_legal uniform over the legal actions and never illegal."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from bpjax.agents.baselines import BASELINES, greedy, keep_busy, random_legal
from bpjax.config import compose_config
from bpjax.env import bitset
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from bpjax.env.rollout import run_episodes

KITCHENS = [("kitchen/scenario=full",), ("kitchen/scenario=understaffed",), ("kitchen/orders=pasta_mix",),
            ("kitchen/orders=arrivals",)]


@functools.lru_cache(maxsize=None)
def kitchen_of(*overrides: str):
    """(spec, env, params, jitted step_env, jitted action_mask) per config."""
    spec = KitchenSpec.from_dict(compose_config(list(overrides)).kitchen)
    env, params = make_kitchen(spec)
    step = jax.jit(lambda state, action: env.step_env(None, state, action, params))
    mask = jax.jit(lambda state: env.action_mask(state, params))
    return spec, env, params, step, mask


def play(overrides: tuple[str, ...], make_policy, key: jax.Array, check) -> int:
    """Step one episode in Python; `check(mask, action, state)` at every decision. Returns the final tick.
    The reference simulator follows along and must agree on the mask and the tick."""
    spec, env, params, step, mask_of = kitchen_of(*overrides)
    policy = jax.jit(lambda key, state: make_policy(env)(key, state, params))
    reference = ReferenceKitchen(spec.to_dict())
    ref_state = reference.reset()
    state = env.reset_env(None, params)
    for decision in range(env.n_slots + spec.max_ticks + 1):
        key, step_key = jax.random.split(key)
        mask = np.asarray(mask_of(state))
        assert mask.tolist() == reference.action_mask(ref_state)
        action = int(policy(step_key, state))
        assert mask[action], f"illegal action {action} at decision {decision}"
        check(mask, action, state)
        state, _, terminated, truncated, info = step(state, action)
        ref_state = reference.step(ref_state, action)[0]
        assert not bool(info["illegal_action"])
        assert int(state.tick) == ref_state.tick
        if bool(terminated) or bool(truncated):
            return int(state.tick)
    raise AssertionError("episode did not end")


# ---- greedy ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", KITCHENS[:3])
def test_greedy_is_deterministic(overrides):
    _, env, params, _, _ = kitchen_of(*overrides)
    runs = [run_episodes(env, params, greedy(env), jax.random.key(seed), 4) for seed in (0, 1)]
    ticks = np.concatenate([np.asarray(r.ticks) for r in runs])
    assert np.all(ticks == ticks[0])
    assert all(bool(r.terminated.all()) and int(r.illegal.sum()) == 0 for r in runs)


@pytest.mark.parametrize("overrides", KITCHENS)
def test_greedy_picks_lowest_slot_and_fastest_worker(overrides):
    """At each decision: with no legal assignment it ends the tick; otherwise it takes the lowest slot some
    idle worker may take, and among the workers allowed that slot, the one with the fewest skill ticks
    (lowest index among ties). Episodes from two keys are identical."""
    _, env, params, _, _ = kitchen_of(*overrides)
    duration = np.asarray(params.duration)
    decisions = []

    def check(mask, action, state):
        legal = mask[:-1].reshape(env.n_workers, env.n_slots)
        if not legal.any():
            assert action == env.end_tick_action
            decisions.append(action)
            return
        slot = min(s for s in range(env.n_slots) if legal[:, s].any())
        able = [w for w in range(env.n_workers) if legal[w, slot]]
        fastest = min(duration[w, slot] for w in able)
        worker = min(w for w in able if duration[w, slot] == fastest)
        assert action == worker * env.n_slots + slot, (mask, action)
        decisions.append(action)

    ticks = play(overrides, greedy, jax.random.key(0), check)
    first = list(decisions)
    decisions.clear()
    assert play(overrides, greedy, jax.random.key(123), check) == ticks
    assert decisions == first


# ---- keep_busy --------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", KITCHENS)
def test_keep_busy_never_ends_the_tick_while_an_assignment_is_legal(overrides):
    _, env, _, _, _ = kitchen_of(*overrides)
    seen = {"assign": 0, "end": 0}

    def check(mask, action, state):
        if mask[:-1].any():
            assert action != env.end_tick_action, "ended the tick with a legal assignment"
            seen["assign"] += 1
        else:
            assert action == env.end_tick_action
            seen["end"] += 1

    _, _, params, _, _ = kitchen_of(*overrides)
    n_real = bin(bitset.to_int(params.real)).count("1")
    for seed in range(3):
        play(overrides, keep_busy, jax.random.key(seed), check)
    assert seen["assign"] == 3 * n_real  # every real slot is assigned exactly once per finished episode


# ---- random_legal -----------------------------------------------------------------------------------

N_DRAWS = 4000


def draw_actions(env, params, state, n_draws: int) -> np.ndarray:
    policy = random_legal(env)
    keys = jax.random.split(jax.random.key(2024), n_draws)
    return np.asarray(jax.jit(jax.vmap(lambda k: policy(k, state, params)))(keys))


@pytest.mark.parametrize("overrides, n_assigned", [(KITCHENS[0], 0), (KITCHENS[1], 0), (KITCHENS[2], 0),
                                                   (KITCHENS[0], 1)])
def test_random_legal_is_uniform_over_legal_actions(overrides, n_assigned):
    """Draw 4,000 actions at the start state (or after the chef took the first legal slot). Every legal action
    is drawn, nothing illegal is, and the counts fit a uniform distribution over the m legal actions.

    Tolerances: under uniformity the chi-square statistic sum (n_a - N/m)^2 / (N/m) has mean m - 1 and
    variance 2(m - 1); we allow mean + 8 standard deviations (for m = 13, 12 + 8 * 4.9 = 51, about the
    1 - 1e-6 quantile of chi2(12)). Each single count is Binomial(N, 1/m): we allow 5 standard deviations,
    sqrt(N p (1 - p)) ~ 16.9 for m = 13, i.e. +-85 around 308. A policy that gave one action double weight
    or never ended the tick would miss these by far. The key is fixed, so the test is deterministic."""
    _, env, params, step, mask_of = kitchen_of(*overrides)
    state = env.reset_env(None, params)
    if n_assigned:
        state = step(state, int(np.argmax(np.asarray(mask_of(state)))))[0]
    mask = np.asarray(mask_of(state))
    legal = np.flatnonzero(mask)
    m = len(legal)
    assert m >= 7 and mask[env.end_tick_action]

    actions = draw_actions(env, params, state, N_DRAWS)
    counts = np.bincount(actions, minlength=env.n_actions)
    assert counts[~mask].sum() == 0
    assert np.all(counts[legal] > 0)
    expected = N_DRAWS / m
    chi2 = float(((counts[legal] - expected) ** 2 / expected).sum())
    assert chi2 <= (m - 1) + 8 * np.sqrt(2 * (m - 1)), (chi2, counts[legal])
    sd = np.sqrt(N_DRAWS * (1 / m) * (1 - 1 / m))
    assert np.all(np.abs(counts[legal] - expected) <= 5 * sd), counts[legal]


@pytest.mark.parametrize("overrides", KITCHENS)
def test_random_legal_never_illegal_over_many_episodes(overrides):
    _, env, params, _, _ = kitchen_of(*overrides)
    result = run_episodes(env, params, random_legal(env), jax.random.key(7), 256)
    assert int(result.illegal.sum()) == 0
    assert int(result.decisions.min()) > 0
    assert np.all(np.asarray(result.ticks) <= int(params.max_ticks))


def test_baselines_registry():
    assert set(BASELINES) == {"random_legal", "greedy", "keep_busy"}
    assert BASELINES["greedy"] is greedy and BASELINES["keep_busy"] is keep_busy
    assert BASELINES["random_legal"] is random_legal
