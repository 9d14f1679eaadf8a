"""Accelerator benchmark: env steps/s at batch 2^12 … 2^22, and PPO's training env steps/s and time to the
exact optimum, on whatever device JAX sees (GPU when there is one), as one short script with JSON out.

- env: the paper's kitchen, the state-only step with uniformly random legal actions (threefry), auto-reset,
  ``--steps`` steps per compiled call, median of ``--repeats`` calls per batch;
- PPO: default settings but ``--ppo-envs`` environments per seed and ``--ppo-seeds`` seeds vmapped; trained in
  chunks of ``--chunk`` updates, each followed by a greedy evaluation of every seed; reported: env steps/s of
  the training calls, and the wall time (compilation included) until every seed's greedy round reaches the
  exact optimum (null when not within ``--ppo-updates``).

    python benchmarks/gpu.py --json gpu.json            # the full run (< 10 minutes on a GPU)
    python benchmarks/gpu.py --quick --json gpu.json    # tiny sizes: a CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from env_throughput import jax_steps_per_s  # noqa: E402

from bpjax.agents.common import initial_states, make_greedy_evaluator  # noqa: E402
from bpjax.agents.ppo import PPOConfig, make_ppo  # noqa: E402
from bpjax.config import compose_config  # noqa: E402
from bpjax.env.config import KitchenSpec  # noqa: E402
from bpjax.env.kitchen import make_kitchen  # noqa: E402
from bpjax.solve.solver import solve  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke test, seconds)")
    parser.add_argument("--min-log2", type=int, default=12)
    parser.add_argument("--max-log2", type=int, default=22)
    parser.add_argument("--steps", type=int, default=100, help="env steps per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ppo-envs", type=int, default=1024, help="PPO environments per seed")
    parser.add_argument("--ppo-seeds", type=int, default=4)
    parser.add_argument("--ppo-updates", type=int, default=200, help="at most this many updates")
    parser.add_argument("--chunk", type=int, default=10, help="updates per call between greedy evaluations")
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.min_log2, args.max_log2, args.steps, args.repeats = 4, 6, 10, 1
        args.ppo_envs, args.ppo_seeds, args.ppo_updates, args.chunk = 16, 2, 2, 1
    return args


def env_rates(env, params, args) -> dict[str, float]:
    out = {}
    for log2 in range(args.min_log2, args.max_log2 + 1):
        batch = 1 << log2
        out[str(batch)] = round(jax_steps_per_s(env, params, batch, args.steps, False, "threefry", args.repeats, 1), 1)
        print(f"env batch 2^{log2}: {out[str(batch)] / 1e6:.2f} M steps/s", flush=True)
    return out


def ppo_run(env, params, optimum: int, args) -> dict:
    config = PPOConfig(n_envs=args.ppo_envs)
    network, init, run = make_ppo(env, params, config)
    evaluate = jax.jit(jax.vmap(make_greedy_evaluator(env, params, network)))
    run_chunk = jax.jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1)
    start = time.perf_counter()
    states = initial_states(jax.jit(jax.vmap(init)), jax.vmap(jax.random.key)(np.arange(args.ppo_seeds, dtype=np.uint32)))
    done, train_s, steps, to_optimum, greedy = 0, 0.0, 0, None, []
    while done < args.ppo_updates:
        size = min(args.chunk, args.ppo_updates - done)
        tic = time.perf_counter()
        states, metrics = run_chunk(states, size)
        jax.block_until_ready(states)
        if done > 0:  # the first call compiles: its time is in time_to_optimum_s, not in the rate
            train_s += time.perf_counter() - tic
            steps += int(np.asarray(metrics["env_steps"]).sum())
        done += size
        greedy = [int(t) for t in evaluate(states.params)]
        if to_optimum is None and all(g == optimum for g in greedy):
            to_optimum = round(time.perf_counter() - start, 2)
            break
    return {"n_envs_per_seed": args.ppo_envs, "seeds": args.ppo_seeds, "updates": done,
            "train_env_steps_per_s": round(steps / train_s, 1) if train_s else None,
            "time_to_optimum_s": to_optimum, "greedy_ticks": greedy, "optimal_ticks": optimum,
            "wall_s": round(time.perf_counter() - start, 2)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    spec = KitchenSpec.from_dict(compose_config([f"kitchen/scenario={args.scenario}"]).kitchen)
    env, params = make_kitchen(spec)
    device = jax.devices()[0]
    report = {"benchmark": "gpu", "quick": args.quick, "scenario": args.scenario,
              "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
              "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "jax": jax.__version__},
              "load_average_before": os.getloadavg()}
    start = time.perf_counter()
    report["env_state_steps_per_s"] = env_rates(env, params, args)
    report["ppo"] = ppo_run(env, params, solve(spec).optimal_ticks, args)
    report["wall_s"] = round(time.perf_counter() - start, 2)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
