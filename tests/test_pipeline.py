"""The study end to end: the default pipeline on every shipped scenario writes its files, and on the paper's
kitchen names the planted flaw with a tip that helps in simulation; tips.json says what each tip is worth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_tables_well_formed

REPO = Path(__file__).resolve().parents[1]
TIP_FIELDS = {"text", "kind", "worker", "task_type", "times", "condition", "score", "support", "disagreement",
              "simulated_gain", "simulated_gain_ci", "by_compliance", "suboptimal_rate"}


def run_pipeline(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "bpjax.pipeline", f"hydra.run.dir={out}", *overrides],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_default_pipeline_on_the_paper_kitchen(tmp_path):
    result = run_pipeline(tmp_path)
    tips = json.loads((tmp_path / "tips.json").read_text())
    assert set(tips) >= {"recommended", "candidates", "q_values", "trainees", "settings"}
    assert 0 < tips["q_values"]["lower_bound_ticks"] <= tips["q_values"]["optimal_ticks"] == 19
    for name in ("report.md", "tip_effect.png", "traces.parquet", "players.json", "rule_lists.json"):
        assert (tmp_path / name).is_file(), name
    for tip in tips["recommended"] + tips["candidates"]:
        assert TIP_FIELDS <= set(tip) and tip["kind"] in ("count", "state", "rule")
    assert {tip["kind"] for tip in tips["candidates"]} == {"count", "state", "rule"}
    # the study population plants "the chef plates": the top recommended tip corrects it, and every
    # recommended tip's simulated gain has its interval above zero, best first
    top = tips["recommended"][0]
    assert top["worker"] == "chef" and top["advice"] in ("times", "idle")
    assert "plate" in (top["task_type"], *" ".join(top["condition"] or []).split())
    gains = [t["simulated_gain"] for t in tips["recommended"]]
    assert gains == sorted(gains, reverse=True) and all(t["simulated_gain_ci"][0] > 0 for t in tips["recommended"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == top["text"]
    lines = result.stdout.splitlines()
    assert any(line.startswith("Recommended") for line in lines)
    assert any(line.startswith("Best candidate not recommended") for line in lines)
    report = (tmp_path / "report.md").read_text()
    assert top["text"] in report and "What the simulation rests on" in report
    assert assert_tables_well_formed(report) >= 3  # the candidates, the recommended tips, the top tip by round


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [["kitchen/scenario=understaffed"], ["kitchen/scenario=practice"]],
                         ids=["understaffed", "practice"])
def test_every_shipped_scenario_runs_by_default(tmp_path, overrides):
    """The default population names workers some kitchens lack: their flaws are dropped with a note."""
    result = run_pipeline(tmp_path, *overrides, "n_players=16", "rounds=3")
    tips = json.loads((tmp_path / "tips.json").read_text())
    assert "note: population[" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == ({k: v for k, v in tips["recommended"][0].items() if k != "by_round"}
                       if tips["recommended"] else {"recommended": None, "message": tips["message"]})


def test_a_population_naming_a_missing_worker_is_refused_when_strict(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.pipeline", f"hydra.run.dir={tmp_path}",
                             "kitchen/scenario=understaffed", "strict_population=true"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "ConfigError: population[1].flaws[0]: this kitchen has no worker 'chef' (workers sous_chef, server; "
        "types chop, cook, plate)")


@pytest.mark.slow
def test_flawless_trainees_get_no_tip_and_the_pipeline_says_so(tmp_path):
    result = run_pipeline(tmp_path, "population=experts", "n_players=12", "rounds=3", "tips=algorithm")
    tips = json.loads((tmp_path / "tips.json").read_text())
    assert tips["recommended"] == [] and tips["message"] == "no tip found that helps these trainees"
    assert "No tip recommended: no tip found that helps these trainees" in result.stdout


@pytest.mark.slow
def test_players_mines_for_the_named_players_only(tmp_path):
    """`players=[...]` (e.g. one participant of the game) replaces the bottom quantile: π_H is fitted on exactly
    their decisions, and tips.json says whose they were."""
    run_pipeline(tmp_path, "players=[p0001,p0004]", "n_players=8", "rounds=2", "tips.simulate=2",
                 "tips.eval_trainees=4", "tips.rule_lists=false")
    trainees = json.loads((tmp_path / "tips.json").read_text())["trainees"]
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "traces.parquet")
    assert trainees["players"] == ["p0001", "p0004"] and trainees["bottom_quantile"] is None
    assert trainees["decisions"] == int(frame["player_id"].isin(["p0001", "p0004"]).sum())
    assert "the named (2 players" in trainees["summary"]


def test_an_unknown_player_is_one_line_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.pipeline", f"hydra.run.dir={tmp_path}",
                             "players=[p0001,nobody]", "n_players=4"], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("ConfigError: players: 'nobody' is not among")
    assert not (tmp_path / "traces.parquet").exists()


def test_kitchen_settings_that_contradict_the_traces_are_one_line(tmp_path, paper_spec):
    """With traces=..., the kitchen is the traces': a kitchen setting describing another is refused before any
    work; one describing the same kitchen is fine."""
    from bpjax.data.players import generate_population
    from bpjax.data.traces import write_traces

    frame, _ = generate_population(paper_spec, [{"kind": "expert", "base": "optimal", "epsilon": 0.0}], 2, 1, 0)
    write_traces(frame, tmp_path / "traces.csv")
    result = subprocess.run([sys.executable, "-m", "bpjax.pipeline", f"traces={tmp_path / 'traces.csv'}",
                             "kitchen/scenario=understaffed", f"hydra.run.dir={tmp_path / 'run'}"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ConfigError: traces: their kitchen is not the one kitchen/scenario=understaffed describes; the traces' own "
        "kitchen is used, so drop the kitchen settings"]
    assert not (tmp_path / "run").exists()


def test_the_bottom_line_says_its_cut_off_and_the_players_tied_at_it():
    """Players tied at the quantile's mean ticks all count (none ranks below another), so the bottom 25% can
    hold more than a quarter of the players: the first line says why."""
    import pandas as pd

    from bpjax.pipeline import _cut_off

    assert _cut_off(pd.Series([19.0] * 8), 0.25) == "(mean ticks >= 19.00, the cut-off; 8 players tie at it, all kept)"
    assert _cut_off(pd.Series([20.0, 21.0, 22.0, 23.0, 24.0]), 0.25) == "(mean ticks >= 23.00, the cut-off)"


def test_a_generated_folder_with_rejected_rounds_and_unused_settings(tmp_path, paper_spec):
    """traces= a folder as the generator writes it (scores.csv beside the traces), one round invalid, with
    skip_invalid and two generator settings: scores.csv is skipped with a note, the rejected round is in
    tips.json, report.md and the job log, and the unused settings are named (stderr and the log)."""
    from bpjax.data.players import generate_population
    from bpjax.data.traces import write_traces

    folder = tmp_path / "traces"
    folder.mkdir()
    frame, _ = generate_population(paper_spec, [{"kind": "greedy", "base": "greedy", "epsilon": 0.1}], 4, 2, 0)
    bad = frame.index[(frame["episode_id"] == "p0000-r1") & (frame["worker"] != "")][0]
    frame.loc[bad, "worker"] = "pastry_chef"
    write_traces(frame, folder / "traces.csv")
    frame.groupby(["player_id", "round"]).size().rename("ticks").reset_index().to_csv(folder / "scores.csv",
                                                                                      index=False)
    out = tmp_path / "run"
    result = run_pipeline(out, f"traces={folder}", "skip_invalid=true", "n_players=10", "population=experts",
                          "tips.simulate=2", "tips.rule_lists=false", "tips.eval_trainees=4")
    reason = f"{folder / 'traces.csv'}, row {bad + 2}: unknown worker 'pastry_chef'"
    assert f"rejected episode p0000-r1: {reason}" in result.stdout
    assert "note: skipped 1 file(s) that are not traces (none of the columns tick, worker, slot, kitchen): " \
           "scores.csv" in result.stdout
    unused = f"note: traces={folder}: the players and rounds are the traces'; not used: n_players=10 population=experts"
    assert unused in result.stderr
    source = json.loads((out / "tips.json").read_text())["traces"]
    assert source["n_rejected"] == 1 and source["skipped_files"] == [str(folder / "scores.csv")]
    [rejected] = source["rejected"]
    assert rejected["episode_id"] == "p0000-r1" and rejected["reason"].startswith(reason)
    assert f"- episode p0000-r1: {reason}" in (out / "report.md").read_text()
    log = (out / "pipeline.log").read_text()
    assert f"rejected episode p0000-r1: {reason}" in log and unused in log and "1 rejected" in log


def test_reading_settings_without_traces_are_named_unused(tmp_path):
    result = run_pipeline(tmp_path, "skip_invalid=true", "n_players=4", "rounds=1", "tips.simulate=1",
                          "tips.rule_lists=false", "tips.eval_trainees=2")
    note = "note: without traces the rounds are generated (valid by construction); not used: skip_invalid=true"
    assert note in result.stderr and note in (tmp_path / "pipeline.log").read_text()
    assert json.loads((tmp_path / "tips.json").read_text())["traces"] == {
        "source": None, "n_rejected": 0, "rejected": [], "skipped_files": [], "notes": [note.removeprefix("note: ")]}
