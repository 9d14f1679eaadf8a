"""Browser-game server under load: N scripted participants at once, each playing one round of the paper's
kitchen (random legal play) against ``python -m bpjax.play`` in its own process on 127.0.0.1, each sending
the page's Origin and its secret from its join, as the page does (the join limit is raised to let them in).

Reports decisions per second (every decision is validated, stepped and fsynced before its answer) and the
latency of each request as the participants saw it; then checks every trace replays.

    python benchmarks/play_load.py --participants 1,50,200 --json play_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bpjax.data.traces import read_traces
from bpjax.play.cli import launched


async def participant(client: httpx.AsyncClient, pid: str, seed: int, latencies: list) -> int:
    rng = random.Random(seed)
    joined = await client.post("/api/join", json={"participant_id": pid})
    joined.raise_for_status()
    auth = {"Authorization": f"Bearer {joined.json()['secret']}"}
    view = (await client.post("/api/start", json={"participant_id": pid}, headers=auth)).json()
    mine: list = []   # this participant's (the shared list grows with the others' too)
    await play_round(client, pid, auth, view, rng, mine)
    latencies.extend(mine)
    return len(mine)  # one latency per decision


async def play_round(client: httpx.AsyncClient, pid: str, auth: dict, view: dict, rng: random.Random,
                     latencies: list) -> dict:
    """Random legal play (assign 80 %, else end the tick) until the round ends; each request's latency is
    appended to `latencies`. Returns the view the round ended on."""
    while view["phase"] == "playing":
        if view["legal"] and rng.random() < 0.8:
            pair = rng.choice(view["legal"])
            path, body = "/api/assign", {"worker": pair["worker"], "slot": pair["slot"]}
        else:
            path, body = "/api/next_tick", {}
        start = time.perf_counter()
        response = await client.post(path, json={"participant_id": pid, "tick": view["tick"], **body}, headers=auth)
        latencies.append(time.perf_counter() - start)
        response.raise_for_status()
        view = response.json()
    return view


async def crowd(url: str, n: int) -> dict:
    latencies: list = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=n),
                                 headers={"Origin": url.rstrip("/")}) as client:
        start = time.perf_counter()
        decisions = await asyncio.gather(*(participant(client, f"bench-{i}", i, latencies) for i in range(n)))
        wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1e3
    return {"participants": n, "decisions": int(sum(decisions)), "wall_s": round(wall, 2),
            "decisions_per_s": round(sum(decisions) / wall, 1), "latency_ms_p50": round(float(np.median(ms)), 1),
            "latency_ms_p95": round(float(np.percentile(ms, 95)), 1),
            "latency_ms_max": round(float(ms.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", default="1,50,200")
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    for n in [int(x) for x in args.participants.split(",")]:
        with tempfile.TemporaryDirectory() as run_dir:
            with launched(run_dir, "rounds=1", "practice_rounds=0", f"join_limit.joins={max(n, 60)}") as (url, _):
                result = asyncio.run(crowd(url, n))
            traces = read_traces(Path(run_dir) / "traces")
            result["traces_ok"] = bool(len(traces.rounds) == n and traces.rounds["complete"].all()
                                       and len(traces.frame) == result["decisions"])
        print(json.dumps(result))
        results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": platform.platform(), "processor": platform.processor(),
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
