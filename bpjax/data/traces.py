"""The trace format: one row per decision, read and written as Parquet or CSV.

Columns (all required):

=============  ======  ==================================================================================
player_id      str     who played
round          int     the player's round number (1, 2, ...)
episode_id     str     unique per played round
tick           int     the kitchen's tick when the decision was made (on-screen counter = tick + 1)
worker         str     the worker assigned; empty for "end of tick"
slot           int     the subtask slot assigned (order * slots_per_order + subtask index); -1 for end of tick
kitchen        str     the kitchen config the round was played under, as JSON (``KitchenSpec.to_dict()``)
=============  ======  ==================================================================================

Rows of a round are in decision order; the rows sharing a tick are that tick's joint assignment. Reading a
file validates everything by replaying every round through the reference simulator: a problem raises one
:class:`TraceError` naming the file, the row and the reason, and nothing is returned half-loaded. With
``skip_invalid=True`` every invalid round is dropped instead and reported in ``TraceSet.rejected``.

A round whose rows stop before it is over (a person who left mid-round) is valid: its rows are a prefix of a
round. Replay tells, and ``TraceSet.rounds["complete"]`` marks it False. A folder reads as every trace file
directly in it (one per participant, as the browser game writes them), each validated on its own.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.legality import why_illegal
from bpjax.env.reference import ReferenceKitchen, RefState

TRACE_COLUMNS = ("player_id", "round", "episode_id", "tick", "worker", "slot", "kitchen")
ROUND_COLUMNS = ("player_id", "round", "episode_id", "ticks", "finished", "complete")
END_OF_TICK_SLOT = -1


class TraceError(ValueError):
    """A malformed trace; the message names the file, the row and the reason."""


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
    rejected: list[str] = field(default_factory=list)  # with skip_invalid: one reason per dropped round
    spec: KitchenSpec | None = None     # the kitchen, when every round shares one


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
    if path.is_dir():
        return _read_folder(path, skip_invalid)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype={"player_id": str, "episode_id": str, "worker": str},
                                keep_default_na=False)
        else:
            raise TraceError(f"{path}: unknown trace format (use .parquet or .csv)")
    except (OSError, ValueError) as error:
        if isinstance(error, TraceError):
            raise
        raise TraceError(f"{path}: cannot be read ({error})") from error
    return validate_traces(frame, path, skip_invalid)


def validate_traces(frame: pd.DataFrame, source: str | Path = "traces", skip_invalid: bool = False) -> TraceSet:
    """Validate an in-memory trace frame exactly as :func:`read_traces` validates a file (errors name
    `source`), e.g. freshly generated rounds, without a round trip through a file."""
    path = Path(source)
    missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise TraceError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in ("round", "tick", "slot"):
        if not pd.api.types.is_integer_dtype(frame[column]):
            bad = next(i for i, v in enumerate(frame[column]) if not _is_int(v))
            raise TraceError(f"{path}, row {bad}: {column} must be an integer, got {frame[column].iloc[bad]!r}")
    return _validate(path, frame.reset_index(drop=True), skip_invalid)


def _is_int(value) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


class _RoundError(Exception):
    def __init__(self, row: int, reason: str):
        super().__init__(reason)
        self.row, self.reason = row, reason


def _validate(path: Path, frame: pd.DataFrame, skip_invalid: bool) -> TraceSet:
    kitchens: dict[str, tuple[KitchenSpec, ReferenceKitchen]] = {}
    obs, masks, actions, states, keep, rounds, rejected = [], [], [], [], [], [], []
    for episode_id, rows in frame.groupby("episode_id", sort=False):
        try:
            spec, ref = _kitchen(kitchens, rows)
            result = _replay(ref, spec, rows)
        except _RoundError as error:
            message = f"{path}, row {error.row}: {error.reason}"
            if not skip_invalid:
                raise TraceError(message) from None
            rejected.append(f"episode {episode_id}: {message}")
            continue
        episode_obs, episode_masks, episode_actions, episode_states, ticks, finished, complete = result
        states += episode_states
        obs += episode_obs
        masks += episode_masks
        actions += episode_actions
        keep += list(rows.index)
        first = rows.iloc[0]
        rounds.append({"player_id": first["player_id"], "round": int(first["round"]), "episode_id": episode_id,
                       "ticks": ticks, "finished": finished, "complete": complete})
    single = next(iter(kitchens.values()))[0] if len(kitchens) == 1 else None
    return TraceSet(frame.loc[keep].reset_index(drop=True),
                    _rows(obs, np.float32), _rows(masks, bool),
                    np.asarray(actions, np.int32), pd.DataFrame(rounds, columns=list(ROUND_COLUMNS)), states,
                    rejected, single)


def _rows(rows: list, dtype) -> np.ndarray:
    """Stack per-decision vectors; (0, 0) when no round survived (the width is unknown then)."""
    return np.asarray(rows, dtype).reshape(len(rows), -1) if rows else np.zeros((0, 0), dtype)


def _read_folder(folder: Path, skip_invalid: bool) -> TraceSet:
    """Every ``*.csv`` / ``*.parquet`` directly in `folder`, each validated on its own, concatenated."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".parquet"))
    if not files:
        raise TraceError(f"{folder}: no trace files (*.csv, *.parquet) in this folder")
    parts = [read_traces(file, skip_invalid) for file in files]
    rounds = pd.concat([part.rounds for part in parts], ignore_index=True)
    repeated = rounds["episode_id"][rounds["episode_id"].duplicated()]
    if len(repeated):
        owners = [str(f) for f, part in zip(files, parts) if repeated.iloc[0] in set(part.rounds["episode_id"])]
        raise TraceError(f"{folder}: episode_id {repeated.iloc[0]!r} appears in several files ({', '.join(owners)})")
    texts = {text for part in parts for text in part.frame["kitchen"].unique()}
    specs = [part.spec for part in parts if part.spec is not None]
    n_obs = max((part.obs.shape[1] for part in parts), default=0)
    n_actions = max((part.mask.shape[1] for part in parts), default=0)
    if any(part.obs.shape[1] not in (0, n_obs) or part.mask.shape[1] not in (0, n_actions) for part in parts):
        raise TraceError(f"{folder}: files of kitchens of different sizes; keep one kitchen per folder")
    return TraceSet(pd.concat([part.frame for part in parts], ignore_index=True),
                    np.concatenate([part.obs.reshape(-1, n_obs) for part in parts]),
                    np.concatenate([part.mask.reshape(-1, n_actions) for part in parts]),
                    np.concatenate([part.action for part in parts]), rounds,
                    [state for part in parts for state in part.states],
                    [reason for part in parts for reason in part.rejected],
                    specs[0] if len(texts) == 1 and specs else None)


def _kitchen(cache: dict, rows: pd.DataFrame) -> tuple[KitchenSpec, ReferenceKitchen]:
    texts = rows["kitchen"].unique()
    if len(texts) != 1:
        changed = int(rows.index[(rows["kitchen"] != texts[0]).to_numpy()][0])
        raise _RoundError(changed, "the kitchen column changes within one round")
    if texts[0] not in cache:
        try:
            spec = KitchenSpec.from_dict(json.loads(texts[0]))
        except (json.JSONDecodeError, ConfigError, TypeError) as error:
            raise _RoundError(int(rows.index[0]), f"invalid kitchen: {error}") from None
        cache[texts[0]] = (spec, ReferenceKitchen(spec.to_dict()))
    return cache[texts[0]]


def _replay(ref: ReferenceKitchen, spec: KitchenSpec, rows: pd.DataFrame):
    """Replay one round, checking every row; returns its decision arrays, ticks, whether it finished
    (terminated) and whether it is complete (over: terminated or truncated at the horizon)."""
    workers = {w.name: i for i, w in enumerate(spec.workers)}
    state: RefState = ref.reset()
    obs, masks, actions, states = [], [], [], []
    over = (False, False)
    for row_number, row in zip(rows.index, rows.itertuples(index=False)):
        row_number = int(row_number)
        if any(over):
            raise _RoundError(row_number, f"decision after the round ended at tick {state.tick}")
        if row.tick != state.tick:
            order = "out of order" if row.tick < state.tick else "ahead of the kitchen"
            raise _RoundError(row_number, f"tick {row.tick} is {order}: the kitchen is at tick {state.tick} there")
        if row.slot == END_OF_TICK_SLOT and row.worker == "":
            action = ref.end_tick_action
        else:
            if row.worker not in workers:
                raise _RoundError(row_number, f"unknown worker {row.worker!r} (kitchen has {', '.join(workers)})")
            if not 0 <= row.slot < ref.n_slots:
                raise _RoundError(row_number, f"unknown slot {row.slot} (kitchen has slots 0..{ref.n_slots - 1})")
            action = workers[row.worker] * ref.n_slots + int(row.slot)
            if not ref.action_mask(state)[action]:
                raise _RoundError(row_number, f"assigning {row.worker} to slot {row.slot} "
                                              f"({spec.slot_label(int(row.slot))}) is illegal at tick {state.tick}: "
                                              + why_illegal(ref, spec, state, workers[row.worker], int(row.slot)))
        states.append(state)
        obs.append(ref.observation(state))
        masks.append(ref.action_mask(state))
        actions.append(action)
        state = ref.step(state, action)[0]
        over = ref.is_over(state)
    return obs, masks, actions, states, state.tick, over[0], any(over)

