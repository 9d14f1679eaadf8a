"""Q-values at trace states, for tips.

* :func:`monte_carlo_q` — Q^π(s, a) of any policy: take `a` in `s`, then follow π to the end of the round;
  the mean return (= minus the ticks from s to the end) over rollouts, or the best of them. Every (state,
  action, rollout) runs in one vmapped loop; :func:`make_q_evaluator` runs any number of pairs in chunks
  through one compiled function, :func:`monte_carlo_q_table` fills Q[N, A] for every legal action.
* Exact Q*(s, a) from the solver (``bpjax.solve.solver.ExactSolver.q_values`` on
  ``bpjax.env.convert.to_reference(env_state)``) where the kitchen is small enough to solve.

Tips use the exact Q* where the solver finishes within its state budget (every shipped kitchen solves in
seconds); Monte-Carlo Q of a learned π* is the fallback (``bpjax.tips.optimum``).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bpjax.env.kitchen import Kitchen
from bpjax.env.rollout import Policy, max_decisions
from bpjax.env.types import EnvParams, EnvState


def monte_carlo_q(env: Kitchen, env_params: EnvParams, policy: Policy, states: EnvState, actions: jax.Array,
                  key: jax.Array, n_rollouts: int = 16, estimate: str = "mean") -> jax.Array:
    """float32[M]: return of taking actions[m] in states[m] (batched EnvState) and then following `policy`,
    over `n_rollouts` rollouts each: their mean (`estimate="mean"`, Q^π) or their best (`"best"`: in this
    deterministic kitchen every rollout is a schedule that can be played, so the best is a lower bound on
    Q*(s, a) that tightens with more rollouts). Returns are horizon-truncated, like the env's."""
    if estimate not in ("mean", "best"):
        raise ValueError(f"estimate: expected 'mean' or 'best', got {estimate!r}")
    n_steps = max_decisions(env, env_params)

    def one(state, action, key):
        state, reward, terminated, truncated, _ = env.step_env(key, state, action, env_params)

        def running(carry):
            _, over, _, step = carry
            return ~over & (step < n_steps)

        def body(carry):
            state, _, total, step = carry
            step_key = jax.random.fold_in(key, step)
            state, reward, terminated, truncated, _ = env.step_env(
                step_key, state, policy(step_key, state, env_params), env_params)
            return state, terminated | truncated, total + reward, step + 1

        # a while loop, not a fixed-length scan: vmapped, it stops once every rollout of the batch has ended
        return jax.lax.while_loop(running, body, (state, terminated | truncated, reward, jnp.int32(0)))[2]

    keys = jax.random.split(key, (actions.shape[0], n_rollouts))
    per_rollout = jax.vmap(jax.vmap(one, in_axes=(None, None, 0)))(states, actions, keys)
    return per_rollout.max(axis=1) if estimate == "best" else per_rollout.mean(axis=1)


def make_q_evaluator(env: Kitchen, env_params: EnvParams, policy: Policy, n_rollouts: int = 16,
                     estimate: str = "mean", chunk: int = 1024
                     ) -> Callable[[EnvState, np.ndarray, jax.Array], np.ndarray]:
    """`q(states, actions, key) -> float32[M]`: :func:`monte_carlo_q` of M (state, action) pairs (a batched
    EnvState and int[M]), run `chunk` pairs at a time through one compiled function (compiled once; memory
    bounded by chunk × n_rollouts rounds in flight). Identical pairs are evaluated once."""
    @jax.jit
    def run_chunk(states, actions, key):
        return monte_carlo_q(env, env_params, policy, states, actions, key, n_rollouts, estimate)

    def q(states: EnvState, actions: np.ndarray, key: jax.Array) -> np.ndarray:
        actions = np.asarray(actions, np.int32)
        pairs = np.concatenate([np.asarray(x, np.float64).reshape(len(actions), -1) for x in jax.tree.leaves(states)]
                               + [actions[:, None]], axis=1)  # float64 holds any 32-bit field exactly
        _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        n_chunks = max(-(-len(first) // chunk), 1)
        index = np.pad(first, (0, n_chunks * chunk - len(first)))  # padding repeats pair 0; dropped below
        values = [run_chunk(jax.tree.map(lambda x: x[rows], states), actions[rows], chunk_key)
                  for rows, chunk_key in zip(index.reshape(n_chunks, chunk), jax.random.split(key, n_chunks))]
        return np.concatenate([np.asarray(v) for v in values])[: len(first)][inverse.reshape(-1)]

    return q


def monte_carlo_q_table(q: Callable[[EnvState, np.ndarray, jax.Array], np.ndarray], states: EnvState,
                        mask: np.ndarray, key: jax.Array) -> np.ndarray:
    """float32[N, A]: `q` (from :func:`make_q_evaluator`) of every legal action of N batched states; −inf
    where illegal."""
    rows, actions = np.nonzero(mask)
    table = np.full(mask.shape, -np.inf, np.float32)
    table[rows, actions] = q(jax.tree.map(lambda x: x[rows], states), actions, key)
    return table
