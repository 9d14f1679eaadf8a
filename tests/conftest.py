"""Shared helpers for the test suite."""

from __future__ import annotations

import atexit
import functools
import os
import random
import shutil
import tempfile
from pathlib import Path

# Compile each program once per test session: in-process tests and the command lines they start as
# subprocesses (which inherit the environment) share compiled XLA programs through a persistent cache.
# The folder is new for every session and removed at its end, so no result depends on an earlier run.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="bpjax-test-xla-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

# A second guard against XLA CPU pool deadlocks (the one found, initialiser vs first chunk, is fixed in
# bpjax.train.loop): single-threaded Eigen. Subprocesses inherit it too.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()

import httpx  # noqa: E402
import jax  # noqa: E402  (after the cache settings, which jax reads at import)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from bpjax.config import compose_config  # noqa: E402
from bpjax.data.traces import record_episode  # noqa: E402
from bpjax.env.config import KitchenSpec  # noqa: E402
from bpjax.env.kitchen import make_kitchen  # noqa: E402
from bpjax.env.reference import ReferenceKitchen  # noqa: E402


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


# ---- the JAX env against the reference, step by step ----------------------------------------------

def compare(spec, n_episodes: int, seed: int, illegal_rate: float = 0.1) -> int:
    """Replay `n_episodes` random reference episodes through the JAX env; returns steps compared."""
    ref = ReferenceKitchen(spec.to_dict())
    episodes = reference_episodes(ref, n_episodes, seed, illegal_rate)
    length = max(len(steps) for steps, _ in episodes)
    # Pad with end-tick: on an ended episode it is a flagged no-op, and padded steps are not compared.
    actions = np.full((n_episodes, length), ref.end_tick_action, np.int32)
    for i, (steps, _) in enumerate(episodes):
        actions[i, :len(steps)] = [step[0] for step in steps]
    (obs, mask, reward, terminated, truncated, illegal), final_obs = jax_replay(spec, actions)
    obs, mask, reward = np.asarray(obs), np.asarray(mask), np.asarray(reward)
    terminated, truncated, illegal = np.asarray(terminated), np.asarray(truncated), np.asarray(illegal)
    compared = 0
    for i, (steps, ref_final_obs) in enumerate(episodes):
        for t, (action, ref_obs, ref_mask, ref_reward, ref_term, ref_trunc, ref_illegal) in enumerate(steps):
            where = f"episode {i} step {t} action {action}"
            np.testing.assert_array_equal(obs[i, t], np.asarray(ref_obs, np.float32), err_msg=where)
            np.testing.assert_array_equal(mask[i, t], np.asarray(ref_mask), err_msg=where)
            assert (reward[i, t], terminated[i, t], truncated[i, t], illegal[i, t]) == (
                ref_reward, ref_term, ref_trunc, ref_illegal), where
            compared += 1
        np.testing.assert_array_equal(np.asarray(final_obs[i]), np.asarray(ref_final_obs, np.float32))
        # After the end every further action is a flagged no-op.
        assert illegal[i, len(steps):].all() and (reward[i, len(steps):] == 0).all()
    return compared


# ---- traces of random legal play --------------------------------------------------------------------

def random_rounds(spec, n_rounds: int, seed: int) -> pd.DataFrame:
    """Random legal play, recorded as trace rows (2 players, rounds numbered per player)."""
    ref = ReferenceKitchen(spec.to_dict())
    rng = random.Random(seed)
    frames = []
    for index in range(n_rounds):
        state, actions = ref.reset(), []
        while not any(ref.is_over(state)):
            actions.append(rng.choice(ref.legal_actions(state)))
            state = ref.step(state, actions[-1])[0]
        frames.append(record_episode(spec, actions, f"p{index % 2}", index // 2 + 1, f"e{index}"))
    return pd.concat(frames, ignore_index=True)


# ---- a client of the browser game that acts like its page ---------------------------------------------

def connect(url: str, **options) -> httpx.Client:
    """A client that sends the page's Origin and remembers the secret of each participant it joined."""
    client = httpx.Client(base_url=url, headers={"Origin": url.rstrip("/")}, timeout=10, **options)
    client.secrets = {}
    return client


def auth(client, pid) -> dict:
    secret = client.secrets.get(pid) if isinstance(pid, str) else None
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def post(client, path, **body):
    response = client.post(f"/api/{path}", json=body, headers=auth(client, body.get("participant_id")))
    if path == "join" and response.status_code == 200 and "secret" in response.json():
        client.secrets[body["participant_id"]] = response.json()["secret"]
    return response


def state(client, pid):
    return client.get("/api/state", params={"participant_id": pid}, headers=auth(client, pid)).json()


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def kitchen(*overrides: str, skills: dict | None = None) -> KitchenSpec:
    config = OmegaConf.to_container(compose_config(list(overrides)).kitchen, resolve=True)
    if skills:
        config["skills"] = skills
    return KitchenSpec.from_dict(config)


def play(client, pid, view) -> dict:
    """Play to the end of the round: the first legal assignment, else Next tick."""
    while view["phase"] == "playing":
        if view["legal"]:
            pair = view["legal"][0]
            response = post(client, "assign", participant_id=pid, worker=pair["worker"], slot=pair["slot"],
                            tick=view["tick"])
        else:
            response = post(client, "next_tick", participant_id=pid, tick=view["tick"])
        assert response.status_code == 200, response.text
        view = response.json()
    return view


# ---- Markdown the commands write ---------------------------------------------------------------------

def assert_tables_well_formed(markdown: str) -> int:
    """Every Markdown table has as many cells in each row as its header, and a separator row right below the
    header; returns how many tables there are."""
    tables, rows = 0, []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            widths = [row.strip().strip("|").count("|") + 1 for row in rows]
            assert len(rows) >= 2 and set(rows[1].replace("|", "").replace(" ", "")) <= set("-:"), rows[:2]
            assert len(set(widths)) == 1, f"cells per row {widths} in the table under {rows[0]}"
            tables, rows = tables + 1, []
    return tables
