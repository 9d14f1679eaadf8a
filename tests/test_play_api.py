"""The browser game's server: every refused request (4xx, nothing changed), traces that replay to the ticks the
game showed, hidden speeds, incomplete rounds, restart, tips. Against a real uvicorn server on loopback.

Clients here act like the page: they send its Origin and keep each participant's secret from its join
(`connect`, `post`, `state`); the refusals of the request guard are tested in test_play_security.py."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bpjax.config import compose_config
from bpjax.data.traces import read_traces
from bpjax.env.config import ConfigError
from bpjax.play.cli import guard_from_config, launched, load_tip, setup_from_config
from bpjax.play.game import GameSetup
from bpjax.play.server import create_app, running
from tests.conftest import auth, connect, files, kitchen, play, post, spec_for, state


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Study: the paper's kitchen but a server who cannot cook; practice: the default practice kitchen."""
    out = tmp_path_factory.mktemp("play")
    study = kitchen(skills={"chef": [1, 4, 6], "sous_chef": [2, 8, 2], "server": [3, None, 1]})
    setup = setup_from_config(compose_config(["rounds=2"], "play"), out)
    setup = GameSetup(study, 2, out, setup.practice, 1, tip="The chef should never plate.")
    with running(create_app(setup)) as url, connect(url) as client:
        yield client, out


def start_study(client, pid) -> dict:
    """Join, play the practice round by the first legal assignment each time, start study round 1."""
    view = post(client, "join", participant_id=pid).json()
    view = post(client, "start", participant_id=pid).json()
    view = play(client, pid, view)
    assert view["phase"] == "between" and view["next"]["stage"] == "study"
    return post(client, "start", participant_id=pid).json()


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "a" * 65, "a.b", "x\x00", " p", 5, None, ["p"]])
def test_bad_participant_ids_are_refused_before_any_file(server, bad):
    client, out = server
    before = files(out)
    response = post(client, "join", participant_id=bad)
    assert response.status_code == 400
    assert response.json()["error"].startswith("participant_id:")
    assert client.get("/api/state", params={"participant_id": "../x"}).status_code == 400
    assert files(out) == before


@pytest.fixture(scope="module")
def api_p1(server):
    return start_study(server[0], "api-p1")


@pytest.mark.parametrize("body, status, says", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "expected a JSON object"),
    (b'"p1"', 400, "expected a JSON object"),
    (b"{}", 400, "participant_id: missing"),
    (b'{"participant_id": "api-p1", "worker": "chef", "tick": 0}', 400, "slot: missing"),
    (b'{"participant_id": "api-p1", "worker": "chef", "slot": "0", "tick": 0}', 400, "slot: expected an integer"),
    (b'{"participant_id": "api-p1", "worker": "chef", "slot": true, "tick": 0}', 400, "slot: expected an integer"),
    (b'{"participant_id": "api-p1", "worker": "chef", "slot": 0, "tick": 0.5}', 400, "tick: expected an integer"),
    (b'{"participant_id": "api-p1", "worker": 0, "slot": 0, "tick": 0}', 400, "worker: expected a string"),
    (b'{"participant_id": "nobody", "worker": "chef", "slot": 0, "tick": 0}', 404, "unknown participant"),
    (b'{"participant_id": "api-p1", "pad": "' + b"x" * 5000 + b'"}', 413, "over 4096 bytes"),
])
def test_malformed_requests_change_nothing(server, api_p1, body, status, says):
    client, out = server
    view = state(client, "api-p1")
    before = files(out)
    response = client.post("/api/assign", content=body, headers={"Content-Type": "application/json",
                                                                  **auth(client, "api-p1")})
    assert response.status_code == status
    assert says in response.json()["error"]
    assert state(client, "api-p1") == view and files(out) == before


def test_an_oversized_chunked_body_is_cut_off(server):
    client, _ = server
    response = client.post("/api/join", content=iter([b"x" * 3000, b"x" * 3000]),   # no content-length
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "over 4096 bytes" in response.json()["error"]


def test_unknown_routes_and_methods_answer_json(server):
    client, _ = server
    assert client.get("/api/nothing").json() == {"error": "Not Found"}
    response = client.get("/api/assign")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    response = post(client, "state", participant_id="x")
    assert response.status_code == 405 and set(response.headers["Allow"].split(", ")) == {"GET", "HEAD"}
    assert client.options("/api/join").headers["Allow"] == "POST"   # no CORS preflight is ever granted
    assert client.get("/api/state", params={"participant_id": "nobody"}).status_code == 404


def test_illegal_assignments_are_refused_with_the_rule(server):
    client, out = server
    pid = "api-rules"
    view = start_study(client, pid)   # paper kitchen, 4 burgers: slots 3i (chop), 3i+1 (cook), 3i+2 (plate)
    assert view["stage"] == "study" and view["tick"] == 0
    view = post(client, "assign", participant_id=pid, worker="chef", slot=0, tick=0).json()

    def refused(worker, slot, tick, status, says):
        before, files_before = state(client, pid), files(out)
        response = post(client, "assign", participant_id=pid, worker=worker, slot=slot, tick=tick)
        assert response.status_code == status, response.text
        assert says in response.json()["error"], response.json()
        assert state(client, pid) == before and files(out) == files_before

    refused("chef", 3, 0, 422, "the worker is busy")
    refused("sous_chef", 0, 0, 422, "the subtask is already started")
    refused("sous_chef", 1, 0, 422, "not available yet (it waits for burger #1: chop meat)")
    refused("server", 99, 0, 422, "slot: no subtask 99")
    refused("server", -1, 0, 422, "slot: no subtask -1")
    refused("waiter", 3, 0, 422, "worker: unknown worker 'waiter'")
    refused("sous_chef", 3, 1, 409, "the kitchen is at Tick #1")
    # to the cook once chopped: the server cannot cook
    view = post(client, "next_tick", participant_id=pid, tick=0).json()
    view = post(client, "next_tick", participant_id=pid, tick=1).json()
    assert view["tick"] == 2 and any(s["slot"] == 1 and s["state"] == "available"
                                     for s in view["orders"][0]["subtasks"])
    refused("server", 1, 2, 422, "the worker cannot do that task")
    refused("server", 0, 2, 422, "the subtask is already started")
    assert post(client, "next_tick", participant_id=pid, tick=1).status_code == 409  # a double click
    assert post(client, "start", participant_id=pid).status_code == 409            # a round is in play


def test_padding_and_not_yet_arrived_subtasks_are_refused(tmp_path):
    mixed = kitchen("kitchen/orders=pasta_mix")   # burger (3 subtasks) next to pasta (4): slot 7 is padding
    arrivals = kitchen("kitchen/orders=arrivals")  # the third burger arrives at tick 4
    for spec, slot, says in [(mixed, 7, "slot: no subtask 7"), (arrivals, 6, "(its order arrives at tick 4)")]:
        with running(create_app(GameSetup(spec, 1, tmp_path / spec.orders[2].dish))) as url, connect(url) as client:
            post(client, "join", participant_id="p")
            view = post(client, "start", participant_id="p").json()
            assert len(view["orders"]) == (3 if spec is mixed else 2)  # orders not arrived are not shown
            response = post(client, "assign", participant_id="p", worker="chef", slot=slot, tick=0)
            assert response.status_code == 422 and says in response.json()["error"]


def test_trace_replays_to_the_ticks_shown_and_speeds_show_once_used(server):
    client, out = server
    pid = "api-replay"
    view = start_study(client, pid)
    assert all(speed is None for w in view["workers"] for t, speed in w["speeds"].items()
               if not (w["name"] == "server" and t == "cook"))
    assert view["workers"][2]["speeds"]["cook"] == "cannot"
    assert view["tip"] == "The chef should never plate."
    log: list = []
    view = post(client, "assign", participant_id=pid, worker="chef", slot=0, tick=0).json()
    log.append((0, "chef", 0))
    chef = view["workers"][0]
    assert chef["speeds"]["chop"] == 1 and chef["speeds"]["cook"] is None
    assert chef["status"] == "Chopping – just assigned, 1 tick"
    view = post(client, "next_tick", participant_id=pid, tick=0).json()
    log.append((0, "", -1))
    assert view["workers"][0]["status"] == "Chopping – 1 tick left" and view["counter"] == 2
    while view["phase"] == "playing":
        view = _one(client, pid, view, log)
    summary = view["summary"]
    assert summary["status"] == "complete" and summary["finished"]
    traces = read_traces(out / f"{pid}.csv")
    rows = traces.frame[traces.frame["round"] == 1]
    assert list(zip(rows["tick"], rows["worker"], rows["slot"])) == log
    assert traces.rounds.set_index("round").loc[1, "ticks"] == summary["ticks"]
    assert bool(traces.rounds.set_index("round").loc[1, "complete"])
    # speeds learnt in round 1 stay known in round 2
    view = post(client, "start", participant_id=pid).json()
    assert view["round"] == 2 and view["workers"][0]["speeds"]["chop"] == 1


def _one(client, pid, view, log):
    """One decision: the first legal assignment, except every third tick is ended with a worker still idle."""
    if view["legal"] and view["tick"] % 3:
        pair = view["legal"][0]
        log.append((view["tick"], pair["worker"], pair["slot"]))
        response = post(client, "assign", participant_id=pid, worker=pair["worker"], slot=pair["slot"],
                        tick=view["tick"])
    else:
        log.append((view["tick"], "", -1))
        response = post(client, "next_tick", participant_id=pid, tick=view["tick"])
    assert response.status_code == 200, response.text
    new = response.json()
    if new["phase"] == "playing" and new["tick"] > view["tick"] + (log[-1][2] == -1):
        assert "moved on by itself" in new["event"]  # auto-advance is shown
    return new


def test_rounds_left_in_play_are_incomplete_after_restart(tmp_path):
    spec = kitchen()
    setup = GameSetup(spec, 2, tmp_path)
    with running(create_app(setup)) as url, connect(url) as client:
        post(client, "join", participant_id="p")
        view = post(client, "start", participant_id="p").json()
        for _ in range(3):
            pair = view["legal"][0]
            view = post(client, "assign", participant_id="p", worker=pair["worker"], slot=pair["slot"],
                        tick=view["tick"]).json()
        secret = client.secrets["p"]
    # the server stopped: the round in play is marked incomplete, its decisions are on disk
    status = json.loads((tmp_path / "p.status.json").read_text())
    assert [r["status"] for r in status["rounds"]] == ["incomplete"]
    with running(create_app(setup)) as url, connect(url) as client:   # restarted: the participant needs the secret
        assert post(client, "join", participant_id="p").status_code == 401
        client.secrets["p"] = secret
        view = post(client, "join", participant_id="p").json()
        assert "secret" not in view   # a secret is given once, at the first join
        assert view["phase"] == "between" and view["next"] == {"stage": "study", "round": 2, "of": 2,
                                                                "completed": 0, "tip": None, "tip_pending": False}
        assert view["summary"]["status"] == "incomplete"
        view = play(client, "p", post(client, "start", participant_id="p").json())
        assert view["phase"] == "between" and view["next"]["round"] == 3   # 2 complete rounds are needed
    traces = read_traces(tmp_path / "p.csv")
    assert list(traces.rounds["complete"]) == [False, True]
    # everyone busy after 3 assignments: time moved on to tick 2 by itself, in the game and in the replay
    assert list(traces.rounds["ticks"]) == [status["rounds"][0]["ticks"], view["summary"]["ticks"]]
    assert status["rounds"][0]["ticks"] == 2
    assert len(traces.frame[traces.frame["round"] == 1]) == 3


@pytest.mark.slow
def test_an_idle_connection_is_kept_past_uvicorns_default(tmp_path):
    """uvicorn closes a connection idle for 5 s by default; a page (or the load test's pool) sending its next
    decision on it just then loses that request, so the game keeps idle connections longer."""
    with running(create_app(GameSetup(spec_for(), 1, tmp_path))) as url:
        connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
        connection.request("GET", "/")
        assert connection.getresponse().read() and connection.sock is not None
        time.sleep(6)
        connection.request("GET", "/")   # on the same socket: a closed one answers nothing
        assert connection.getresponse().status == 200
        connection.close()


@pytest.mark.slow
def test_a_killed_server_loses_no_decision_it_answered(tmp_path):
    with launched(tmp_path, "practice_rounds=0") as (url, process), connect(url) as client:
        post(client, "join", participant_id="p")
        view = post(client, "start", participant_id="p").json()
        log = []
        for _ in range(5):
            pair = view["legal"][0] if view["tick"] % 2 else None
            body = {"worker": pair["worker"], "slot": pair["slot"]} if pair else {}
            view = post(client, "assign" if pair else "next_tick", participant_id="p", tick=view["tick"],
                        **body).json()
            log.append((body.get("worker", ""), body.get("slot", -1)))
        process.kill()   # no shutdown: what was answered must already be on disk
        process.wait(10)
    traces = read_traces(tmp_path / "traces" / "p.csv")
    assert list(zip(traces.frame["worker"], traces.frame["slot"])) == log
    assert traces.rounds["ticks"].tolist() == [view["tick"]] and not traces.rounds["complete"].any()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_server_marks_the_round_in_play_incomplete(tmp_path, stop):
    """`kill` (SIGTERM) or Ctrl-C (SIGINT) of the real command line: it shuts down, marks the round in play
    incomplete and keeps its decisions, says so and names its output folder last, exit status 0; a participant between rounds keeps its status file as it was."""
    with launched(tmp_path, "practice_rounds=0") as (url, process), connect(url) as client:
        post(client, "join", participant_id="q")
        waiting = (tmp_path / "traces" / "q.status.json").read_bytes()
        post(client, "join", participant_id="p")
        view = post(client, "start", participant_id="p").json()
        for _ in range(2):
            pair = view["legal"][0]
            view = post(client, "assign", participant_id="p", worker=pair["worker"], slot=pair["slot"],
                        tick=view["tick"]).json()
        assert json.loads((tmp_path / "traces" / "p.status.json").read_text())["rounds"][0]["status"] == "playing"
        process.send_signal(stop)
        assert process.wait(30) == 0   # stopped as asked, either way
        output = process.stdout.read()
    assert "Traceback" not in output, output
    assert output.splitlines()[-2:] == ["Kitchen game stopped.", f"output folder: {tmp_path}"], output
    status = json.loads((tmp_path / "traces" / "p.status.json").read_text())
    assert [r["status"] for r in status["rounds"]] == ["incomplete"]
    assert (tmp_path / "traces" / "q.status.json").read_bytes() == waiting
    assert len(read_traces(tmp_path / "traces" / "p.csv").frame) == 2


def test_finished_participant_is_refused_and_tip_only_in_study_rounds(tmp_path):
    setup = setup_from_config(compose_config(["rounds=1", "practice_rounds=1"], "play"), tmp_path)
    setup = GameSetup(setup.study, 1, tmp_path, setup.practice, 1, tip="Chop first.")
    with running(create_app(setup)) as url, connect(url) as client:
        view = post(client, "join", participant_id="p").json()
        assert view["next"]["tip"] is None
        view = play(client, "p", post(client, "start", participant_id="p").json())
        assert view["next"] == {"stage": "study", "round": 1, "of": 1, "completed": 0, "tip": "Chop first.",
                                "tip_pending": False}
        view = play(client, "p", post(client, "start", participant_id="p").json())
        assert view["phase"] == "finished"
        response = post(client, "start", participant_id="p")
        assert response.status_code == 409 and "all rounds are done" in response.json()["error"]
        assert post(client, "next_tick", participant_id="p", tick=0).status_code == 409
    assert read_traces(tmp_path / "practice" / "p.csv").spec.scenario == "practice"
    assert read_traces(tmp_path).spec.scenario == "full"   # the folder reads as the study's kitchen


def test_tip_and_config_errors_name_the_field(tmp_path, capsys):
    tips = tmp_path / "tips.json"
    tips.write_text(json.dumps({"recommended": [{"rank": 1, "text": "The chef should never plate."},
                                                {"rank": 2, "text": "B"}], "candidates": []}))
    assert load_tip(tips, 2)["text"] == "B"
    cfg = compose_config([f"tip.file={tips}", "tip.show=true"], "play")
    assert setup_from_config(cfg, tmp_path).tip == "The chef should never plate."
    assert capsys.readouterr().err == ""
    (tmp_path / "bad.json").write_text('{"a": 1}')
    (tmp_path / "none.json").write_text('{"recommended": [], "message": "no tip found that helps these trainees"}')
    (tmp_path / "textless.json").write_text('{"recommended": [{"rank": 1, "text": "A"}, {"rank": 2}]}')
    # tips.json names the kitchen it was mined for: the game's own is fine, another is refused
    game = setup_from_config(compose_config([f"tip.file={tips}", "tip.show=true"], "play"), tmp_path)
    mined = json.loads(tips.read_text())
    (tmp_path / "same.json").write_text(json.dumps({**mined, "kitchen": spec_for().to_dict()}))
    (tmp_path / "other.json").write_text(json.dumps({**mined, "kitchen": spec_for("kitchen/scenario=understaffed")
                                                     .to_dict()}))
    assert setup_from_config(compose_config([f"tip.file={tmp_path / 'same.json'}", "tip.mode=static"], "play"),
                             tmp_path).tip == game.tip
    for overrides, says in [(["tip.show=true"], "tip.file: tip.mode=static needs"),
                            ([f"tip.file={tips}", "tip.show=true", "tip.rank=3"],
                             "tip.rank: no recommended tip of rank 3"),
                            ([f"tip.file={tmp_path / 'none.json'}", "tip.show=true"],
                             "recommends no tip \\(no tip found that helps these trainees\\)"),
                            ([f"tip.file={tmp_path / 'bad.json'}", "tip.show=true"], "tip.file: "),
                            ([f"tip.file={tmp_path / 'textless.json'}", "tip.mode=static"],
                             r"tip.file: .*textless\.json, recommended tip 2: no 'text' to show$"),
                            ([f"tip.file={tmp_path / 'missing.json'}", "tip.show=true"], "tip.file: cannot read"),
                            ([f"tip.file={tmp_path / 'other.json'}", "tip.mode=static"],
                             r"tip.file: .*other\.json was mined in another kitchen \(scenario 'understaffed', 4 "
                             r"orders\) than the game's \(scenario 'full', 4 orders\)"),
                            ([f"tip.file={tips}"], r"^tip\.file: given with tip\.mode=none, which shows no tip; "
                                                    r"add tip\.mode=static"),
                            ([f"tip.traces={tmp_path}"], r"^tip\.traces: given with tip\.mode=none"),
                            (["rounds=0"], r"rounds: expected an integer in 1\.\.100, got 0"),
                            ([f"rounds={10**12}"], r"rounds: expected an integer in 1\.\.100"),
                            (["practice_rounds=-1"], r"practice_rounds: expected an integer in 0\.\.100, got -1"),
                            (["practice_kitchen.max_ticks=0"], "practice_kitchen.max_ticks: must be >= 1")]:
        with pytest.raises(ConfigError, match=says):
            setup_from_config(compose_config(overrides, "play"), tmp_path)


@pytest.mark.parametrize("override, says", [
    ("port=-1", r"^ConfigError: port: must be in \[0, 65_535\], got -1$"),
    ("port=70000", r"^ConfigError: port: must be in \[0, 65_535\], got 70000$"),
    ("host=''", r"^ConfigError: host: expected an address"),
    ("join_limit.joins=0", r"^ConfigError: join_limit\.joins: must be in \[1, 1_000_000\], got 0$"),
    ("join_limit.joins=-1", r"^ConfigError: join_limit\.joins: must be in \[1, 1_000_000\], got -1$"),
    (f"join_limit.joins={10**12}", r"^ConfigError: join_limit\.joins: must be in \[1, 1_000_000\]"),
    ("join_limit.joins=2.5", r"^ConfigError: join_limit\.joins: Value '2\.5' of type 'float' could not be converted"),
    ("join_limit.seconds=0", r"^ConfigError: join_limit\.seconds: must be in \(0, 86_400\], got 0\.0$"),
    ("join_limit.seconds=-1", r"^ConfigError: join_limit\.seconds: must be in \(0, 86_400\], got -1\.0$"),
    ("join_limit.seconds=1e12", r"^ConfigError: join_limit\.seconds: must be in \(0, 86_400\]"),
    ("allowed_hosts=[lab/pc]", r"^ConfigError: allowed_hosts: 'lab/pc' is not a host name or host:port$"),
    ("out_dir=/tmp/elsewhere", r"^ConfigError: out_dir: a folder inside the run's output folder, got '/tmp/elsewhere'"),
    ("out_dir=../up", r"^ConfigError: out_dir: a folder inside the run's output folder, got '\.\./up'"),
    ("allowed_origins=[lab-pc.local]", r"^ConfigError: allowed_origins: 'lab-pc.local' is not an origin"),
    ("allowed_origins=['https://lab-pc.local/game']",
     r"^ConfigError: allowed_origins: 'https://lab-pc.local/game' is not an origin"),
])
def test_server_settings_are_checked_before_serving(override, says):
    """Through the command's own checks (schema ranges, then the game's), as the command line runs them."""
    from bpjax.config.cli import BadSettings, one_line, settings_of
    from bpjax.play.cli import validate

    try:
        cfg = compose_config([override], "play")
    except Exception as error:  # a wrong type fails while composing
        assert re.match(says, one_line(error)), one_line(error)
        return
    with pytest.raises(BadSettings, match=says):
        settings_of(cfg, validate)


def test_a_host_that_does_not_resolve_is_named(monkeypatch):
    """The name is looked up before anything is served (here without asking a resolver)."""
    import socket

    from bpjax.config.cli import BadSettings, settings_of
    from bpjax.play.cli import validate

    def unknown(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    with pytest.raises(BadSettings, match=r"^ConfigError: host: 'lab-pc' is not an address \(Name or service not "
                                          r"known\)$"):
        settings_of(compose_config(["host=lab-pc"], "play"), validate)


@pytest.mark.slow
def test_the_command_line_stops_on_a_bad_setting_with_one_line(tmp_path):
    """The real command line: one line naming the setting, non-zero exit, no traceback, nothing written."""
    repo = Path(__file__).resolve().parents[1]
    for override, says in [("port=70000", "ConfigError: port: must be in [0, 65_535], got 70000"),
                           ("join_limit.joins=0", "ConfigError: join_limit.joins: must be in [1, 1_000_000], got 0")]:
        done = subprocess.run([sys.executable, "-m", "bpjax.play", override, f"hydra.run.dir={tmp_path}"], cwd=repo,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith(says), done.stderr
        assert not (tmp_path / "traces").exists()
    with socket.socket() as taken:   # a port another program listens on: named, nothing written
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "bpjax.play", f"port={port}", f"hydra.run.dir={tmp_path}"],
                              cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"ConfigError: port: cannot listen on 127.0.0.1:{port} ("), \
        done.stderr
    assert not (tmp_path / "traces").exists()


def test_good_server_settings_pass():
    guard = guard_from_config(compose_config(["allowed_hosts=[Lab-PC.local, 'lab-pc:8443', '[::1]']",
                                              "allowed_origins=['https://lab-pc.example.org']",
                                              "join_limit.joins=5", "join_limit.seconds=0.5"], "play"))
    assert guard.allowed_hosts == ("lab-pc.local", "lab-pc:8443", "[::1]")
    assert (guard.join_limit, guard.join_window_s) == (5, 0.5)
    assert guard_from_config(compose_config([], "play")).join_limit == 60
