"""Hand-written baseline policies, as pure JAX functions ``policy(key, state, params) -> action``.

They give the exact optimum context: what a sensible but untrained manager scores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bpjax.env.kitchen import Kitchen, sample_legal_action
from bpjax.env.rollout import Policy


def random_legal(env: Kitchen) -> Policy:
    """Uniform over legal actions, ending the tick included."""
    def policy(key, state, params):
        return sample_legal_action(env, jax.random.uniform(key), env.legal_slots(state, params))
    return policy


def keep_busy(env: Kitchen) -> Policy:
    """Uniform over legal assignments; ends the tick only when none is left (never leaves a worker idle)."""
    def policy(key, state, params):
        return sample_legal_action(env, jax.random.uniform(key), env.legal_slots(state, params),
                                   allow_end_tick=False)
    return policy


def greedy(env: Kitchen) -> Policy:
    """Deterministic: the first available subtask (lowest slot) goes to the fastest idle worker able to
    do it (lowest index among ties); ends the tick when nothing can be assigned."""
    def policy(key, state, params):
        del key
        legal = env.action_mask(state, params)[:-1].reshape(env.n_workers, env.n_slots)
        slot = jnp.argmax(legal.any(axis=0))
        ticks = jnp.where(legal[:, slot], params.duration[:, slot], jnp.iinfo(jnp.int32).max)
        worker = jnp.argmin(ticks)
        return jnp.where(legal.any(), worker * env.n_slots + slot, env.end_tick_action).astype(jnp.int32)
    return policy


BASELINES = {"random_legal": random_legal, "greedy": greedy, "keep_busy": keep_busy}
