"""Joint assignments: the per-tick set of (worker, slot) pairs a person makes, and the flat actions that
play it. Traces are recorded per tick; the env takes one action per step.

A tick's joint assignment plays as its assignments (in (worker, slot) order) followed by "end tick" — unless
the env already advanced time by itself after the last assignment (no assignment was legal any more), in
which case the end tick is implied and not played. Ticks that pass by themselves do not appear in a trace.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

Pair = tuple[int, int]  # (worker, slot)
# step(state, action) -> (state, reward, terminated, truncated, info); tick(state) -> int
StepFn = Callable[[Any, int], tuple]
TickFn = Callable[[Any], int]


def assignment_action(worker: int, slot: int, n_slots: int) -> int:
    return worker * n_slots + slot


def action_pair(action: int, n_workers: int, n_slots: int) -> Pair | None:
    """(worker, slot) of an assignment action; None for the end-tick action."""
    if action == n_workers * n_slots:
        return None
    if not 0 <= action < n_workers * n_slots:
        raise ValueError(f"action {action} is outside 0..{n_workers * n_slots}")
    return divmod(action, n_slots)


def joint_to_actions(pairs: Iterable[Pair], n_workers: int, n_slots: int) -> list[int]:
    """Flat actions of one tick: the assignments in (worker, slot) order, then end tick."""
    pairs = sorted(set(pairs))
    for worker, slot in pairs:
        if not (0 <= worker < n_workers and 0 <= slot < n_slots):
            raise ValueError(f"assignment (worker {worker}, slot {slot}) is outside the kitchen")
    return [assignment_action(w, s, n_slots) for w, s in pairs] + [n_workers * n_slots]


def actions_to_joint(ticks: Sequence[int], actions: Sequence[int], n_workers: int,
                     n_slots: int) -> list[tuple[int, tuple[Pair, ...]]]:
    """Group a played action sequence into per-tick joint assignments.

    `ticks[i]` is the tick of the state in which `actions[i]` was taken. A tick appears once, with its
    assignments in the order made (possibly none, when the person just ended the tick)."""
    joint: list[tuple[int, list[Pair]]] = []
    for tick, action in zip(ticks, actions, strict=True):
        if not joint or joint[-1][0] != tick:
            joint.append((tick, []))
        pair = action_pair(action, n_workers, n_slots)
        if pair is not None:
            joint[-1][1].append(pair)
    return [(tick, tuple(pairs)) for tick, pairs in joint]


def play_joint(step: StepFn, tick: TickFn, state: Any, pairs: Iterable[Pair], n_workers: int,
               n_slots: int) -> tuple[Any, list[int], float, bool, bool]:
    """Play one tick's joint assignment from `state`.

    Returns (state, actions played, total reward, terminated, truncated). Raises ValueError naming the
    first assignment the env rejects as illegal."""
    start = tick(state)
    played, total, terminated, truncated = [], 0.0, False, False
    *assignments, end = joint_to_actions(pairs, n_workers, n_slots)
    for action in assignments:
        state, reward, terminated, truncated, info = step(state, action)
        if bool(info["illegal_action"]):
            worker, slot = divmod(action, n_slots)
            raise ValueError(f"tick {start}: assigning worker {worker} to slot {slot} is illegal there")
        played.append(action)
        total += float(reward)
        if tick(state) != start or terminated or truncated:
            return state, played, total, bool(terminated), bool(truncated)
    state, reward, terminated, truncated, _ = step(state, end)
    return state, played + [end], total + float(reward), bool(terminated), bool(truncated)
