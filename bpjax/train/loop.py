"""The training loop around the agents' jitted `run(state, n_updates)`: several seeds vmapped in one call,
the run cut into chunks (progress, metrics, NaN checks and Orbax checkpoints between chunks; no host
round-trip inside a chunk), and exact resume: a chunk's result depends only on the state it starts from."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from bpjax.agents.common import ENV_AXIS, NonFiniteError, TrainState
from bpjax.agents.ppo import PPOConfig, make_ppo
from bpjax.agents.reinforce import ReinforceConfig, make_reinforce
from bpjax.env.kitchen import Kitchen
from bpjax.env.types import EnvParams

ALGORITHMS: dict[str, tuple[type, Callable]] = {"ppo": (PPOConfig, make_ppo),
                                                 "reinforce": (ReinforceConfig, make_reinforce)}
METRICS_FILE = "metrics.csv"


def algorithm_config(algo: Mapping[str, Any]) -> tuple[str, Any, int]:
    """(name, config dataclass, n_updates) from the `algo` config group; unknown keys are errors."""
    algo = dict(algo)
    name = algo.pop("name", None)
    if name not in ALGORITHMS:
        raise ValueError(f"algo.name: unknown algorithm {name!r} (known: {', '.join(ALGORITHMS)})")
    n_updates = algo.pop("n_updates", None)
    if not isinstance(n_updates, int) or n_updates < 1:
        raise ValueError(f"algo.n_updates: expected a positive integer, got {n_updates!r}")
    config_type = ALGORITHMS[name][0]
    fields = {f.name for f in dataclasses.fields(config_type)}
    for key in algo:
        if key not in fields:
            raise ValueError(f"algo.{key}: unknown setting for {name} (known: {', '.join(sorted(fields))})")
    if "hidden" in algo:
        algo["hidden"] = tuple(algo["hidden"])
    return name, config_type(**algo), n_updates


def env_batch_size(config: Any) -> int:
    """How many environments one seed steps side by side: PPO's n_envs, REINFORCE's n_rollouts."""
    return config.n_envs if hasattr(config, "n_envs") else config.n_rollouts


def env_mesh(env_batch: int, devices: list | None = None) -> jax.sharding.Mesh | None:
    """A 1-D mesh over the most visible devices that divide `env_batch` evenly; None with a single device
    (then nothing is sharded and the program is exactly the single-device one)."""
    devices = jax.devices() if devices is None else devices
    count = max(d for d in range(1, len(devices) + 1) if env_batch % d == 0)
    if count == 1:
        return None
    return jax.make_mesh((count,), (ENV_AXIS,), (jax.sharding.AxisType.Auto,), devices=devices[:count])


@dataclass
class TrainRun:
    name: str
    network: Any
    states: TrainState                 # batched over seeds
    history: dict[str, np.ndarray]     # metric -> [seeds, updates]
    updates_done: int
    resumed_from: int | None           # update the run continued from, when resumed


def _saveable(state: TrainState) -> TrainState:
    return state.replace(key=jax.random.key_data(state.key))


def _restore(manager, step: int, template: TrainState) -> TrainState:
    import orbax.checkpoint as ocp

    saved = manager.restore(step, args=ocp.args.StandardRestore(_saveable(template)))
    return saved.replace(key=jax.random.wrap_key_data(saved.key))


def _read_history(path: Path, up_to: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [row for row in csv.DictReader(f) if int(row["update"]) <= up_to]


def train(env: Kitchen, env_params: EnvParams, algo: Mapping[str, Any], seeds: list[int], chunk: int,
          out_dir: Path | None = None, checkpoint_every: int = 1, resume: bool = False,
          on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None,
          shard_envs: bool = True) -> TrainRun:
    """Train `len(seeds)` independent runs together. Writes metrics.csv (and checkpoints) under `out_dir`.

    With several visible devices and `shard_envs`, each seed's environments are split over them (the agents
    mark their env batch with `shard_env_batch`; XLA partitions the rest): same results up to float
    reduction order."""
    name, config, n_updates = algorithm_config(algo)
    if chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk}")
    mesh = env_mesh(env_batch_size(config)) if shard_envs else None
    with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
        return _train(env, env_params, name, config, n_updates, seeds, chunk, out_dir, checkpoint_every,
                      resume, on_chunk)


def _train(env, env_params, name, config, n_updates, seeds, chunk, out_dir, checkpoint_every, resume,
           on_chunk) -> TrainRun:
    network, init, run = ALGORITHMS[name][1](env, env_params, config)
    states = jax.vmap(init)(jax.vmap(jax.random.key)(np.asarray(seeds, np.uint32)))
    run_chunk = jax.jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1)

    manager, rows, done, resumed_from = None, [], 0, None
    if out_dir is not None:
        import orbax.checkpoint as ocp

        manager = ocp.CheckpointManager((out_dir / "checkpoints").resolve(),
                                        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
        if resume and manager.latest_step() is not None:
            done = resumed_from = int(manager.latest_step())
            states = _restore(manager, done, states)
            rows = _read_history(out_dir / METRICS_FILE, done)

    chunks_done = 0
    while done < n_updates:
        size = min(chunk, n_updates - done)
        states, metrics = run_chunk(states, size)
        metrics = jax.tree.map(np.asarray, metrics)  # [seeds, size]; the one host sync per chunk
        bad = np.argwhere(~metrics["finite"])
        if len(bad):
            seed_index, offset = bad[0]
            raise NonFiniteError(f"non-finite loss or parameters at update {done + offset + 1} "
                                 f"(seed {seeds[seed_index]}): training stopped")
        for offset in range(size):
            for index, seed in enumerate(seeds):
                rows.append({"update": done + offset + 1, "seed": seed,
                             **{k: float(v[index, offset]) for k, v in metrics.items() if k != "finite"}})
        done += size
        chunks_done += 1
        if out_dir is not None:
            _write_history(out_dir / METRICS_FILE, rows)
            if chunks_done % checkpoint_every == 0 or done == n_updates:
                manager.save(done, args=ocp.args.StandardSave(_saveable(states)))
                manager.wait_until_finished()
        if on_chunk is not None:
            on_chunk(done, metrics)
    if manager is not None:
        manager.close()
    return TrainRun(name, network, states, _history(rows, seeds), done, resumed_from)


def _write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _history(rows: list[dict], seeds: list[int]) -> dict[str, np.ndarray]:
    if not rows:
        return {}
    keys = [k for k in rows[0] if k not in ("update", "seed")]
    updates = sorted({int(r["update"]) for r in rows})
    position = {seed: i for i, seed in enumerate(seeds)}
    out = {k: np.full((len(seeds), len(updates)), np.nan) for k in keys}
    for row in rows:
        for k in keys:
            out[k][position[int(row["seed"])], int(row["update"]) - updates[0]] = float(row[k])
    out["update"] = np.asarray(updates)
    return out
