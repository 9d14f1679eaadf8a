"""``python -m bpjax.train algo=ppo|reinforce|reinforce_paper kitchen/scenario=full|understaffed ...``

Trains `n_seeds` seeds together, shows a progress bar on stderr, writes metrics.csv, run.json, TensorBoard
scalars (tb/), Orbax checkpoints (checkpoints/), learning_curve.png and metrics.json into the output folder,
and prints metrics.json as its last line. ``resume=true`` continues a run in its folder (see
:mod:`bpjax.train.loop` for what resuming guarantees).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command
from bpjax.config.schema import MAX_SEED

log = logging.getLogger("bpjax.train")


@dataclass
class TrainSettings:
    spec: Any                # KitchenSpec
    algo: dict[str, Any]     # the algo group as a plain mapping
    name: str
    n_updates: int
    seeds: list[int]


def validate(cfg: DictConfig) -> TrainSettings:
    from bpjax.env.config import ConfigError, KitchenSpec
    from bpjax.train.loop import algorithm_config

    spec = KitchenSpec.from_dict(cfg.kitchen)
    algo = OmegaConf.to_container(cfg.algo, resolve=True)
    name, _, n_updates = algorithm_config(algo)
    seeds = [int(cfg.seed) + i for i in range(int(cfg.n_seeds))]
    if seeds[-1] > MAX_SEED:
        raise ConfigError(f"seed: seeds {seeds[0]}..{seeds[-1]} go beyond {MAX_SEED} (seeds are uint32)")
    return TrainSettings(spec, algo, name, n_updates, seeds)


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


def learning_curve(history: dict[str, np.ndarray], seeds: list[int], optimum: int | None, path: Path,
                   title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, seed in enumerate(seeds):
        ax.plot(history["update"], history["mean_ticks"][index], lw=1, label=f"seed {seed}")
    if optimum is not None:
        ax.axhline(optimum, color="black", ls="--", lw=1, label=f"exact optimum ({optimum})")
    ax.set_xlabel("update")
    ax.set_ylabel("mean ticks of sampled rounds")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _preload() -> None:
    """Import what the end of a run needs (checkpoints, the plot) while the first chunk computes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import orbax.checkpoint  # noqa: F401


@command("train", validate)
def main(cfg: DictConfig, settings: TrainSettings, run: Run) -> None:
    import threading

    threading.Thread(target=_preload, daemon=True).start()
    import jax
    from hydra.core.hydra_config import HydraConfig
    from tensorboardX import SummaryWriter

    from bpjax.agents.common import make_greedy_evaluator
    from bpjax.env.kitchen import make_kitchen
    from bpjax.train.loop import train

    spec, name, n_updates, seeds, out = settings.spec, settings.name, settings.n_updates, settings.seeds, run.out
    env, env_params = make_kitchen(spec)
    optimum = optimal_ticks(spec, cfg.solver_max_states, run)

    writer = SummaryWriter(str(out / "tb"))
    bar = run.progress.bar(total=n_updates, desc=f"{name} {spec.scenario}", unit="upd")

    def on_chunk(done: int, metrics: dict[str, np.ndarray]) -> None:
        size = metrics["loss"].shape[1]
        for offset in range(size):
            for key, values in metrics.items():
                if key != "finite":
                    writer.add_scalar(f"mean/{key}", float(values[:, offset].mean()), done - size + offset + 1)
        bar.n = done
        bar.set_postfix(ticks=f"{metrics['mean_ticks'][:, -1].mean():.2f}")
        bar.refresh()

    start = time.perf_counter()
    try:
        result = train(env, env_params, settings.algo, seeds, int(cfg.chunk), out, int(cfg.checkpoint_every),
                       bool(cfg.resume), on_chunk, shard_envs=bool(cfg.shard_envs), kitchen=spec.to_dict())
    finally:
        bar.close()
        writer.close()
    wall = time.perf_counter() - start
    log.info("training: %.2f s (%d updates from update %d)", wall, n_updates - (result.resumed_from or 0),
             result.resumed_from or 0)

    with run.progress.phase("greedy evaluation"):
        evaluate = make_greedy_evaluator(env, env_params, result.network)
        greedy = [int(t) for t in jax.vmap(evaluate)(result.states.params)]
    with run.progress.phase("learning curve"):
        learning_curve(result.history, seeds, optimum, out / "learning_curve.png",
                       f"{name} on {spec.scenario or 'kitchen'}")
    median = float(np.median(greedy))
    # the env steps this process took (a resumed run's wall time covers only the updates after the resume)
    steps = int(result.history["env_steps"][:, result.resumed_from or 0:].sum())
    metrics = {
        "algo": name, "scenario": spec.scenario, "seeds": seeds, "n_updates": n_updates,
        "greedy_ticks": greedy, "greedy_ticks_median": median, "greedy_ticks_best": min(greedy),
        "optimal_ticks": optimum, "gap": None if optimum is None else median - optimum,
        "reached_optimum": None if optimum is None else float(np.mean([g == optimum for g in greedy])),
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
