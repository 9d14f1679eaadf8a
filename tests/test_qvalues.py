"""Q-values for tips: Monte-Carlo Q^π against exact play, and the exact Q* bounding every policy's Q."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpjax.agents.baselines import greedy, random_legal
from bpjax.agents.qvalues import monte_carlo_q
from bpjax.env.convert import to_reference
from bpjax.env.kitchen import make_kitchen
from bpjax.env.rollout import run_episodes
from bpjax.solve.solver import ExactSolver
from tests.conftest import spec_for


def _states_along_random_play(env, env_params, n: int, seed: int):
    """Some decision states (unbatched EnvStates) from one random-legal round."""
    policy = random_legal(env)
    state, states, key = env.reset_env(None, env_params), [], jax.random.key(seed)
    step = jax.jit(lambda k, s: env.step_env(k, s, policy(k, s, env_params), env_params))
    while len(states) < n:
        key, sub = jax.random.split(key)
        states.append(state)
        state, _, terminated, truncated, _ = step(sub, state)
        if terminated or truncated:
            state = env.reset_env(None, env_params)
    return states


@pytest.mark.slow
def test_monte_carlo_q_of_a_deterministic_policy_is_exact_and_below_q_star():
    """For the deterministic greedy baseline one rollout is the exact Q^greedy(s, a): at the start, taking
    greedy's own first action scores exactly minus greedy's round length; and no policy's Q exceeds the exact
    Q*(s, a)."""
    spec = spec_for()
    env, env_params = make_kitchen(spec)
    solver = ExactSolver(spec)
    states = _states_along_random_play(env, env_params, 6, seed=0)
    pairs = [(s, a) for s in states for a in np.flatnonzero(np.asarray(env.action_mask(s, env_params)))]
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *[s for s, _ in pairs])
    actions = jnp.asarray([a for _, a in pairs], jnp.int32)
    q_greedy_one = monte_carlo_q(env, env_params, greedy(env), batch, actions, jax.random.key(1), n_rollouts=1)
    q_greedy_many = monte_carlo_q(env, env_params, greedy(env), batch, actions, jax.random.key(2), n_rollouts=4)
    np.testing.assert_array_equal(q_greedy_one, q_greedy_many)  # deterministic policy: no variance
    q_star = np.array([solver.q_values(to_reference(s, spec.n_slots))[a] for s, a in pairs])
    assert np.all(np.asarray(q_greedy_one) <= q_star + 1e-6)
    assert np.all(q_star < 0)

    start = env.reset_env(None, env_params)
    first_action = greedy(env)(None, start, env_params)
    greedy_round = run_episodes(env, env_params, greedy(env), jax.random.key(0), 1).ticks[0]
    q_start = monte_carlo_q(env, env_params, greedy(env), jax.tree.map(lambda x: x[None], start),
                            first_action[None], jax.random.key(5), n_rollouts=1)
    assert float(q_start[0]) == -float(greedy_round)


@pytest.mark.slow
def test_monte_carlo_q_of_random_play_converges_to_its_mean():
    """Two independent large MC estimates of Q^random agree within a few standard errors, and the
    estimate lies between the exact Q* (best possible) and the horizon (worst possible)."""
    spec = spec_for()
    env, env_params = make_kitchen(spec)
    solver = ExactSolver(spec)
    state = env.reset_env(None, env_params)
    actions = jnp.asarray([0, 15, env.end_tick_action], jnp.int32)  # chef chops #1, sous-chef chops #2, wait
    batch = jax.tree.map(lambda x: jnp.stack([x] * 3), state)
    first = np.asarray(monte_carlo_q(env, env_params, random_legal(env), batch, actions, jax.random.key(3), 512))
    second = np.asarray(monte_carlo_q(env, env_params, random_legal(env), batch, actions, jax.random.key(4), 512))
    assert np.all(np.abs(first - second) < 1.0)  # returns spread ~4 ticks: standard error ~0.2 per estimate
    q_star = solver.q_values(to_reference(state, spec.n_slots))[np.asarray(actions)]
    assert np.all(first <= q_star) and np.all(first >= -spec.max_ticks)
