"""REINFORCE as the study describes it, fully jitted.

Each update samples `n_rollouts` whole rounds with π_θ (vmapped), computes reward-to-go, and takes one Adam
step on -Σ_t Q̂_t log π_θ(a_t | s_t), averaged over rollouts. Two normalisations:

* ``normalise="rewards"`` — the study's literal recipe: per-step rewards are normalised by the mean and
  standard deviation of the most recent rollouts, then summed to go. With the flat action space an assignment
  earns 0, "end tick" -1 and a skipped stretch -k, so normalised per-step rewards make a manual "end tick"
  look better than average under random play: the policy learns to press it (a test shows this).
* ``normalise="returns"`` (default) — reward-to-go of the raw rewards, then normalised (a batch baseline),
  plus an entropy bonus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bpjax.agents.common import TrainState, all_finite, check_range, make_optimizer, shard_env_batch
from bpjax.agents.networks import ActorCritic, entropy, log_policy, sample_action
from bpjax.env.config import ConfigError
from bpjax.env.kitchen import Kitchen
from bpjax.env.rollout import max_decisions
from bpjax.env.types import EnvParams, Observation


@dataclass(frozen=True)
class ReinforceConfig:
    n_rollouts: int = 32
    hidden: tuple[int, ...] = (50,)
    learning_rate: float = 1e-3
    gamma: float = 1.0
    normalise: str = "returns"  # "returns" (default) | "rewards" (the study's literal recipe)
    entropy_coef: float = 0.01
    max_grad_norm: float | None = None

    def __post_init__(self):
        if self.normalise not in ("returns", "rewards"):
            raise ConfigError(f"algo.normalise: expected 'returns' or 'rewards', got {self.normalise!r}")
        if self.n_rollouts < 2:
            raise ConfigError(f"algo.n_rollouts: need at least 2 rollouts to normalise, got {self.n_rollouts}")
        check_range("algo.n_rollouts", self.n_rollouts, 2, 2**16)
        check_range("algo.hidden", self.hidden, 1, 2**14)
        check_range("algo.learning_rate", self.learning_rate, 0, 1, low_open=True)
        check_range("algo.gamma", self.gamma, 0, 1)
        check_range("algo.entropy_coef", self.entropy_coef, 0, 1000)
        check_range("algo.max_grad_norm", self.max_grad_norm, 0, 1e6, low_open=True)


class Step(NamedTuple):
    """One decision of one round (arrays [n_rollouts, horizon, ...] once recorded)."""

    obs: Observation   # what the policy saw
    action: jax.Array  # int32
    reward: jax.Array  # minus the ticks elapsed
    valid: jax.Array   # bool: the round was still running (steps after its end are padding)


def reward_to_go(rewards: jax.Array, valid: jax.Array, gamma: float) -> jax.Array:
    """Q̂_t = Σ_{t' ≥ t} γ^{t'-t} r_{t'} along the last axis (invalid steps contribute nothing)."""
    def back(carry, step):
        reward, ok = step
        carry = jnp.where(ok, reward + gamma * carry, 0.0)
        return carry, carry
    _, out = jax.lax.scan(back, jnp.zeros(rewards.shape[:-1]), (jnp.moveaxis(rewards, -1, 0),
                                                               jnp.moveaxis(valid, -1, 0)), reverse=True)
    return jnp.moveaxis(out, 0, -1)


def _normalise(x: jax.Array, valid: jax.Array) -> jax.Array:
    count = jnp.maximum(valid.sum(), 1)
    mean = jnp.sum(jnp.where(valid, x, 0.0)) / count
    std = jnp.sqrt(jnp.sum(jnp.where(valid, (x - mean) ** 2, 0.0)) / count)
    return jnp.where(valid, (x - mean) / (std + 1e-8), 0.0)


def policy_gradient_weights(rewards: jax.Array, valid: jax.Array, config: ReinforceConfig) -> jax.Array:
    """The Q̂_t multiplying ∇ log π(a_t|s_t), per the configured normalisation. Shapes [N, T]."""
    if config.normalise == "rewards":
        return reward_to_go(_normalise(rewards, valid), valid, config.gamma)
    return _normalise(reward_to_go(rewards, valid, config.gamma), valid)


def reinforce_loss(params, network: ActorCritic, batch: Step, config: ReinforceConfig):
    """-(1/N) Σ_n Σ_t Q̂_t log π(a_t|s_t) - entropy bonus, over `batch` [N, T] recorded steps."""
    mask = batch.obs.action_mask
    logits, _ = network.apply(params, batch.obs.features)
    log_p = log_policy(logits, mask)
    chosen = jnp.take_along_axis(log_p, batch.action[..., None], axis=-1)[..., 0]
    weights = jax.lax.stop_gradient(policy_gradient_weights(batch.reward, batch.valid, config))
    n_rollouts = batch.reward.shape[0]
    pg = -jnp.sum(jnp.where(batch.valid, weights * chosen, 0.0)) / n_rollouts
    steps = jnp.maximum(batch.valid.sum(), 1)
    mean_entropy = jnp.sum(jnp.where(batch.valid, entropy(logits, mask), 0.0)) / steps
    return pg - config.entropy_coef * mean_entropy, {"entropy": mean_entropy}


def make_reinforce(env: Kitchen, env_params: EnvParams, config: ReinforceConfig
                   ) -> tuple[ActorCritic, Callable, Callable]:
    """(network, init(key) -> TrainState, run(TrainState, n_updates) -> (TrainState, metrics per update)).

    `run` is pure and jittable (a lax.scan over updates); vmap it over TrainStates for several seeds."""
    network = ActorCritic(env.n_actions, config.hidden, value=False)
    optimizer = make_optimizer(config.learning_rate, config.max_grad_norm)
    horizon = max_decisions(env, env_params)

    def init(key: jax.Array) -> TrainState:
        key, init_key = jax.random.split(key)
        obs, _ = env.reset(None, env_params)
        params = network.init(init_key, obs.features)
        return TrainState(params, optimizer.init(params), key, jnp.int32(0))

    def rollouts(params, keys):
        """`len(keys)` rounds with π_θ, stepped together and recorded into [N, horizon] arrays. A while loop
        over time rather than a scan over the whole horizon: it stops once every round has ended, which skips
        most of the horizon as the policy improves. Steps after a round's end have valid False."""
        step_keys = jax.vmap(lambda key: jax.random.split(key, horizon))(keys)  # [N, horizon]
        start = shard_env_batch(jax.vmap(lambda _: env.reset_env(None, env_params))(keys))

        def act(state, over, key):
            obs = env.get_obs(state, env_params)
            logits, _ = network.apply(params, obs.features)
            action = sample_action(key, logits, obs.action_mask)
            next_state, reward, terminated, truncated, _ = env.step_env(key, state, action, env_params)
            return next_state, over | terminated | truncated, Step(obs, action, reward, ~over)

        act = jax.vmap(act)
        _, _, shapes = jax.eval_shape(act, start, jnp.zeros(len(keys), bool), step_keys[:, 0])
        buffers = jax.tree.map(lambda x: jnp.zeros((horizon,) + x.shape, x.dtype), shapes)  # [horizon, N, ...]

        def running(carry):
            t, _, over, _ = carry
            return (t < horizon) & ~jnp.all(over)

        def step(carry):
            t, state, over, batch = carry
            state, over, record = act(state, over, step_keys[:, t])
            batch = jax.tree.map(lambda buffer, value: buffer.at[t].set(value), batch, record)
            return t + 1, state, over, batch

        _, final, _, batch = jax.lax.while_loop(
            running, step, (jnp.int32(0), start, jnp.zeros(len(keys), bool), buffers))
        batch = jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), batch)
        return batch, final.tick, jax.vmap(env.is_terminal, in_axes=(0, None))(final, env_params)

    def update(train_state: TrainState, _):
        key, rollout_key = jax.random.split(train_state.key)
        batch, ticks, finished = rollouts(train_state.params,
                                          shard_env_batch(jax.random.split(rollout_key, config.n_rollouts)))
        (loss, aux), grads = jax.value_and_grad(reinforce_loss, has_aux=True)(
            train_state.params, network, batch, config)
        updates, opt_state = optimizer.update(grads, train_state.opt_state, train_state.params)
        params = jax.tree.map(lambda p, u: p + u, train_state.params, updates)
        metrics = {"loss": loss, "entropy": aux["entropy"], "mean_ticks": ticks.mean().astype(jnp.float32),
                   "finished": finished.mean(),
                   "env_steps": batch.valid.sum(),  # rounds end early: count the steps really taken
                   "finite": jnp.isfinite(loss) & all_finite(params)}
        return TrainState(params, opt_state, key, train_state.update + 1), metrics

    def run(train_state: TrainState, n_updates: int):
        return jax.lax.scan(update, train_state, None, n_updates)

    return network, init, run
