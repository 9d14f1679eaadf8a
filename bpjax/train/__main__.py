"""``python -m bpjax.train algo=ppo|reinforce|reinforce_paper kitchen/scenario=full|understaffed ...``

Trains `n_seeds` seeds together, shows a progress bar on stderr, writes metrics.csv, run.json, TensorBoard
scalars (tb/), Orbax checkpoints (checkpoints/), learning_curve.png and metrics.json into the output folder,
and prints metrics.json as its last line. ``resume=true`` continues a run in its folder (see
:mod:`bpjax.train.loop` for what resuming guarantees).

``n_kitchens=K`` trains the kitchens of ``skills_seed`` ... ``skills_seed + K - 1`` (``kitchen/skills=random``:
one seeded skill matrix each, all of one shape) on every seed, all K x n_seeds runs in the same one compiled
call; metrics.json then lists every kitchen with its skills, exact optimum (or lower bound) and greedy ticks.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from bpjax.config.cli import Run, command
from bpjax.config.schema import MAX_SEED

log = logging.getLogger("bpjax.train")


@dataclass
class TrainSettings:
    spec: Any                # KitchenSpec (the first kitchen of a population)
    algo: dict[str, Any]     # the algo group as a plain mapping
    name: str
    n_updates: int
    seeds: list[int]
    kitchens: list[tuple[int, Any]] | None = None  # (skills_seed, KitchenSpec) per kitchen with n_kitchens > 1


def kitchen_population(cfg: DictConfig) -> list[tuple[int, Any]]:
    """(skills_seed, KitchenSpec) of the kitchens skills_seed .. skills_seed + n_kitchens - 1, all one shape;
    ConfigError when they would not differ (the kitchen does not read skills_seed) or differ in shape."""
    from bpjax.env.config import ConfigError, KitchenSpec
    from bpjax.env.population import population_env

    first, count = int(cfg.skills_seed), int(cfg.n_kitchens)
    if first + count - 1 > MAX_SEED:
        raise ConfigError(f"n_kitchens: skills seeds {first}..{first + count - 1} go beyond {MAX_SEED}")
    kitchens = []
    for skills_seed in range(first, first + count):
        composed = cfg.copy()
        with open_dict(composed):
            composed.skills_seed = skills_seed
        kitchens.append((skills_seed, KitchenSpec.from_dict(OmegaConf.to_container(composed.kitchen, resolve=True))))
    if kitchens[0][1] == kitchens[1][1]:
        raise ConfigError(f"n_kitchens: {count} kitchens asked for, but the kitchen does not change with "
                          f"skills_seed (use kitchen/skills=random)")
    population_env([spec for _, spec in kitchens])
    return kitchens


def split_cpu(devices: int) -> None:
    """Make the CPU `devices` XLA devices (0: one per core this process may use), before JAX starts its
    backend; a device count already set in XLA_FLAGS is kept. ConfigError once JAX has started."""
    import os

    if devices == 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax

    from bpjax.env.config import ConfigError

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", devices or cores)
    except RuntimeError:
        raise ConfigError("cpu_devices: JAX has already started in this process; set it in a new one") from None


def validate(cfg: DictConfig) -> TrainSettings:
    from hydra.core.hydra_config import HydraConfig

    from bpjax.env.config import ConfigError, KitchenSpec
    from bpjax.train.loop import algorithm_config, check_resume_folder, run_record

    spec = KitchenSpec.from_dict(cfg.kitchen)
    algo = OmegaConf.to_container(cfg.algo, resolve=True)
    name, config, n_updates = algorithm_config(algo)
    seeds = [int(cfg.seed) + i for i in range(int(cfg.n_seeds))]
    if seeds[-1] > MAX_SEED:
        raise ConfigError(f"seed: seeds {seeds[0]}..{seeds[-1]} go beyond {MAX_SEED} (seeds are uint32)")
    kitchens = kitchen_population(cfg) if int(cfg.n_kitchens) > 1 else None
    out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    if cfg.resume and out is not None and any(p.name.isdigit() for p in (out / "checkpoints").glob("*")):
        # other settings are refused here, in one line before any work, not once training has begun
        record = run_record(name, config, seeds, n_updates, None, spec.to_dict())
        if kitchens is not None:
            record["kitchens"] = [seed for seed, _ in kitchens]
        check_resume_folder(out, record)
    return TrainSettings(spec, algo, name, n_updates, seeds, kitchens)


def optimal_ticks(spec, max_states: int | None, run: Run) -> int | None:
    """The kitchen's exact optimum for context: memoised per kitchen in the cache folder; None when
    `max_states` is 0 (skipped) or the solver would need more states."""
    from bpjax.config.cache import memo_get, memo_put
    from bpjax.solve.solver import ExactSolver, SolverBudgetExceeded

    if max_states == 0:
        return None
    key = {"kitchen": spec.to_dict(), "max_states": max_states}
    memo = memo_get("optimal_ticks", key)
    if memo is not None:
        return memo["optimal_ticks"]
    solver = ExactSolver(spec, max_states)
    with run.progress.phase("exact optimum (for context)", lambda: len(solver._togo), "states"):
        try:
            ticks = solver.solve().optimal_ticks
        except SolverBudgetExceeded:
            ticks = None
    memo_put("optimal_ticks", key, {"optimal_ticks": ticks})
    return ticks


def learning_curve(history: dict[str, np.ndarray], runs: list[tuple], optimum: int | None, path: Path,
                   title: str) -> None:
    """Mean ticks per update of every run ((kitchen or None, seed)), and the exact optimum as a line (one
    kitchen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (kitchen, seed) in enumerate(runs):
        label = f"seed {seed}" if kitchen is None else f"kitchen {kitchen} seed {seed}"
        ax.plot(history["update"], history["mean_ticks"][index], lw=1, label=label if len(runs) <= 16 else None)
    if optimum is not None:
        ax.axhline(optimum, color="black", ls="--", lw=1, label=f"exact optimum ({optimum})")
    ax.set_xlabel("update")
    ax.set_ylabel("mean ticks of sampled rounds")
    ax.set_title(title)
    if len(runs) <= 16 or optimum is not None:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _tensorboardx():
    """tensorboardX, without the optional torch and boto3 it imports whenever they are installed (seconds of
    imports, for torch tensors and s3:// folders, which training never writes)."""
    hidden = [name for name in ("torch", "boto3") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` fail (Python's import system reference)
    try:
        import tensorboardX
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return tensorboardX


def _preload() -> None:
    """Import what the rest of a run needs (TensorBoard's writer, checkpoints, the plot) while the programs
    compile."""
    _tensorboardx()
    import orbax.checkpoint  # noqa: F401
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def _in_background(work: Callable[[], Any]) -> Future:
    """`work()` in a daemon thread: a failing run does not wait for it to end."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # handed to whoever asks for the result
            future.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    return future


class Scalars:
    """TensorBoard scalars of the runs' mean metrics, per update; the writer is made at the first chunk."""

    def __init__(self, folder: Path):
        self.folder, self.writer = folder, None

    def add(self, done: int, metrics: dict[str, np.ndarray]) -> None:
        if self.writer is None:
            self.writer = _tensorboardx().SummaryWriter(str(self.folder))
        size = metrics["loss"].shape[1]
        for offset in range(size):
            for key, values in metrics.items():
                if key != "finite":
                    self.writer.add_scalar(f"mean/{key}", float(values[:, offset].mean()), done - size + offset + 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@command("train", validate)
def main(cfg: DictConfig, settings: TrainSettings, run: Run) -> None:
    split_cpu(int(cfg.cpu_devices))  # before anything starts JAX
    threading.Thread(target=_preload, daemon=True).start()
    import jax
    from hydra.core.hydra_config import HydraConfig

    from bpjax.config.progress import Progress
    from bpjax.env.kitchen import make_kitchen
    from bpjax.env.population import make_population
    from bpjax.solve.bound import lower_bound_ticks
    from bpjax.train.loop import train

    spec, name, n_updates, seeds, out = settings.spec, settings.name, settings.n_updates, settings.seeds, run.out
    population = settings.kitchens
    specs = [spec] if population is None else [k for _, k in population]
    env, env_params = make_kitchen(spec) if population is None else make_population(specs)
    bounds = [lower_bound_ticks(k) for k in specs]
    label = spec.scenario if population is None else f"{spec.scenario} x {len(population)} kitchens"
    scalars = Scalars(out / "tb")
    bar = run.progress.bar(total=n_updates, desc=f"{name} {label}", unit="upd")

    trained = []  # when the last chunk was done: training's end, before the greedy rounds

    def on_chunk(done: int, metrics: dict[str, np.ndarray]) -> None:
        scalars.add(done, metrics)
        bar.n = done
        bar.set_postfix(ticks=f"{metrics['mean_ticks'][:, -1].mean():.2f}")  # redraws the bar once
        trained[:] = [time.perf_counter()]

    # the exact optima (pure Python) are searched while training compiles and runs; the search's timing goes
    # to the job log, not beside the bar
    quiet = Run(run.name, out, Progress(False))
    solving = _in_background(lambda: [optimal_ticks(k, cfg.solver_max_states, quiet) for k in specs])
    start = time.perf_counter()
    try:
        result = train(env, env_params, settings.algo, seeds, int(cfg.chunk), out, int(cfg.checkpoint_every),
                       bool(cfg.resume), on_chunk, shard_envs=bool(cfg.shard_envs), kitchen=spec.to_dict(),
                       kitchens=None if population is None else [s for s, _ in population], greedy=True)
    finally:
        bar.close()
        scalars.close()
    end = time.perf_counter()
    wall = (trained[0] if trained else end) - start
    log.info("training: %.2f s (%d updates from update %d)", wall, n_updates - (result.resumed_from or 0),
             result.resumed_from or 0)
    log.info("greedy evaluation: %.2f s after training (compiled while it ran)", end - start - wall)
    with run.progress.phase("waiting for the exact optimum"):
        optima = solving.result()
    optimum = optima[0] if population is None else None
    greedy = result.greedy_ticks
    with run.progress.phase("learning curve"):
        learning_curve(result.history, result.runs, optimum, out / "learning_curve.png", f"{name} on {label}")
    # per kitchen: its runs are the consecutive len(seeds) entries (kitchen-major)
    kitchen_ids = [int(cfg.skills_seed)] if population is None else [s for s, _ in population]
    kitchens = []
    for index, (skills_seed, kitchen_spec) in enumerate(zip(kitchen_ids, specs)):
        ticks = greedy[index * len(seeds):(index + 1) * len(seeds)]
        kitchens.append({"skills_seed": skills_seed,
                         "skills": {w.name: list(w.ticks) for w in kitchen_spec.workers},
                         "optimal_ticks": optima[index], "lower_bound_ticks": bounds[index],
                         "greedy_ticks": ticks,
                         "reached_optimum": None if optima[index] is None
                         else float(np.mean([g == optima[index] for g in ticks]))})
    known = [(g, k["optimal_ticks"]) for k in kitchens for g in k["greedy_ticks"] if k["optimal_ticks"] is not None]
    median = float(np.median(greedy))
    # the env steps this process took (a resumed run's wall time covers only the updates after the resume)
    steps = int(result.history["env_steps"][:, result.resumed_from or 0:].sum())
    metrics = {
        "algo": name, "scenario": spec.scenario, "seeds": seeds, "n_updates": n_updates,
        "greedy_ticks": greedy, "greedy_ticks_median": median, "greedy_ticks_best": min(greedy),
        "optimal_ticks": optimum if population is None else None,
        "lower_bound_ticks": bounds[0] if population is None else None,
        "gap": None if optimum is None else median - optimum,
        "reached_optimum": float(np.mean([g == o for g, o in known])) if known else None,
        "n_kitchens": len(kitchens),
        "kitchens_at_optimum": sum(1 for k in kitchens if k["reached_optimum"] is not None
                                   and min(k["greedy_ticks"]) == k["optimal_ticks"]),  # its best seed
        "kitchens_solved": sum(1 for k in kitchens if k["optimal_ticks"] is not None),
        "kitchens": kitchens,
        "wall_s": round(wall, 3), "env_steps": steps, "env_steps_per_s": round(steps / max(wall, 1e-9), 1),
        "resumed_from": result.resumed_from, "devices": jax.device_count(),
        # what a sweep's aggregation groups by: this job's overrides and its whole resolved config
        "overrides": list(HydraConfig.get().overrides.task),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
