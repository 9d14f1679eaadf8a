"""End-to-end tests of ``python -m bpjax.solve``: output format, files, and an independent check that the
printed optimal schedule obeys the kitchen rules."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
TASK_KEYS = {"worker", "slot", "start", "finish"}


@dataclass
class CliRun:
    proc: subprocess.CompletedProcess
    run_dir: Path

    @property
    def summary(self) -> dict:
        """The JSON object on the last line of stdout."""
        return json.loads(self.proc.stdout.strip().splitlines()[-1])


def run_solve(*overrides: str, run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bpjax.solve", *overrides, f"hydra.run.dir={run_dir}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def solve_cli(tmp_path_factory):
    """solve_cli(scenario) -> CliRun; each scenario is solved once per module (fast baselines)."""
    runs: dict[str, CliRun] = {}

    def get(scenario: str) -> CliRun:
        if scenario not in runs:
            run_dir = tmp_path_factory.mktemp(f"solve_{scenario}")
            proc = run_solve(f"kitchen/scenario={scenario}", "baselines.episodes=16", run_dir=run_dir)
            assert proc.returncode == 0, proc.stderr[-3000:]
            runs[scenario] = CliRun(proc, run_dir)
        return runs[scenario]

    return get


@pytest.mark.slow
def test_solve_cli_output(solve_cli):
    """Exit 0; last stdout line is the JSON summary; PNG and solution.json written; one Gantt row per worker."""
    run = solve_cli("full")
    summary = run.summary
    assert {"optimal_ticks", "screen_tick", "schedule"} <= set(summary)
    assert summary["screen_tick"] == summary["optimal_ticks"] + 1
    assert isinstance(summary["schedule"], list) and summary["schedule"]
    assert all(isinstance(task, dict) and TASK_KEYS <= set(task) for task in summary["schedule"])

    assert (run.run_dir / "gantt.png").is_file()
    assert json.loads((run.run_dir / "solution.json").read_text()) == summary

    lines = run.proc.stdout.splitlines()
    for worker in compose_config(["kitchen/scenario=full"]).kitchen.scenario.workers:
        rows = [line for line in lines if line.lstrip().startswith(f"{worker} |")]
        assert len(rows) == 1, f"Gantt rows for {worker}: {rows}"


def check_schedule(spec: KitchenSpec, summary: dict) -> None:
    """Assert the JSON schedule obeys the rules, independently of the solver."""
    schedule = summary["schedule"]
    workers = {w.name: w for w in spec.workers}
    per = spec.slots_per_order

    # Each real slot exactly once (and no padding or out-of-range slot).
    real_slots = {slot for slot in range(spec.n_slots) if spec.slot_subtask(slot) is not None}
    counts = Counter(task["slot"] for task in schedule)
    assert set(counts) == real_slots
    assert all(n == 1 for n in counts.values()), counts
    by_slot = {task["slot"]: task for task in schedule}

    # Durations: skill ticks of that worker for the slot's type, plus the hand-off.
    for task in schedule:
        subtask = spec.slot_subtask(task["slot"])
        ticks = workers[task["worker"]].ticks[subtask.task_type]
        assert ticks is not None, f"{task['worker']} cannot do slot {task['slot']}"
        assert task["task_type"] == spec.task_types[subtask.task_type]
        assert task["finish"] == task["start"] + ticks + spec.handoff, task

    # No worker holds two tasks at once ([start, finish) intervals do not overlap).
    held = defaultdict(list)
    for task in schedule:
        held[task["worker"]].append((task["start"], task["finish"]))
    for worker, intervals in held.items():
        intervals.sort()
        for (_, finish), (start, _) in zip(intervals, intervals[1:]):
            assert finish <= start, f"{worker} overlaps: {intervals}"

    # Precedence within each order, and nothing before the order arrives.
    for slot, task in by_slot.items():
        order, _ = divmod(slot, per)
        assert task["start"] >= spec.orders[order].arrival
        for pred in spec.slot_subtask(slot).after:
            assert task["start"] >= by_slot[order * per + pred]["finish"], (task, by_slot[order * per + pred])

    # The round ends when the last task is done.
    assert not summary["truncated"]
    assert max(task["finish"] for task in schedule) == summary["optimal_ticks"]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["full", "understaffed"])
def test_solve_cli_schedule_is_valid(solve_cli, scenario):
    """The printed optimal schedule is feasible, and no baseline beats the optimum."""
    summary = solve_cli(scenario).summary
    spec = KitchenSpec.from_dict(compose_config([f"kitchen/scenario={scenario}"]).kitchen)
    assert summary["scenario"] == scenario
    check_schedule(spec, summary)
    for name, score in summary["baselines"].items():
        assert score["best_ticks"] >= summary["optimal_ticks"], name


def test_solve_cli_bad_override(tmp_path):
    """A bad value exits non-zero with a one-line ConfigError on stderr naming the field, no traceback."""
    proc = run_solve("kitchen.handoff=-1", run_dir=tmp_path)
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert "\n" not in message, message
    assert "ConfigError" in message and "kitchen.handoff" in message
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "solution.json").exists()


def test_solve_cli_stops_at_its_state_budget_in_one_line(tmp_path):
    """max_states bounds the search: past it, one line naming the setting, exit 1, no output folder left."""
    proc = run_solve("max_states=100", run_dir=tmp_path / "run")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("output folder:")]
    assert lines == ["SolverBudgetExceeded: max_states: the search passed 100 states without an answer; raise "
                     "max_states (null: no limit)"]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_truncated_solve_says_its_schedule_runs_past_the_horizon(tmp_path):
    """Where nothing finishes within max_ticks the best schedule is still printed whole, said to run past the
    horizon, and its chart is drawn without a layout warning."""
    proc = run_solve("kitchen.max_ticks=3", "baselines.episodes=4", run_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    last = max(task["finish"] for task in summary["schedule"])
    assert summary["truncated"] and last > 3
    assert f"  the best schedule runs past max_ticks=3, to tick {last}:" in proc.stdout.splitlines()
    assert "Warning" not in proc.stderr and (tmp_path / "gantt.png").stat().st_size > 0
