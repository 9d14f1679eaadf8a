"""Exact optimum of a kitchen by memoised search over reachable states.

The search runs on the reference simulator's pure transitions (the JAX env is tested step for step against
the same simulator). Two reductions keep it small:

* **Time invariance.** With no future arrivals differing, the ticks still needed from a state depend only on
  relative times (ticks left per worker, ticks until an order arrives), so states are keyed without the
  absolute tick. The horizon does not change which schedule is optimal (return = -min(finish, max_ticks) is
  monotone in the finish tick), so it is applied only when values are reported.
* **Symmetry.** Orders of the same dish arriving at the same time are interchangeable: the key is the sorted
  multiset of per-order signatures, so an identical-burger swap maps to the same entry.

Ticks-to-go V(s) = min over legal a of [ticks elapsed by a + V(s')]; Q*(s, a) = -(elapsed + V(s')).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.reference import ReferenceKitchen, RefState

UNBOUNDED_HORIZON = 10**9  # the search itself never truncates; see module docstring
# Per-slot status in a canonical key; an in-progress slot is (worker, ticks left), ticks left >= 1.
DONE, NOT_STARTED = (-1, 0), (-2, 0)


@dataclass(frozen=True)
class ScheduledTask:
    worker: str
    slot: int
    label: str       # e.g. "burger #2: cook burger"
    task_type: str
    start: int       # tick the worker was assigned
    finish: int      # tick the worker is idle again (start + duration + handoff)


@dataclass(frozen=True)
class Solution:
    optimal_ticks: int
    screen_tick: int                   # the game's on-screen counter at the end (ticks + 1)
    truncated: bool                    # even the optimum does not finish within max_ticks
    schedule: tuple[ScheduledTask, ...]
    actions: tuple[int, ...]           # the flat action sequence that plays it
    n_states: int                      # canonical states expanded
    seconds: float

    def to_json(self) -> dict:
        return {
            "optimal_ticks": self.optimal_ticks,
            "screen_tick": self.screen_tick,
            "truncated": self.truncated,
            "schedule": [task.__dict__ for task in self.schedule],
            "actions": list(self.actions),
            "n_states": self.n_states,
            "seconds": round(self.seconds, 4),
        }


class SolverBudgetExceeded(RuntimeError):
    """The kitchen has more reachable states than the solver was allowed to expand."""


class ExactSolver:
    """Exact ticks-to-go and Q* for one kitchen (memoised; reuse the instance across queries).

    `max_states` bounds the memo; beyond it the search raises :class:`SolverBudgetExceeded`."""

    def __init__(self, spec: KitchenSpec, max_states: int | None = None):
        self.spec = spec
        self.max_states = max_states
        self.max_ticks = spec.max_ticks
        self.sim = ReferenceKitchen({**spec.to_dict(), "max_ticks": UNBOUNDED_HORIZON})
        self._per_order = spec.slots_per_order
        self._order_dish = [o.dish for o in spec.orders]
        self._order_arrival = [o.arrival for o in spec.orders]
        self._togo: dict[tuple, int] = {}
        self._q: dict[tuple, np.ndarray] = {}   # (state, horizon) -> Q*(s, ·): simulated players revisit states

    # ---- canonical keys ---------------------------------------------------------------------------
    def key(self, state: RefState) -> tuple:
        """Time-shift- and order-permutation-invariant description of a state."""
        holder = {slot: w for w, slot in enumerate(state.worker_slot) if slot is not None}
        orders = []
        for order, dish in enumerate(self._order_dish):
            base = order * self._per_order
            signature = []
            for slot in range(base, base + self._per_order):
                if state.done[slot]:
                    signature.append(DONE)
                elif slot in holder:
                    w = holder[slot]
                    signature.append((w, state.worker_finish[w] - state.tick))
                else:
                    signature.append(NOT_STARTED)
            orders.append((dish, max(self._order_arrival[order] - state.tick, 0), tuple(signature)))
        return tuple(sorted(orders))

    # ---- values ------------------------------------------------------------------------------------
    def ticks_to_go(self, state: RefState) -> int:
        """Minimum ticks from `state` until every order is done (ignoring the horizon)."""
        key = self.key(state)
        cached = self._togo.get(key)
        if cached is not None:
            return cached
        if self.sim.is_over(state)[0]:
            self._togo[key] = 0
            return 0
        if self.max_states is not None and len(self._togo) >= self.max_states:
            raise SolverBudgetExceeded(f"more than {self.max_states} states")
        best = UNBOUNDED_HORIZON
        for action in self.sim.legal_actions(state):
            best = min(best, self._action_cost(state, key, action))
        self._togo[key] = best
        return best

    def _action_cost(self, state: RefState, key: tuple, action: int) -> int:
        next_state, reward, _, _, _ = self.sim.step(state, action)
        if reward < 0 and self.key(next_state) == key:
            # Waiting changed nothing but the clock: worth one tick more than the state itself. While the
            # state's own value is still being searched, such a self-loop cannot be the optimum: skip it.
            known = self._togo.get(key)
            return UNBOUNDED_HORIZON if known is None else -reward + known
        return -reward + self.ticks_to_go(next_state)

    def q_values(self, state: RefState, horizon: bool = True) -> np.ndarray:
        """float32[A]: Q*(s, a) = -(ticks from s until all done when taking a, then acting optimally);
        -inf for illegal actions. With `horizon`, ticks are clipped at max_ticks (the env's return). A copy:
        the caller may change it."""
        cached = self._q.get((state, horizon))
        if cached is None:
            cached = self._q[(state, horizon)] = self._q_values(state, horizon)
        return cached.copy()

    def _q_values(self, state: RefState, horizon: bool) -> np.ndarray:
        q = np.full(self.sim.n_actions, -np.inf, np.float32)
        if self.sim.is_over(state)[0]:
            return q
        key = self.key(state)
        self.ticks_to_go(state)  # so that a pure wait is valued against the known V(s)
        for action in self.sim.legal_actions(state):
            cost = self._action_cost(state, key, action)
            if horizon:
                cost = min(state.tick + cost, self.max_ticks) - state.tick
            q[action] = -cost
        return q

    def value(self, state: RefState, horizon: bool = True) -> float:
        """V*(s) = -(ticks to go), clipped at the horizon when `horizon`."""
        togo = self.ticks_to_go(state)
        return -float(min(state.tick + togo, self.max_ticks) - state.tick if horizon else togo)

    # ---- the optimal schedule ------------------------------------------------------------------------
    def solve(self) -> Solution:
        """Optimal ticks from the start and one optimal schedule (lowest action index among ties)."""
        started = time.perf_counter()
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            state = self.sim.reset()
            optimal = self.ticks_to_go(state)
            actions, schedule = [], []
            while not self.sim.is_over(state)[0]:
                key = self.key(state)
                target = self.ticks_to_go(state)
                action = next(a for a in self.sim.legal_actions(state)
                              if self._action_cost(state, key, a) == target)
                if action != self.sim.end_tick_action:
                    worker, slot = divmod(action, self.sim.n_slots)
                    duration = self.sim.duration(worker, slot)
                    subtask = self.spec.slot_subtask(slot)
                    schedule.append(ScheduledTask(
                        worker=self.spec.workers[worker].name, slot=slot, label=self.spec.slot_label(slot),
                        task_type=self.spec.task_types[subtask.task_type], start=state.tick,
                        finish=state.tick + duration + self.spec.handoff))
                actions.append(action)
                state = self.sim.step(state, action)[0]
        finally:
            sys.setrecursionlimit(limit)
        assert state.tick == optimal, "replaying the optimal actions must reach the optimal tick"
        ticks = min(optimal, self.max_ticks)
        return Solution(optimal_ticks=ticks, screen_tick=ticks + 1, truncated=optimal > self.max_ticks,
                        schedule=tuple(schedule), actions=tuple(actions), n_states=len(self._togo),
                        seconds=time.perf_counter() - started)


def solve(spec: KitchenSpec, max_states: int | None = None) -> Solution:
    """Exact optimum of a kitchen."""
    return ExactSolver(spec, max_states).solve()
