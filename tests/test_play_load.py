"""Load: 50 scripted participants at once against a uvicorn server on loopback, each playing a round to the
end; every trace file must replay to exactly the decisions and ticks its participant saw (bounded in time)."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest

from bpjax.data.traces import read_traces
from bpjax.env.config import KitchenSpec
from bpjax.play.game import GameSetup
from bpjax.play.server import create_app, running
from tests.conftest import spec_for

PARTICIPANTS = 50
TIME_LIMIT_S = 120


async def participant(client: httpx.AsyncClient, pid: str, seed: int) -> tuple[list, int]:
    """Random legal play (sometimes ending a tick early) with the secret from its join, as the page plays;
    returns (tick, worker, slot) per decision and ticks."""
    rng = random.Random(seed)
    joined = await client.post("/api/join", json={"participant_id": pid})
    assert joined.status_code == 200, (pid, joined.text)
    auth = {"Authorization": f"Bearer {joined.json()['secret']}"}
    view = (await client.post("/api/start", json={"participant_id": pid}, headers=auth)).json()
    log = []
    while view["phase"] == "playing":
        if view["legal"] and rng.random() < 0.8:
            pair = rng.choice(view["legal"])
            body = {"participant_id": pid, "worker": pair["worker"], "slot": pair["slot"], "tick": view["tick"]}
            response = await client.post("/api/assign", json=body, headers=auth)
            log.append((view["tick"], pair["worker"], pair["slot"]))
        else:
            response = await client.post("/api/next_tick", json={"participant_id": pid, "tick": view["tick"]},
                                         headers=auth)
            log.append((view["tick"], "", -1))
        assert response.status_code == 200, (pid, response.text)
        view = response.json()
    return log, view["summary"]["ticks"]


async def crowd(url: str) -> list:
    limits = httpx.Limits(max_connections=PARTICIPANTS)
    page = {"Origin": url.rstrip("/")}   # what the page's requests carry
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits, headers=page) as client:
        return await asyncio.wait_for(
            asyncio.gather(*(participant(client, f"load-{i:02d}", i) for i in range(PARTICIPANTS))), TIME_LIMIT_S)


@pytest.mark.slow
def test_fifty_participants_at_once_lose_no_decision(tmp_path):
    spec: KitchenSpec = spec_for()
    # 50 joins at once fit in the default join limit (60 a minute)
    with running(create_app(GameSetup(spec, 1, tmp_path)), host="127.0.0.1") as url:
        assert url.startswith("http://127.0.0.1:")
        results = asyncio.run(crowd(url))
    traces = read_traces(tmp_path)   # the whole folder validates by replay
    assert len(traces.rounds) == PARTICIPANTS and traces.rounds["complete"].all() and traces.rejected == []
    for i, (log, ticks) in enumerate(results):
        pid = f"load-{i:02d}"
        rows = traces.frame[traces.frame["player_id"] == pid]
        assert list(zip(rows["tick"], rows["worker"], rows["slot"])) == log
        assert traces.rounds.set_index("player_id").loc[pid, "ticks"] == ticks
        status = json.loads((tmp_path / f"{pid}.status.json").read_text())
        assert [(r["status"], r["ticks"]) for r in status["rounds"]] == [("complete", ticks)]
