"""Sweep throughput: configs × seeds trained per hour through Hydra's multirun, with and without seed
vectorisation, in the same run.

Both arms run the same sweep — ``--configs`` (a Hydra sweep over kitchens) × ``--seeds`` seeds, PPO with
``--updates`` updates — as ``python -m bpjax.train -m`` with the basic launcher (jobs one after another in one
process, as on a laptop):

- vectorised: one job per config, its seeds vmapped in one call (``n_seeds=S``): N jobs;
- one seed per job: ``seed=0,…,S-1 n_seeds=1``: N × S jobs, each compiling and stepping on its own.

Reported: wall time of each sweep (compilation included: it is part of what a sweep costs; each arm starts from
an empty cache folder of its own), configs × seeds per hour, and the ratio, plus the jobs' median greedy ticks so
the two arms visibly did the same work.

``--kitchens K`` compares instead a population of K random kitchens (``kitchen/skills=random``, skills seeds
0 … K-1) × ``--seeds`` seeds:

- one job: ``n_kitchens=K n_seeds=S cpu_devices=D``, every (kitchen, seed) run in one compiled call, the runs
  split over D CPU devices (``--cpu-devices``, default 0: one per core);
- one job per kitchen: ``skills_seed=0,…,K-1 n_seeds=S``: K jobs, each compiling its own program (one device:
  a job's 2 × 32 environments are too few to gain from splitting).

It reports kitchens × seeds per hour of both, the ratio, and per arm how many kitchens reached their exact
optimum (best seed) and the share of runs that did. The optima are solved before the arms (the jobs skip the
solver), so both arms time training alone, start-up and compilation included.

    python benchmarks/sweep_throughput.py --json sweep_throughput.json
    python benchmarks/sweep_throughput.py --kitchens 16 --seeds 2 --updates 150 --json kitchens.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parents[1]


def run_sweep(overrides: list[str], sweep_dir: Path) -> tuple[float, list[dict]]:
    """Wall time and metrics.json of each job of `python -m bpjax.train -m`; the sweep gets a cache folder of its
    own, empty, so it compiles (and solves) what a new sweep would, whatever ran before."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "BPJAX_CACHE_DIR": str(sweep_dir.with_name(sweep_dir.name + "-cache"))}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # a caller's cache folder would be shared by both arms
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bpjax.train", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides],
                   check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    return wall, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="kitchen/scenario=full,understaffed",
                        help="the swept config group (Hydra sweep syntax)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--kitchens", type=int, default=0,
                        help="compare one job of this many random kitchens with one job per kitchen")
    parser.add_argument("--cpu-devices", type=int, default=0,
                        help="with --kitchens: the one job's cpu_devices (0: one per core)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.kitchens:
        return kitchens_main(args)

    n_configs = len(args.configs.split("=", 1)[1].split(","))
    common = [args.configs, "algo=ppo", f"algo.n_updates={args.updates}", f"chunk={args.updates}"]
    arms = {"vectorised": [f"n_seeds={args.seeds}"],
            "one_seed_per_job": [f"seed={','.join(map(str, range(args.seeds)))}", "n_seeds=1"]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in arms.items():
            wall, jobs = run_sweep(common + overrides, Path(tmp) / name)
            trained = n_configs * args.seeds
            assert sum(len(j["seeds"]) for j in jobs) == trained, f"{name}: expected {trained} seeds trained"
            results[name] = {
                "jobs": len(jobs), "wall_s": round(wall, 2),
                "config_seeds_per_hour": round(trained * 3600 / wall, 1),
                "training_wall_s_in_jobs": round(sum(j["wall_s"] for j in jobs), 2),
                "greedy_ticks": sorted(t for j in jobs for t in j["greedy_ticks"]),
            }
            print(f"{name:>17}: {len(jobs)} jobs, {wall:7.1f} s, "
                  f"{results[name]['config_seeds_per_hour']:8.1f} config×seeds/h", flush=True)
    report = {
        "benchmark": "sweep_throughput", "configs": args.configs, "n_configs": n_configs, "seeds": args.seeds,
        "algo": "ppo", "updates": args.updates, "launcher": "basic (sequential, one process)",
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "jax": jax.__version__, "devices": jax.device_count()},
        **results,
        "speedup_vectorised": round(results["one_seed_per_job"]["wall_s"] / results["vectorised"]["wall_s"], 2),
    }
    print(json.dumps(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


def _at_optimum(kitchens: list[dict]) -> dict:
    runs = [(g, k["optimal_ticks"]) for k in kitchens for g in k["greedy_ticks"] if k["optimal_ticks"] is not None]
    return {"kitchens_at_optimum": sum(1 for k in kitchens if k["optimal_ticks"] is not None
                                       and min(k["greedy_ticks"]) == k["optimal_ticks"]),
            "kitchens_solved": sum(1 for k in kitchens if k["optimal_ticks"] is not None),
            "runs_at_optimum": round(sum(g == o for g, o in runs) / max(1, len(runs)), 3)}


def kitchens_main(args) -> None:
    from bpjax.config import compose_config
    from bpjax.env.config import KitchenSpec
    from bpjax.solve.solver import solve

    count, seeds = args.kitchens, args.seeds
    # the exact optima are solved here, once, so neither arm's wall time holds the solver (nor its memo)
    optima = [solve(KitchenSpec.from_dict(compose_config(["kitchen/skills=random", f"skills_seed={s}"]).kitchen)
                    ).optimal_ticks for s in range(count)]
    common = ["kitchen/skills=random", "algo=ppo", f"algo.n_updates={args.updates}", f"chunk={args.updates}",
              f"n_seeds={seeds}", "progress=false", "solver_max_states=0"]
    arms = {"one_job": [f"n_kitchens={count}", f"cpu_devices={args.cpu_devices}"],
            "one_job_per_kitchen": [f"skills_seed={','.join(map(str, range(count)))}"]}
    load = {"before": os.getloadavg()}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in arms.items():
            wall, jobs = run_sweep(common + overrides, Path(tmp) / name)
            kitchens = sorted((k for j in jobs for k in j["kitchens"]), key=lambda k: k["skills_seed"])
            assert [k["skills_seed"] for k in kitchens] == list(range(count)), f"{name}: kitchens missing"
            for kitchen, optimum in zip(kitchens, optima):
                kitchen["optimal_ticks"] = optimum
            results[name] = {
                "jobs": len(jobs), "wall_s": round(wall, 2),
                "kitchen_seeds_per_hour": round(count * seeds * 3600 / wall, 1),
                "training_wall_s_in_jobs": round(sum(j["wall_s"] for j in jobs), 2),
                **_at_optimum(kitchens),
                "kitchens": [{k: v for k, v in kitchen.items() if k != "skills"} for kitchen in kitchens],
            }
            print(f"{name:>20}: {len(jobs)} jobs, {wall:7.1f} s, {results[name]['kitchen_seeds_per_hour']:8.1f} "
                  f"kitchen×seeds/h, {results[name]['kitchens_at_optimum']}/{count} kitchens at the optimum",
                  flush=True)
            load[f"after_{name}"] = os.getloadavg()
    report = {
        "benchmark": "sweep_throughput_kitchens", "kitchens": count, "seeds": seeds, "algo": "ppo",
        "updates": args.updates, "launcher": "basic (sequential, one process)", "load_average": load,
        "one_job_cpu_devices": args.cpu_devices,
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "jax": jax.__version__, "devices": jax.device_count()},
        **results,
        "speedup_one_job": round(results["one_job_per_kitchen"]["wall_s"] / results["one_job"]["wall_s"], 2),
    }
    print(json.dumps({k: v for k, v in report.items() if k not in arms}))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
