"""Tip-mining speed: scoring every candidate tip over ~100,000 decisions, and the BRL stage on ~10,000 rows.

Exact Q* is computed for the decisions of a real synthetic population (about 1 ms each, in Python), then the
decision table is tiled to the target size (rounds renumbered), so the timing is of the scoring itself.

    python benchmarks/tips_speed.py --json tips_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from bpjax.config import compose_config
from bpjax.data import validate_traces
from bpjax.data.players import generate_population
from bpjax.env.config import KitchenSpec
from bpjax.tips import decision_table, score_count_tips
from bpjax.tips.rules import brl_tips


def tile(table: dict, copies: int) -> dict:
    n_rounds = table["round"].max() + 1
    out = {k: np.concatenate([v] * copies) for k, v in table.items() if k != "slot_type"}
    out["round"] = np.concatenate([table["round"] + i * n_rounds for i in range(copies)])
    out["slot_type"] = table["slot_type"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--brl-rows", type=int, default=10_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg = compose_config([], config_name="pipeline")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    from omegaconf import OmegaConf

    frame, _ = generate_population(spec, OmegaConf.to_container(cfg.population), 40, 5, 0)
    traces = validate_traces(frame)
    start = time.perf_counter()
    table = decision_table(traces, spec)
    q_s = time.perf_counter() - start
    n = len(table["action"])
    big = tile(table, -(-args.decisions // n))
    start = time.perf_counter()
    scores = score_count_tips(big, spec)
    score_s = time.perf_counter() - start
    print(f"exact Q* for {n} decisions: {q_s:.2f} s ({1000 * q_s / n:.2f} ms each)")
    print(f"scoring {len(scores)} candidate tips over {len(big['action']):,} decisions: {score_s:.3f} s")

    costly = np.flatnonzero(table["q"][np.arange(n), table["action"]] < table["q"].max(axis=1))
    reps = -(-args.brl_rows // len(costly))
    states = [traces.states[i] for i in costly] * reps
    rows = np.tile(costly, reps)
    start = time.perf_counter()
    rule_lists = brl_tips(states, table["q"][rows], table["action"][rows], spec)
    brl_s = time.perf_counter() - start
    print(f"BRL on {len(rows):,} costly decisions ({len(rule_lists)} action families): {brl_s:.1f} s")
    results = {"machine": {"platform": platform.platform()}, "q_star_s": q_s, "q_star_decisions": n,
               "score_decisions": int(len(big["action"])), "score_candidates": len(scores), "score_s": score_s,
               "brl_rows": int(len(rows)), "brl_families": len(rule_lists), "brl_s": brl_s}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
