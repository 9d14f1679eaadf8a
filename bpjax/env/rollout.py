"""Run whole episodes of a policy in the JAX env, many in parallel (vmap) under one lax.scan."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from bpjax.env.kitchen import Kitchen
from bpjax.env.types import EnvParams, EnvState

# policy(key, state, params) -> int32 action
Policy = Callable[[jax.Array, EnvState, EnvParams], jax.Array]


@struct.dataclass
class EpisodeResult:
    ticks: jax.Array        # int32[N]: ticks at the end (max_ticks when truncated)
    terminated: jax.Array   # bool[N]: every order done
    decisions: jax.Array    # int32[N]: actions taken
    illegal: jax.Array      # int32[N]: actions the env rejected (should be 0 for a masked policy)


def max_decisions(env: Kitchen, params: EnvParams) -> int:
    """Upper bound on decisions in one episode: every slot assigned once, every tick ended by hand."""
    return env.n_slots + int(params.max_ticks) + 1


def run_episodes(env: Kitchen, params: EnvParams, policy: Policy, key: jax.Array, n_episodes: int,
                 n_steps: int | None = None) -> EpisodeResult:
    """Play `n_episodes` from the start with `policy`; finished episodes stay frozen until all end."""
    n_steps = n_steps or max_decisions(env, params)

    def one_episode(key):
        state = env.reset_env(key, params)

        def body(carry, step_key):
            state, over, decisions, illegal = carry
            action = policy(step_key, state, params)
            next_state, _, terminated, truncated, info = env.step_env(step_key, state, action, params)
            state = jax.tree.map(lambda n, o: jnp.where(over, o, n), next_state, state)
            decisions = decisions + (~over).astype(jnp.int32)
            illegal = illegal + (~over & info["illegal_action"]).astype(jnp.int32)
            return (state, over | terminated | truncated, decisions, illegal), None

        init = (state, jnp.bool_(False), jnp.int32(0), jnp.int32(0))
        (state, _, decisions, illegal), _ = jax.lax.scan(body, init, jax.random.split(key, n_steps))
        return EpisodeResult(state.tick, env.is_terminal(state, params), decisions, illegal)

    return jax.jit(jax.vmap(one_episode))(jax.random.split(key, n_episodes))


def replay_states(env: Kitchen, params: EnvParams, actions: jax.Array) -> EnvState:
    """The state before every action of int32[R, T] recorded rounds (one row per round, from the start),
    replayed in one jitted vmap + scan: an EnvState with leading axes [R, T]. Pad short rounds with any action
    (e.g. "end tick"): on an ended round `step_env` is a no-op, and states past a round's end are not read."""
    def one_round(actions):
        def body(state, action):
            next_state, _, _, _, _ = env.step_env(None, state, action, params)
            return next_state, state
        return jax.lax.scan(body, env.reset_env(None, params), actions)[1]

    return jax.jit(jax.vmap(one_round))(jnp.asarray(actions, jnp.int32))
