"""Synthetic players: valid traces, planted flaws that show in the data, experts at the optimum, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bpjax.data import read_traces, validate_traces, write_traces
from bpjax.data.players import generate_population, profiles_from_config
from bpjax.env.config import ConfigError
from bpjax.solve.solver import solve
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]
POPULATION = [
    {"kind": "greedy", "base": "greedy", "epsilon": 0.0, "share": 1},
    {"kind": "chef_plates", "base": "greedy", "flaws": [["chef", "plate"]], "epsilon": 0.0, "share": 1},
    {"kind": "server_cooks", "base": "keep_busy", "flaws": [["server", "cook"]], "epsilon": 0.05, "share": 1},
    {"kind": "expert", "base": "optimal", "epsilon": 0.0, "share": 1},
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    spec = spec_for()
    frame, truth = generate_population(spec, POPULATION, n_players=16, rounds=3, seed=0)
    path = write_traces(frame, tmp_path_factory.mktemp("traces") / "t.parquet")
    traces = read_traces(path)  # raises if any generated round does not replay
    kinds = pd.DataFrame(truth).set_index("player_id")["kind"]
    return spec, traces, kinds, truth


def share_of(frame: pd.DataFrame, worker: str, slot_type: str, spec) -> float:
    """Among assignments of `slot_type` subtasks, the share done by `worker`."""
    assigned = frame[frame["slot"] >= 0]
    types = assigned["slot"].map(lambda s: spec.task_types[spec.slot_subtask(int(s)).task_type])
    of_type = assigned[types == slot_type]
    return float((of_type["worker"] == worker).mean()) if len(of_type) else 0.0


def test_population_counts_and_ground_truth(generated):
    _, traces, kinds, truth = generated
    assert kinds.value_counts().to_dict() == {"greedy": 4, "chef_plates": 4, "server_cooks": 4, "expert": 4}
    assert len(traces.rounds) == 16 * 3
    flawed = {t["player_id"]: t["flaws"] for t in truth if t["flaws"]}
    assert all(flaws == [["chef", "plate"]] for pid, flaws in flawed.items() if kinds[pid] == "chef_plates")


def test_planted_flaws_show_in_the_traces(generated):
    """The chef plates far more often for chef_plates players than for unflawed greedy ones; the server
    cooks for server_cooks players and never for experts (the exact optimum never has the server cook)."""
    spec, traces, kinds, _ = generated
    frame = traces.frame.assign(kind=traces.frame["player_id"].map(kinds))
    # greedy players already let the chef plate when the others are busy (a quarter of platings here); the
    # planted flaw makes the chef plate whenever idle with a plate open: about half of all platings
    flawed = share_of(frame[frame.kind == "chef_plates"], "chef", "plate", spec)
    assert flawed >= 0.4 and flawed > share_of(frame[frame.kind == "greedy"], "chef", "plate", spec) + 0.15
    assert share_of(frame[frame.kind == "server_cooks"], "server", "cook", spec) > 0.2
    assert share_of(frame[frame.kind == "expert"], "server", "cook", spec) == 0.0


def test_experts_play_the_exact_optimum_and_others_spread(generated):
    spec, traces, kinds, _ = generated
    rounds = traces.rounds.assign(kind=traces.rounds["player_id"].map(kinds))
    optimum = solve(spec).optimal_ticks
    assert (rounds[rounds.kind == "expert"]["ticks"] == optimum).all()
    assert (rounds["ticks"] >= optimum).all()
    assert rounds[rounds.kind != "expert"]["ticks"].mean() > optimum + 2
    assert rounds["ticks"].std() > 1.0  # a spread of scores


@pytest.mark.parametrize("entry,message", [
    ({"kind": "x", "base": "lazy"}, r"population\[0\].base: unknown habit 'lazy'"),
    ({"kind": "x", "flaws": [["pastry_chef", "plate"]]},
     r"population\[0\].flaws\[0\]: this kitchen has no worker 'pastry_chef' \(workers chef, sous_chef, server"),
    ({"kind": "x", "avoid": [["chef", "bake"]]}, r"population\[0\].avoid\[0\]: this kitchen has no task type 'bake'"),
    ({"kind": "x", "flaws": ["chef"]}, r"population\[0\].flaws\[0\]: expected \[worker, task type\], got 'chef'"),
    ({"kind": "x", "epsilon": 1.5}, r"population\[0\].epsilon: must be in \[0, 1\]"),
    ({"kind": "x", "share": 0}, r"population\[0\].share: must be a finite number > 0, got 0"),
    ({"kind": "x", "share": float("inf")}, r"population\[0\].share: must be a finite number > 0, got inf"),
    ({"kind": "x", "share": float("nan")}, r"population\[0\].share: must be a finite number > 0, got nan"),
    ({"kind": "x", "mood": "grumpy"}, r"population\[0\].mood: unknown field"),
])
def test_bad_population_config(entry, message):
    with pytest.raises(ConfigError, match=message):
        profiles_from_config([entry], spec_for(), strict=True)


def test_flaws_of_missing_workers_are_dropped_with_a_note():
    """One population serves every scenario: understaffed, the chef's flaw goes (and says so), the rest stays."""
    population = [{"kind": "chef_plates", "flaws": [["chef", "plate"]]},
                  {"kind": "server_cooks", "flaws": [["server", "cook"]]}]
    [(chef, _), (server, _)], notes = profiles_from_config(population, spec_for("kitchen/scenario=understaffed"))
    assert chef.flaws == () and server.flaws == (("server", "cook"),)
    assert notes == ["population[0] (chef_plates): flaw ['chef', 'plate'] dropped: this kitchen has no worker 'chef'"]


def test_an_avoided_assignment_never_happens():
    """Players who avoid the server cooking never let it cook, even where the optimum needs it (understaffed)."""
    spec = spec_for("kitchen/scenario=understaffed")
    population = [{"kind": "no_server_cook", "base": "optimal", "avoid": [["server", "cook"]], "epsilon": 0.3}]
    frame, truth = generate_population(spec, population, n_players=4, rounds=2, seed=0)
    traces = validate_traces(frame)
    assert share_of(traces.frame, "server", "cook", spec) == 0.0
    assert truth[0]["avoid"] == [["server", "cook"]]
    assert (traces.rounds["ticks"] > solve(spec).optimal_ticks).all()


@pytest.mark.slow
def test_generate_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.data", "generate", "n_players=6", "rounds=2",
                             "format=csv", f"hydra.run.dir={tmp_path}"], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rounds"] == 12 and Path(summary["traces"]).suffix == ".csv"
    assert read_traces(summary["traces"]).rounds["ticks"].tolist() == pd.read_csv(summary["scores"])["ticks"].tolist()
    assert len(json.loads(Path(summary["players"]).read_text())) == 6


def test_two_kinds_of_one_name_are_refused():
    """players.json and the reports tell kinds apart by name: a second entry with the same kind is an error."""
    population = [{"kind": "greedy"}, {"kind": "expert", "base": "optimal"}, {"kind": "greedy", "epsilon": 0.5}]
    with pytest.raises(ConfigError, match=r"^population\[2\]\.kind: 'greedy' is population\[0\]'s kind too"):
        profiles_from_config(population, spec_for())
