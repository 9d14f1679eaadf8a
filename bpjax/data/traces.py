"""The trace format: one row per decision, read and written as Parquet or CSV.

Columns (all required; others are kept as read):

=============  ======  ==================================================================================
player_id      str     who played (not empty)
round          int     the player's round number (1, 2, ...)
episode_id     str     unique per played round (not empty)
tick           int     the kitchen's tick when the decision was made (on-screen counter = tick + 1)
worker         str     the worker assigned; empty for "end of tick"
slot           int     the subtask slot assigned (order * slots_per_order + subtask index); -1 for end of tick
kitchen        str     the kitchen config the round was played under, as JSON (``KitchenSpec.to_dict()``)
=============  ======  ==================================================================================

Integers are whole numbers in 0..2**31-1 (round from 1, slot from -1); a whole float such as ``3.0`` counts as
the integer 3. The rows of one round (one ``episode_id``) share its ``player_id``, ``round`` and kitchen
(compared as parsed JSON, so layout and key order do not matter) and are in decision order; the rows sharing a
tick are that tick's joint assignment.

Reading validates every row and replays every round through the reference simulator. A problem raises one
:class:`TraceError`, ``FILE, row N: reason``, and nothing is returned half-loaded. **Row numbers** are the
file's line numbers for CSV (the header is line 1, so the first data row is row 2; a quoted value spanning
lines counts its lines) and 0-based row indices for Parquet and in-memory frames. Values quoted in messages
are cut to about 80 characters.

With ``skip_invalid=True`` each invalid round is left out instead and listed in ``TraceSet.rejected`` with
its rows and the error it would have raised; rows without a usable ``episode_id`` count as the round of their
``player_id`` and ``round`` (or, without those either, as a round of their own). So every row read is either
in ``TraceSet.frame`` or in a rejected round, never dropped silently. In a folder, files that cannot be read
as traces at all (empty, not CSV / Parquet, columns missing) are listed there too.

A round whose rows stop before it is over (a person who left mid-round) is valid: its rows are a prefix of a
round. Replay tells, and ``TraceSet.rounds["complete"]`` marks it False. A folder reads as every trace file
directly in it (one per participant, as the browser game writes them), each validated on its own. A table in
the folder with none of the decision columns (``tick``, ``worker``, ``slot``, ``kitchen``) is not a trace, such
as the generator's ``scores.csv`` beside its ``traces.parquet``: it is skipped and named in
``TraceSet.skipped`` (:func:`skipped_note` says so in one line), with or without ``skip_invalid``. A file with
some of them but not all is a broken trace and fails (or is rejected) as any other.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import reprlib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pyarrow.lib import ArrowException

from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.legality import why_illegal
from bpjax.env.reference import ReferenceKitchen, RefState

TRACE_COLUMNS = ("player_id", "round", "episode_id", "tick", "worker", "slot", "kitchen")
DECISION_COLUMNS = ("tick", "worker", "slot", "kitchen")  # a table with none of these holds no decisions
ROUND_COLUMNS = ("player_id", "round", "episode_id", "ticks", "finished", "complete")
END_OF_TICK_SLOT = -1
INT_MAX = 2**31 - 1  # the JAX env counts in int32
INT_RANGES = {"round": (1, INT_MAX), "tick": (0, INT_MAX), "slot": (END_OF_TICK_SLOT, INT_MAX)}

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80


def shown(value: Any) -> str:
    """`value` as quoted in an error message: its repr, cut to about 80 characters."""
    return _SHOWN.repr(value)


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())  # one line
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TraceError(ValueError):
    """A malformed trace; the message names the file, the row and the reason."""


class NotTraces(TraceError):
    """A table with none of the decision columns: not a trace at all (a folder skips it)."""


@dataclass(frozen=True)
class Rejected:
    """A round (or, in a folder, a whole file) that ``skip_invalid=True`` left out, and why."""

    what: str                   # "episode E", "player P round R (no episode_id)", "row N (no episode_id)", "file"
    reason: str                 # the TraceError it would have raised: "SOURCE, row N: why"
    source: str                 # the file (or the in-memory frame's name)
    rows: tuple[int, ...] = ()  # its rows, numbered as in messages; () for a whole file
    episode_id: str | None = None

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


@dataclass
class TraceSet:
    """Validated traces plus what validation computed along the way (decision arrays, round outcomes)."""

    frame: pd.DataFrame                 # the valid rows, in file order
    obs: np.ndarray                     # float32[N, obs_size]: observation before each decision
    mask: np.ndarray                    # bool[N, n_actions]: legal actions there
    action: np.ndarray                  # int32[N]: the flat action taken
    rounds: pd.DataFrame                # one row per round: player_id, round, episode_id, ticks, finished
    #                                     (terminated), complete (over: terminated or at the horizon)
    states: list[RefState] = field(default_factory=list)  # reference state before each decision
    rejected: list[Rejected] = field(default_factory=list)  # with skip_invalid: every round (file) left out
    spec: KitchenSpec | None = None     # the kitchen, when every round shares one
    skipped: list[str] = field(default_factory=list)  # a folder's files that are not traces (no decision column)

    def of_players(self, players) -> "TraceSet":
        """The decisions and rounds of `players` only (rows keep their order)."""
        players = set(players)
        rows = self.frame["player_id"].isin(players).to_numpy()
        return replace(self, frame=self.frame[rows].reset_index(drop=True), obs=self.obs[rows],
                       mask=self.mask[rows], action=self.action[rows],
                       states=[s for s, keep in zip(self.states, rows) if keep],
                       rounds=self.rounds[self.rounds["player_id"].isin(players)].reset_index(drop=True))

    def kitchen(self, command: str) -> KitchenSpec:
        """The one kitchen of these traces; ConfigError naming `traces` where there are no rounds at all or
        rounds of several kitchens (`command`: what to run one kitchen at a time)."""
        if self.spec is not None:
            return self.spec
        if self.rounds.empty:
            left_out = f"; all {len(self.rejected)} left out as invalid" if self.rejected else ""
            raise ConfigError(f"traces: no rounds to read (no rows of decisions{left_out})")
        raise ConfigError(f"traces: rounds of several kitchens; {command} one kitchen at a time")

    def bottom_players(self, quantile: float) -> tuple[set, pd.Series]:
        """The players whose complete rounds took the most ticks (the worst `quantile` of them, as the study
        fitted the bottom quartile), and every player's mean ticks. A round left mid-way does not count."""
        complete = self.rounds[self.rounds["complete"]]
        per_player = complete.groupby("player_id")["ticks"].mean()
        return set(per_player[per_player >= per_player.quantile(1 - quantile)].index), per_player


def skipped_note(traces: TraceSet) -> str | None:
    """One line naming a folder's files that were skipped as not traces, or None when there are none."""
    if not traces.skipped:
        return None
    names = ", ".join(Path(f).name for f in traces.skipped)
    return (f"skipped {len(traces.skipped)} file(s) that are not traces (none of the columns "
            f"{', '.join(DECISION_COLUMNS)}): {names}")


def kitchen_column(spec: KitchenSpec) -> str:
    """The `kitchen` column's text for rounds played in `spec`."""
    return json.dumps(spec.to_dict(), sort_keys=True)


def trace_row(spec: KitchenSpec, kitchen: str, player_id: str, round_number: int, episode_id: str, tick: int,
              action: int) -> dict:
    """One row: flat `action` taken at `tick` (`kitchen` = :func:`kitchen_column` of `spec`)."""
    end = action == spec.end_tick_action
    worker, slot = divmod(int(action), spec.n_slots)
    return {"player_id": player_id, "round": round_number, "episode_id": episode_id, "tick": tick,
            "worker": "" if end else spec.workers[worker].name, "slot": END_OF_TICK_SLOT if end else slot,
            "kitchen": kitchen}


def record_episode(spec: KitchenSpec, actions: Sequence[int], player_id: str, round_number: int,
                   episode_id: str) -> pd.DataFrame:
    """Trace rows of one round played as flat `actions` (replayed on the reference to get the ticks)."""
    ref = ReferenceKitchen(spec.to_dict())
    kitchen = kitchen_column(spec)
    state, rows = ref.reset(), []
    for action in actions:
        rows.append(trace_row(spec, kitchen, player_id, round_number, episode_id, state.tick, int(action)))
        state, _, terminated, truncated, info = ref.step(state, int(action))
        if info["illegal_action"]:
            raise ValueError(f"action {action} is illegal at tick {rows[-1]['tick']}")
        if terminated or truncated:
            break
    return pd.DataFrame(rows, columns=list(TRACE_COLUMNS))


def write_traces(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write trace rows as Parquet (``.parquet``) or CSV (``.csv``)."""
    path = Path(path)
    frame = frame.loc[:, list(TRACE_COLUMNS)]
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise ValueError(f"{path}: unknown trace format (use .parquet or .csv)")
    return path


def append_trace_rows(rows: Sequence[dict], path: str | Path) -> None:
    """Append rows to a CSV trace file (header first if it is new) and force them to disk before returning,
    so a crash loses nothing already appended. Readable by :func:`read_traces` at any moment."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=TRACE_COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        file.flush()
        os.fsync(file.fileno())


def read_traces(path: str | Path, skip_invalid: bool = False) -> TraceSet:
    """Read and validate a trace file, or every trace file directly in a folder (see module docstring)."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"{path}: not found")
    if path.is_dir():
        return _read_folder(path, skip_invalid)
    if path.suffix == ".csv":
        table = _read_csv(path)
    elif path.suffix == ".parquet":
        table = _read_parquet(path)
    else:
        raise TraceError(f"{path}: unknown trace format (use .parquet or .csv)")
    return _validate(str(path), table, skip_invalid)


def validate_traces(frame: pd.DataFrame, source: str | Path = "traces", skip_invalid: bool = False) -> TraceSet:
    """Validate an in-memory trace frame exactly as :func:`read_traces` validates a file (errors name
    `source`; rows are numbered by position from 0), e.g. freshly generated rounds, without a round trip
    through a file."""
    return _validate(str(source), _table_of(frame, str(source)), skip_invalid)


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class _Table:
    """Cells as read, column by column, and each row's number as messages give it."""

    columns: dict[str, Any]     # name -> list of cells (CSV: text) or a numpy array
    rows: list[int]


def _read_csv(path: Path) -> _Table:
    """Python's csv reader, not pandas: it tells each record's first line, and every cell stays text."""
    start = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, strict=True)
            header = next(reader, None)
            if header is None:
                raise TraceError(f"{path}: empty file (no header line)")
            _check_header(path, header)
            records, rows, start = [], [], reader.line_num + 1
            for record in reader:
                if record:  # a blank line holds no row
                    if len(record) != len(header):
                        raise TraceError(f"{path}, row {start}: {len(record)} values, the header has {len(header)}")
                    records.append(record)
                    rows.append(start)
                start = reader.line_num + 1
    except csv.Error as error:
        raise TraceError(f"{path}, row {start}: not valid CSV ({_clip(error)})") from None
    except UnicodeDecodeError as error:
        raise TraceError(f"{path}: not UTF-8 text ({_clip(error)})") from None
    except OSError as error:
        raise TraceError(f"{path}: cannot be read ({_clip(error.strerror or error)})") from None
    cells = list(zip(*records)) if records else [()] * len(header)
    return _Table({name: list(column) for name, column in zip(header, cells)}, rows)


def _read_parquet(path: Path) -> _Table:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, ArrowException) as error:
        raise TraceError(f"{path}: not a readable Parquet file ({_clip(error)})") from None
    return _table_of(frame, str(path))


def _table_of(frame: pd.DataFrame, source: str) -> _Table:
    names = [str(name) for name in frame.columns]
    _check_header(source, names)
    columns = {}
    for name, (_, column) in zip(names, frame.items()):
        values = column.to_numpy()
        columns[name] = values if values.dtype.kind in "iuf" else values.tolist()
    return _Table(columns, list(range(len(frame))))


def _check_header(source: str | Path, names: Sequence[str]) -> None:
    missing = [c for c in TRACE_COLUMNS if c not in names]
    if missing:
        # no decision column at all: another kind of table, which a folder may hold beside its traces
        kind = NotTraces if set(DECISION_COLUMNS) <= set(missing) else TraceError
        raise kind(f"{source}: missing column(s) {', '.join(missing)}")
    repeated = sorted({n for n in names if n in TRACE_COLUMNS and names.count(n) > 1})
    if repeated:
        raise TraceError(f"{source}: column(s) {', '.join(repeated)} appear more than once")


# ---------------------------------------------------------------------------------------------- cells


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


_DIGITS = re.compile(r"[+-]?\d{1,10}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _whole(value: Any, lo: int, hi: int) -> int | None:
    """`value` as an integer in lo..hi, or None. Whole floats (3.0, "3.0", "3e0") count; bools do not."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer() or not lo <= value <= hi:
            return None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text):
            number = int(text)
        elif _NUMBER.fullmatch(text):
            try:
                exact = Decimal(text)
            except InvalidOperation:
                return None
            # bounds first: a text like 1e999999 must not become a huge int
            if not lo <= exact <= hi or exact != exact.to_integral_value():
                return None
            number = int(exact)
        else:
            return None
    else:
        return None
    return number if lo <= number <= hi else None


def _integers(name: str, cells: Any, errors: list) -> tuple[np.ndarray, np.ndarray]:
    """The column as int64 (0 where invalid) and which cells are valid; problems noted in `errors`."""
    lo, hi = INT_RANGES[name]
    values, valid = np.zeros(len(cells), np.int64), np.ones(len(cells), bool)
    if isinstance(cells, np.ndarray) and cells.dtype.kind in "iu":  # typed frames: checked at once
        bad = (cells < lo) | (cells > hi)
        values[~bad] = cells[~bad]
        positions = np.flatnonzero(bad)
    else:
        positions = []
        for i, cell in enumerate(cells.tolist() if isinstance(cells, np.ndarray) else cells):
            number = _whole(cell, lo, hi)
            if number is None:
                positions.append(i)
            else:
                values[i] = number
    for i in positions:
        cell = cells[i]
        valid[i] = False
        if _is_null(cell) or (isinstance(cell, str) and not cell.strip()):
            _note(errors, int(i), f"{name}: missing")
        else:
            _note(errors, int(i), f"{name}: expected a whole number in {lo}..{hi}, got {shown(_plain(cell))}")
    return values, valid


def _texts(name: str, cells: Any, errors: list, allow_empty: bool = False) -> list:
    values = []
    for i, cell in enumerate(cells.tolist() if isinstance(cells, np.ndarray) else cells):
        if isinstance(cell, (int, np.integer)) and not isinstance(cell, (bool, np.bool_)) and name != "kitchen":
            cell = str(cell)  # an integer id in a typed file reads as its digits, as it would from CSV
        if isinstance(cell, str) and (allow_empty or cell.strip()):
            values.append(cell)
            continue
        values.append(None)
        if _is_null(cell) or isinstance(cell, str):
            hint = " (an end of tick has an empty worker)" if name == "worker" else ""
            _note(errors, i, f"{name}: missing{hint}")
        else:
            _note(errors, i, f"{name}: expected text, got {shown(_plain(cell))}")
    return values


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _note(errors: list, position: int, reason: str) -> None:
    """Keep the first problem of each row (columns are checked in the format's order)."""
    if errors[position] is None:
        errors[position] = reason


# ---------------------------------------------------------------------------------------------- validation


class _RoundError(Exception):
    def __init__(self, position: int, reason: str):
        super().__init__(reason)
        self.position, self.reason = position, reason


@dataclass
class _Columns:
    """The seven columns, converted; `errors[i]` is row i's first problem (None: the row's cells are fine)."""

    player_id: list             # text columns: None where invalid
    round: np.ndarray           # integer columns: int64, 0 where invalid
    round_valid: np.ndarray
    episode_id: list
    tick: np.ndarray
    worker: list
    slot: np.ndarray
    kitchen: list
    errors: list


def _convert(table: _Table) -> _Columns:
    cells, errors = table.columns, [None] * len(table.rows)
    player_id = _texts("player_id", cells["player_id"], errors)
    round_number, round_valid = _integers("round", cells["round"], errors)
    episode_id = _texts("episode_id", cells["episode_id"], errors)
    tick = _integers("tick", cells["tick"], errors)[0]
    worker = _texts("worker", cells["worker"], errors, allow_empty=True)
    slot = _integers("slot", cells["slot"], errors)[0]
    return _Columns(player_id, round_number, round_valid, episode_id, tick, worker, slot,
                    _texts("kitchen", cells["kitchen"], errors), errors)


def _group(c: _Columns) -> list[tuple[str, list[int]]]:
    """Rows by round, rounds in order of first appearance, as (label, row positions). A row without a usable
    episode_id joins the one episode of its player and round, if there is exactly one; else those rows form
    a round of their own (rejected: their episode_id is the error)."""
    episodes_of: dict[tuple, set] = {}
    for i, episode in enumerate(c.episode_id):
        if episode is not None and c.player_id[i] is not None and c.round_valid[i]:
            episodes_of.setdefault((c.player_id[i], int(c.round[i])), set()).add(episode)
    groups: dict[tuple, list[int]] = {}
    for i, episode in enumerate(c.episode_id):
        if episode is not None:
            key = ("episode", episode)
        elif c.player_id[i] is not None and c.round_valid[i]:
            owners = episodes_of.get((c.player_id[i], int(c.round[i])), set())
            key = ("episode", next(iter(owners))) if len(owners) == 1 else ("player", c.player_id[i], int(c.round[i]))
        else:
            key = ("row", i)
        groups.setdefault(key, []).append(i)
    ordered = sorted(groups.items(), key=lambda item: min(item[1]))
    return [(key, sorted(positions)) for key, positions in ordered]


def _label(key: tuple, rows: list[int]) -> str:
    if key[0] == "episode":
        return f"episode {_clip(key[1])}"
    if key[0] == "player":
        return f"player {_clip(key[1])} round {key[2]} (no episode_id)"
    return f"row {rows[key[1]]} (no episode_id)"


def _validate(source: str, table: _Table, skip_invalid: bool) -> TraceSet:
    c = _convert(table)
    parsed: dict[str, Any] = {}                                   # kitchen text -> parsed JSON (or error)
    kitchens: dict[str, tuple[KitchenSpec, ReferenceKitchen]] = {}  # canonical JSON -> kitchen
    used: dict[str, KitchenSpec] = {}                             # kitchens of the rounds loaded
    obs, masks, actions, states, keep, rounds, rejected = [], [], [], [], [], [], []
    for key, positions in _group(c):
        try:
            first_error = next((i for i in positions if c.errors[i] is not None), None)
            if first_error is not None:
                raise _RoundError(first_error, c.errors[first_error])
            _same_ids(c, positions)
            canonical, spec, ref = _kitchen(c, positions, parsed, kitchens)
            result = _replay(ref, spec, c, positions)
        except _RoundError as error:
            message = f"{source}, row {table.rows[error.position]}: {_clip(error.reason, 300)}"
            if not skip_invalid:
                raise TraceError(message) from None
            rejected.append(Rejected(_label(key, table.rows), message, source,
                                     tuple(table.rows[i] for i in positions),
                                     key[1] if key[0] == "episode" else None))
            continue
        episode_obs, episode_masks, episode_actions, episode_states, ticks, finished, complete = result
        used[canonical] = spec
        states += episode_states
        obs += episode_obs
        masks += episode_masks
        actions += episode_actions
        keep += positions
        first = positions[0]
        rounds.append({"player_id": c.player_id[first], "round": int(c.round[first]), "episode_id": key[1],
                       "ticks": ticks, "finished": finished, "complete": complete})
    # rows in round order (file order when each round's rows are contiguous), aligned with the arrays
    return _trace_set(table, c, keep, obs, masks, actions, states, rounds, rejected,
                      next(iter(used.values())) if len(used) == 1 else None)


def _trace_set(table: _Table, c: _Columns, keep: list[int], obs, masks, actions, states, rounds, rejected,
               spec) -> TraceSet:
    index = np.asarray(keep, np.int64)
    data = {"player_id": [c.player_id[i] for i in keep], "round": c.round[index],
            "episode_id": [c.episode_id[i] for i in keep], "tick": c.tick[index],
            "worker": [c.worker[i] for i in keep], "slot": c.slot[index], "kitchen": [c.kitchen[i] for i in keep]}
    for name, cells in table.columns.items():  # other columns, as read
        if name not in data:
            data[name] = cells[index] if isinstance(cells, np.ndarray) else [cells[i] for i in keep]
    return TraceSet(pd.DataFrame(data), _rows(obs, np.float32), _rows(masks, bool), np.asarray(actions, np.int32),
                    pd.DataFrame(rounds, columns=list(ROUND_COLUMNS)), states, rejected, spec)


def _rows(rows: list, dtype) -> np.ndarray:
    """Stack per-decision vectors; (0, 0) when no round survived (the width is unknown then)."""
    return np.asarray(rows, dtype).reshape(len(rows), -1) if rows else np.zeros((0, 0), dtype)


def _same_ids(c: _Columns, positions: list[int]) -> None:
    """player_id and round are the episode's own: the same on every row of it."""
    first = positions[0]
    for name, column in (("player_id", c.player_id), ("round", c.round)):
        for i in positions:
            if column[i] != column[first]:
                raise _RoundError(i, f"{name} changes within episode {shown(c.episode_id[first])}: "
                                     f"{shown(_plain(column[i]))} here, {shown(_plain(column[first]))} "
                                     "on its first row")


def _kitchen(c: _Columns, positions: list[int], parsed: dict, kitchens: dict):
    """The round's kitchen: one parsed JSON value on every row (layout and key order do not matter)."""
    first = None
    for i in positions:
        text = c.kitchen[i]
        if text not in parsed:
            try:
                parsed[text] = (json.loads(text), None)
            except ValueError as error:  # JSONDecodeError, or a number too long to convert
                parsed[text] = (None, f"kitchen: not valid JSON ({_clip(error)})")
        value, error = parsed[text]
        if error is not None:
            raise _RoundError(i, error)
        if first is None:
            first = value
        elif value != first:
            raise _RoundError(i, "the kitchen changes within the round (this row's kitchen JSON differs from "
                                 "the round's first row's)")
    canonical = json.dumps(first, sort_keys=True)
    if canonical not in kitchens:
        try:
            spec = KitchenSpec.from_dict(first)
            kitchens[canonical] = (spec, ReferenceKitchen(spec.to_dict()))
        except (ConfigError, TypeError, ValueError) as error:
            kitchens[canonical] = _clip(f"invalid kitchen: {error}", 200)
    if isinstance(kitchens[canonical], str):
        raise _RoundError(positions[0], kitchens[canonical])
    return (canonical, *kitchens[canonical])


def _replay(ref: ReferenceKitchen, spec: KitchenSpec, c: _Columns, positions: list[int]):
    """Replay one round, checking every row; returns its decision arrays, ticks, whether it finished
    (terminated) and whether it is complete (over: terminated or truncated at the horizon)."""
    workers = {w.name: i for i, w in enumerate(spec.workers)}
    state: RefState = ref.reset()
    obs, masks, actions, states = [], [], [], []
    over = (False, False)
    for i in positions:
        tick, worker, slot = int(c.tick[i]), c.worker[i], int(c.slot[i])
        if any(over):
            raise _RoundError(i, f"decision after the round ended at tick {state.tick}")
        if tick != state.tick:
            order = "out of order" if tick < state.tick else "ahead of the kitchen"
            raise _RoundError(i, f"tick {tick} is {order}: the kitchen is at tick {state.tick} there")
        if slot == END_OF_TICK_SLOT and worker == "":
            action = ref.end_tick_action
        else:
            if worker not in workers:
                raise _RoundError(i, f"unknown worker {shown(worker)} (kitchen has {', '.join(workers)})")
            if not 0 <= slot < ref.n_slots:
                raise _RoundError(i, f"unknown slot {slot} (kitchen has slots 0..{ref.n_slots - 1})")
            action = workers[worker] * ref.n_slots + slot
            if not ref.action_mask(state)[action]:
                raise _RoundError(i, f"assigning {worker} to slot {slot} ({spec.slot_label(slot)}) is illegal "
                                     f"at tick {state.tick}: " + why_illegal(ref, spec, state, workers[worker], slot))
        states.append(state)
        obs.append(ref.observation(state))
        masks.append(ref.action_mask(state))
        actions.append(action)
        state = ref.step(state, action)[0]
        over = ref.is_over(state)
    return obs, masks, actions, states, state.tick, over[0], any(over)


def _read_folder(folder: Path, skip_invalid: bool) -> TraceSet:
    """Every ``*.csv`` / ``*.parquet`` directly in `folder`, each validated on its own, concatenated; a table
    that is not a trace (no decision column) is skipped and named; with `skip_invalid`, a file that cannot be
    read as traces at all is listed in `rejected` and skipped."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".parquet"))
    parts, rejected, skipped = [], [], []
    for file in files:
        try:
            part = read_traces(file, skip_invalid)
        except NotTraces:
            skipped.append(str(file))
            continue
        except TraceError as error:
            if not skip_invalid:
                raise
            rejected.append(Rejected("file", str(error), str(file)))
            continue
        parts.append((file, part))
        rejected += part.rejected
    if not parts and not rejected:
        others = f" (not traces: {', '.join(Path(f).name for f in skipped)})" if skipped else ""
        raise TraceError(f"{folder}: no trace files (*.csv, *.parquet) in this folder{others}")
    rounds = pd.concat([part.rounds for _, part in parts] or [pd.DataFrame(columns=list(ROUND_COLUMNS))],
                       ignore_index=True)
    repeated = rounds["episode_id"][rounds["episode_id"].duplicated()]
    if len(repeated):
        owners = [str(f) for f, part in parts if repeated.iloc[0] in set(part.rounds["episode_id"])]
        raise TraceError(f"{folder}: episode_id {shown(repeated.iloc[0])} appears in several files "
                         f"({', '.join(owners)})")
    loaded = [part for _, part in parts if len(part.rounds)]
    specs = [part.spec for part in loaded]
    single = specs[0] if specs and all(s is not None and s.to_dict() == specs[0].to_dict() for s in specs) \
        else None
    n_obs = max((part.obs.shape[1] for part in loaded), default=0)
    n_actions = max((part.mask.shape[1] for part in loaded), default=0)
    if any(part.obs.shape[1] != n_obs or part.mask.shape[1] != n_actions for part in loaded):
        raise TraceError(f"{folder}: files of kitchens of different sizes; keep one kitchen per folder")
    frames = [part.frame for _, part in parts]
    return TraceSet(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TRACE_COLUMNS)),
                    np.concatenate([part.obs.reshape(-1, n_obs) for part in loaded] or [np.zeros((0, 0), np.float32)]),
                    np.concatenate([part.mask.reshape(-1, n_actions) for part in loaded] or [np.zeros((0, 0), bool)]),
                    np.concatenate([part.action for _, part in parts] or [np.zeros(0, np.int32)]), rounds,
                    [state for _, part in parts for state in part.states],
                    rejected, single, skipped)
