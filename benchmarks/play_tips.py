"""Browser game with chosen tips: how long a participant waits for the next tip, and whether choosing slows
anyone's decisions. A pipeline run on the study population (small) gives tips.json and its traces; then for
each tip.mode, ``python -m bpjax.play`` in its own process serves N scripted participants at once (random
legal play, as ``play_load.py``), each playing 2 study rounds and pressing Start as soon as round 1 ends.

Reports per mode and N: the latency of every decision (p50 / p95 / max), how long each round-2 Start took to
answer (it waits for the participant's tip, at most tip.wait_s), and how many starts had to show the previous
tip; then checks every trace replays and every status file names a tip per study round.

    PYTHONPATH=. python benchmarks/play_tips.py --participants 1,8 --json play_tips.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from play_load import play_round  # the same scripted play (this folder is on the path)

from bpjax.data.traces import read_traces
from bpjax.play.cli import launched

MODES = ("static", "personalised", "dynamic")


async def participant(client, pid: str, seed: int, latencies: list, starts: list) -> None:
    rng = random.Random(seed)
    joined = await client.post("/api/join", json={"participant_id": pid})
    joined.raise_for_status()
    auth = {"Authorization": f"Bearer {joined.json()['secret']}"}
    for number in (1, 2):
        begin = time.perf_counter()
        view = (await client.post("/api/start", json={"participant_id": pid}, headers=auth)).json()
        if number == 2:
            starts.append((time.perf_counter() - begin, "still being chosen" in view["event"]))
        view = await play_round(client, pid, auth, view, rng, latencies)


async def crowd(url: str, n: int) -> dict:
    latencies, starts = [], []
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=n),
                                 headers={"Origin": url.rstrip("/")}) as client:
        began = time.perf_counter()
        await asyncio.gather(*(participant(client, f"bench-{i}", i, latencies, starts) for i in range(n)))
        wall = time.perf_counter() - began
    ms = np.asarray(latencies) * 1e3
    waits = np.asarray([s for s, _ in starts])
    return {"participants": n, "decisions": len(latencies), "wall_s": round(wall, 2),
            "decision_ms_p50": round(float(np.median(ms)), 1), "decision_ms_p95": round(float(np.percentile(ms, 95)), 1),
            "decision_ms_max": round(float(ms.max()), 1), "start2_s_p50": round(float(np.median(waits)), 2),
            "start2_s_max": round(float(waits.max()), 2), "start2_previous_tip": int(sum(s for _, s in starts))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", default="1,8")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--wait-s", type=float, default=60.0, help="tip.wait_s")
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as work:
        pipeline = Path(work) / "pipeline"
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bpjax.pipeline", f"hydra.run.dir={pipeline}", "n_players=16", "rounds=2",
                        "progress=false"], check=True, capture_output=True, env={**os.environ})
        print(f"pipeline: {time.perf_counter() - began:.1f} s", file=sys.stderr)
        for mode in args.modes.split(","):
            for n in [int(x) for x in args.participants.split(",")]:
                run_dir = Path(work) / f"{mode}-{n}"
                run_dir.mkdir()
                overrides = ["rounds=2", "practice_rounds=0", f"join_limit.joins={max(n, 60)}", f"tip.mode={mode}",
                             f"tip.file={pipeline / 'tips.json'}", f"tip.wait_s={args.wait_s}"]
                if mode != "static":
                    overrides.append(f"tip.traces={pipeline / 'traces.parquet'}")
                began = time.perf_counter()
                with launched(run_dir, *overrides, timeout_s=300) as (url, _):
                    start_up = time.perf_counter() - began
                    result = {"mode": mode, "start_up_s": round(start_up, 1), **asyncio.run(crowd(url, n))}
                traces = read_traces(run_dir / "traces")
                statuses = [json.loads(p.read_text()) for p in (run_dir / "traces").glob("*.status.json")]
                result["traces_ok"] = bool(len(traces.rounds) == 2 * n and traces.rounds["complete"].all()
                                           and len(traces.frame) == result["decisions"])
                result["status_ok"] = all(len(s["rounds"]) == 2 and all("tip" in r for r in s["rounds"])
                                          for s in statuses) and len(statuses) == n
                print(json.dumps(result), flush=True)
                results.append(result)
    load = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": platform.platform(), "load_1_5_15": load,
                                               "results": results}, indent=2))
    print(f"load average: {load}", file=sys.stderr)


if __name__ == "__main__":
    main()
