"""Shared helpers for the test suite."""

from __future__ import annotations

import atexit
import functools
import os
import random
import shutil
import tempfile

# Compile each program once per test session: in-process tests and the command lines they start as
# subprocesses (which inherit the environment) share compiled XLA programs through a persistent cache.
# The folder is new for every session and removed at its end, so no result depends on an earlier run.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="bpjax-test-xla-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

# XLA's CPU runtime can wedge in its multi-threaded Eigen pool (every thread idle, the caller waiting on a
# result forever, seen on the PPO programs); single-threaded Eigen does not. Subprocesses inherit it too.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()

import jax  # noqa: E402  (after the cache settings, which jax reads at import)
import jax.numpy as jnp
import numpy as np
import pytest

from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen


def spec_for(*overrides: str) -> KitchenSpec:
    return KitchenSpec.from_dict(compose_config(list(overrides)).kitchen)


def reference_episodes(ref: ReferenceKitchen, n_episodes: int, seed: int, illegal_rate: float = 0.1):
    """Random episodes on the reference: mostly legal actions, sometimes any integer (illegal ones too).

    Returns per-episode lists of (action, obs before, mask before, reward, terminated, truncated, illegal)."""
    rng = random.Random(seed)
    episodes = []
    for _ in range(n_episodes):
        state, steps = ref.reset(), []
        while True:
            if rng.random() < illegal_rate:
                action = rng.randrange(-1, ref.n_actions + 1)
            else:
                action = rng.choice(ref.legal_actions(state))
            obs, mask = ref.observation(state), ref.action_mask(state)
            state, reward, terminated, truncated, info = ref.step(state, action)
            steps.append((action, obs, mask, reward, terminated, truncated, info["illegal_action"]))
            if terminated or truncated:
                break
        episodes.append((steps, ref.observation(state)))
    return episodes


def jax_replay(spec: KitchenSpec, actions: np.ndarray):
    """Replay int32[N, L] actions through the JAX env (no auto-reset); per step: obs and mask before the
    step, reward, terminated, truncated, illegal flag; plus the final observation."""
    env, params = make_kitchen(spec)
    return _compiled_replay(env)(params, jnp.asarray(actions, jnp.int32))


@functools.lru_cache(maxsize=None)
def _compiled_replay(env):
    """One compiled replay per env shape: params are an argument, so kitchens of equal size share it."""
    def episode(params, actions):
        def body(state, action):
            obs, mask = env.raw_features(state, params), env.action_mask(state, params)
            state, reward, terminated, truncated, info = env.step_env(None, state, action, params)
            return state, (obs, mask, reward, terminated, truncated, info["illegal_action"])
        final, trace = jax.lax.scan(body, env.reset_env(None, params), actions)
        return trace, env.raw_features(final, params)

    return jax.jit(jax.vmap(episode, in_axes=(None, 0)))


@pytest.fixture(scope="session")
def paper_spec() -> KitchenSpec:
    return spec_for()

