"""How the methods scale with the kitchen's size, in one run:

- env: state-only steps/s (random legal actions, threefry, auto-reset) at batch ``--batch`` for kitchens of
  12, 32, 64, 128 and 256 slots (3 … 64 pastas, 4 slots each: one to eight uint32 words per slot set), and the
  compile time of each program;
- exact solver: canonical states and seconds for 2 … 6 burgers, full and understaffed kitchens (paper skills),
  each stopped at ``--max-states`` (then reported as refused, with the seconds it took to get there);
- the lower bound next to each optimum.

    python benchmarks/size_scaling.py --json size_scaling.json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from env_throughput import jax_steps_per_s  # noqa: E402

from bpjax.config import compose_config  # noqa: E402
from bpjax.env import bitset  # noqa: E402
from bpjax.env.config import KitchenSpec  # noqa: E402
from bpjax.env.kitchen import make_kitchen  # noqa: E402
from bpjax.solve.bound import lower_bound_ticks  # noqa: E402
from bpjax.solve.solver import ExactSolver, SolverBudgetExceeded  # noqa: E402


def kitchen(dish: str, n_orders: int, scenario: str, max_ticks: int) -> KitchenSpec:
    raw = compose_config([f"kitchen/scenario={scenario}"]).kitchen
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(raw, resolve=True)
    raw["orders"] = [{"dish": dish, "arrival": 0}] * n_orders
    raw["max_ticks"] = max_ticks
    return KitchenSpec.from_dict(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", default="12,32,64,128,256")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burgers", default="2,3,4,5,6")
    parser.add_argument("--max-states", type=int, default=2_000_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = {"benchmark": "size_scaling", "batch": args.batch, "steps_per_call": args.steps,
              "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "jax": jax.__version__, "backend": jax.default_backend()},
              "load_average_before": os.getloadavg(), "env": [], "solver": []}
    for slots in [int(s) for s in args.slots.split(",")]:
        spec = kitchen("pasta", slots // 4, "full", max_ticks=min(10_000, 20 * slots))
        env, params = make_kitchen(spec)
        start = time.perf_counter()
        jax_steps_per_s(env, params, args.batch, 1, False, "threefry", 1, 1)  # compile (and one tiny call)
        compile_s = time.perf_counter() - start
        rate = jax_steps_per_s(env, params, args.batch, args.steps, False, "threefry", args.repeats, 1)
        row = {"slots": spec.n_slots, "words": bitset.n_words(spec.n_slots), "orders": len(spec.orders),
               "steps_per_s": round(rate, 1), "first_call_s": round(compile_s, 2), "load": os.getloadavg()[0]}
        report["env"].append(row)
        print(f"env {spec.n_slots:4d} slots ({row['words']} words): {rate / 1e6:7.3f} M steps/s "
              f"(first call {compile_s:.1f} s)", flush=True)
    for scenario in ("full", "understaffed"):
        for burgers in [int(b) for b in args.burgers.split(",")]:
            spec = kitchen("burger", burgers, scenario, max_ticks=200)
            solver = ExactSolver(spec, args.max_states)
            start = time.perf_counter()
            try:
                ticks = solver.solve().optimal_ticks
            except SolverBudgetExceeded:
                ticks = None
            row = {"scenario": scenario, "burgers": burgers, "slots": spec.n_slots, "optimal_ticks": ticks,
                   "refused": ticks is None, "states": len(solver._togo),
                   "seconds": round(time.perf_counter() - start, 2), "lower_bound_ticks": lower_bound_ticks(spec),
                   "load": os.getloadavg()[0]}
            report["solver"].append(row)
            print(f"solver {scenario:>12} {burgers} burgers: {ticks} ticks (bound {row['lower_bound_ticks']}), "
                  f"{row['states']} states, {row['seconds']} s", flush=True)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
