"""Pieces shared by the policy-gradient agents: train state, optimiser, policies of a network, greedy rollouts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from bpjax.agents.networks import ActorCritic, greedy_action, sample_action
from bpjax.env.config import ConfigError
from bpjax.env.kitchen import Kitchen
from bpjax.env.rollout import Policy, run_episodes
from bpjax.env.types import EnvParams


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> None:
    """ConfigError naming the setting when a number (or each number of a tuple) lies outside [low, high]
    (low itself excluded with `low_open`) or is NaN, which no comparison catches; None passes (an optional
    setting left off)."""
    for v in (value if isinstance(value, (tuple, list)) else (value,)):
        if v is None:
            continue
        if v != v or (low is not None and (v < low or (low_open and v == low))) or (high is not None and v > high):
            bound = (f"{'>' if low_open else '>='} {low}" if high is None else
                     f"in {'(' if low_open else '['}{low}, {high}]")
            raise ConfigError(f"{name}: must be {bound}, got {value!r}")

ENV_AXIS = "envs"  # mesh axis the environment batch is split over (bpjax.train sets such a mesh on >1 device)


class TrainState(struct.PyTreeNode):
    """Everything a training run carries from one update to the next (so checkpoints resume exactly)."""

    params: Any
    opt_state: Any
    key: jax.Array
    update: jax.Array  # int32: updates done so far


class NonFiniteError(FloatingPointError):
    """Loss or parameters became NaN/Inf."""


def make_optimizer(learning_rate: float, max_grad_norm: float | None) -> optax.GradientTransformation:
    adam = optax.adam(learning_rate)
    return adam if not max_grad_norm else optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)


def greedy_policy(env: Kitchen, network: ActorCritic, params) -> Policy:
    """The deterministic policy: the most likely legal action."""
    def policy(key, state, env_params):
        del key
        obs = env.get_obs(state, env_params)
        logits, _ = network.apply(params, obs.features)
        return greedy_action(logits, obs.action_mask)
    return policy


def sampling_policy(env: Kitchen, network: ActorCritic, params) -> Policy:
    """The stochastic policy: an action drawn from the masked categorical."""
    def policy(key, state, env_params):
        obs = env.get_obs(state, env_params)
        logits, _ = network.apply(params, obs.features)
        return sample_action(key, logits, obs.action_mask)
    return policy


def make_greedy_evaluator(env: Kitchen, env_params: EnvParams, network: ActorCritic):
    """A compiled `evaluate(params) -> int32 ticks` of one deterministic greedy round; build it once and
    call it as often as needed (vmap it over seeds' params)."""
    def evaluate(params):
        result = run_episodes(env, env_params, greedy_policy(env, network, params), jax.random.key(0), 1)
        return result.ticks[0]
    return jax.jit(evaluate)


def all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def shard_env_batch(tree):
    """Split the leading (environment) axis of every leaf over the ambient mesh's `envs` axis, so XLA
    partitions the env steps and the network over devices; a no-op without such a mesh (one device)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or ENV_AXIS not in mesh.axis_names:
        return tree
    spec = jax.sharding.PartitionSpec(ENV_AXIS)
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, spec), tree)


def initial_states(init_all, *args):
    """Every run's initial state from `init_all` (a jitted, vmapped initialiser; every arg batched along its first
    axis), one run per call, then stacked.

    One at a time because on CPU jaxlib's batched QR (the orthogonal initialiser) splits its batch over the
    thread pool and waits for it, and can wait forever when the pool's threads are busy waiting too (a chunk
    dispatched behind it, or every device of a mesh running the same QR); a batch of one runs inline. Each
    call is waited for, so the first chunk never queues behind the initialiser."""
    n = len(jax.tree.leaves(args[-1])[0])
    parts = [jax.block_until_ready(init_all(*jax.tree.map(lambda x, i=i: x[i:i + 1], args))) for i in range(n)]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
