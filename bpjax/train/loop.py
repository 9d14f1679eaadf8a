"""The training loop around the agents' jitted `run(state, n_updates)`: several seeds vmapped in one call,
the run cut into chunks (progress, metrics, NaN checks and Orbax checkpoints between chunks; no host
round-trip inside a chunk), and exact resume: a chunk's result depends only on the state it starts from.

On one device the first chunk's program (and, if asked, the greedy evaluator) compiles in a background thread
while the initial state is computed: XLA compiles outside Python's lock, so a second core does the rest meanwhile.

A population of kitchens of one shape (``kitchens=[...]`` with params stacked along a leading kitchen axis,
:mod:`bpjax.env.population`) trains in the same one compiled call: every (kitchen, seed) pair is one run,
kitchen-major, each stepping its own kitchen's params. With several devices its runs are split over them (no
communication between runs), where a single kitchen splits each seed's environments instead.

Resume guarantees (``resume=True`` on a run folder):

- ``metrics.csv`` is written to a temporary file and renamed over the old one, so a crash at any moment
  leaves the previous complete file; rows past the last checkpoint are dropped when resuming;
- Orbax commits a checkpoint by renaming a finished temporary folder, so a crash while saving leaves the
  previous checkpoint as the latest;
- ``run.json`` records what the run trains (algorithm and its settings, seeds, kitchen); resuming with
  anything else is refused with one line naming the keys that differ. ``n_updates`` may grow (training
  continues to it) but not shrink.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from bpjax.agents.common import (ENV_AXIS, NonFiniteError, TrainState, greedy_policy, initial_states,
                                 make_greedy_evaluator)
from bpjax.agents.ppo import PPOConfig, make_ppo
from bpjax.agents.reinforce import ReinforceConfig, make_reinforce
from bpjax.env.config import ConfigError
from bpjax.env.kitchen import Kitchen
from bpjax.env.rollout import run_episodes
from bpjax.env.types import EnvParams

RunId = tuple  # (kitchen id or None, seed): one trained run
RUN_AXIS = "runs"  # mesh axis a population's runs are split over

ALGORITHMS: dict[str, tuple[type, Callable]] = {"ppo": (PPOConfig, make_ppo),
                                                 "reinforce": (ReinforceConfig, make_reinforce)}
METRICS_FILE = "metrics.csv"
RUN_FILE = "run.json"   # what the run trains: checked when resuming


def algorithm_config(algo: Mapping[str, Any]) -> tuple[str, Any, int]:
    """(name, config dataclass, n_updates) from the `algo` config group; unknown keys are errors."""
    algo = dict(algo)
    name = algo.pop("name", None)
    if name not in ALGORITHMS:
        raise ConfigError(f"algo.name: {name!r} is not a training algorithm (known: {', '.join(ALGORITHMS)}, with "
                          "their recipes in conf/algo/; forest, boosting, bc and gail learn the trainees' policy: "
                          "python -m bpjax.imitation)")
    n_updates = algo.pop("n_updates", None)
    if not isinstance(n_updates, int) or n_updates < 1:
        raise ConfigError(f"algo.n_updates: expected a positive integer, got {n_updates!r}")
    config_type = ALGORITHMS[name][0]
    fields = {f.name for f in dataclasses.fields(config_type)}
    for key in algo:
        if key not in fields:
            raise ConfigError(f"algo.{key}: unknown setting for {name} (known: {', '.join(sorted(fields))})")
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


def run_sharding(n_runs: int, devices: list | None = None) -> jax.sharding.NamedSharding | None:
    """Independent runs split along their leading axis over the most visible devices that divide `n_runs`;
    None with a single device."""
    devices = jax.devices() if devices is None else devices
    count = max(d for d in range(1, len(devices) + 1) if n_runs % d == 0)
    if count == 1:
        return None
    mesh = jax.make_mesh((count,), (RUN_AXIS,), (jax.sharding.AxisType.Auto,), devices=devices[:count])
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(RUN_AXIS))


@dataclass
class TrainRun:
    name: str
    network: Any
    states: TrainState                 # batched over runs (seeds; kitchen-major x seeds for a population)
    history: dict[str, np.ndarray]     # metric -> [runs, updates]
    updates_done: int
    resumed_from: int | None           # update the run continued from, when resumed
    runs: list[RunId] = dataclasses.field(default_factory=list)  # (kitchen or None, seed) per run, in order
    greedy_ticks: list[int] | None = None  # ticks of each run's deterministic greedy round (train(greedy=True))


def _saveable(state: TrainState) -> TrainState:
    return state.replace(key=jax.random.key_data(state.key))


def _restore(manager, step: int, template: TrainState) -> TrainState:
    """The checkpoint of update `step`; ConfigError naming it where it cannot be read back (damaged, partly
    deleted, or of another shape)."""
    import orbax.checkpoint as ocp

    try:
        saved = manager.restore(step, args=ocp.args.StandardRestore(_saveable(template)))
    except Exception as error:  # Orbax raises many kinds (ValueError, KeyError, FileNotFoundError, ...)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        folder = Path(str(manager.directory)) / str(step)
        raise ConfigError(f"resume: checkpoint {folder} cannot be restored ({reason}); without that folder the "
                          f"run resumes from its checkpoint before") from None
    return saved.replace(key=jax.random.wrap_key_data(saved.key))


def _read_history(path: Path, up_to: int) -> list[dict[str, float]]:
    """The rows of metrics.csv up to update `up_to`; ConfigError naming the line if one is unreadable."""
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                if int(row["update"]) <= up_to:
                    int(row["seed"]), [float(v) for v in row.values()]  # parses: written whole
                    rows.append(row)  # as written, so a resumed run rewrites the same text
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"resume: {path}, line {line}: not a metrics row ({dict(row)})") from None
    return rows


def run_record(name: str, config: Any, seeds: list[int], n_updates: int, env_params: EnvParams,
               kitchen: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a run trains, as run.json holds it: the kitchen as given, else a digest of its env params."""
    if kitchen is None:
        digest = hashlib.sha256()
        for leaf in jax.tree.leaves(env_params):
            leaf = np.asarray(leaf)
            digest.update(f"{leaf.dtype}{leaf.shape}".encode() + leaf.tobytes())
        kitchen = {"env_params_sha256": digest.hexdigest()}
    settings = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists, as JSON reads them back
    return {"algo": {"name": name, **settings}, "seeds": list(seeds), "kitchen": json.loads(json.dumps(kitchen)),
            "n_updates": n_updates}


def _differences(saved: Any, now: Any, path: str) -> list[tuple[str, Any, Any]]:
    """(key, saved value, value now) of each leaf that differs; another algorithm is one difference."""
    if isinstance(saved, dict) and isinstance(now, dict):
        if path == "algo" and saved.get("name") != now.get("name"):
            return [("algo.name", saved.get("name"), now.get("name"))]
        return [d for key in sorted(set(saved) | set(now), key=str)
                for d in _differences(saved.get(key), now.get(key), f"{path}.{key}" if path else str(key))]
    return [] if saved == now else [(path, saved, now)]


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_resume_folder(out_dir: Path, record: Mapping[str, Any]) -> None:
    """:func:`check_resume` against the folder's run.json (runs from before run.json resume unchecked);
    ConfigError naming run.json where it cannot be read."""
    if not (out_dir / RUN_FILE).exists():
        return
    try:
        saved = json.loads((out_dir / RUN_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"resume: {out_dir / RUN_FILE} cannot be read ({error})") from None
    check_resume(saved, record, out_dir)


def check_resume(saved: Mapping[str, Any], now: Mapping[str, Any], where: Path) -> None:
    """Refuse (ConfigError, one line) to resume a run with other settings than it was trained with, or with
    fewer updates than it was set to."""
    differ = _differences({k: v for k, v in saved.items() if k != "n_updates"},
                          {k: v for k, v in now.items() if k != "n_updates"}, "")
    if differ:
        shown = "; ".join(f"{key} {_short(a)} -> {_short(b)}" for key, a, b in differ[:4])
        more = f"; and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ConfigError(f"resume: {where} was trained with other settings ({shown}{more}); resume with its "
                          f"settings or train in a new folder")
    if now["n_updates"] < saved["n_updates"]:
        raise ConfigError(f"algo.n_updates: {now['n_updates']} is fewer than the {saved['n_updates']} this run "
                          f"was set to train (it may grow when resuming, not shrink)")


def _write_json(path: Path, value: Any) -> None:
    """Write through a temporary file and a rename: readers see the old file or the new one, whole."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def train(env: Kitchen, env_params: EnvParams, algo: Mapping[str, Any], seeds: list[int], chunk: int,
          out_dir: Path | None = None, checkpoint_every: int = 1, resume: bool = False,
          on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None,
          shard_envs: bool = True, kitchen: Mapping[str, Any] | None = None,
          kitchens: list[int] | None = None, greedy: bool = False) -> TrainRun:
    """Train `len(seeds)` independent runs together. Writes metrics.csv, run.json (and checkpoints) under
    `out_dir`; `kitchen` (its config) identifies the kitchen in run.json, else a digest of `env_params`.

    With `kitchens` (an id per kitchen, e.g. its skills seed), `env_params` holds one kitchen per entry along
    a leading axis and every kitchen trains every seed: ``len(kitchens) * len(seeds)`` runs, kitchen-major,
    in one compiled call; metrics.csv gains a ``kitchen`` column.

    With several visible devices and `shard_envs`, each seed's environments are split over them (the agents
    mark their env batch with `shard_env_batch`; XLA partitions the rest), or for a population its runs (every
    device steps whole runs): same results up to float reduction order.

    With `greedy`, every run plays one deterministic greedy round at the end (its ticks in
    ``greedy_ticks``), from a program compiled while training runs."""
    name, config, n_updates = algorithm_config(algo)
    if chunk < 1:
        raise ConfigError(f"chunk: expected a positive integer, got {chunk}")
    record = run_record(name, config, seeds, n_updates, env_params, kitchen)
    if kitchens is not None:
        record["kitchens"] = list(kitchens)
    programs = _programs(env, env_params, name, config, seeds, kitchens)
    keys = jax.vmap(jax.random.key)(np.asarray([seed for _, seed in programs.runs], np.uint32))
    split_runs = run_sharding(len(programs.runs)) if shard_envs and kitchens is not None else None
    mesh = env_mesh(env_batch_size(config)) if shard_envs and kitchens is None else None
    if mesh is None:
        if split_runs is not None:
            programs = programs.split(split_runs)
        with ThreadPoolExecutor(2, thread_name_prefix="bpjax-compile") as pool:
            # the compiler needs only the state's shapes: compile while the initial state is computed
            abstract = jax.eval_shape(programs.init_all, *programs.init_args, keys)
            if split_runs is not None:
                abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=split_runs),
                                        abstract)
            ahead: dict[int, Future] = {}
            if not resume:  # a fresh run's first chunk, before the checkpoint folder (and Orbax) is opened
                ahead[min(chunk, n_updates)] = pool.submit(programs.compile_chunk, abstract, min(chunk, n_updates))
            evaluate = pool.submit(programs.compile_greedy, abstract.params) if greedy else None
            manager, done, rows = _checkpoints(out_dir, resume, record)
            if resume and done < n_updates:
                size = min(chunk, n_updates - done)
                ahead[size] = pool.submit(programs.compile_chunk, abstract, size)
            states = initial_states(programs.init_all, *programs.init_args, keys)
            if split_runs is not None:  # computed on one device (see initial_states), then split
                states = jax.device_put(states, split_runs)
            run = _train(name, programs, ahead, states, manager, done, rows, n_updates, chunk, out_dir,
                         checkpoint_every, on_chunk)
            if evaluate is not None:
                run.greedy_ticks = [int(t) for t in evaluate.result()(run.states.params, *programs.eval_args)]
        return run
    manager, done, rows = _checkpoints(out_dir, resume, record)
    with jax.set_mesh(mesh):
        states = initial_states(programs.init_all, *programs.init_args, keys)
        # computed on one device (see initial_states), then laid out as the mesh's program lays it out
        states = jax.device_put(states, programs.init_all.lower(*programs.init_args, keys).compile().output_shardings)
        run = _train(name, programs, {}, states, manager, done, rows, n_updates, chunk, out_dir, checkpoint_every,
                     on_chunk)
    if greedy:
        run.greedy_ticks = [int(t) for t in programs.evaluate(run.states.params, *programs.eval_args)]
    return run


@dataclass
class Programs:
    """A training run's jitted programs and the leading arguments each takes."""

    network: Any
    runs: list[RunId]
    init_all: Callable      # (*init_args, keys) -> states
    init_args: tuple
    run_all: Callable       # (*run_args, states, n_updates) -> (states, metrics); n_updates static
    run_args: tuple
    evaluate: Callable      # (params, *eval_args) -> int32 greedy ticks per run
    eval_args: tuple

    def chunk(self, states, n_updates: int):
        return self.run_all(*self.run_args, states, n_updates)

    def compile_chunk(self, states, n_updates: int) -> Callable:
        """`chunk(states, n_updates)` compiled for states of this shape: a function of the states alone."""
        compiled = self.run_all.lower(*self.run_args, states, n_updates).compile()
        return lambda states: compiled(*self.run_args, states)

    def compile_greedy(self, params) -> Callable:
        return self.evaluate.lower(params, *self.eval_args).compile()

    def split(self, sharding: jax.sharding.NamedSharding) -> "Programs":
        """The programs with their per-run arguments laid out by `sharding` (runs over devices); the compiled
        programs follow their arguments' layout."""
        place = lambda args: tuple(jax.device_put(a, sharding) for a in args)  # noqa: E731
        return dataclasses.replace(self, run_args=place(self.run_args), eval_args=place(self.eval_args))


def _programs(env, env_params, name, config, seeds, kitchens) -> Programs:
    """The programs of one kitchen (`kitchens` None: its params are constants of the programs) or of a
    population (params stacked along a leading kitchen axis, repeated per seed: an argument)."""
    make = ALGORITHMS[name][1]
    if kitchens is None:
        network, init, run = make(env, env_params, config)
        return Programs(network, [(None, seed) for seed in seeds], jax.jit(jax.vmap(init)), (),
                        jax.jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1), (),
                        jax.jit(jax.vmap(make_greedy_evaluator(env, env_params, network))), ())
    per_run = jax.tree.map(lambda x: np.repeat(np.asarray(x), len(seeds), axis=0), env_params)
    horizons = np.unique(np.asarray(env_params.max_ticks))
    # one horizon for all: kept a Python constant, so learners that size their rollouts by it still trace
    fixed = (lambda p: p.replace(max_ticks=np.int32(horizons[0]))) if len(horizons) == 1 else (lambda p: p)
    network = make(env, fixed(jax.tree.map(lambda x: x[0], per_run)), config)[0]

    def init(params, key):
        return make(env, fixed(params), config)[1](key)

    def run(params, state, n_updates):
        return make(env, fixed(params), config)[2](state, n_updates)

    n_steps = env.n_slots + int(horizons.max()) + 1  # rollout.max_decisions of the longest horizon

    def evaluate(network_params, kitchen):
        policy = greedy_policy(env, network, network_params)
        return run_episodes(env, kitchen, policy, jax.random.key(0), 1, n_steps).ticks[0]

    return Programs(network, [(k, seed) for k in kitchens for seed in seeds], jax.jit(jax.vmap(init)), (per_run,),
                    jax.jit(jax.vmap(run, in_axes=(0, 0, None)), static_argnums=2), (per_run,),
                    jax.jit(jax.vmap(evaluate)), (per_run,))


def _checkpoints(out_dir: Path | None, resume: bool, record: dict) -> tuple[Any, int, list[dict]]:
    """(Orbax checkpoint manager or None, the update to continue from, metrics rows up to it); refuses to
    resume a run trained with other settings; writes run.json."""
    if out_dir is None:
        return None, 0, []
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager((out_dir / "checkpoints").resolve(),
                                    options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
    done, rows = 0, []
    if resume and manager.latest_step() is not None:
        check_resume_folder(out_dir, record)
        done = int(manager.latest_step())
        rows = _read_history(out_dir / METRICS_FILE, done)
    _write_json(out_dir / RUN_FILE, record)
    return manager, done, rows


def _train(name: str, programs: Programs, ahead: dict[int, Future], states, manager, done: int, rows: list[dict],
           n_updates: int, chunk: int, out_dir, checkpoint_every: int, on_chunk) -> TrainRun:
    """Chunks from update `done` (restored from its checkpoint) to `n_updates`; `ahead`: chunk sizes whose
    program is being compiled (a Future of a function of the states)."""
    resumed_from = done if done else None
    if done:
        states = _restore(manager, done, states)
    if out_dir is not None:
        import orbax.checkpoint as ocp
    runs = programs.runs
    chunks_done = 0
    while done < n_updates:
        size = min(chunk, n_updates - done)
        states, metrics = ahead[size].result()(states) if size in ahead else programs.chunk(states, size)
        metrics = jax.tree.map(np.asarray, metrics)  # [seeds, size]; the one host sync per chunk
        bad = np.argwhere(~metrics["finite"])
        if len(bad):
            seed_index, offset = bad[0]
            kitchen, seed = runs[seed_index]
            where = f"seed {seed}" if kitchen is None else f"kitchen {kitchen}, seed {seed}"
            raise NonFiniteError(f"non-finite loss or parameters at update {done + offset + 1} "
                                 f"({where}): training stopped")
        for offset in range(size):
            for index, (kitchen, seed) in enumerate(runs):
                rows.append({"update": done + offset + 1, **({} if kitchen is None else {"kitchen": kitchen}),
                             "seed": seed,
                             **{k: float(v[index, offset]) for k, v in metrics.items() if k != "finite"}})
        done += size
        chunks_done += 1
        if out_dir is not None:
            _write_history(out_dir / METRICS_FILE, rows)
            if chunks_done % checkpoint_every == 0 or done == n_updates:
                with _ctrl_c_held():
                    manager.save(done, args=ocp.args.StandardSave(_saveable(states)))
                    manager.wait_until_finished()
        if on_chunk is not None:
            on_chunk(done, metrics)
    if manager is not None:
        manager.close()
    return TrainRun(name, programs.network, states, _history(rows, runs), done, resumed_from, runs)


@contextlib.contextmanager
def _ctrl_c_held():
    """Hold a Ctrl-C until the block ends: a checkpoint is written whole, and orbax neither logs a traceback for
    nor forgets the save it was waiting on when interrupted there."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _write_history(path: Path, rows: list[dict]) -> None:
    """metrics.csv through a temporary file, synced, then renamed over the old one: never half-written."""
    if not rows:
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _run_of(row: Mapping[str, Any]) -> RunId:
    return (int(row["kitchen"]) if "kitchen" in row else None, int(row["seed"]))


def _history(rows: list[dict], runs: list[RunId]) -> dict[str, np.ndarray]:
    """metric -> [runs, updates] from metrics.csv rows."""
    if not rows:
        return {}
    keys = [k for k in rows[0] if k not in ("update", "kitchen", "seed")]
    updates = sorted({int(r["update"]) for r in rows})
    position = {run: i for i, run in enumerate(runs)}
    out = {k: np.full((len(runs), len(updates)), np.nan) for k in keys}
    for row in rows:
        for k in keys:
            out[k][position[_run_of(row)], int(row["update"]) - updates[0]] = float(row[k])
    out["update"] = np.asarray(updates)
    return out
