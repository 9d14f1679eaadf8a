"""Small kitchens and an independent brute-force optimum, shared by the solver and tip tests."""

from __future__ import annotations

import copy
import heapq
import itertools
from typing import Any

from hypothesis import strategies as st

from bpjax.env.config import KitchenSpec
from bpjax.env.reference import RefState, ReferenceKitchen

TASK_TYPES = ["chop", "cook", "plate"]
BURGER = [
    {"name": "chop meat", "type": "chop", "after": []},
    {"name": "cook burger", "type": "cook", "after": ["chop meat"]},
    {"name": "plate burger", "type": "plate", "after": ["cook burger"]},
]
TACOS = [
    {"name": "chop meat", "type": "chop", "after": []},
    {"name": "chop vegetables", "type": "chop", "after": []},
    {"name": "cook filling", "type": "cook", "after": ["chop meat", "chop vegetables"]},
    {"name": "plate tacos", "type": "plate", "after": ["cook filling"]},
]
SALAD = [{"name": "toss salad", "type": "chop", "after": []}]   # one-step dishes
SOUP = [{"name": "simmer soup", "type": "cook", "after": []}]
PAPER_SKILLS = {"chef": [1, 4, 6], "sous_chef": [2, 8, 2], "server": [3, 12, 1]}
BRUTE_FORCE_HORIZON = 10**6  # "no horizon" for the brute force: it stops at the first finished state


def kitchen(workers: list[str], skills: dict[str, list[int | None]], orders: list[tuple[str, int]],
            handoff: int = 1, max_ticks: int = 200, dishes: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    """A plain kitchen dict, validated (and normalised) through KitchenSpec.from_dict."""
    raw = {
        "task_types": list(TASK_TYPES),
        "dishes": copy.deepcopy(dishes if dishes is not None else {"burger": BURGER}),
        "skills": copy.deepcopy(skills),
        "scenario": {"name": "test", "workers": list(workers)},
        "orders": [{"dish": dish, "arrival": arrival} for dish, arrival in orders],
        "handoff": handoff,
        "max_ticks": max_ticks,
    }
    return KitchenSpec.from_dict(raw).to_dict()


def spec_of(kitchen_dict: dict[str, Any]) -> KitchenSpec:
    return KitchenSpec.from_dict(kitchen_dict)


# ---- independent brute force ----------------------------------------------------------------------

def brute_force_finish(kitchen_dict: dict[str, Any], start: RefState | None = None) -> int:
    """Earliest absolute tick at which every order is done, from `start` (default: the reset state).

    Uniform-cost (breadth-first by tick) search over *full* RefStates, absolute tick included: no symmetry,
    no time-shift reduction, the only memo is the set of full states already queued. Every step's cost is
    the ticks it elapses (>= 0) and the tick is part of the state, so the first finished state popped from
    the tick-ordered queue is an optimum. The simulator's horizon is made huge, so nothing truncates."""
    sim = ReferenceKitchen({**kitchen_dict, "max_ticks": BRUTE_FORCE_HORIZON})
    state = sim.reset() if start is None else start
    counter = itertools.count()
    frontier = [(state.tick, next(counter), state)]
    seen = {state}
    while frontier:
        tick, _, state = heapq.heappop(frontier)
        if sim.is_over(state)[0]:
            return tick
        for action in sim.legal_actions(state):
            nxt, _, _, truncated, info = sim.step(state, action)
            assert not info["illegal_action"] and not truncated
            if nxt not in seen:
                seen.add(nxt)
                heapq.heappush(frontier, (nxt.tick, next(counter), nxt))
    raise AssertionError("no finished state reachable")


def brute_force_ticks(kitchen_dict: dict[str, Any]) -> int:
    return brute_force_finish(kitchen_dict)


TWO_STEP_DISHES = {
    "sequential": lambda t1, t2: [{"name": "first", "type": t1, "after": []},
                                  {"name": "second", "type": t2, "after": ["first"]}],
    "parallel": lambda t1, t2: [{"name": "first", "type": t1, "after": []},
                                {"name": "second", "type": t2, "after": []}],
}


@st.composite
def tiny_kitchens(draw) -> dict[str, Any]:
    """1-2 workers with skills 1-4 or None, 1-2 orders of a burger or a 2-subtask dish (sequential or
    parallel, random types), arrivals 0-3, hand-off 0-2. Every task type an order needs gets an able worker:
    where nobody can, a drawn worker gets a drawn skill for it."""
    n_workers = draw(st.integers(1, 2), label="workers")
    names = [f"w{i}" for i in range(n_workers)]
    skill = st.one_of(st.none(), st.integers(1, 4))
    skills = {name: [draw(skill, label=f"{name} skills") for _ in TASK_TYPES] for name in names}
    duo = TWO_STEP_DISHES[draw(st.sampled_from(sorted(TWO_STEP_DISHES)), label="duo shape")](
        draw(st.sampled_from(TASK_TYPES), label="duo type 1"), draw(st.sampled_from(TASK_TYPES), label="duo type 2"))
    dishes = {"burger": BURGER, "duo": duo}
    orders = [(draw(st.sampled_from(["burger", "duo"])), draw(st.integers(0, 3), label="arrival"))
              for _ in range(draw(st.integers(1, 2), label="orders"))]
    needed = {subtask["type"] for dish, _ in orders for subtask in dishes[dish]}
    for task_type in sorted(needed):
        k = TASK_TYPES.index(task_type)
        if all(skills[name][k] is None for name in names):
            skills[names[draw(st.integers(0, n_workers - 1), label="fix-up worker")]][k] = draw(st.integers(1, 4))
    return kitchen(names, skills, orders, handoff=draw(st.integers(0, 2), label="handoff"), dishes=dishes)
