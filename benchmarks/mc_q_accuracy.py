"""Monte-Carlo Q of a learned π* (the pipeline's fallback) against the exact Q* at trace decisions.

Synthetic players of the study population play the paper's kitchen; PPO learns π* (the pipeline's defaults);
then Q(s, a) for every legal action at every decision is estimated three ways — the greedy π* rolled out
once (exact Q of greedy π*: the kitchen is deterministic), the mean of `n` sampled rollouts (Q of sampled
π*), the best of `n` sampled rollouts (a lower bound on Q*) — and compared with the exact solver's Q*: mean
absolute error, share of (s, a) exact, share of decisions whose argmax is optimal, agreement on which
decisions are costly (Q-loss > tolerance); and the tip simulation's judgement of suboptimal decisions (π*'s
greedy action worth more than the one taken) against the exact one. Wall times include compilation.

    python benchmarks/mc_q_accuracy.py --json mc_q_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from bpjax.config import compose_config
from bpjax.data import validate_traces
from bpjax.data.players import generate_population
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.solve.solver import ExactSolver
from bpjax.tips.optimum import ExactOptimum, LearnedOptimum, learn_optimum, trace_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--overrides", nargs="*", default=[], help="pipeline config overrides (kitchen, algo)")
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg = compose_config(args.overrides, config_name="pipeline")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    frame, _ = generate_population(spec, OmegaConf.to_container(cfg.population), args.players, args.rounds, cfg.seed)
    traces = validate_traces(frame)
    start = time.perf_counter()
    q_star = ExactOptimum(ExactSolver(spec)).q_values(traces)
    exact_s = time.perf_counter() - start
    env, env_params = make_kitchen(spec)
    algo = OmegaConf.to_container(cfg.monte_carlo.algo, resolve=True)
    seeds = [cfg.seed + i for i in range(cfg.monte_carlo.n_seeds)]
    learned = learn_optimum(env, env_params, algo, seeds)
    legal, rows = traces.mask, np.arange(len(q_star))
    loss_star = q_star.max(axis=1) - q_star[rows, traces.action]
    rounds = trace_rounds(traces)
    exact_flags = ExactOptimum(ExactSolver(spec)).suboptimal(rounds)
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor()},
               "kitchen": args.overrides, "decisions": int(len(q_star)), "legal_pairs": int(legal.sum()),
               "exact_q_s": round(exact_s, 3), "pi_star": learned.info, "estimators": []}
    print(f"{len(q_star)} decisions, {legal.sum()} legal (s, a); exact Q* {exact_s:.2f} s; π*: {learned.info}")
    for policy, estimate, n in (("greedy", "mean", 1), ("sample", "mean", args.rollouts),
                                ("sample", "best", args.rollouts)):
        optimum = LearnedOptimum(env, env_params, learned.network, learned.params, n, policy, estimate)
        start = time.perf_counter()
        q = optimum.q_values(traces)
        seconds = time.perf_counter() - start
        error = q_star[legal] - q[legal]
        loss = q.max(axis=1) - q[rows, traces.action]
        row = {"rollout_policy": policy, "estimate": estimate, "n_rollouts": n, "q_s": round(seconds, 2),
               "mean_abs_error": float(np.abs(error).mean()), "max_abs_error": float(np.abs(error).max()),
               "exact_share": float((error == 0).mean()), "above_q_star": int((error < -1e-4).sum()),
               "argmax_optimal": float((q_star[rows, q.argmax(axis=1)] == q_star.max(axis=1)).mean()),
               "costly_agreement": {str(tol): float(((loss_star > 0) == (loss > tol)).mean())
                                    for tol in (0.0, 0.5, 1.0)}}
        start = time.perf_counter()
        flags = optimum.suboptimal(rounds)  # the tip simulation's judgement: π*'s greedy action vs the one taken
        row["suboptimal_s"] = round(time.perf_counter() - start, 2)
        row["suboptimal_agreement"] = float((flags == exact_flags).mean())
        row["suboptimal_share"] = {"exact": float(exact_flags.mean()), "monte_carlo": float(flags.mean())}
        results["estimators"].append(row)
        print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
