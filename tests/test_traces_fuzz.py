"""Fuzzing the trace reader: valid trace files, mutated (rows dropped, duplicated, swapped; a cell set to null,
a fraction, a whole float, a huge or negative number, text, another row's value), as CSV and as Parquet.

Whatever the mutation, reading either raises one TraceError or loads, and with ``skip_invalid`` every row of the
file is accounted for: loaded, or in exactly one rejected round. Strict and lenient reading agree."""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpjax.data import TRACE_COLUMNS, TraceError, read_traces
from tests.conftest import random_rounds, spec_for

BASE = random_rounds(spec_for("kitchen/orders=one_burger"), 8, seed=1).to_dict("records")   # 8 rounds, 2 players
VALUES = ("null", "fraction", "whole", "huge", "huge_int", "negative", "text", "long", "other")

index = st.integers(0, 10**6)   # taken modulo the number of rows
cell = st.tuples(st.just("set"), index, st.sampled_from(TRACE_COLUMNS), st.sampled_from(VALUES), index)
# mostly cell changes, so that each example tries several (column, value) pairs in different rounds
mutation = st.one_of(st.tuples(st.sampled_from(["drop", "duplicate"]), index), st.tuples(st.just("swap"), index, index),
                     cell, cell, cell)


def mutate(rows: list[dict], changes: list[tuple]) -> list[dict]:
    rows = [dict(row) for row in rows]
    for kind, i, *rest in changes:
        i %= len(rows)
        if kind == "drop" and len(rows) > 1:
            rows.pop(i)
        elif kind == "duplicate":
            rows.insert(i, dict(rows[i]))
        elif kind == "swap":
            j = rest[0] % len(rows)
            rows[i], rows[j] = rows[j], rows[i]
        elif kind == "set":
            column, value, j = rest
            current = rows[i][column]
            rows[i][column] = {
                "null": None, "fraction": 2.5, "huge": 1e20, "huge_int": 10**20, "negative": -7, "text": "soon",
                "long": "x" * 200, "other": rows[j % len(rows)][column],
                "whole": float(current) if isinstance(current, int) else 3.0}[value]
    return rows


def write(rows: list[dict], path: Path) -> list[int]:
    """Write the rows as they are (one type per Parquet column: text when the values do not share one);
    returns each row's number as the reader's messages give it."""
    if path.suffix == ".csv":
        pd.DataFrame(rows, columns=list(TRACE_COLUMNS)).to_csv(path, index=False)
        return [i + 2 for i in range(len(rows))]   # no value spans lines: row i is line i + 2
    columns = {}
    for name in TRACE_COLUMNS:
        values = [row[name] for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    pq.write_table(pa.table(columns), path)
    return list(range(len(rows)))


def as_loaded(row: dict) -> tuple:
    """The row as the reader gives it back: text (a CSV writes null as empty), integer numbers."""
    return tuple(int(float(row[c])) if c in ("round", "tick", "slot") else "" if row[c] is None else str(row[c])
                 for c in TRACE_COLUMNS)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(mutation, min_size=1, max_size=6))
def test_a_mutated_file_raises_one_trace_error_or_accounts_for_every_row(suffix, changes):
    rows = mutate(BASE, changes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"traces{suffix}"
        numbers = write(rows, path)
        try:
            strict, error = read_traces(path), None
        except TraceError as raised:
            strict, error = None, str(raised)
        lenient = read_traces(path, skip_invalid=True)
    rejected = [number for r in lenient.rejected for number in r.rows]
    assert len(rejected) == len(set(rejected)) and set(rejected) <= set(numbers)   # each row in one round at most
    loaded = [row for row, number in zip(rows, numbers) if number not in set(rejected)]
    assert len(lenient.frame) == len(loaded) == len(lenient.action) == len(lenient.obs)
    got = collections.Counter(map(tuple, lenient.frame[list(TRACE_COLUMNS)].itertuples(index=False)))
    assert got == collections.Counter(map(as_loaded, loaded))
    episodes = lenient.rounds["episode_id"]
    assert episodes.is_unique and set(episodes) == set(lenient.frame["episode_id"])
    # strict reading raises exactly when something was left out, and says what the first rejection says
    assert (error is not None) == bool(lenient.rejected)
    if error is None:
        pd.testing.assert_frame_equal(strict.frame, lenient.frame)
    else:
        assert error == lenient.rejected[0].reason and "\n" not in error and len(error) < len(str(path)) + 300
