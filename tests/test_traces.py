"""The trace format: round trips, exact replay, and one clear error per kind of bad input."""

from __future__ import annotations

import random

import jax
import numpy as np
import pandas as pd
import pytest

from bpjax.data import (TraceError, append_trace_rows, read_traces, record_episode, validate_traces,
                        write_traces)
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from tests.conftest import spec_for


def random_rounds(spec, n_rounds: int, seed: int) -> pd.DataFrame:
    """Random legal play, recorded as trace rows (2 players, rounds numbered per player)."""
    ref = ReferenceKitchen(spec.to_dict())
    rng = random.Random(seed)
    frames = []
    for index in range(n_rounds):
        state, actions = ref.reset(), []
        while not any(ref.is_over(state)):
            actions.append(rng.choice(ref.legal_actions(state)))
            state = ref.step(state, actions[-1])[0]
        frames.append(record_episode(spec, actions, f"p{index % 2}", index // 2 + 1, f"e{index}"))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def spec():
    return spec_for("kitchen/orders=pasta_mix")


@pytest.fixture(scope="module")
def frame(spec):
    return random_rounds(spec, 12, seed=0)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip(tmp_path, frame, suffix):
    path = write_traces(frame, tmp_path / f"traces{suffix}")
    traces = read_traces(path)
    pd.testing.assert_frame_equal(traces.frame, frame, check_dtype=False)
    assert len(traces.rounds) == 12 and traces.rejected == []
    assert traces.obs.shape == (len(frame), 3 * 12 + 3 * 5 + 1) and traces.mask.shape == (len(frame), 3 * 12 + 1)
    assert traces.mask[np.arange(len(frame)), traces.action].all()


def test_replay_through_the_jax_env_reproduces_states_and_ticks(tmp_path, frame, spec):
    traces = read_traces(write_traces(frame, tmp_path / "t.parquet"))
    env, params = make_kitchen(spec)
    step = jax.jit(lambda s, a: env.step_env(None, s, a, params))
    obs_fn = jax.jit(lambda s: env.raw_features(s, params))
    row = 0
    for episode in traces.rounds.itertuples():
        state = env.reset_env(None, params)
        n = int((traces.frame["episode_id"] == episode.episode_id).sum())
        for _ in range(n):
            assert int(state.tick) == traces.frame["tick"].iloc[row]
            np.testing.assert_array_equal(obs_fn(state), traces.obs[row])
            state, *_ = step(state, int(traces.action[row]))
            row += 1
        assert int(state.tick) == episode.ticks


def corrupt(frame: pd.DataFrame, row: int, **changes) -> pd.DataFrame:
    bad = frame.copy()
    for column, value in changes.items():
        bad.loc[row, column] = value
    return bad


def first_assignment(frame: pd.DataFrame, episode: str = "e3") -> int:
    rows = frame.index[(frame["episode_id"] == episode) & (frame["slot"] >= 0)]
    return int(rows[0])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("case,expected", [
    ("missing_column", r"missing column\(s\) tick"),
    ("unknown_worker", r"row {row}: unknown worker 'pastry_chef'"),
    ("unknown_slot", r"row {row}: unknown slot 99"),
    ("busy_worker", r"row {row}: assigning .* is illegal at tick \d+: the worker is busy"),
    ("unavailable", r"row {row}: assigning chef to slot 1 .* is illegal at tick 0: the subtask is not available yet"),
    ("tick_order", r"row {row}: tick -1 is out of order"),
    ("tick_ahead", r"row {row}: tick 40 is ahead of the kitchen"),
    ("not_int", r"row {row}: tick must be an integer"),
    ("kitchen_changes", r"row {row}: the kitchen column changes within one round"),
    ("bad_kitchen", r"row {row}: invalid kitchen: kitchen.dishes: missing"),
])
def test_each_invalid_input_names_file_row_and_reason(tmp_path, frame, case, expected, suffix):
    row = first_assignment(frame)
    if case == "missing_column":
        bad = frame.drop(columns=["tick"])
    elif case == "unknown_worker":
        bad = corrupt(frame, row, worker="pastry_chef")
    elif case == "unknown_slot":
        bad = corrupt(frame, row, slot=99)
    elif case == "busy_worker":  # the same worker assigned twice in a row at one tick
        row += 1
        bad = frame.copy()
        bad.loc[row] = frame.loc[row - 1]
        bad.loc[row, "slot"] = next(s for s in (0, 4, 8) if s != frame.loc[row - 1, "slot"])
        bad = bad.loc[: row].reset_index(drop=True)
    elif case == "unavailable":
        row = int(frame.index[frame["episode_id"] == "e3"][0])
        bad = corrupt(frame, row, worker="chef", slot=1)
    elif case == "tick_order":
        bad = corrupt(frame, row, tick=-1)
    elif case == "tick_ahead":
        bad = corrupt(frame, row, tick=40)
    elif case == "not_int":
        bad = frame.astype({"tick": object})
        bad.loc[row, "tick"] = "soon"
    elif case == "kitchen_changes":
        row = int(frame.index[frame["episode_id"] == "e3"][1])  # the round's second decision
        bad = corrupt(frame, row, kitchen='{"task_types": []}')
    else:
        row = int(frame.index[frame["episode_id"] == "e3"][0])
        bad = frame.copy()
        bad.loc[bad["episode_id"] == "e3", "kitchen"] = '{"task_types": []}'

    path = tmp_path / f"bad{suffix}"
    if case == "not_int" and suffix == ".parquet":
        bad = bad.astype({"tick": str})
    if case == "missing_column":  # write_traces itself refuses a frame without every column
        bad.to_csv(path, index=False) if suffix == ".csv" else bad.to_parquet(path, index=False)
    else:
        write_traces(bad, path)
    with pytest.raises(TraceError, match=expected.format(row=row)) as info:
        read_traces(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_skip_invalid_reports_every_rejected_round(tmp_path, frame):
    bad = corrupt(frame, first_assignment(frame, "e3"), worker="pastry_chef")
    bad = corrupt(bad, first_assignment(frame, "e7"), slot=99)
    traces = read_traces(write_traces(bad, tmp_path / "t.csv"), skip_invalid=True)
    assert len(traces.rejected) == 2
    assert traces.rejected[0].startswith("episode e3:") and "unknown worker" in traces.rejected[0]
    assert traces.rejected[1].startswith("episode e7:") and "unknown slot 99" in traces.rejected[1]
    assert set(traces.rounds["episode_id"]) == {f"e{i}" for i in range(12)} - {"e3", "e7"}
    assert len(traces.obs) == len(traces.frame) == (~frame["episode_id"].isin(["e3", "e7"])).sum()


def test_an_in_memory_frame_validates_like_its_file(tmp_path, frame):
    from_file = read_traces(write_traces(frame, tmp_path / "t.parquet"))
    in_memory = validate_traces(frame, "generated")
    np.testing.assert_array_equal(in_memory.obs, from_file.obs)
    np.testing.assert_array_equal(in_memory.action, from_file.action)
    pd.testing.assert_frame_equal(in_memory.rounds, from_file.rounds)
    with pytest.raises(TraceError, match=r"^generated, row \d+: unknown worker 'pastry_chef'"):
        validate_traces(corrupt(frame, first_assignment(frame), worker="pastry_chef"), "generated")


def test_a_file_whose_every_round_is_rejected_loads_empty(tmp_path, frame):
    """skip_invalid with nothing valid left: an empty set with every round listed, not a crash."""
    one = frame[frame["episode_id"] == "e0"]
    traces = read_traces(write_traces(corrupt(one, first_assignment(frame, "e0"), slot=99), tmp_path / "t.csv"),
                         skip_invalid=True)
    assert len(traces.rejected) == 1 and len(traces.rounds) == 0
    assert traces.obs.shape[0] == traces.mask.shape[0] == len(traces.action) == 0


def test_appended_rows_and_rounds_left_mid_way(tmp_path, frame):
    """The browser game appends rows one at a time; a round cut off mid-way still loads, marked incomplete."""
    path = tmp_path / "p0.csv"
    cut = int(np.flatnonzero(frame["episode_id"] == "e1")[-1]) - 2   # e1 loses its last rows
    for row in frame.iloc[: cut + 1].to_dict("records"):
        append_trace_rows([row], path)
    traces = read_traces(path)
    assert traces.rejected == [] and len(traces.frame) == cut + 1
    complete = traces.rounds.set_index("episode_id")["complete"]
    assert complete["e0"] and not complete["e1"]
    assert not traces.rounds.set_index("episode_id")["finished"]["e1"]
    full = read_traces(write_traces(frame, tmp_path / "all.parquet")).rounds.set_index("episode_id")
    assert traces.rounds.set_index("episode_id").loc["e1", "ticks"] <= full.loc["e1", "ticks"]
    assert full["complete"].all()


def test_a_folder_reads_as_one_trace_set(tmp_path, frame):
    folder = tmp_path / "traces"
    folder.mkdir()
    with pytest.raises(TraceError, match="no trace files"):
        read_traces(folder)
    for player, part in frame.groupby("player_id"):
        write_traces(part, folder / f"{player}.{'csv' if player == 'p0' else 'parquet'}")
    (folder / "p0.status.json").write_text("{}")    # other files beside the traces are ignored
    traces = read_traces(folder)
    assert sorted(traces.rounds["episode_id"]) == sorted(frame["episode_id"].unique())
    assert len(traces.frame) == len(traces.action) == len(traces.obs) == len(frame)
    assert traces.spec is not None
    write_traces(frame[frame["episode_id"] == "e0"], folder / "copy.csv")
    with pytest.raises(TraceError, match="episode_id 'e0' appears in several files"):
        read_traces(folder)
