"""Q-values at trace states, for tips.

* :func:`monte_carlo_q` — Q^π(s, a) of any policy: take `a` in `s`, then follow π to the end of the round;
  the mean return (= minus the ticks from s to the end) over rollouts. Every (state, action, rollout) runs in
  one vmapped scan.
* Exact Q*(s, a) from the solver (``bpjax.solve.solver.ExactSolver.q_values`` on
  ``reference_state(env_state)``) where the kitchen is small enough to solve.

Tips use the exact Q* by default (every shipped kitchen solves in seconds); Monte-Carlo Q of the learned π*
is the fallback where the solver's state budget is exceeded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bpjax.env.kitchen import Kitchen
from bpjax.env.rollout import Policy, max_decisions
from bpjax.env.types import EnvParams, EnvState


def monte_carlo_q(env: Kitchen, env_params: EnvParams, policy: Policy, states: EnvState, actions: jax.Array,
                  key: jax.Array, n_rollouts: int = 16) -> jax.Array:
    """float32[M]: mean return of taking actions[m] in states[m] (batched EnvState) and then following
    `policy`, over `n_rollouts` rollouts each. Returns are horizon-truncated, like the env's."""
    n_steps = max_decisions(env, env_params)

    def one(state, action, key):
        state, reward, terminated, truncated, _ = env.step_env(key, state, action, env_params)

        def body(carry, key):
            state, over, total = carry
            next_state, reward, terminated, truncated, _ = env.step_env(
                key, state, policy(key, state, env_params), env_params)
            total = total + jnp.where(over, 0.0, reward)
            return (next_state, over | terminated | truncated, total), None

        (_, _, total), _ = jax.lax.scan(body, (state, terminated | truncated, reward), jax.random.split(key, n_steps))
        return total

    keys = jax.random.split(key, (actions.shape[0], n_rollouts))
    per_rollout = jax.vmap(jax.vmap(one, in_axes=(None, None, 0)))(states, actions, keys)
    return per_rollout.mean(axis=1)
