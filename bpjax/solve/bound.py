"""A valid lower bound on a kitchen's optimal ticks, for kitchens too large for the exact solver.

A subtask of type k keeps its worker for at least ``min_w ticks[w][k] + handoff`` ticks (the fastest worker
with the skill), and its successors start no earlier than when it ends. So no schedule finishes before

- the longest chain: for every order, its arrival plus the longest precedence path of those times; nor
- the total work: the sum of those times over every subtask, shared by all workers at best.

The bound is the larger of the two (an integer: ticks are integers).
"""

from __future__ import annotations

from functools import lru_cache

from bpjax.env.config import KitchenSpec


def fastest_ticks(spec: KitchenSpec) -> list[int | None]:
    """Per task type, the fewest ticks any worker needs (None when nobody has the skill)."""
    out = []
    for k in range(len(spec.task_types)):
        ticks = [w.ticks[k] for w in spec.workers if w.ticks[k] is not None]
        out.append(min(ticks) if ticks else None)
    return out


def chain_bound(spec: KitchenSpec) -> int:
    """The latest order's arrival plus its longest recipe chain at the fastest skills (hand-offs included)."""
    fastest = fastest_ticks(spec)
    best = 0
    for order in spec.orders:
        recipe = spec.dishes[order.dish]

        @lru_cache(maxsize=None)
        def finish(i: int) -> int:
            subtask = recipe[i]
            return max((finish(p) for p in subtask.after), default=0) + fastest[subtask.task_type] + spec.handoff

        best = max(best, order.arrival + max(finish(i) for i in range(len(recipe))))
    return best


def work_bound(spec: KitchenSpec) -> int:
    """The total minimum work of every subtask divided over the workers, rounded up."""
    fastest = fastest_ticks(spec)
    total = sum(fastest[subtask.task_type] + spec.handoff
                for order in spec.orders for subtask in spec.dishes[order.dish])
    return -(-total // max(1, spec.n_workers))


def lower_bound_ticks(spec: KitchenSpec) -> int:
    """max(chain bound, work bound): no schedule of this kitchen finishes in fewer ticks."""
    return max(chain_bound(spec), work_bound(spec))
