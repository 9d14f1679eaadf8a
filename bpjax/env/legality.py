"""Plain-language legality of assignments, shared by trace validation, the game and the tips."""

from __future__ import annotations

from typing import Iterable

from bpjax.env.config import KitchenSpec
from bpjax.env.reference import ReferenceKitchen, RefState


def assignments_of(spec: KitchenSpec, actions: Iterable[int], worker: int, task_type: int) -> list[int]:
    """The assignment actions among `actions` that give `worker` a subtask of `task_type`."""
    n_slots = spec.n_slots
    out = []
    for action in actions:
        if 0 <= action < spec.end_tick_action and action // n_slots == worker:
            subtask = spec.slot_subtask(action % n_slots)
            if subtask is not None and subtask.task_type == task_type:
                out.append(action)
    return out


def why_illegal(ref: ReferenceKitchen, spec: KitchenSpec, state: RefState, worker: int, slot: int) -> str:
    """Why assigning `worker` to `slot` is not in the action mask at `state` (it must not be)."""
    if state.worker_slot[worker] is not None:
        return "the worker is busy"
    if ref.duration(worker, slot) is None:
        return "the worker cannot do that task" if spec.slot_subtask(slot) else "that slot is padding"
    if state.done[slot] or slot in state.worker_slot:
        return "the subtask is already started"
    if ref.slot_arrival[slot] > state.tick:
        return f"the subtask is not available yet (its order arrives at tick {ref.slot_arrival[slot]})"
    waiting = [spec.slot_label(p) for p in ref.slot_predecessors[slot] if not state.done[p]]
    return f"the subtask is not available yet (it waits for {', '.join(waiting)})"
