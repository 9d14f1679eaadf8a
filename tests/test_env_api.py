"""The native gymnax-style API: shapes, dtypes, the observation (scaled features and mask), jit(vmap(step)) at
any batch size, auto-reset, determinism."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpjax.env.kitchen import make_kitchen
from tests.conftest import spec_for


@pytest.fixture(scope="module")
def kitchen():
    return make_kitchen(spec_for())


def test_reset_and_sizes(kitchen):
    env, params = kitchen
    obs, state = env.reset(jax.random.key(0), params)
    assert (env.n_actions, env.obs_size, env.end_tick_action) == (37, 52, 36)
    assert obs.features.shape == (52,) and obs.features.dtype == jnp.float32
    mask = obs.action_mask
    assert mask.shape == (37,) and mask.dtype == jnp.bool_ and bool(mask[-1])
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), state, env.reset_env(None, params)))
    # at the start every worker can chop any burger: slots 0, 3, 6, 9 for each of the 3 workers
    assert sorted(np.flatnonzero(np.asarray(mask[:-1]))) == [w * 12 + s for w in range(3) for s in (0, 3, 6, 9)]


@pytest.mark.parametrize("batch", [1, 7, 64, 1000])
def test_jit_vmap_step_any_batch(kitchen, batch):
    env, params = kitchen
    keys = jax.random.split(jax.random.key(1), batch)
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jnp.full((batch,), env.end_tick_action)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, states, reward, terminated, truncated, info = step(keys, states, actions, params)
    assert obs.features.shape == (batch, env.obs_size) and obs.action_mask.shape == (batch, env.n_actions)
    assert reward.shape == (batch,)
    assert reward.dtype == jnp.float32 and terminated.dtype == jnp.bool_
    assert (np.asarray(states.tick) == 1).all() and (np.asarray(reward) == -1).all()


def test_step_auto_resets_at_the_end(kitchen):
    """Ending ticks until the horizon truncates the round; `step` then hands back the start state."""
    env, params = kitchen
    _, state = env.reset(None, params)
    step = jax.jit(env.step)
    total = 0.0
    for _ in range(int(params.max_ticks)):
        obs, state, reward, terminated, truncated, _ = step(None, state, env.end_tick_action, params)
        total += float(reward)
        if bool(truncated):
            break
    assert bool(truncated) and not bool(terminated) and total == -float(params.max_ticks)
    first = env.reset(None, params)[0]
    np.testing.assert_array_equal(obs.features, first.features)
    np.testing.assert_array_equal(obs.action_mask, first.action_mask)
    assert int(state.tick) == 0


def test_observation_is_the_scaled_features_and_the_mask_of_the_returned_state(kitchen):
    """Along random play with auto-reset, `step`'s observation is that of the state it returns: the raw
    (reference) features divided by `obs_scale`, every feature in [0, 1], and exactly the legal actions."""
    from bpjax.agents.baselines import random_legal

    env, params = kitchen
    policy = random_legal(env)

    def body(carry, key):
        _, state = carry
        obs, state, *_ = env.step(key, state, policy(key, state, params), params)
        return (obs, state), (obs, env.raw_features(state, params), env.action_mask(state, params))

    _, (obs, raw, mask) = jax.jit(lambda key: jax.lax.scan(body, env.reset(key, params), jax.random.split(key, 300)))(
        jax.random.key(5))
    features = np.asarray(obs.features)
    np.testing.assert_array_equal(features, np.asarray(raw) / np.asarray(env.obs_scale(params)))
    assert features.min() >= 0 and features.max() <= 1 and features[:, -1].max() > 0  # time did pass
    np.testing.assert_array_equal(np.asarray(obs.action_mask), np.asarray(mask))


def test_illegal_action_is_a_flagged_noop(kitchen):
    env, params = kitchen
    _, state = env.reset(None, params)
    for action in (1, -1, env.n_actions, 10_000):  # cook before chop; out of range
        next_state, reward, terminated, truncated, info = env.step_env(None, state, action, params)
        assert bool(info["illegal_action"]) and float(reward) == 0.0
        assert not bool(terminated) and not bool(truncated)
        assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), next_state, state))


def test_deterministic_given_a_seed(kitchen):
    from bpjax.agents.baselines import random_legal
    from bpjax.env.rollout import run_episodes

    env, params = kitchen
    first = run_episodes(env, params, random_legal(env), jax.random.key(3), 32)
    second = run_episodes(env, params, random_legal(env), jax.random.key(3), 32)
    other = run_episodes(env, params, random_legal(env), jax.random.key(4), 32)
    np.testing.assert_array_equal(first.ticks, second.ticks)
    assert not np.array_equal(first.ticks, other.ticks)


def test_stored_intermediates_are_the_identity():
    """The step stores some intermediates through a division by a divisor that is always 1: every int32 and
    uint32 value, the sign bit and the extremes included, comes back unchanged, jitted and not."""
    from bpjax.env.bitset import materialise as _materialise

    signed = np.array([0, 1, -1, 7, -12, 2**30, 2**31 - 1, -2**31], np.int32)
    unsigned = np.array([0, 1, 2**31, 2**31 + 5, 2**32 - 1], np.uint32)
    for values in (signed, unsigned):
        for fn in (_materialise, jax.jit(_materialise)):
            out = np.asarray(fn(jnp.asarray(values)))
            assert out.dtype == values.dtype
            np.testing.assert_array_equal(out, values)
