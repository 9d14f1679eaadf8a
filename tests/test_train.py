"""Policy-gradient training: learning reaches the exact optimum, the REINFORCE estimator is what it says,
the literal recipe's failure mode is real, checkpoints resume exactly, masking holds, NaNs stop training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpjax.agents.common import NonFiniteError, greedy_policy, initial_states, make_greedy_evaluator
from bpjax.agents.networks import action_at_quantile, sample_action, sample_action_by_cdf
from bpjax.agents.ppo import make_ppo
from bpjax.agents.reinforce import (ReinforceConfig, Step, _normalise, make_reinforce, policy_gradient_weights,
                                    reinforce_loss)
from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.rollout import max_decisions, run_episodes
from bpjax.env.types import Observation
from bpjax.solve.solver import solve
from bpjax.train.loop import algorithm_config, train
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]
PPO_SMALL = {"name": "ppo", "n_updates": 50, "n_envs": 64, "n_steps": 64, "hidden": [64, 64]}


def greedy_per_seed(env, env_params, run) -> list[int]:
    return [int(t) for t in jax.vmap(make_greedy_evaluator(env, env_params, run.network))(run.states.params)]


@pytest.mark.slow
def test_ppo_reaches_the_exact_optimum_on_the_full_kitchen():
    """Four fixed seeds, 50 PPO updates each (~0.2 M env steps per seed): the deterministic greedy policy of
    most seeds schedules the paper's full kitchen in exactly the optimal number of ticks."""
    spec = spec_for("kitchen/scenario=full")
    env, env_params = make_kitchen(spec)
    run = train(env, env_params, PPO_SMALL, seeds=[0, 1, 2, 3], chunk=25)
    greedy = greedy_per_seed(env, env_params, run)
    optimum = solve(spec).optimal_ticks
    assert min(greedy) >= optimum  # nothing beats the exact optimum
    assert sum(g == optimum for g in greedy) >= 3, greedy
    assert run.history["mean_ticks"][:, -1].mean() < run.history["mean_ticks"][:, 0].mean()  # it learned


@pytest.mark.slow
def test_ppo_learns_the_understaffed_kitchen():
    spec = spec_for("kitchen/scenario=understaffed")
    env, env_params = make_kitchen(spec)
    run = train(env, env_params, {**PPO_SMALL, "n_updates": 75}, seeds=[0, 1, 2, 3], chunk=25)
    greedy = greedy_per_seed(env, env_params, run)
    optimum = solve(spec).optimal_ticks
    assert sum(g <= optimum + 1 for g in greedy) >= 3, greedy
    assert sum(g == optimum for g in greedy) >= 2, greedy


RANDOM_KITCHENS, RANDOM_KITCHEN_SEEDS, RANDOM_KITCHEN_UPDATES = 12, 2, 60


@pytest.mark.slow
def test_default_ppo_reaches_the_optimum_on_random_kitchens():
    """The shipped PPO defaults (conf/algo/ppo.yaml; 60 updates instead of 150) on 12 random skill matrices
    of the full kitchen (`kitchen/skills=random skills_seed=0..11`) × 2 seeds (vmapped; the kitchens differ only
    in their params, so one program serves all): nothing beats the exact optimum, the greedy policy
    is at it for at least 22 of the 24 runs and within one tick of it for every run."""
    from omegaconf import OmegaConf

    algo = OmegaConf.to_container(compose_config(["algo=ppo"], config_name="train").algo)
    _, config, _ = algorithm_config(algo)
    specs = [KitchenSpec.from_dict(compose_config(["kitchen/skills=random", f"skills_seed={s}"],
                                                  config_name="train").kitchen) for s in range(RANDOM_KITCHENS)]
    env = make_kitchen(specs[0])[0]
    assert all(make_kitchen(spec)[0] == env for spec in specs)  # one program for all of them
    per_kitchen = [make_kitchen(spec)[1] for spec in specs]
    n_decisions = max(max_decisions(env, p) for p in per_kitchen)
    keys = jax.vmap(jax.random.key)(jnp.arange(RANDOM_KITCHEN_SEEDS))

    network = make_ppo(env, per_kitchen[0], config)[0]

    # the kitchen's params are an argument, so one program trains on all twelve and one evaluates; runs are
    # initialised as bpjax.train does (initial_states: a batched QR on CPU can deadlock its thread pool)
    initial = jax.jit(jax.vmap(lambda env_params, key: make_ppo(env, env_params, config)[1](key)))

    @jax.jit
    def trained_from(env_params, states):
        _, _, run = make_ppo(env, env_params, config)
        return jax.vmap(lambda state: run(state, RANDOM_KITCHEN_UPDATES)[0].params)(states)

    def trained(env_params, keys):
        per_key = jax.tree.map(lambda x: np.repeat(np.asarray(x)[None], len(keys), axis=0), env_params)
        return trained_from(env_params, initial_states(initial, per_key, keys))

    @jax.jit
    def greedy_ticks(env_params, params):
        evaluate = lambda p: run_episodes(env, env_params, greedy_policy(env, network, p),  # noqa: E731
                                          jax.random.key(0), 1, n_decisions).ticks[0]
        return jax.vmap(evaluate)(params)

    greedy = np.stack([np.asarray(greedy_ticks(p, trained(p, keys))) for p in per_kitchen])
    optimum = np.asarray([solve(spec).optimal_ticks for spec in specs])[:, None]
    assert (greedy >= optimum).all(), greedy
    assert (greedy <= optimum + 1).all(), (greedy, optimum)
    assert (greedy == optimum).sum() >= RANDOM_KITCHENS * RANDOM_KITCHEN_SEEDS - 2, (greedy, optimum)


def test_reinforce_weights_by_hand():
    """Reward-to-go and both normalisations on a 2-rollout batch, computed by hand."""
    rewards = jnp.array([[0.0, -1.0, -2.0], [-1.0, -1.0, 0.0]])
    valid = jnp.array([[True, True, True], [True, True, False]])
    returns = np.array([[-3.0, -3.0, -2.0], [-2.0, -1.0, 0.0]])  # γ = 1, invalid step masked
    g = returns[[0, 0, 0, 1, 1], [0, 1, 2, 0, 1]]
    expected = np.zeros((2, 3))
    expected[valid] = (g - g.mean()) / g.std()
    got = policy_gradient_weights(rewards, valid, ReinforceConfig(normalise="returns"))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    r = np.array([0.0, -1.0, -2.0, -1.0, -1.0])
    r_tilde = (r - r.mean()) / r.std()
    literal = np.array([[r_tilde[0] + r_tilde[1] + r_tilde[2], r_tilde[1] + r_tilde[2], r_tilde[2]],
                        [r_tilde[3] + r_tilde[4], r_tilde[4], 0.0]])
    got = policy_gradient_weights(rewards, valid, ReinforceConfig(normalise="rewards"))
    np.testing.assert_allclose(got, literal, rtol=1e-5)


class TabularPolicy:
    """logits = obs @ W with one-hot observations: a policy whose gradient is easy to write by hand."""

    @staticmethod
    def apply(params, obs):
        return obs @ params["W"], jnp.zeros(obs.shape[:-1])


def test_reinforce_gradient_matches_hand_computation():
    """∇_W of the REINFORCE loss equals -(1/N) Σ_n Σ_t Q̂_t (onehot(a_t) - π_t) ⊗ obs_t on a tiny MDP with
    3 states and 4 actions (one masked)."""
    rng = np.random.default_rng(0)
    n, t, n_states, n_actions = 3, 4, 3, 4
    W = rng.normal(size=(n_states, n_actions)).astype(np.float32)
    states = rng.integers(0, n_states, size=(n, t))
    obs = np.eye(n_states, dtype=np.float32)[states]
    mask = np.ones((n, t, n_actions), bool)
    mask[..., 3] = False
    actions = rng.integers(0, 3, size=(n, t))
    rewards = rng.integers(-2, 1, size=(n, t)).astype(np.float32)
    valid = np.ones((n, t), bool)
    valid[2, 3] = False
    config = ReinforceConfig(normalise="returns", entropy_coef=0.0)
    batch = Step(Observation(jnp.asarray(obs), jnp.asarray(mask)), jnp.asarray(actions), jnp.asarray(rewards),
                 jnp.asarray(valid))
    grad = jax.grad(lambda p: reinforce_loss(p, TabularPolicy, batch, config)[0])({"W": jnp.asarray(W)})["W"]

    weights = np.asarray(policy_gradient_weights(jnp.asarray(rewards), jnp.asarray(valid), config))
    expected = np.zeros_like(W)
    for i in range(n):
        for j in range(t):
            if not valid[i, j]:
                continue
            logits = np.where(mask[i, j], W[states[i, j]], -np.inf)
            pi = np.exp(logits - logits.max())
            pi /= pi.sum()
            expected[states[i, j]] -= weights[i, j] * (np.eye(n_actions)[actions[i, j]] - pi) / n
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["full", "understaffed"])
def test_literal_recipe_rewards_pressing_end_tick(scenario):
    """The pitfall of per-step reward normalisation: under the initial (near-uniform) policy, a manual "end
    tick" (reward -1) gets a positive normalised reward, because skipped stretches (-k) pull the mean below
    -1; assignments (reward 0, or a skipped stretch) average negative. Return normalisation has no such bias:
    its weights have mean zero over the batch by construction."""
    env, env_params = make_kitchen(spec_for(f"kitchen/scenario={scenario}"))
    network, init, _ = make_reinforce(env, env_params, ReinforceConfig(normalise="rewards", entropy_coef=0.0))
    params = init(jax.random.key(0)).params

    def rollout(key):
        def step(carry, key):
            state, over = carry
            obs = env.get_obs(state, env_params)
            action = sample_action(key, network.apply(params, obs.features)[0], obs.action_mask)
            state, reward, terminated, truncated, _ = env.step_env(key, state, action, env_params)
            return (state, over | terminated | truncated), (action, reward, ~over)
        init_carry = (env.reset_env(None, env_params), jnp.bool_(False))
        return jax.lax.scan(step, init_carry, jax.random.split(key, max_decisions(env, env_params)))[1]

    actions, rewards, valid = jax.vmap(rollout)(jax.random.split(jax.random.key(1), 256))
    normalised = np.asarray(_normalise(rewards, valid))
    end_tick = np.asarray((actions == env.end_tick_action) & valid)
    assert normalised[end_tick].mean() > 0.2
    assert normalised[np.asarray(valid) & ~end_tick].mean() < 0


@pytest.mark.slow
def test_chunks_compiled_ahead_and_jitted_give_the_updates_run_by_hand():
    """The loop's first chunk runs a program compiled in a background thread, its shorter last chunk the jitted
    one: together exactly the parameters of the initialiser and two chunks called by hand; train(greedy=True)
    reports what the greedy evaluator gives for those parameters."""
    env, env_params = make_kitchen(spec_for())
    algo = {"name": "ppo", "n_updates": 3, "n_envs": 16, "n_steps": 16}
    run = train(env, env_params, algo, seeds=[5, 6], chunk=2, greedy=True)
    _, init, step = make_ppo(env, env_params, algorithm_config(algo)[1])
    keys = jax.vmap(jax.random.key)(np.asarray([5, 6], np.uint32))
    chunk = jax.jit(jax.vmap(step, in_axes=(0, None)), static_argnums=1)
    by_hand = chunk(chunk(initial_states(jax.jit(jax.vmap(init)), keys), 2)[0], 1)[0]
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 run.states.params, by_hand.params)
    assert run.history["mean_ticks"].shape == (2, 3)
    assert run.greedy_ticks == greedy_per_seed(env, env_params, run)


@pytest.mark.slow
def test_checkpoint_resume_gives_the_same_parameters(tmp_path):
    """A run stopped after 2 updates and resumed to 4 ends with exactly the parameters (and metrics) of an
    uninterrupted 4-update run of the same seed."""
    env, env_params = make_kitchen(spec_for())
    algo = {"name": "ppo", "n_updates": 4, "n_envs": 16, "n_steps": 16}
    whole = train(env, env_params, algo, seeds=[3], chunk=2, out_dir=tmp_path / "whole")
    train(env, env_params, {**algo, "n_updates": 2}, seeds=[3], chunk=2, out_dir=tmp_path / "split")
    resumed = train(env, env_params, algo, seeds=[3], chunk=2, out_dir=tmp_path / "split", resume=True)
    assert resumed.resumed_from == 2
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 whole.states.params, resumed.states.params)
    np.testing.assert_array_equal(jax.random.key_data(whole.states.key), jax.random.key_data(resumed.states.key))
    assert (tmp_path / "whole/metrics.csv").read_text() == (tmp_path / "split/metrics.csv").read_text()
    # and a different seed really differs (the equality above is not vacuous)
    other = train(env, env_params, algo, seeds=[4], chunk=2)
    assert not np.array_equal(np.asarray(jax.tree.leaves(other.states.params)[0]),
                              np.asarray(jax.tree.leaves(whole.states.params)[0]))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 100.0))
def test_masked_sampling_never_picks_an_illegal_action(seed, scale):
    key_logits, key_mask, key_sample = jax.random.split(jax.random.key(seed), 3)
    logits = scale * jax.random.normal(key_logits, (512, 37))
    mask = jax.random.bernoulli(key_mask, 0.2, (512, 37)).at[:, -1].set(True)
    actions = jax.vmap(sample_action)(jax.random.split(key_sample, 512), logits, mask)
    assert bool(jnp.all(mask[jnp.arange(512), actions]))
    actions = sample_action_by_cdf(key_sample, logits, mask)  # PPO's sampler: one uniform per row
    assert bool(jnp.all(mask[jnp.arange(512), actions]))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 100.0),
       u=st.one_of(st.floats(0.0, 1.0, exclude_max=True, width=32), st.just(float(np.nextafter(np.float32(1), 0)))))
def test_cdf_sampler_picks_a_legal_action_at_every_quantile(seed, scale, u):
    """Whatever the quantile (the largest float32 below 1 included, where rounding can reach the total),
    with any mask that leaves one action legal (the last one masked too)."""
    key_logits, key_mask, key_legal = jax.random.split(jax.random.key(seed), 3)
    logits = scale * jax.random.normal(key_logits, (64, 37))
    mask = jax.random.bernoulli(key_mask, 0.2, (64, 37))
    mask = mask.at[jnp.arange(64), jax.random.randint(key_legal, (64,), 0, 37)].set(True)
    actions = action_at_quantile(jnp.full((64,), u, jnp.float32), logits, mask)
    assert bool(jnp.all(mask[jnp.arange(64), actions]))


def test_cdf_sampler_draws_the_masked_softmax():
    """200,000 draws of both samplers from one masked categorical: each action's frequency is its
    probability within 4 standard errors; masked actions never come up."""
    logits = jnp.array([1.5, -0.3, 0.2, 2.0, -1.0, 0.7, 0.0])
    mask = jnp.array([True, False, True, True, True, False, True])
    probs = np.asarray(jax.nn.softmax(jnp.where(mask, logits, -jnp.inf)))
    n = 200_000
    rows, masks = jnp.broadcast_to(logits, (n, 7)), jnp.broadcast_to(mask, (n, 7))
    for draws in (sample_action_by_cdf(jax.random.key(3), rows, masks),
                  jax.vmap(sample_action)(jax.random.split(jax.random.key(4), n), rows, masks)):
        freq = np.bincount(np.asarray(draws), minlength=7) / n
        np.testing.assert_array_less(np.abs(freq - probs), 4 * np.sqrt(probs * (1 - probs) / n) + 1e-12)


@pytest.mark.slow
def test_nan_stops_training_naming_the_update(monkeypatch):
    """A loss gone NaN mid-training stops the run naming the update. The settings' range check refuses a NaN
    learning rate up front, so it is switched off here to make one that fails at once."""
    import bpjax.agents.ppo

    monkeypatch.setattr(bpjax.agents.ppo, "check_range", lambda *args, **kwargs: None)
    env, env_params = make_kitchen(spec_for())
    with pytest.raises(NonFiniteError, match="at update 1 "):
        train(env, env_params, {"name": "ppo", "n_updates": 4, "n_envs": 8, "n_steps": 8,
                                "learning_rate": float("nan")}, seeds=[0], chunk=2)


@pytest.mark.slow
def test_reinforce_learns():
    """The default REINFORCE variant improves on its initial policy on the full kitchen within 300 updates."""
    env, env_params = make_kitchen(spec_for())
    run = train(env, env_params, {"name": "reinforce", "n_updates": 300}, seeds=[0, 1], chunk=150)
    first, last = run.history["mean_ticks"][:, :10].mean(), run.history["mean_ticks"][:, -10:].mean()
    assert last < first - 2, (first, last)
    # env steps counted are the decisions really taken: each of the 4 burgers' 3 subtasks takes
    # one assignment, and rounds that end early stop being stepped (fewer than the padded horizon)
    steps, n_rollouts = run.history["env_steps"], 32  # the default variant's rollouts per update
    assert np.all(steps >= n_rollouts * 12) and np.all(steps < n_rollouts * max_decisions(env, env_params))


@pytest.mark.slow
def test_train_cli_writes_its_outputs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.train", f"hydra.run.dir={tmp_path}", "algo.n_updates=4",
                             "algo.n_envs=16", "algo.n_steps=16", "chunk=2", "n_seeds=2"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"greedy_ticks", "optimal_ticks", "gap", "wall_s"} <= set(metrics)
    assert metrics["optimal_ticks"] == 19 and len(metrics["greedy_ticks"]) == 2
    assert metrics["gap"] == metrics["greedy_ticks_median"] - 19
    assert metrics["env_steps"] == 2 * 4 * 16 * 16   # seeds × updates × PPO's envs × steps
    for name in ("metrics.csv", "metrics.json", "learning_curve.png"):
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "tb").iterdir()) and (tmp_path / "checkpoints" / "4").is_dir()


def test_train_cli_rejects_bad_algorithm_settings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.train", f"hydra.run.dir={tmp_path}",
                             "algo.normalise=typo", "algo=reinforce"], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode != 0
    assert "algo.normalise" in result.stderr and "Traceback" not in result.stderr
