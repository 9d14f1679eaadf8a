"""Trainee-policy learning speed: forest / boosting / BC fit time on ~100,000 decisions, and GAIL
iterations and environment steps per second, on this machine.

    python benchmarks/imitation_speed.py --json imitation_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import jax
from omegaconf import OmegaConf

from bpjax.config import compose_config
from bpjax.data import read_traces, write_traces
from bpjax.data.players import generate_population
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.imitation import make_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=1600, help="x 5 rounds x ~12.5 decisions ~ 100k decisions")
    parser.add_argument("--gail-iterations", type=int, default=100)
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg = compose_config([], config_name="imitate")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    env, env_params = make_kitchen(spec)
    start = time.perf_counter()
    frame, _ = generate_population(spec, OmegaConf.to_container(cfg.population), args.players, 5, 0)
    generate_s = time.perf_counter() - start
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        traces = read_traces(write_traces(frame, Path(folder) / "traces.parquet"))
    read_s = time.perf_counter() - start
    n = len(traces.action)
    results = {"machine": {"platform": platform.platform(), "jax": jax.__version__}, "decisions": n,
               "generate_s": generate_s, "read_and_validate_s": read_s, "fit_s": {}}
    print(f"{n} decisions: generated in {generate_s:.1f} s, written + read + validated in {read_s:.1f} s")
    for method in ("forest", "boosting", "bc"):
        policy = make_policy(method, env, env_params)
        start = time.perf_counter()
        policy.fit(traces.obs, traces.mask, traces.action)
        results["fit_s"][method] = time.perf_counter() - start
        print(f"{method:<9} fit {results['fit_s'][method]:.1f} s")
    gail = make_policy("gail", env, env_params, n_iterations=args.gail_iterations)
    start = time.perf_counter()
    gail.fit(traces.obs, traces.mask, traces.action)
    gail_s = time.perf_counter() - start
    steps = args.gail_iterations * gail.ppo.n_envs * gail.ppo.n_steps
    results["gail"] = {"iterations": args.gail_iterations, "seconds_with_compile": gail_s,
                       "iterations_per_s": args.gail_iterations / gail_s, "env_steps_per_s": steps / gail_s}
    print(f"gail     {args.gail_iterations} iterations in {gail_s:.1f} s (with compilation): "
          f"{args.gail_iterations / gail_s:.1f} it/s, {steps / gail_s:,.0f} env steps/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
