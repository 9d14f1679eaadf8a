"""Plain pure-Python reference simulator of the kitchen scheduling game.

Written only from the kitchen rules (README, "The kitchen") and ``docs/reference-contract.md``, independently
of the JAX environment, so that the two can be compared action by action. It is also the transition
model of the exact solver, hence immutable, hashable states and per-config lookup tables built once.

Readings chosen where the contract leaves room (closest to the spec):
- ``P`` is the largest recipe length among dishes that appear in ``orders``; with no orders ``P = S = 0``
  and the reset state is already terminated.
- A slot is "in progress" while some worker holds it, "started" means in progress or done.
- Completions are processed for every worker whose finish tick is ``<= tick`` after a one-tick advance;
  by the state invariant this is the same as ``== tick``.
- The state is "over" when all real slots are done (terminated) or, otherwise, when
  ``tick >= max_ticks`` (truncated), so finishing exactly at ``max_ticks`` counts as terminated.
- An action is anything ``operator.index`` accepts (int, numpy/JAX integer scalars); anything else,
  or an integer outside ``[0, A)``, is an illegal action, not an exception.
- ``duration(worker, slot)`` returns None for padding slots as well as for skills the worker lacks.
- Observation ``ticks_left`` = ``finish - tick`` for a busy worker; it includes the hand-off tick.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RefState:
    """One immutable, hashable game state (exactly the contract's fields)."""

    tick: int
    done: tuple[bool, ...]
    worker_slot: tuple[int | None, ...]
    worker_finish: tuple[int | None, ...]


class ReferenceKitchen:
    """Reference simulator for one kitchen config (a plain dict, assumed valid)."""

    def __init__(self, kitchen: dict[str, Any]) -> None:
        self.task_types: list[str] = list(kitchen["task_types"])
        self.worker_names: list[str] = list(kitchen["scenario"]["workers"])
        self.handoff: int = int(kitchen.get("handoff", 1))
        self.max_ticks: int = int(kitchen.get("max_ticks", 50))

        dishes: dict[str, list[dict[str, Any]]] = kitchen["dishes"]
        orders: list[dict[str, Any]] = list(kitchen["orders"])
        recipes = [dishes[order["dish"]] for order in orders]

        self.n_task_types: int = len(self.task_types)
        self.n_workers: int = len(self.worker_names)
        self.slots_per_order: int = max((len(recipe) for recipe in recipes), default=0)
        self.n_slots: int = len(orders) * self.slots_per_order
        self.n_actions: int = self.n_workers * self.n_slots + 1
        self.end_tick_action: int = self.n_workers * self.n_slots
        self.obs_size: int = 3 * self.n_slots + self.n_workers * (self.n_task_types + 2) + 1

        # Per-slot tables; padding slots keep the defaults (not real, no type, no predecessors).
        per_order = self.slots_per_order
        self.slot_is_real: list[bool] = [False] * self.n_slots
        self.slot_arrival: list[int] = [0] * self.n_slots
        self.slot_type: list[int | None] = [None] * self.n_slots
        self.slot_predecessors: list[tuple[int, ...]] = [()] * self.n_slots
        for order_index, (order, recipe) in enumerate(zip(orders, recipes)):
            position_by_name = {subtask["name"]: j for j, subtask in enumerate(recipe)}
            for j, subtask in enumerate(recipe):
                slot = order_index * per_order + j
                self.slot_is_real[slot] = True
                self.slot_arrival[slot] = int(order.get("arrival", 0))
                self.slot_type[slot] = self.task_types.index(subtask["type"])
                self.slot_predecessors[slot] = tuple(
                    order_index * per_order + position_by_name[name] for name in subtask.get("after", [])
                )
        self.real_slots: tuple[int, ...] = tuple(s for s in range(self.n_slots) if self.slot_is_real[s])

        # durations[w][s]: skill ticks of worker w for slot s's type, None when impossible or padding.
        skills = kitchen["skills"]
        self.durations: list[list[int | None]] = []
        for name in self.worker_names:
            row: list[int | None] = []
            for slot in range(self.n_slots):
                type_index = self.slot_type[slot]
                row.append(None if type_index is None else skills[name][type_index])
            self.durations.append(row)

    # ----------------------------------------------------------------- queries

    def duration(self, worker: int, slot: int) -> int | None:
        """Skill ticks of ``worker`` for ``slot``'s task type, or None if it cannot (or padding)."""
        return self.durations[worker][slot]

    def is_over(self, state: RefState) -> tuple[bool, bool]:
        """(terminated, truncated) of a state; terminated wins when both would hold."""
        terminated = self._all_real_done(state.done)
        truncated = not terminated and state.tick >= self.max_ticks
        return terminated, truncated

    def available_slots(self, state: RefState) -> list[int]:
        """Slots that are real, arrived, not started and whose predecessors are all done."""
        held = {slot for slot in state.worker_slot if slot is not None}
        done = state.done
        tick = state.tick
        return [
            slot
            for slot in self.real_slots
            if not done[slot]
            and slot not in held
            and self.slot_arrival[slot] <= tick
            and all(done[p] for p in self.slot_predecessors[slot])
        ]

    def legal_actions(self, state: RefState) -> list[int]:
        """Legal action indices in increasing order; the end-tick action is always last."""
        available = self.available_slots(state)
        actions: list[int] = []
        for worker in range(self.n_workers):
            if state.worker_slot[worker] is not None:
                continue
            row = self.durations[worker]
            base = worker * self.n_slots
            actions.extend(base + slot for slot in available if row[slot] is not None)
        actions.append(self.end_tick_action)
        return actions

    def action_mask(self, state: RefState) -> list[bool]:
        """Boolean mask of length ``n_actions`` marking exactly the legal actions."""
        mask = [False] * self.n_actions
        for action in self.legal_actions(state):
            mask[action] = True
        return mask

    def observation(self, state: RefState) -> list[float]:
        """Flat float features: per slot [available, in_progress, done], per worker
        [idle, onehot(type held), ticks_left], then [tick]."""
        available = set(self.available_slots(state))
        held = {slot for slot in state.worker_slot if slot is not None}
        obs: list[float] = []
        for slot in range(self.n_slots):
            obs.append(1.0 if slot in available else 0.0)
            obs.append(1.0 if slot in held else 0.0)
            obs.append(1.0 if state.done[slot] else 0.0)
        for worker in range(self.n_workers):
            slot = state.worker_slot[worker]
            onehot = [0.0] * self.n_task_types
            if slot is None:
                obs.append(1.0)
                obs.extend(onehot)
                obs.append(0.0)
            else:
                onehot[self.slot_type[slot]] = 1.0
                obs.append(0.0)
                obs.extend(onehot)
                obs.append(float(state.worker_finish[worker] - state.tick))
        obs.append(float(state.tick))
        return obs

    # ---------------------------------------------------------------- dynamics

    def reset(self) -> RefState:
        """Tick 0, nothing done, everyone idle; no auto-advance."""
        return RefState(
            tick=0,
            done=(False,) * self.n_slots,
            worker_slot=(None,) * self.n_workers,
            worker_finish=(None,) * self.n_workers,
        )

    def step(self, state: RefState, action: Any) -> tuple[RefState, int, bool, bool, dict[str, Any]]:
        """Apply one action, then auto-advance time while no assignment is legal.

        Returns (state, reward, terminated, truncated, info); raises ValueError if ``state`` is over.
        """
        terminated, truncated = self.is_over(state)
        if terminated or truncated:
            raise ValueError("step() called on an episode that is already over")

        action_index = self._as_action_index(action)
        if action_index is None or not self._is_legal(state, action_index):
            return state, 0, False, False, {"illegal_action": True, "ticks_elapsed": 0}

        if action_index == self.end_tick_action:
            new_state = self._advance_one_tick(state)
        else:
            worker, slot = divmod(action_index, self.n_slots)
            new_state = self._assign(state, worker, slot)

        # Auto-advance, in the contract's order: terminated, truncated, any legal assignment, tick.
        while True:
            if self._all_real_done(new_state.done):
                terminated = True
                break
            if new_state.tick >= self.max_ticks:
                truncated = True
                break
            if self._any_legal_assignment(new_state):
                break
            new_state = self._advance_one_tick(new_state)

        ticks_elapsed = new_state.tick - state.tick
        return new_state, -ticks_elapsed, terminated, truncated, {
            "illegal_action": False,
            "ticks_elapsed": ticks_elapsed,
        }

    # ----------------------------------------------------------------- helpers

    def _all_real_done(self, done: tuple[bool, ...]) -> bool:
        return all(done[slot] for slot in self.real_slots)

    def _as_action_index(self, action: Any) -> int | None:
        """Integer action index in range, or None (out of range / not an integer)."""
        try:
            index = operator.index(action)
        except TypeError:
            return None
        return index if 0 <= index < self.n_actions else None

    def _is_legal(self, state: RefState, action: int) -> bool:
        if action == self.end_tick_action:
            return True
        worker, slot = divmod(action, self.n_slots)
        return (
            state.worker_slot[worker] is None
            and self.durations[worker][slot] is not None
            and self._slot_available(state, slot)
        )

    def _slot_available(self, state: RefState, slot: int) -> bool:
        """Same test as ``available_slots``, for a single slot."""
        return (
            self.slot_is_real[slot]
            and not state.done[slot]
            and slot not in state.worker_slot
            and self.slot_arrival[slot] <= state.tick
            and all(state.done[p] for p in self.slot_predecessors[slot])
        )

    def _any_legal_assignment(self, state: RefState) -> bool:
        idle_workers = [w for w in range(self.n_workers) if state.worker_slot[w] is None]
        if not idle_workers:
            return False
        return any(
            self.durations[worker][slot] is not None
            for slot in self.available_slots(state)
            for worker in idle_workers
        )

    def _assign(self, state: RefState, worker: int, slot: int) -> RefState:
        """Worker takes the slot now; it is busy for skill ticks plus the hand-off tick."""
        finish = state.tick + self.durations[worker][slot] + self.handoff
        worker_slot = list(state.worker_slot)
        worker_finish = list(state.worker_finish)
        worker_slot[worker] = slot
        worker_finish[worker] = finish
        return RefState(state.tick, state.done, tuple(worker_slot), tuple(worker_finish))

    def _advance_one_tick(self, state: RefState) -> RefState:
        """Time t -> t+1, completing every subtask whose finish tick has been reached."""
        tick = state.tick + 1
        if not any(finish is not None and finish <= tick for finish in state.worker_finish):
            # Nothing completes: share the unchanged tuples.
            return RefState(tick, state.done, state.worker_slot, state.worker_finish)
        done = list(state.done)
        worker_slot = list(state.worker_slot)
        worker_finish = list(state.worker_finish)
        for worker, finish in enumerate(worker_finish):
            if finish is not None and finish <= tick:
                done[worker_slot[worker]] = True
                worker_slot[worker] = None
                worker_finish[worker] = None
        return RefState(tick, tuple(done), tuple(worker_slot), tuple(worker_finish))
