"""The speed benchmark's gymnasium env (benchmarks/kitchen_gym.py, what the SB3 peer trains on) is the bpjax
MDP: gymnasium's own checker passes, and along random legal rounds its observations, masks, rewards and
round ends are exactly the JAX env's (scaled features included)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bpjax.env.kitchen import make_kitchen
from tests.conftest import jax_replay, spec_for

gym = pytest.importorskip("gymnasium")
REPO = Path(__file__).resolve().parents[1]


def kitchen_gym():
    spec = importlib.util.spec_from_file_location("kitchen_gym", REPO / "benchmarks" / "kitchen_gym.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scenario", ["full", "understaffed"])
def test_gym_env_is_the_jax_env(scenario):
    from gymnasium.utils.env_checker import check_env

    spec = spec_for(f"kitchen/scenario={scenario}")
    env, params = make_kitchen(spec)
    scale = np.asarray(env.obs_scale(params))
    gym_env = kitchen_gym().ReferenceKitchenEnv(spec.to_dict(), scale)
    check_env(gym_env, skip_render_check=True)

    rng = np.random.default_rng(0)
    rounds = []
    for _ in range(20):
        obs, _ = gym_env.reset(seed=int(rng.integers(1 << 30)))
        steps, over = [], False
        while not over:
            mask = gym_env.action_masks()
            action = int(rng.choice(np.flatnonzero(mask)))
            next_obs, reward, terminated, truncated, _ = gym_env.step(action)
            steps.append((action, obs, mask, reward, terminated, truncated))
            obs, over = next_obs, terminated or truncated
        rounds.append(steps)
    length = max(len(r) for r in rounds)
    actions = np.full((len(rounds), length), spec.end_tick_action, np.int32)
    for i, steps in enumerate(rounds):
        actions[i, :len(steps)] = [s[0] for s in steps]
    (raw, mask, reward, terminated, truncated, _), _ = jax_replay(spec, actions)
    features = np.asarray(raw) / scale
    for i, steps in enumerate(rounds):
        for t, (_, obs, gym_mask, gym_reward, gym_terminated, gym_truncated) in enumerate(steps):
            np.testing.assert_array_equal(obs, features[i, t], err_msg=f"round {i} step {t}")
            np.testing.assert_array_equal(gym_mask, np.asarray(mask[i, t]))
            assert (gym_reward, gym_terminated, gym_truncated) == (
                float(reward[i, t]), bool(terminated[i, t]), bool(truncated[i, t]))
        assert steps[-1][4] or steps[-1][5]  # every round ended


def test_wrong_scale_is_refused():
    spec = spec_for()
    with pytest.raises(ValueError, match=r"^obs_scale: expected shape \(52,\), got \(3,\)$"):
        kitchen_gym().ReferenceKitchenEnv(spec.to_dict(), np.ones(3))
