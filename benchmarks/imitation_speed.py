"""Trainee-policy learning speed: forest / boosting / BC fit time on ~100,000 decisions, and GAIL
iterations and environment steps per second (the default and the original recipe, side by side), on this
machine.

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
from bpjax.imitation.gail import ORIGINAL_RECIPE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=1600, help="x 5 rounds x ~12.5 decisions ~ 100k decisions")
    parser.add_argument("--gail-iterations", type=int, default=100)
    parser.add_argument("--learners", default="forest,boosting,bc",
                        help="which of forest,boosting,bc to time (bc always runs: GAIL's warm start is a BC fit)")
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
    for method in sorted(set(args.learners.split(",")) | {"bc"}, key=("forest", "boosting", "bc").index):
        policy = make_policy(method, env, env_params)
        start = time.perf_counter()
        policy.fit(traces.obs, traces.mask, traces.action)
        results["fit_s"][method] = time.perf_counter() - start
        print(f"{method:<9} fit {results['fit_s'][method]:.1f} s")
    for name, settings in (("gail", {}), ("gail_original_recipe", ORIGINAL_RECIPE)):
        gail = make_policy("gail", env, env_params, n_iterations=args.gail_iterations, **settings)
        start = time.perf_counter()
        gail.fit(traces.obs, traces.mask, traces.action)
        gail_s = time.perf_counter() - start
        steps = args.gail_iterations * gail.ppo.n_envs * gail.ppo.n_steps
        loop_s = gail_s - (results["fit_s"]["bc"] if gail.bc_epochs else 0.0)  # the warm start is the BC fit above
        results[name] = {"iterations": args.gail_iterations, "seconds_with_warm_start_and_compile": gail_s,
                         "adversarial_loop_s": loop_s, "iterations_per_s": args.gail_iterations / loop_s,
                         "env_steps_per_s": steps / loop_s}
        print(f"{name}: {args.gail_iterations} iterations in {gail_s:.1f} s with any BC warm start and compilation;"
              f" the loop {args.gail_iterations / loop_s:.1f} it/s, {steps / loop_s:,.0f} env steps/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
