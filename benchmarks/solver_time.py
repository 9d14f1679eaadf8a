"""Exact-solver wall time on the paper's kitchens (and other shipped orders), fresh solver each run.

    python benchmarks/solver_time.py --json solver_time.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.solve.solver import solve

CASES = {
    "paper full (4 burgers)": ["kitchen/scenario=full"],
    "paper understaffed (4 burgers)": ["kitchen/scenario=understaffed"],
    "full, pasta mix": ["kitchen/scenario=full", "kitchen/orders=pasta_mix"],
    "full, arrivals": ["kitchen/scenario=full", "kitchen/orders=arrivals"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {"machine": {"platform": platform.platform(), "python": platform.python_version()}, "cases": {}}
    for name, overrides in CASES.items():
        spec = KitchenSpec.from_dict(compose_config(overrides).kitchen)
        times, solution = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            solution = solve(spec)
            times.append(time.perf_counter() - start)
        results["cases"][name] = {"optimal_ticks": solution.optimal_ticks, "states": solution.n_states,
                                  "seconds_median": statistics.median(times), "seconds_max": max(times)}
        print(f"{name:<32} optimal {solution.optimal_ticks:>3} ticks  {solution.n_states:>7} states  "
              f"{statistics.median(times):6.2f} s (max {max(times):.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
