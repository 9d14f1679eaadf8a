"""The gymnax adapter: gymnax's own wrappers run it, its spaces describe it, an illegal action ends the tick,
and a PureJaxRL-style PPO written here (no action masking, sized from the spaces) learns on it."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

gymnax = pytest.importorskip("gymnax")
from gymnax.environments import spaces  # noqa: E402
from gymnax.wrappers.purerl import FlattenObservationWrapper, LogWrapper  # noqa: E402

from bpjax.agents.baselines import random_legal  # noqa: E402
from bpjax.env import ConfigError, make_gymnax  # noqa: E402
from bpjax.env.kitchen import make_kitchen  # noqa: E402
from tests.conftest import spec_for  # noqa: E402


@pytest.fixture(scope="module")
def paper():
    return make_gymnax()


def test_make_gymnax_takes_a_spec_or_overrides_and_defaults_to_the_paper_kitchen(paper):
    env, params = paper
    assert (env.num_actions, env.name) == (37, "BurgerQueen-full")
    assert env.default_params is params
    understaffed, _ = make_gymnax(["kitchen/scenario=understaffed"])
    from_spec, _ = make_gymnax(spec_for("kitchen/scenario=understaffed"))
    assert understaffed.num_actions == from_spec.num_actions == 2 * 12 + 1
    assert understaffed.name == from_spec.name == "BurgerQueen-understaffed"
    with pytest.raises(ConfigError, match="kitchen.handoff"):
        make_gymnax(["kitchen.handoff=-1"])


def test_spaces(paper):
    env, params = paper
    obs_space, action_space = env.observation_space(params), env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and isinstance(action_space, spaces.Discrete)
    assert obs_space.shape == (52,) and obs_space.dtype == jnp.float32 and action_space.n == 37
    obs, _ = env.reset(jax.random.key(0), params)
    assert obs.shape == obs_space.shape and obs.dtype == obs_space.dtype and bool(obs_space.contains(obs))
    assert bool(action_space.contains(action_space.sample(jax.random.key(1))))


def test_gymnax_wrappers_run_it_and_time_always_passes(paper):
    """LogWrapper(FlattenObservationWrapper(env)), jitted and vmapped, with uniformly random actions that
    ignore the mask: observations stay in the Box, `info` carries the mask of the returned state and the
    final observation, and every env finishes rounds (an illegal action cannot stall time)."""
    env, params = paper
    wrapped = LogWrapper(FlattenObservationWrapper(env))
    n_envs, n_steps = 64, 400
    obs_space = wrapped.observation_space(params)

    def body(carry, key):
        _, state = carry
        action_key, step_key = jax.random.split(key)
        actions = jax.random.randint(action_key, (n_envs,), 0, env.num_actions)
        obs, state, reward, terminated, truncated, info = jax.vmap(wrapped.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, n_envs), state, actions, params)
        mask = jax.vmap(env.kitchen.action_mask, in_axes=(0, None))(state.env_state, params)
        inside = jax.vmap(obs_space.contains)(obs) & jax.vmap(obs_space.contains)(info["final_observation"])
        return (obs, state), (reward, terminated | truncated, info["illegal_action"], inside,
                              jnp.all(info["action_mask"] == mask, axis=-1), info["returned_episode"],
                              info["returned_episode_returns"])

    keys = jax.random.split(jax.random.key(0), n_envs)
    start = jax.vmap(wrapped.reset, in_axes=(0, None))(keys, params)
    run = jax.jit(lambda start, key: jax.lax.scan(body, start, jax.random.split(key, n_steps))[1])
    reward, done, illegal, inside, mask_ok, returned, returns = jax.tree.map(np.asarray, run(start, jax.random.key(1)))
    assert inside.all() and mask_ok.all()
    assert illegal.mean() > 0.3, "random actions are mostly illegal: the rule below is really exercised"
    assert (reward[illegal] <= -1).all(), "an illegal action ends the tick: time passes and costs"
    assert (done.sum(axis=0) >= 2).all(), "every env finished rounds"
    np.testing.assert_array_equal(done, returned)
    ended = returns[returned]
    assert (ended >= -50).all() and (ended <= -19).all()  # between the horizon and the exact optimum


def test_an_illegal_action_plays_as_end_tick_and_a_legal_one_as_in_the_native_env():
    """From states along random legal play, for every action: the gymnax env's step equals the native step
    of that action where it is legal, and of "end tick" where it is not (the native env's no-op rule
    unchanged)."""
    spec = spec_for("kitchen/orders=pasta_mix")
    env, params = make_gymnax(spec)
    native, _ = make_kitchen(spec)
    policy = random_legal(native)
    actions = jnp.arange(native.n_actions + 2) - 1  # -1 and n_actions: out of range

    def states(key):
        def body(state, key):
            return native.step_env(key, state, policy(key, state, params), params)[0], state
        return jax.lax.scan(body, native.reset_env(None, params), jax.random.split(key, 30))[1]

    def compare(state):
        mask = native.action_mask(state, params)

        def one(action):
            legal = (action >= 0) & (action < native.n_actions) & mask[jnp.clip(action, 0, native.n_actions - 1)]
            played = jnp.where(legal, action, native.end_tick_action)
            _, gym_state, gym_reward, gym_terminated, info = env.step_env(None, state, action, params)
            nat_state, nat_reward, nat_terminated, _, nat_info = native.step_env(None, state, played, params)
            noop_state, noop_reward, *_ = native.step_env(None, state, action, params)
            same, noop = _equal(gym_state, nat_state), _equal(noop_state, state)
            return (same & (gym_reward == nat_reward) & (gym_terminated == nat_terminated)
                    & (info["illegal_action"] == ~legal) & ~nat_info["illegal_action"]
                    & (legal | (noop & (noop_reward == 0)))), legal

        return jax.vmap(one)(actions)

    batch = jax.vmap(states)(jax.random.split(jax.random.key(2), 16))
    over = jax.vmap(jax.vmap(lambda s: native.is_terminal(s, params) | (s.tick >= params.max_ticks)))(batch)
    live = ~np.asarray(over)
    ok, legal = jax.jit(jax.vmap(jax.vmap(compare)))(batch)
    ok, legal = np.asarray(ok)[live], np.asarray(legal)[live]
    assert ok.all()
    assert legal.any() and (~legal).any()


def _equal(a, b) -> jax.Array:
    return jnp.all(jnp.stack(jax.tree.leaves(jax.tree.map(lambda x, y: jnp.all(x == y), a, b))))


def test_auto_reset_hands_back_the_first_state_and_the_final_observation(paper):
    """Ending ticks until the horizon: the truncating step returns the first observation and state, with the
    last state's features (tick at the horizon) as `final_observation`."""
    env, params = paper
    obs, state = env.reset(jax.random.key(0), params)
    first = obs
    step = jax.jit(env.step)
    for t in range(int(params.max_ticks)):
        obs, state, reward, terminated, truncated, info = step(jax.random.key(t), state, env.num_actions - 1, params)
    assert bool(truncated) and not bool(terminated) and bool(info["truncated"])
    np.testing.assert_array_equal(obs, first)
    assert int(state.tick) == 0 and float(info["final_observation"][-1]) == 1.0  # the tick feature, scaled


# ---- a PureJaxRL-style PPO, written here against the gymnax interface alone (no action mask) -------------

class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_p: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array
    episode_return: jax.Array  # the finished round's return where a round ended (LogWrapper's)
    ended: jax.Array


def make_train(env, params, n_envs=32, n_steps=32, n_updates=60, n_epochs=4, n_minibatches=4, lr=2.5e-3,
               gamma=0.99, lam=0.95, clip=0.2, entropy_coef=0.01):
    import flax.linen as nn
    import optax

    env = LogWrapper(FlattenObservationWrapper(env))
    n_actions = env.action_space(params).n
    obs_size = env.observation_space(params).shape[0]

    class ActorCritic(nn.Module):
        @nn.compact
        def __call__(self, x):
            actor = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
            actor = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(actor))
            logits = nn.Dense(n_actions, kernel_init=nn.initializers.orthogonal(0.01))(actor)
            critic = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
            critic = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(critic))
            return logits, nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(critic)[..., 0]

    network = ActorCritic()
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(lr))
    minibatch = n_envs * n_steps // n_minibatches

    def init(key):
        return network.init(key, jnp.zeros(obs_size))

    def train(key, net_params):
        key, reset_key = jax.random.split(key)
        opt_state = optimizer.init(net_params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, n_envs), params)

        def update(carry, _):
            net_params, opt_state, env_state, obs, key = carry

            def env_step(carry, key):
                env_state, obs = carry
                action_key, step_key = jax.random.split(key)
                logits, value = network.apply(net_params, obs)
                action = jax.random.categorical(action_key, logits)
                log_p = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
                next_obs, env_state, reward, terminated, truncated, info = jax.vmap(
                    env.step, in_axes=(0, 0, 0, None))(jax.random.split(step_key, n_envs), env_state, action, params)
                done = terminated | truncated
                return (env_state, next_obs), Transition(obs, action, log_p, value, reward, done,
                                                         info["returned_episode_returns"], info["returned_episode"])

            key, rollout_key, shuffle_key = jax.random.split(key, 3)
            (env_state, obs), traj = jax.lax.scan(env_step, (env_state, obs), jax.random.split(rollout_key, n_steps))
            _, last_value = network.apply(net_params, obs)

            def backward(carry, t):
                advantage, next_value = carry
                delta = t.reward + gamma * next_value * (1 - t.done) - t.value
                advantage = delta + gamma * lam * (1 - t.done) * advantage
                return (advantage, t.value), advantage

            _, advantages = jax.lax.scan(backward, (jnp.zeros(n_envs), last_value), traj, reverse=True)
            targets = advantages + traj.value

            def loss_fn(net_params, t, advantage, target):
                logits, value = network.apply(net_params, t.obs)
                log_probs = jax.nn.log_softmax(logits)
                log_p = jnp.take_along_axis(log_probs, t.action[:, None], axis=1)[:, 0]
                ratio = jnp.exp(log_p - t.log_p)
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                actor = -jnp.minimum(ratio * advantage, jnp.clip(ratio, 1 - clip, 1 + clip) * advantage).mean()
                critic = 0.5 * ((value - target) ** 2).mean()
                entropy = -(jnp.exp(log_probs) * log_probs).sum(axis=-1).mean()
                return actor + 0.5 * critic - entropy_coef * entropy

            flat = jax.tree.map(lambda x: x.reshape((n_steps * n_envs,) + x.shape[2:]), (traj, advantages, targets))

            def epoch(carry, key):
                def step(carry, rows):
                    net_params, opt_state = carry
                    grads = jax.grad(loss_fn)(net_params, *jax.tree.map(lambda x: x[rows], flat))
                    updates, opt_state = optimizer.update(grads, opt_state, net_params)
                    return (optax.apply_updates(net_params, updates), opt_state), None

                rows = jax.random.permutation(key, n_steps * n_envs).reshape(n_minibatches, minibatch)
                return jax.lax.scan(step, carry, rows)[0], None

            (net_params, opt_state), _ = jax.lax.scan(epoch, (net_params, opt_state),
                                                      jax.random.split(shuffle_key, n_epochs))
            ended = traj.ended.sum()
            mean_return = jnp.where(ended > 0, (traj.episode_return * traj.ended).sum() / jnp.maximum(ended, 1),
                                    jnp.nan)
            return (net_params, opt_state, env_state, obs, key), mean_return

        _, returns = jax.lax.scan(update, (net_params, opt_state, env_state, obs, key), None, n_updates)
        return returns  # [n_updates]: mean return of the rounds that ended in each update (NaN: none did)

    return init, train


@pytest.mark.slow
def test_purejaxrl_ppo_without_masking_learns_on_it():
    """On a two-dish kitchen (3 orders), an unmasked PPO's mean round return rises for every one of 3 seeds:
    over its last 10 updates it beats its first 10 by at least 10 ticks and comes within 6 ticks of the exact
    optimum (random actions mostly end the tick, so rounds start out near the 50-tick horizon)."""
    from bpjax.solve.solver import solve

    spec = spec_for("kitchen/orders=pasta_mix")
    env, params = make_gymnax(spec)
    optimum = solve(spec).optimal_ticks
    init, train = make_train(env, params)
    init_keys, train_keys = jax.random.split(jax.random.key(0), (2, 3))
    # initialised outside the vmapped program: batched QR (orthogonal init) inside it deadlocks XLA's CPU pool
    net_params = jax.tree.map(lambda *x: jnp.stack(x), *[init(key) for key in init_keys])
    returns = np.asarray(jax.jit(jax.vmap(train))(train_keys, net_params))
    first, last = np.nanmean(returns[:, :10], axis=1), np.nanmean(returns[:, -10:], axis=1)
    assert (last >= first + 10).all(), (first, last)
    assert (-last <= optimum + 6).all(), (last, optimum)
