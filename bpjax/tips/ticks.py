"""The trainees' decisions as the study counts them: one row per decision tick, the tick's joint assignment.

A trace has one row per action; the rows of one tick of one round are that tick's joint assignment (possibly
empty: the person just ended the tick). Ticks that passed by themselves are not decisions and do not appear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpjax.data.traces import TraceSet
from bpjax.env.config import KitchenSpec
from bpjax.env.reference import RefState
from bpjax.tips.predicates import StateBatch, predicates

IDLE = -1  # a worker not assigned in a joint


@dataclass
class TickTable:
    spec: KitchenSpec
    states: list[RefState]   # the state at the start of each decision tick
    batch: StateBatch        # the same states as arrays
    features: np.ndarray     # bool[T, F]: the predicates there
    round: np.ndarray        # int[T]: round index, 0 .. n_rounds - 1
    player: np.ndarray       # str[T]: player_id
    joint: np.ndarray        # int[T, W]: the slot each worker was given that tick, IDLE if none
    count: np.ndarray        # int[T, W, K]: type-k subtasks worker w had been given earlier in the round
    mask: np.ndarray         # bool[T, A]: legal actions at the tick's start
    probs: np.ndarray | None  # float[T, A]: π_H at the tick's start (the trainee's next choice)
    first_row: np.ndarray    # int[T]: the trace decision that opens the tick
    n_rounds: int

    def __len__(self) -> int:
        return len(self.states)


def tick_table(traces: TraceSet, spec: KitchenSpec, trainee_probs: np.ndarray | None = None) -> TickTable:
    """Group the traces' decisions by (round, tick); `trainee_probs` are π_H's per decision (float[N, A])."""
    frame = traces.frame
    episode = frame["episode_id"].to_numpy()
    tick = frame["tick"].to_numpy()
    n = len(frame)
    opens = np.r_[True, (episode[1:] != episode[:-1]) | (tick[1:] != tick[:-1])] if n else np.zeros(0, bool)
    first = np.flatnonzero(opens)
    tick_of_row = np.cumsum(opens) - 1
    round_index = np.unique(episode, return_inverse=True)[1].reshape(-1)
    n_slots, n_workers, n_types = spec.n_slots, spec.n_workers, len(spec.task_types)

    action = traces.action.astype(np.int64)
    assign = action < spec.end_tick_action
    joint = np.full((len(first), n_workers), IDLE, np.int64)
    joint[tick_of_row[assign], action[assign] // n_slots] = action[assign] % n_slots

    # per tick, what each worker was given (one-hot by type); counts = cumulative within the round, before it
    slot_type = np.asarray(spec.slot_types)
    given = np.zeros((len(first), n_workers, n_types), np.int64)
    rows, workers = np.nonzero(joint >= 0)
    given[rows, workers, slot_type[joint[rows, workers]]] = 1
    cumulative = np.cumsum(given, axis=0)
    tick_round = round_index[first]
    round_start = np.r_[True, tick_round[1:] != tick_round[:-1]] if len(first) else np.zeros(0, bool)
    count = cumulative - given - _carry_forward(cumulative - given, round_start)

    states = [traces.states[i] for i in first]
    batch = StateBatch.from_reference(states, n_slots)
    return TickTable(spec, states, batch, predicates(batch, spec), tick_round,
                     frame["player_id"].to_numpy()[first], joint, count, traces.mask[first],
                     None if trainee_probs is None else trainee_probs[first], first,
                     int(round_index.max()) + 1 if n else 0)


def _carry_forward(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """values at the latest row where `starts` is True, repeated down to the next such row."""
    index = np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))
    return values[index]
