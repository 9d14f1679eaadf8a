"""The simulated experiment's fidelity targets, measured: the default study on the heterogeneous population and
on a homogeneous chef-plates one, each as its own process (`python -m bpjax.study`), timed.

    python benchmarks/study_fidelity.py --json study_fidelity.json

Targets (the issue's): every tip arm has fewer suboptimal decisions than control in every round (point
estimates); on the heterogeneous population, personalised and dynamic beat static in the last round with 95%
intervals that do not overlap; on the homogeneous one, the three tip arms are within noise (intervals overlap).
The default study must finish in under 3 minutes on 2 cores. Beside the per-arm intervals, the paired
differences from the static arm (the same trainees and streams in both arms: the analysis the design is for),
and the seconds per part of each run (the study's own clock) with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIP_ARMS = ("static", "personalised", "dynamic")


def run(population: str, overrides: list[str]) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "bpjax.study", f"hydra.run.dir={out}", f"population={population}",
                               "progress=false", *overrides], capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(done.stderr)
        return json.loads((Path(out) / "study.json").read_text()), wall


def checks(study: dict) -> dict:
    arms = study["arms"]
    rounds = range(len(arms["control"]["by_round"]))
    fewer = {arm: all(arms[arm]["by_round"][r]["suboptimal_rate"] < arms["control"]["by_round"][r]["suboptimal_rate"]
                      for r in rounds) for arm in TIP_ARMS}
    last = {arm: arms[arm]["by_round"][-1] for arm in arms}

    def beats(a: str, b: str) -> bool:  # a's interval entirely below b's
        return last[a]["suboptimal_ci"][1] < last[b]["suboptimal_ci"][0]

    def overlap(a: str, b: str) -> bool:
        return not (beats(a, b) or beats(b, a))

    paired = {name: rows[-1] for name, rows in study.get("paired", {}).items()}
    return {"fewer_suboptimal_than_control_every_round": fewer,
            "last_round_beats_static": {arm: beats(arm, "static") for arm in ("personalised", "dynamic")},
            "last_round_paired_below_static": {name: row["suboptimal_ci"][1] < 0 for name, row in paired.items()},
            "tip_arms_within_noise": all(overlap(a, b) for a in TIP_ARMS for b in TIP_ARMS if a < b),
            "last_round": {arm: {k: last[arm][k] for k in ("suboptimal_rate", "suboptimal_ci", "ticks", "ticks_ci")}
                           for arm in arms},
            "last_round_paired": paired,
            "last_round_by_kind": {arm: {kind: v["suboptimal_rate"] for kind, v in last[arm].get("by_kind", {}).items()}
                                   for arm in arms},
            "by_round": {arm: [[r["suboptimal_rate"], r["suboptimal_ci"]] for r in arms[arm]["by_round"]]
                         for arm in arms},
            "paired_by_round": {name: [[r["suboptimal_rate"], r["suboptimal_ci"]] for r in rows]
                                for name, rows in study.get("paired", {}).items()},
            "study_seconds": study.get("seconds"), "timing": study.get("timing")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    parser.add_argument("overrides", nargs="*", help="passed to both studies (e.g. trainees=20)")
    args = parser.parse_args()
    results = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}}
    for name, population in (("heterogeneous", "trainees"), ("homogeneous", "chef_platers")):
        load = os.getloadavg()
        study, wall = run(population, args.overrides)
        results[name] = {"population": population, "process_wall_s": round(wall, 1),
                         "load_before_after": [load, os.getloadavg()], **checks(study)}
    results["machine"]["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
