"""``python -m bpjax.train algo=ppo|reinforce|reinforce_paper kitchen/scenario=full|understaffed ...``

Trains `n_seeds` seeds together, shows a tqdm bar, writes metrics.csv, TensorBoard scalars (tb/), Orbax
checkpoints (checkpoints/), learning_curve.png and metrics.json into the Hydra output directory, and prints
metrics.json as its last line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import hydra
import jax
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, quiet_library_logs
from bpjax.config.schema import register as register_schemas
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.kitchen import make_kitchen

register_schemas()  # before Hydra composes: train.yaml's defaults name the schemas


def optimal_ticks(spec: KitchenSpec, max_states: int | None) -> int | None:
    from bpjax.solve.solver import SolverBudgetExceeded, solve

    try:
        return solve(spec, max_states).optimal_ticks
    except SolverBudgetExceeded:
        return None


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


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    quiet_library_logs()
    from tqdm import tqdm

    from bpjax.agents.common import NonFiniteError, make_greedy_evaluator
    from bpjax.train.loop import algorithm_config, train

    try:
        spec = KitchenSpec.from_dict(cfg.kitchen)
        algo = OmegaConf.to_container(cfg.algo, resolve=True)
        name, algo_config, n_updates = algorithm_config(algo)
    except (ConfigError, ValueError) as error:
        sys.exit(f"{type(error).__name__}: {error}")
    out = Path(HydraConfig.get().runtime.output_dir)
    env, env_params = make_kitchen(spec)
    seeds = [int(cfg.seed) + i for i in range(int(cfg.n_seeds))]
    optimum = optimal_ticks(spec, cfg.solver_max_states)

    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))
    bar = tqdm(total=n_updates, desc=f"{name} {spec.scenario}", unit="upd")

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
        result = train(env, env_params, algo, seeds, int(cfg.chunk), out, int(cfg.checkpoint_every),
                       bool(cfg.resume), on_chunk, shard_envs=bool(cfg.shard_envs))
    except NonFiniteError as error:
        sys.exit(f"NonFiniteError: {error}")
    finally:
        bar.close()
        writer.close()
    wall = time.perf_counter() - start

    evaluate = make_greedy_evaluator(env, env_params, result.network)
    greedy = [int(t) for t in jax.vmap(evaluate)(result.states.params)]
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
        "wall_s": round(wall, 3), "env_steps": steps, "env_steps_per_s": round(steps / wall, 1),
        "resumed_from": result.resumed_from, "devices": jax.device_count(),
        # what a sweep's aggregation groups by: this job's overrides and its whole resolved config
        "overrides": list(HydraConfig.get().overrides.task),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
