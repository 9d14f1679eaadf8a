"""PPO (actor-critic, GAE, clipped objective, masked categorical), PureJaxRL style: one jittable function per
chunk of updates — rollout of `n_envs` auto-resetting envs for `n_steps` (carrying each env's last
observation), advantages, then `n_epochs` × `n_minibatches` clipped updates — all inside lax.scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bpjax.agents.common import TrainState, all_finite, check_range, make_optimizer, shard_env_batch
from bpjax.agents.networks import ActorCritic, entropy, log_policy, sample_action_by_cdf
from bpjax.env.config import ConfigError
from bpjax.env.kitchen import Kitchen
from bpjax.env.types import EnvParams, EnvState, Observation


@dataclass(frozen=True)
class PPOConfig:
    n_envs: int = 32  # about as much learnt per update as 64 envs, for less time (benchmarks/RESULTS.md)
    n_steps: int = 64
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    gamma: float = 1.0  # episodic, -1 per tick: undiscounted ticks are what we minimise
    gae_lambda: float = 0.95
    clip: float = 0.2
    n_epochs: int = 4
    n_minibatches: int = 4
    value_coef: float = 0.5
    entropy_coef: float = 0.03  # exploration the understaffed kitchen needs (benchmarks/RESULTS.md)
    max_grad_norm: float | None = 0.5

    def __post_init__(self):
        for name, low, high in (("n_envs", 1, 2**16), ("n_steps", 1, 2**16), ("hidden", 1, 2**14),
                                ("n_epochs", 1, 1000), ("n_minibatches", 1, 2**16)):
            check_range(f"algo.{name}", getattr(self, name), low, high)
        check_range("algo.learning_rate", self.learning_rate, 0, 1, low_open=True)
        check_range("algo.clip", self.clip, 0, 10, low_open=True)
        check_range("algo.max_grad_norm", self.max_grad_norm, 0, 1e6, low_open=True)
        for name in ("gamma", "gae_lambda"):
            check_range(f"algo.{name}", getattr(self, name), 0, 1)
        for name in ("value_coef", "entropy_coef"):
            check_range(f"algo.{name}", getattr(self, name), 0, 1000)
        if (self.n_envs * self.n_steps) % self.n_minibatches:
            raise ConfigError(f"algo.n_minibatches: {self.n_minibatches} does not divide "
                             f"n_envs*n_steps = {self.n_envs * self.n_steps}")


class PPOState(TrainState):
    env_state: EnvState  # the n_envs environments, carried across updates
    last_obs: Observation  # their observations (what the policy acts on next)
    episode_ticks: jax.Array  # float32: mean ticks of the rounds that ended in the last update


class Transition(NamedTuple):
    """One step of one env in a rollout (arrays [n_steps, n_envs, ...] once collected)."""

    obs: Observation     # what the policy saw
    action: jax.Array    # int32
    log_p: jax.Array     # log-probability of the action when taken
    value: jax.Array     # the critic's estimate then
    reward: jax.Array    # the env's reward (minus the ticks elapsed)
    done: jax.Array      # float32: the round ended with this step (terminated or truncated)
    terminated: jax.Array  # float32: ... with every order done
    end_tick: jax.Array  # the round's ticks where it ended, else 0


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Generalised advantage estimates and returns; arrays [T, N], `dones[t]` ends the round after step t."""
    def back(carry, step):
        advantage, next_value = carry
        reward, value, done = step
        delta = reward + gamma * next_value * (1.0 - done) - value
        advantage = delta + gamma * lam * (1.0 - done) * advantage
        return (advantage, value), advantage
    _, advantages = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), (rewards, values, dones),
                                 reverse=True)
    return advantages, advantages + values


def ppo_loss(params, network: ActorCritic, transitions: Transition, advantage: jax.Array, target: jax.Array,
             config: PPOConfig):
    """The clipped PPO loss of a minibatch of transitions with their GAE advantages and value targets."""
    mask = transitions.obs.action_mask
    logits, value = network.apply(params, transitions.obs.features)
    log_p = jnp.take_along_axis(log_policy(logits, mask), transitions.action[..., None], axis=-1)[..., 0]
    ratio = jnp.exp(log_p - transitions.log_p)
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    policy_loss = -jnp.minimum(ratio * advantage,
                               jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * advantage).mean()
    clipped_value = transitions.value + jnp.clip(value - transitions.value, -config.clip, config.clip)
    value_loss = 0.5 * jnp.maximum((value - target) ** 2, (clipped_value - target) ** 2).mean()
    mean_entropy = entropy(logits, mask).mean()
    total = policy_loss + config.value_coef * value_loss - config.entropy_coef * mean_entropy
    return total, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy}


class PPOParts(NamedTuple):
    """PPO's pieces, for learners that change the reward between collecting and learning (GAIL)."""

    network: ActorCritic
    init: Callable      # key -> PPOState
    collect: Callable   # PPOState -> (PPOState, Transition [n_steps, n_envs])
    learn: Callable     # (PPOState, Transition, rewards [n_steps, n_envs]) -> (PPOState, metrics)


def make_ppo_parts(env: Kitchen, env_params: EnvParams, config: PPOConfig,
                   extra_loss: Callable | None = None) -> PPOParts:
    """`extra_loss(params, key) -> scalar`, if given, is added to every minibatch's PPO loss (GAIL's
    behaviour-cloning regulariser)."""
    network = ActorCritic(env.n_actions, config.hidden)
    optimizer = make_optimizer(config.learning_rate, config.max_grad_norm)
    batch_size = config.n_envs * config.n_steps
    minibatch = batch_size // config.n_minibatches

    def init(key: jax.Array) -> PPOState:
        key, init_key = jax.random.split(key)
        obs, env_state = jax.vmap(lambda _: env.reset(None, env_params))(jnp.arange(config.n_envs))
        params = network.init(init_key, obs.features[0])
        return PPOState(params, optimizer.init(params), key, jnp.int32(0), env_state, obs, jnp.float32(0))

    def env_step(params, env_state, obs, key):
        """One step of the whole env batch: one forward pass over the batch, one draw per env."""
        logits, value = network.apply(params, obs.features)
        action = sample_action_by_cdf(key, logits, obs.action_mask)
        log_p = jnp.take_along_axis(log_policy(logits, obs.action_mask), action[:, None], axis=-1)[:, 0]
        tick = env_state.tick
        next_obs, next_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(None, 0, 0, None))(
            None, env_state, action, env_params)
        done = terminated | truncated
        end_tick = jnp.where(done, tick - reward, 0.0)  # the round's ticks, where it ended
        return (next_state, next_obs), Transition(obs, action, log_p, value, reward, done.astype(jnp.float32),
                                                  terminated.astype(jnp.float32), end_tick)

    def collect(state: PPOState):
        key, rollout_key = jax.random.split(state.key)
        (env_state, last_obs), traj = jax.lax.scan(
            lambda carry, key: env_step(state.params, *carry, key),
            shard_env_batch((state.env_state, state.last_obs)), jax.random.split(rollout_key, config.n_steps))
        return state.replace(key=key, env_state=env_state, last_obs=last_obs), traj

    def learn(state: PPOState, traj: Transition, rewards):
        key, shuffle_key = jax.random.split(state.key)
        _, last_value = network.apply(state.params, state.last_obs.features)
        advantages, returns = gae(rewards, traj.value, traj.done, last_value, config.gamma, config.gae_lambda)
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), (traj, advantages, returns))

        def total_loss(params, batch, key):
            loss, aux = ppo_loss(params, network, *batch, config)
            if extra_loss is None:
                return loss, aux
            extra = extra_loss(params, key)
            return loss + extra, {**aux, "extra_loss": extra}

        def epoch(carry, key):
            order = jax.random.permutation(key, batch_size).reshape(config.n_minibatches, minibatch)

            def minibatch_step(carry, step):
                (params, opt_state), (indices, key) = carry, step
                batch = jax.tree.map(lambda x: x[indices], flat)
                (loss, aux), grads = jax.value_and_grad(total_loss, has_aux=True)(params, batch, key)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (jax.tree.map(lambda p, u: p + u, params, updates), opt_state), (loss, aux)

            extra_keys = jax.random.split(jax.random.fold_in(key, 1), config.n_minibatches)
            return jax.lax.scan(minibatch_step, carry, (order, extra_keys))

        (params, opt_state), (losses, aux) = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                          jax.random.split(shuffle_key, config.n_epochs))
        ended = traj.done.sum()
        mean_ticks = jnp.where(ended > 0, traj.end_tick.sum() / jnp.maximum(ended, 1), state.episode_ticks)
        metrics = {"loss": losses.mean(), "entropy": aux["entropy"].mean(), "value_loss": aux["value_loss"].mean(),
                   "mean_ticks": mean_ticks, "env_steps": jnp.int32(config.n_envs * config.n_steps),
                   "finite": jnp.all(jnp.isfinite(losses)) & all_finite(params)}
        if extra_loss is not None:
            metrics["extra_loss"] = aux["extra_loss"].mean()
        return state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1,
                             episode_ticks=mean_ticks), metrics

    return PPOParts(network, init, collect, learn)


def make_ppo(env: Kitchen, env_params: EnvParams, config: PPOConfig
             ) -> tuple[ActorCritic, Callable, Callable]:
    """(network, init(key) -> PPOState, run(PPOState, n_updates) -> (PPOState, metrics per update))."""
    parts = make_ppo_parts(env, env_params, config)

    def update(state: PPOState, _):
        state, traj = parts.collect(state)
        return parts.learn(state, traj, traj.reward)

    def run(state: PPOState, n_updates: int):
        return jax.lax.scan(update, state, None, n_updates)

    return parts.network, parts.init, run
