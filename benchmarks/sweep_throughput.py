"""Sweep throughput: configs × seeds trained per hour through Hydra's multirun, with and without seed
vectorisation, in the same run.

Both arms run the same sweep — ``--configs`` (a Hydra sweep over kitchens) × ``--seeds`` seeds, PPO with
``--updates`` updates — as ``python -m bpjax.train -m`` with the basic launcher (jobs one after another in one
process, as on a laptop):

- vectorised: one job per config, its seeds vmapped in one call (``n_seeds=S``): N jobs;
- one seed per job: ``seed=0,…,S-1 n_seeds=1``: N × S jobs, each compiling and stepping on its own.

Reported: wall time of each sweep (compilation included: it is part of what a sweep costs), configs × seeds
per hour, and the ratio, plus the jobs' median greedy ticks so the two arms visibly did the same work.

    python benchmarks/sweep_throughput.py --json sweep_throughput.json
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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
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
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
