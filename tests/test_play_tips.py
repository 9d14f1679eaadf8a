"""The game's personalised and dynamic tips, through its API on a real uvicorn server: each participant's tip
per round is the chooser's (checked against a second chooser fed the same rounds), recorded in the status file
and shown on the board; a restart replays a participant's rounds into the new chooser; a chooser that fails
or is slow loses no round and holds up no one else; the tip settings are checked before serving."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bpjax.config import compose_config
from bpjax.config.cli import BadSettings, settings_of
from bpjax.data.players import generate_population
from bpjax.data.traces import read_traces, write_traces
from bpjax.env.config import ConfigError
from bpjax.play.cli import load_chooser, setup_from_config, validate
from bpjax.play.game import GameSetup
from bpjax.play.server import create_app, running
from tests.play_tips import habitual_round, study_kitchen, write_inputs
from tests.conftest import connect, kitchen, play, post, state

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("tip_inputs"))


def chooser(mode, inputs, seed=0):
    tips, traces = inputs
    return load_chooser(mode, study_kitchen(), tips, traces, seed)


def play_script(client, pid, decisions, view) -> dict:
    """Play a round decision by decision (tick, worker index, slot) as :func:`habitual_round` wrote it."""
    names = [w.name for w in study_kitchen().workers]
    for tick, worker, slot in decisions:
        assert view["phase"] == "playing" and view["tick"] == tick
        response = (post(client, "next_tick", participant_id=pid, tick=tick) if worker < 0 else
                    post(client, "assign", participant_id=pid, worker=names[worker], slot=slot, tick=tick))
        assert response.status_code == 200, response.text
        view = response.json()
    assert view["phase"] != "playing"
    return view


def round_rows(out: Path, pid: str, number: int):
    traces = read_traces(out / f"{pid}.csv")
    frame = traces.frame[traces.frame["round"] == number]
    return frame, int(traces.rounds.set_index("round").loc[number, "ticks"])


def wait_until_chosen(client, pid, view) -> dict:
    """Between rounds: the view once the next tip is chosen (the page reloads the state the same way)."""
    for _ in range(600):
        if not view["next"]["tip_pending"]:
            return view
        threading.Event().wait(0.1)
        view = state(client, pid)
    raise AssertionError("the next tip was not chosen within a minute")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["personalised", "dynamic"])
def test_each_round_shows_the_choosers_tip_and_a_restart_replays_the_rounds(tmp_path, inputs, mode):
    """A participant whose server cooks whenever it can plays 3 rounds (a restart after the 2nd). The tip of
    every round is what a second chooser, fed the same rounds from the trace file, chooses; the status file
    and the board say it; the restarted server's new chooser catches up from the files alone."""
    spec, pid = study_kitchen(), "habit-1"
    reference = chooser(mode, inputs)
    decisions = habitual_round(spec, reference.optimum, "server", "cook")

    def serve():
        return running(create_app(GameSetup(spec, 3, tmp_path, chooser=chooser(mode, inputs))))

    shown = []
    with serve() as url, connect(url) as client:
        view = wait_until_chosen(client, pid, post(client, "join", participant_id=pid).json())
        for number in (1, 2):
            between_tip = view["next"]["tip"]
            view = post(client, "start", participant_id=pid).json()
            assert view["tip"] == between_tip and view["event"] == ""   # the tip announced is the one shown
            shown.append(view["tip"])
            view = wait_until_chosen(client, pid, play_script(client, pid, decisions, view))
        secret = client.secrets[pid]
    with serve() as url, connect(url) as client:   # restarted: a new chooser, the files only
        client.secrets[pid] = secret
        view = wait_until_chosen(client, pid, post(client, "join", participant_id=pid).json())
        view = post(client, "start", participant_id=pid).json()
        shown.append(view["tip"])
        play_script(client, pid, decisions, view)

    status = json.loads((tmp_path / f"{pid}.status.json").read_text())
    assert status["tip_mode"] == mode
    assert [r["tip"] for r in status["rounds"]] == shown and [r["status"] for r in status["rounds"]] == ["complete"] * 3
    expected = []
    for number in (1, 2, 3):
        tip = reference.tip_for(pid)
        expected.append(None if tip is None else tip.text(spec))
        frame, ticks = round_rows(tmp_path, pid, number)
        reference.record(frame, {pid: ticks})
        reference.remine([pid])
    assert shown == expected
    assert shown[0] == "The chef should never plate." or mode == "dynamic"   # the population's #1 first
    if mode == "personalised":  # two rounds of the server cooking: its own tip names that habit
        assert shown[2] == "The server should never cook.", shown


@pytest.mark.parametrize("failing", ["record", "remine"])
def test_a_failing_chooser_loses_no_round_and_keeps_the_tip(tmp_path, inputs, caplog, failing):
    spec = study_kitchen()
    broken = chooser("personalised", inputs)

    def fail(*args, **kwargs):
        raise RuntimeError("the simulation ran out of memory")

    setattr(broken, failing, fail)
    with running(create_app(GameSetup(spec, 2, tmp_path, chooser=broken))) as url, connect(url) as client:
        with caplog.at_level(logging.WARNING, logger="bpjax.play"):
            view = wait_until_chosen(client, "p", post(client, "join", participant_id="p").json())
            view = post(client, "start", participant_id="p").json()
            first_tip = view["tip"]
            view = wait_until_chosen(client, "p", play(client, "p", view))
            assert view["next"]["tip"] == first_tip   # the previous tip stays
            view = play(client, "p", post(client, "start", participant_id="p").json())
        assert view["phase"] == "finished"
    assert any("choosing the tip after study round 1 failed (RuntimeError: the simulation ran out of memory)"
               in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    status = json.loads((tmp_path / "p.status.json").read_text())
    assert [(r["status"], r["tip"]) for r in status["rounds"]] == [("complete", first_tip)] * 2
    traces = read_traces(tmp_path / "p.csv")
    assert traces.rounds["complete"].all() and traces.rounds["ticks"].tolist() == [r["ticks"] for r in status["rounds"]]


def test_a_slow_choice_holds_up_no_request_and_a_late_tip_is_said(tmp_path, inputs):
    """While p's next tip is being chosen (held back here), p's page says so, p's start past tip_wait_s shows
    the previous tip and says that, and q, who joins meanwhile, is answered and plays (its first tip waits
    behind p's on the one worker: it gets the population's #1, and is told)."""
    spec = study_kitchen()
    slow = chooser("personalised", inputs)
    gate, remine = threading.Event(), slow.remine

    def held_back(people=None):
        assert gate.wait(60), "the test never let the choice finish"
        remine(people)

    slow.remine = held_back
    with running(create_app(GameSetup(spec, 2, tmp_path, chooser=slow, tip_wait_s=0.5))) as url, \
            connect(url) as client:
        wait_until_chosen(client, "p", post(client, "join", participant_id="p").json())
        first_tip = post(client, "start", participant_id="p").json()["tip"]
        view = play(client, "p", state(client, "p"))
        assert view["next"]["tip_pending"] and view["next"]["tip"] is None
        view = post(client, "start", participant_id="p").json()
        assert view["tip"] == first_tip and "still being chosen, so it shows your previous tip" in view["event"]
        view_q = post(client, "join", participant_id="q").json()
        assert view_q["next"]["tip_pending"]
        view_q = post(client, "start", participant_id="q").json()
        assert view_q["tip"] == "The chef should never plate." and "still being chosen" in view_q["event"]
        assert play(client, "q", view_q)["phase"] == "between"
        assert not gate.is_set()   # all of the above was answered while p's choice was held back
        gate.set()
        assert play(client, "p", view)["phase"] == "finished"
    status = json.loads((tmp_path / "p.status.json").read_text())
    assert [(r["status"], r["tip"]) for r in status["rounds"]] == [("complete", first_tip)] * 2
    status_q = json.loads((tmp_path / "q.status.json").read_text())
    assert [(r["status"], r["tip"]) for r in status_q["rounds"]] == [("complete", "The chef should never plate.")]


def test_a_start_waits_for_its_tip(tmp_path, inputs):
    spec = study_kitchen()
    slow = chooser("personalised", inputs)
    gate, remine = threading.Event(), slow.remine
    calls = []

    def held_back(people=None):
        assert gate.wait(60)
        calls.append(people)
        remine(people)

    slow.remine = held_back
    with running(create_app(GameSetup(spec, 2, tmp_path, chooser=slow, tip_wait_s=60))) as url, \
            connect(url) as client:
        view = wait_until_chosen(client, "p", post(client, "join", participant_id="p").json())
        play(client, "p", post(client, "start", participant_id="p").json())
        threading.Timer(0.5, gate.set).start()
        view = post(client, "start", participant_id="p").json()   # answers once the tip is chosen
        assert calls == [["p"]] and view["event"] == ""
        expected = slow.tip_for("p")
        assert view["tip"] == (None if expected is None else expected.text(spec))


def test_tip_settings_are_checked_before_serving(tmp_path, inputs):
    tips, traces = inputs
    other = tmp_path / "other.json"   # a tip naming a worker the game's kitchen lacks
    entry = json.loads(tips.read_text())["recommended"][0]
    other.write_text(json.dumps({"recommended": [{**entry, "worker": "waiter", "text": "The waiter should never plate."}]}))
    no_gain = tmp_path / "no_gain.json"
    no_gain.write_text(json.dumps({"recommended": [{k: v for k, v in entry.items() if k != "simulated_gain_ci"}]}))
    practice_traces = write_traces(generate_population(kitchen("kitchen/orders=one_burger"), [
        {"kind": "greedy", "base": "greedy", "share": 1}], 2, 1, 0)[0], tmp_path / "practice.csv")
    for overrides, says in [
        (["tip.mode=sometimes"], "tip.mode: expected one of none, static, personalised, dynamic, got 'sometimes'"),
        (["tip.mode=personalised"], r"tip.file: tip.mode=personalised needs a tips.json"),
        (["tip.mode=static"], r"tip.file: tip.mode=static needs a tips.json"),
        ([f"tip.file={tips}", "tip.mode=dynamic"], r"tip.traces: tip.mode=dynamic needs the traces"),
        ([f"tip.file={tips}", "tip.mode=dynamic", "tip.show=true"], r"tip.show: true means tip.mode=static"),
        ([f"tip.file={tips}", "tip.mode=dynamic", f"tip.traces={tmp_path / 'nothing.csv'}"],
         r"tip.traces: .*nothing.csv not found"),
        ([f"tip.file={other}", "tip.mode=personalised", f"tip.traces={traces}"],
         r"tip.file: .*other.json, recommended tip 1: worker: 'waiter' is not a worker of this kitchen"),
        ([f"tip.file={other}", "tip.mode=static"],   # shown as text, but a mined tip must fit the kitchen too
         r"tip.file: .*other.json, recommended tip 1: worker: 'waiter' is not a worker of this kitchen"),
        ([f"tip.file={no_gain}", "tip.mode=personalised", f"tip.traces={traces}"],
         r"tip.file: .*no_gain.json, recommended tip 1: needs its simulated_gain and simulated_gain_ci"),
        ([f"tip.file={tips}", "tip.mode=personalised", f"tip.traces={practice_traces}"],
         r"tip.traces: .*practice.csv holds rounds of another kitchen than the game's"),
    ]:
        with pytest.raises(ConfigError, match=says):
            setup_from_config(compose_config(overrides, "play"), tmp_path)
    with pytest.raises(BadSettings, match=r"^ConfigError: tip\.wait_s: must be in \(0, 3600\], got 0\.0$"):
        settings_of(compose_config(["tip.wait_s=0"], "play"), validate)
    setup = setup_from_config(compose_config([f"tip.file={tips}", "tip.show=true"], "play"), tmp_path)
    assert (setup.tip_mode, setup.tip) == ("static", "The chef should never plate.")   # the older spelling
    setup = setup_from_config(compose_config([f"tip.file={tips}", "tip.mode=dynamic", f"tip.traces={traces}",
                                              "tip.seed=7", "tip.wait_s=2"], "play"), tmp_path)
    assert (setup.tip_mode, setup.chooser.seed, setup.tip_wait_s, setup.tip) == ("dynamic", 7, 2.0, None)


@pytest.mark.slow
def test_the_command_line_refuses_a_mode_without_its_traces(tmp_path, inputs):
    done = subprocess.run([sys.executable, "-m", "bpjax.play", "tip.mode=personalised", f"tip.file={inputs[0]}",
                           f"hydra.run.dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "ConfigError: tip.traces: tip.mode=personalised needs the traces tip.file was mined from"), done.stderr
    assert not (tmp_path / "traces").exists()


def test_rounds_that_end_together_are_mined_together_and_a_failing_batch_person_by_person(tmp_path, inputs, caplog):
    """p's choice is held back while q and r end their rounds: q and r are re-mined in one batch. That batch
    fails here (a chooser that refuses several people at once), so each is re-mined alone and gets its tip."""
    spec = study_kitchen()
    picky = chooser("personalised", inputs)
    gate, busy, remine, calls = threading.Event(), threading.Event(), picky.remine, []

    def batched(people=None):
        calls.append(list(people))
        if people == ["p"]:
            busy.set()
            assert gate.wait(60)
        if len(people) > 1:
            raise MemoryError("too many people at once")
        remine(people)

    picky.remine = batched
    with running(create_app(GameSetup(spec, 2, tmp_path, chooser=picky))) as url, connect(url) as client:
        for pid in ("p", "q", "r"):
            wait_until_chosen(client, pid, post(client, "join", participant_id=pid).json())
        play(client, "p", post(client, "start", participant_id="p").json())
        assert busy.wait(60)   # p's choice is under way: q's and r's rounds end meanwhile
        for pid in ("q", "r"):
            play(client, pid, post(client, "start", participant_id=pid).json())
        gate.set()
        with caplog.at_level(logging.WARNING, logger="bpjax.play"):
            views = {pid: wait_until_chosen(client, pid, state(client, pid)) for pid in ("p", "q", "r")}
    assert calls == [["p"], ["q", "r"], ["q"], ["r"]]
    assert not caplog.records   # retried one by one: nobody's choice failed
    for pid, view in views.items():
        picky.remine = remine
        tip = picky.tip_for(pid)
        assert view["next"]["tip"] == (None if tip is None else tip.text(spec))
