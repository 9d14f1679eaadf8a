"""End to end in a real browser: `python -m bpjax.play` serves, headless Chromium plays a practice round and a
study round by clicking (one subtask dragged), and the trace file replays to the ticks the page showed. The
study round is played in a second tab, which gets in only with the resume code the first tab showed. In a
personalised session, the banner shows the tip chosen for the participant from their own rounds.

Uses the system's chromium (Debian package `chromium`, which `.ci/run` installs) through Playwright; skipped
only where no chromium exists, and never where BPJAX_REQUIRE_BROWSER=1 (CI)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from bpjax.data.traces import read_traces
from bpjax.play.cli import launched

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("BPJAX_REQUIRE_BROWSER") != "1":
    pytest.skip("no chromium on PATH: install Debian's `chromium` (.ci/run does) to run the browser test",
                allow_module_level=True)

TIP = "The chef should never plate."


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    """The CLI on a free loopback port: 1 practice round, 1 study round with a tip from a tips.json."""
    run_dir = tmp_path_factory.mktemp("play_run")
    tips = run_dir / "tips.json"
    tips.write_text(json.dumps({"recommended": [{"rank": 1, "text": TIP, "simulated_gain": 5.0}]}))
    with launched(run_dir, "rounds=1", "practice_rounds=1", "tip.mode=static", f"tip.file={tips}") as (url, process):
        yield url, run_dir / "traces", process


def play_round(page, log: list, drag_first: bool = False) -> str:
    """Play the round on screen: at most one assignment per tick (click a subtask, then a worker that can
    take it; the first one dragged), then Next tick. Logs (tick shown, worker, slot) per decision."""
    assigned_at = None
    while page.get_attribute("body", "data-phase") == "playing":
        counter = int(re.fullmatch(r"Tick #(\d+)/50", page.inner_text("#tick")).group(1))
        version = page.get_attribute("body", "data-version")
        subtasks = page.locator("button.subtask.available")
        if assigned_at != counter and subtasks.count():
            subtask = subtasks.first
            slot = int(subtask.get_attribute("data-slot"))
            if drag_first:  # HTML5 drag and drop, no click: every worker of these kitchens can do every task
                worker = page.locator(".worker.idle").first
                name = worker.get_attribute("data-worker")
                subtask.drag_to(worker)
                drag_first = False
            else:
                subtask.click()
                worker = page.locator(".worker.can-take").first
                name = worker.get_attribute("data-worker")
                worker.click()
            log.append((counter - 1, name, slot))
            assigned_at = counter
        else:
            page.click("#next-tick")
            log.append((counter - 1, "", -1))
        page.wait_for_function(f"document.body.dataset.version !== '{version}'", timeout=10_000)
        assert page.inner_text("#message") == "" or "moved on by itself" in page.inner_text("#message")
    return page.inner_text("#summary" if page.get_attribute("body", "data-phase") == "between" else "#final-summary")


def test_a_person_plays_in_chromium_and_the_trace_replays(game):
    from playwright.sync_api import sync_playwright

    url, traces_dir, process = game
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(url + "?participant=e2e-1")
        page.wait_for_selector("body[data-phase=between]")
        assert "practice round" in page.inner_text("#next-label") and page.is_hidden("#tip")
        code = page.inner_text("#secret-code")   # the participant's secret, shown to note down
        assert page.is_visible("#secret-note") and re.fullmatch(r"(\w{4}-){3}\w{4}", code)
        page.click("#continue")
        page.wait_for_selector("body[data-phase=playing]")
        assert page.inner_text("#tick") == "Tick #1/50" and page.is_hidden("#tip")
        practice_log: list = []
        practice = play_round(page, practice_log)
        assert page.is_hidden("#board") and page.is_visible("#between")   # the summary replaces the board
        assert page.inner_text("#tip") == f"Tip: {TIP}"          # shown before the study round
        # another tab has no secret: it asks for the resume code, refuses a wrong one, continues with it
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(url + "?participant=e2e-1")
        page.wait_for_selector("body[data-phase=join]")
        assert page.is_visible("#secret-field") and "enter the resume code" in page.inner_text("#message")
        page.fill("#secret", "aaaa-bbbb-cccc-dddd")
        page.click("#join-form button[type=submit]")
        page.wait_for_function("document.getElementById('message').textContent.includes('not e2e-1')")
        assert page.get_attribute("body", "data-phase") == "join"
        page.fill("#secret", code.upper())
        page.click("#join-form button[type=submit]")
        page.wait_for_selector("body[data-phase=between]")
        assert page.inner_text("#secret-code") == code and "Round 1" in page.inner_text("#next-label")
        page.click("#continue")
        page.wait_for_selector("body[data-phase=playing]")
        assert page.inner_text("#tip") == f"Tip: {TIP}"
        chef = page.locator(".worker[data-worker=chef] .speeds")
        assert "chop: ?" in chef.inner_text()                     # speeds hidden until used
        study_log: list = []
        final = play_round(page, study_log, drag_first=True)
        assert page.get_attribute("body", "data-phase") == "finished" and page.is_hidden("#board")
        browser.close()

    for log, path, text in [(practice_log, traces_dir / "practice" / "e2e-1.csv", practice),
                            (study_log, traces_dir / "e2e-1.csv", final)]:
        traces = read_traces(path)
        assert list(zip(traces.frame["tick"], traces.frame["worker"], traces.frame["slot"])) == log
        ticks = int(re.search(r"all orders finished in (\d+) ticks", text).group(1))
        assert traces.rounds["ticks"].tolist() == [ticks] and traces.rounds["complete"].all()
    assert study_log[0][1] != "" and study_log[1] == (study_log[0][0], "", -1)   # the dragged assignment
    status = json.loads((traces_dir / "e2e-1.status.json").read_text())
    assert [(r["status"], r["tip"]) for r in status["rounds"]] == [("complete", None), ("complete", TIP)]
    assert status["tip_mode"] == "static"


def play_decisions(page, decisions, names) -> None:
    """Play a round as scripted (tick, worker index or -1, slot): click the subtask, then the worker; or
    Next tick."""
    for tick, worker, slot in decisions:
        assert page.inner_text("#tick") == f"Tick #{tick + 1}/50"
        version = page.get_attribute("body", "data-version")
        if worker < 0:
            page.click("#next-tick")
        else:
            page.click(f"button.subtask[data-slot='{slot}']")
            page.click(f".worker[data-worker='{names[worker]}']")
        page.wait_for_function(f"document.body.dataset.version !== '{version}'", timeout=10_000)
    assert page.get_attribute("body", "data-phase") == "between"


def test_a_personalised_session_shows_each_participant_their_own_tip(tmp_path):
    """Tip.mode=personalised: two rounds in which the server cooks whenever it can; before the third, the
    banner shows the tip chosen for this participant (its habit's), not the population's #1 of round 1."""
    from playwright.sync_api import sync_playwright

    from bpjax.solve.solver import ExactSolver
    from bpjax.tips.optimum import ExactOptimum
    from tests.play_tips import habitual_round, study_kitchen, write_inputs

    tips, traces = write_inputs(tmp_path)
    spec = study_kitchen()
    decisions = habitual_round(spec, ExactOptimum(ExactSolver(spec)), "server", "cook")
    names = [w.name for w in spec.workers]
    banner = "document.getElementById('tip').textContent.startsWith('Tip: ')"
    with launched(tmp_path, "rounds=3", "practice_rounds=0", "tip.mode=personalised", f"tip.file={tips}",
                  f"tip.traces={traces}") as (url, process), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(url + "?participant=e2e-tips")
        shown = []
        for _ in range(3):
            page.wait_for_selector("body[data-phase=between]")
            page.wait_for_function(banner, timeout=60_000)   # "Choosing a tip …" until it is chosen
            announced = page.inner_text("#tip")
            page.click("#continue")
            page.wait_for_selector("body[data-phase=playing]")
            assert page.inner_text("#tip") == announced
            shown.append(announced.removeprefix("Tip: "))
            if len(shown) < 3:
                play_decisions(page, decisions, names)
        browser.close()
    status = json.loads((tmp_path / "traces" / "e2e-tips.status.json").read_text())
    assert [r["tip"] for r in status["rounds"]] == shown
    assert shown[0] == "The chef should never plate." and shown[2] == "The server should never cook.", shown
