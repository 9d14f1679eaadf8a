"""The trace format: round trips, exact replay, and one clear error per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from bpjax.data import (TraceError, append_trace_rows, read_traces, skipped_note, validate_traces,
                        write_traces)
from bpjax.env.kitchen import make_kitchen
from tests.conftest import random_rounds, spec_for


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


def row_label(row: int, suffix: str) -> int:
    """How messages number data row `row` (0-based): Parquet by index, CSV by line (the header is line 1)."""
    return row + 2 if suffix == ".csv" else row


WHOLE = r"expected a whole number in {lo}\.\.2147483647, got '?{value}'?"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("case,expected", [
    ("missing_column", r"missing column\(s\) tick"),
    ("unknown_worker", r"row {row}: unknown worker 'pastry_chef'"),
    ("unknown_slot", r"row {row}: unknown slot 99"),
    ("busy_worker", r"row {row}: assigning .* is illegal at tick \d+: the worker is busy"),
    ("unavailable", r"row {row}: assigning chef to slot 1 .* is illegal at tick 0: the subtask is not available yet"),
    ("tick_ahead", r"row {row}: tick 40 is ahead of the kitchen"),
    ("tick_negative", r"row {row}: tick: " + WHOLE.format(lo=0, value="-1")),
    ("tick_huge", r"row {row}: tick: " + WHOLE.format(lo=0, value=r"1e\+20")),
    ("tick_fraction", r"row {row}: tick: " + WHOLE.format(lo=0, value=r"2\.5")),
    ("tick_text", r"row {row}: tick: " + WHOLE.format(lo=0, value="soon")),
    ("tick_null", r"row {row}: tick: missing"),
    ("round_zero", r"row {row}: round: " + WHOLE.format(lo=1, value="0")),
    ("slot_below", r"row {row}: slot: " + WHOLE.format(lo=-1, value="-2")),
    ("episode_null", r"row {row}: episode_id: missing"),
    ("player_null", r"row {row}: player_id: missing"),
    ("player_changes", r"row {row}: player_id changes within episode 'e3': 'p0' here, 'p1' on its first row"),
    ("round_changes", r"row {row}: round changes within episode 'e3': 7 here, 2 on its first row"),
    ("kitchen_changes", r"row {row}: the kitchen changes within the round"),
    ("kitchen_not_json", r"row {row}: kitchen: not valid JSON \(Expecting"),
    ("bad_kitchen", r"row {row}: invalid kitchen: kitchen.dishes: missing"),
])
def test_each_invalid_input_names_file_row_and_reason(tmp_path, frame, case, expected, suffix):
    row = first_assignment(frame)
    values = {"tick_negative": ("tick", -1), "tick_huge": ("tick", 1e20), "tick_fraction": ("tick", 2.5),
              "tick_text": ("tick", "soon"), "tick_null": ("tick", None), "round_zero": ("round", 0),
              "slot_below": ("slot", -2), "episode_null": ("episode_id", None), "player_null": ("player_id", None),
              "player_changes": ("player_id", "p0"), "round_changes": ("round", 7),
              "kitchen_not_json": ("kitchen", '{"task_types": [}')}
    if case == "missing_column":
        bad = frame.drop(columns=["tick"])
    elif case in values:
        column, value = values[case]
        if case in ("player_changes", "round_changes"):
            row = int(frame.index[frame["episode_id"] == "e3"][1])  # e3 is player p1's round 2
        bad = frame.astype({column: object})
        bad.loc[row, column] = value
        if suffix == ".parquet" and isinstance(value, str) and column in ("tick", "round", "slot"):
            bad = bad.astype({column: str})   # Parquet columns have one type
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
    elif case == "tick_ahead":
        bad = corrupt(frame, row, tick=40)
    elif case == "kitchen_changes":
        row = int(frame.index[frame["episode_id"] == "e3"][1])  # the round's second decision
        bad = corrupt(frame, row, kitchen='{"task_types": []}')
    else:
        row = int(frame.index[frame["episode_id"] == "e3"][0])
        bad = frame.copy()
        bad.loc[bad["episode_id"] == "e3", "kitchen"] = '{"task_types": []}'

    path = tmp_path / f"bad{suffix}"
    if case == "missing_column":  # write_traces itself refuses a frame without every column
        bad.to_csv(path, index=False) if suffix == ".csv" else bad.to_parquet(path, index=False)
    else:
        write_traces(bad, path)
    with pytest.raises(TraceError, match=expected.format(row=row_label(row, suffix))) as info:
        read_traces(path)
    assert str(info.value).startswith(f"{path}") and "\n" not in str(info.value)
    if case != "missing_column":   # skip_invalid leaves out exactly the round of that row
        traces = read_traces(path, skip_invalid=True)
        assert [str(r.reason) for r in traces.rejected] == [str(info.value)]
        rejected = traces.rejected[0]
        assert len(traces.frame) + len(rejected.rows) == len(bad)
        assert row_label(row, suffix) in rejected.rows
        assert rejected.episode_id == "e3" and rejected.what == "episode e3"   # a null id joins its round


def test_whole_floats_and_reindented_kitchens_load_as_the_same_round(tmp_path, frame, spec):
    """3.0 is the integer 3; the same kitchen as indented JSON with other key order is the same kitchen."""
    bad = frame.astype({"tick": float, "slot": float, "round": float})
    episode = bad["episode_id"] == "e3"
    kitchen = json.dumps(dict(reversed(list(spec.to_dict().items()))), indent=2)
    bad.loc[episode[episode].index[1:], "kitchen"] = kitchen
    for suffix in (".csv", ".parquet"):
        path = write_traces(bad, tmp_path / f"t{suffix}")
        traces = read_traces(path)
        assert traces.rejected == [] and traces.frame["tick"].tolist() == frame["tick"].tolist()
        assert traces.frame["round"].dtype == np.int64 and traces.spec.to_dict() == spec.to_dict()
        np.testing.assert_array_equal(traces.action, read_traces(write_traces(frame, tmp_path / "ok.csv")).action)


def test_csv_rows_are_numbered_by_file_line(tmp_path, frame, spec):
    """Row N of a CSV is line N of the file, as an editor shows it: a kitchen value spanning several lines
    shifts the later rows' numbers. An extra value on a line is reported at the line pandas names too."""
    multi = frame.copy()
    multi.loc[0:1, "kitchen"] = json.dumps(spec.to_dict(), indent=1)   # e0's first two rows span many lines
    row = first_assignment(frame)
    multi.loc[row, "worker"] = "pastry_chef"
    path = write_traces(multi, tmp_path / "multi.csv")
    line = 1 + next(i for i, text in enumerate(path.read_text().splitlines()) if "pastry_chef" in text)
    assert line > row + 2   # the multi-line kitchens came first
    with pytest.raises(TraceError, match=rf"{path}, row {line}: unknown worker 'pastry_chef'"):
        read_traces(path)
    path = write_traces(frame, tmp_path / "extra.csv")
    lines = path.read_text().splitlines()
    lines[row + 1] += ",extra"   # data row `row` is line row + 2
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(pd.errors.ParserError, match=rf"in line {row + 2}, saw 8"):
        pd.read_csv(path)
    with pytest.raises(TraceError, match=rf"{path}, row {row + 2}: 8 values, the header has 7"):
        read_traces(path)


def test_file_problems_say_what_is_wrong(tmp_path, frame):
    with pytest.raises(TraceError, match=rf"^{tmp_path / 'none.csv'}: not found$"):
        read_traces(tmp_path / "none.csv")
    with pytest.raises(TraceError, match=r"not found$"):
        read_traces(tmp_path / "no_folder")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(TraceError, match=r"empty.csv: empty file \(no header line\)"):
        read_traces(tmp_path / "empty.csv")
    (tmp_path / "junk.parquet").write_bytes(b"\x00\xffnot parquet" * 10)
    with pytest.raises(TraceError, match=r"junk.parquet: not a readable Parquet file"):
        read_traces(tmp_path / "junk.parquet")
    (tmp_path / "latin.csv").write_bytes(",".join(frame.columns).encode() + b"\n\xe9\xff,1\n")
    with pytest.raises(TraceError, match=r"latin.csv: not UTF-8 text"):
        read_traces(tmp_path / "latin.csv")
    huge = frame.copy()
    huge.loc[first_assignment(frame), "worker"] = "w" * 100_000
    with pytest.raises(TraceError) as info:
        read_traces(write_traces(huge, tmp_path / "huge.csv"))
    assert "unknown worker 'www" in str(info.value) and len(str(info.value)) < len(str(tmp_path)) + 250


def test_skip_invalid_reports_every_rejected_round(tmp_path, frame):
    bad = corrupt(frame, first_assignment(frame, "e3"), worker="pastry_chef")
    bad = corrupt(bad, first_assignment(frame, "e7"), slot=99)
    traces = read_traces(write_traces(bad, tmp_path / "t.csv"), skip_invalid=True)
    assert len(traces.rejected) == 2
    assert str(traces.rejected[0]).startswith("episode e3:") and "unknown worker" in str(traces.rejected[0])
    assert str(traces.rejected[1]).startswith("episode e7:") and "unknown slot 99" in str(traces.rejected[1])
    assert set(traces.rounds["episode_id"]) == {f"e{i}" for i in range(12)} - {"e3", "e7"}
    assert len(traces.obs) == len(traces.frame) == (~frame["episode_id"].isin(["e3", "e7"])).sum()
    for rejected, episode in zip(traces.rejected, ["e3", "e7"]):   # its rows: every line of that round
        assert rejected.rows == tuple(i + 2 for i in np.flatnonzero(frame["episode_id"] == episode))


def test_rows_without_an_episode_id_reject_their_round_not_vanish(tmp_path, frame):
    """A null episode_id on a whole round, or on one row of a round: that round is rejected, named by its
    player and round, and every other row loads."""
    bad = frame.astype({"episode_id": object})
    bad.loc[bad["episode_id"] == "e5", "episode_id"] = None      # all of e5 (player p1, round 3)
    one = first_assignment(frame, "e2")
    bad.loc[one, "episode_id"] = None                             # one row of e2
    bad.loc[one + 1, ["episode_id", "player_id"]] = None          # and one with no player either
    path = write_traces(bad, tmp_path / "t.parquet")
    with pytest.raises(TraceError, match=rf"row {one}: episode_id: missing"):
        read_traces(path)
    traces = read_traces(path, skip_invalid=True)
    whats = [r.what for r in traces.rejected]
    assert whats == ["episode e2", f"row {one + 1} (no episode_id)", "player p1 round 3 (no episode_id)"]
    assert set(traces.rounds["episode_id"]) == {f"e{i}" for i in range(12)} - {"e2", "e5"}
    assert len(traces.frame) + sum(len(r.rows) for r in traces.rejected) == len(frame)


def test_skip_invalid_lists_unreadable_files_of_a_folder(tmp_path, frame):
    folder = tmp_path / "traces"
    folder.mkdir()
    write_traces(frame[frame["player_id"] == "p0"], folder / "p0.csv")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "garbage.parquet").write_bytes(b"PAR1 and then nothing")
    write_traces(corrupt(frame[frame["player_id"] == "p1"], first_assignment(frame, "e3"), slot=99), folder / "p1.csv")
    with pytest.raises(TraceError, match=r"empty.csv: empty file"):
        read_traces(folder)
    traces = read_traces(folder, skip_invalid=True)
    assert [r.what for r in traces.rejected] == ["file", "file", "episode e3"]
    assert [Path(r.source).name for r in traces.rejected] == ["empty.csv", "garbage.parquet", "p1.csv"]
    assert str(traces.rejected[0]) == f"file: {folder / 'empty.csv'}: empty file (no header line)"
    assert set(traces.rounds["episode_id"]) == set(frame["episode_id"]) - {"e3"}


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


def test_a_folder_skips_tables_that_are_not_traces_and_names_them(tmp_path, frame):
    """The generator writes scores.csv (one row per round, no decision column) beside its traces: a folder
    read skips it and says so; a file with some decision columns but not all is still a broken trace."""
    folder = tmp_path / "traces"
    folder.mkdir()
    pd.DataFrame({"player_id": ["p0"], "kind": ["greedy"], "round": [1], "ticks": [23], "finished": [True]}) \
        .to_csv(folder / "scores.csv", index=False)
    with pytest.raises(TraceError, match=r"traces: no trace files \(\*\.csv, \*\.parquet\) in this folder "
                                         r"\(not traces: scores\.csv\)$"):
        read_traces(folder)
    with pytest.raises(TraceError, match=r"scores.csv: missing column\(s\) episode_id, tick, worker, slot, kitchen$"):
        read_traces(folder / "scores.csv")   # named on its own, it is a trace that fails
    write_traces(frame, folder / "traces.parquet")
    for skip_invalid in (False, True):
        traces = read_traces(folder, skip_invalid=skip_invalid)
        assert traces.skipped == [str(folder / "scores.csv")] and traces.rejected == []
        assert len(traces.frame) == len(frame)
    assert skipped_note(traces) == ("skipped 1 file(s) that are not traces (none of the columns tick, worker, slot, "
                                    "kitchen): scores.csv")
    assert skipped_note(read_traces(folder / "traces.parquet")) is None
    frame.drop(columns="kitchen").to_csv(folder / "partial.csv", index=False)
    with pytest.raises(TraceError, match=r"partial.csv: missing column\(s\) kitchen$"):
        read_traces(folder)
    traces = read_traces(folder, skip_invalid=True)
    assert [Path(r.source).name for r in traces.rejected] == ["partial.csv"]
    assert [Path(f).name for f in traces.skipped] == ["scores.csv"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_traces_without_rounds_say_so_not_several_kitchens(tmp_path, frame, spec, suffix):
    """A header-only file (or a 0-row Parquet) holds no kitchen at all: the commands' line says there are no
    rounds, and says when skip_invalid left every round out."""
    from bpjax.env.config import ConfigError

    empty = read_traces(write_traces(frame.head(0), tmp_path / f"empty{suffix}"))
    with pytest.raises(ConfigError, match=r"^traces: no rounds to read \(no rows of decisions\)$"):
        empty.kitchen("run")
    broken = frame[frame["episode_id"] == frame["episode_id"].iloc[0]].copy()
    broken.loc[broken.index[0], "worker"] = "pastry_chef"
    rejected = read_traces(write_traces(broken, tmp_path / f"broken{suffix}"), skip_invalid=True)
    with pytest.raises(ConfigError, match=r"; all 1 left out as invalid\)$"):
        rejected.kitchen("run")
    assert read_traces(write_traces(frame, tmp_path / f"ok{suffix}")).kitchen("run") == spec
