"""Where the tip stage's time goes, and the simulation against stepping the reference one decision at a time.

On the pipeline's default population (bottom quartile of `--players` x 5 rounds, π_H a forest, exact Q*):
the per-tick table, scoring every candidate (count, state and rule tips), the Bayesian rule lists, and the
simulation of the top candidates (every arm one batch of the JAX env, stepped in lockstep with one batched
π_H prediction per decision). Side by side in the same run: the same control rounds played the obvious way —
one round at a time on the reference simulator, one π_H prediction per decision — timed on `--baseline-rounds`
rounds and compared per round.

    python benchmarks/tips_speed.py --json tips_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from omegaconf import OmegaConf

from bpjax.config import compose_config
from bpjax.data import validate_traces
from bpjax.data.players import generate_population
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from bpjax.imitation import make_policy
from bpjax.solve.solver import ExactSolver
from bpjax.tips.optimum import ExactOptimum
from bpjax.tips.recommend import TipSettings, candidate_tips, to_simulate
from bpjax.tips.rules import rule_lists
from bpjax.tips.score import score_tips
from bpjax.tips.simulate import PolicyChooser, simulate_tips
from bpjax.tips.ticks import tick_table


def stepwise_rounds(policy, spec: KitchenSpec, n_rounds: int, seed: int) -> float:
    """Seconds per round of π_H played one decision at a time on the reference simulator."""
    ref, rng = ReferenceKitchen(spec.to_dict()), np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(n_rounds):
        state = ref.reset()
        while not any(ref.is_over(state)):
            probs = policy.probs(np.asarray([ref.observation(state)], np.float32), np.asarray([ref.action_mask(state)]))[0]
            state = ref.step(state, int(rng.choice(len(probs), p=probs)))[0]
    return (time.perf_counter() - start) / n_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=40)
    parser.add_argument("--baseline-rounds", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg = compose_config([], config_name="pipeline")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    env, params = make_kitchen(spec)
    frame, _ = generate_population(spec, OmegaConf.to_container(cfg.population), args.players, 5, 0)
    traces = validate_traces(frame)
    traces = traces.of_players(traces.bottom_players(0.25)[0])
    policy = make_policy("forest", env, params).fit(traces.obs, traces.mask, traces.action)
    optimum = ExactOptimum(ExactSolver(spec))
    settings = TipSettings()
    times = {}

    start = time.perf_counter()
    optimum.solver.solve()
    times["solve_s"] = time.perf_counter() - start
    start = time.perf_counter()
    table = tick_table(traces, spec, policy.probs(traces.obs, traces.mask))
    times["tick_table_s"] = time.perf_counter() - start
    start = time.perf_counter()
    q = optimum.q_values(traces)
    lists = rule_lists(traces.states, q, traces.action, spec, optimal=traces.mask & (q >= q.max(axis=1, keepdims=True)))
    times["rule_lists_s"] = time.perf_counter() - start
    tips = candidate_tips(spec, settings, lists)
    start = time.perf_counter()
    scored = score_tips(table, tips, optimum, settings.readings)
    times["score_s"] = time.perf_counter() - start
    chosen = [s.tip for s in to_simulate(scored, settings, lambda s: s.score > 0 and s.support >= 0.1
                                         and s.disagreement <= 0.5)]
    chooser = lambda trainee, round_number: PolicyChooser(policy)  # noqa: E731
    simulate_tips(env, params, spec, chooser, chosen[:1], optimum, (1.0,), 2, 1)  # compile
    start = time.perf_counter()
    simulate_tips(env, params, spec, chooser, chosen, optimum, settings.compliance, settings.eval_trainees,
                  settings.eval_rounds, 0)
    times["simulate_s"] = time.perf_counter() - start
    n_sim_rounds = (1 + len(chosen) * len(settings.compliance)) * settings.eval_trainees * settings.eval_rounds
    stepwise_per_round = stepwise_rounds(policy, spec, args.baseline_rounds, 0)
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]},
        "decisions": int(len(traces.action)), "decision_ticks": len(table), "candidates": len(tips),
        "candidates_scored": len(scored), "tips_simulated": len(chosen), "simulated_rounds": n_sim_rounds,
        **{k: round(v, 3) for k, v in times.items()},
        "simulate_per_round_ms": round(1000 * times["simulate_s"] / n_sim_rounds, 3),
        "stepwise_per_round_ms": round(1000 * stepwise_per_round, 3),
        "simulation_speedup_per_round": round(stepwise_per_round * n_sim_rounds / times["simulate_s"], 1),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
