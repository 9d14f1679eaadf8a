"""Do the tips name the flaws planted in synthetic trainees, and do the recommended ones really help them?

For each population (bpjax's own synthetic players: a planted flaw on otherwise optimal play with slips, or
none) and seed: generate `--players` x `--rounds` rounds, keep the bottom quartile, fit π_H (forest), run the
pipeline's tip stage with exact Q* and default settings. Then check every recommended tip against the truth:
the same synthetic players, with their true profiles, follow it (compliance "replan", paired seeds) — the true
gain. Prints a table and writes JSON.

    python benchmarks/tip_recovery.py --seeds 5 --json tip_recovery.json

Targets: the planted flaw named by the #1 recommended tip in >= 90% of seeds; no recommended tip whose true
gain is negative; a flawless optimal population gets no tip.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from bpjax.tips.recommend import TipSettings
from bpjax.tips.recovery import POPULATIONS, recover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--players", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--true-trainees", type=int, default=20, help="synthetic players per arm in the truth check")
    parser.add_argument("--populations", default=",".join(POPULATIONS))
    parser.add_argument("--no-rule-lists", action="store_true", help="skip the Bayesian rule lists (faster)")
    parser.add_argument("--never", default="idle", help="reading of 'never' tips: idle | next")
    parser.add_argument("--exactly", default="fill", help="reading of 'exactly j' tips: fill | eager")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    cache, results = {}, []
    settings = TipSettings(rule_lists=not args.no_rule_lists, never=args.never, exactly=args.exactly)
    started = time.perf_counter()
    for name in args.populations.split(","):
        for seed in range(args.seeds):
            result = recover(name, seed, args.players, args.rounds, settings, args.true_trainees, cache)
            results.append(result)
            print(f"{name:24s} seed {seed}: #1 {result['top']!s:70.70s} named={result['named']} "
                  f"sim={result['top_simulated_gain']} true={result['top_true_gain']} "
                  f"negative={result['true_negative']} ({result['seconds']} s)", flush=True)
    summary = {}
    for name in args.populations.split(","):
        rows = [r for r in results if r["population"] == name]
        summary[name] = {
            "named_share": None if rows[0]["planted"] is None else float(np.mean([r["named"] for r in rows])),
            "no_tip_share": float(np.mean([r["top"] is None for r in rows])),
            "recommended": sum(len(r["recommended"]) for r in rows),
            "true_negative": sum(r["true_negative"] for r in rows),
            "true_significantly_negative": sum(r["true_significantly_negative"] for r in rows),
            "flaw_fired_share": None if rows[0]["flaw_fired_share"] is None else
            float(np.mean([r["flaw_fired_share"] for r in rows])),
        }
    out = {"results": results, "summary": summary, "seconds": round(time.perf_counter() - started, 1),
           "load": os.getloadavg(), "settings": vars(args)}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
