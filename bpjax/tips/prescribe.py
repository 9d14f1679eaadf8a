"""Where a tip applies and what it changes: J ⊕ ρ, the tick's joint assignment J as the tip would have it.

A tip applies at a decision tick where its condition holds at the tick's start and its worker is idle with a
subtask it could take (for a count tip or "assign", one of the tip's type). ⊕ changes only what the tip
prescribes and keeps the rest of the joint:

* **never** (a count tip whose worker w has done type k j times already, or j = 0): where J gives w a type-k
  subtask, w instead idles (reading ``never="idle"``, the default) or takes the trainee's next choice under π_H
  among w's other open subtasks, idling when π_H prefers to end the tick (``never="next"``);
* **exactly j**, while w has done fewer than j: w takes a type-k subtask where J leaves it idle (``exactly=
  "fill"``, the default) or at every chance, in place of any other subtask (``exactly="eager"``);
* **assign** (state / rule tips): as "eager"; **idle**: w's assignment is dropped; **wait**: the whole joint is.

A subtask another worker takes in J is not free; among the free ones w takes π_H's most likely (the lowest slot
without π_H). A tip is satisfied by J when J ⊕ ρ = J. Everything is vectorised over rows (ticks, or tick ×
candidate joint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.tips.candidates import Tip
from bpjax.tips.ticks import IDLE, TickTable

NEVER_READINGS = ("idle", "next")
EXACTLY_READINGS = ("fill", "eager")


@dataclass(frozen=True)
class Readings:
    never: str = "idle"
    exactly: str = "fill"

    def __post_init__(self):
        if self.never not in NEVER_READINGS:
            raise ConfigError(f"tips.never: expected one of {', '.join(NEVER_READINGS)}, got {self.never!r}")
        if self.exactly not in EXACTLY_READINGS:
            raise ConfigError(f"tips.exactly: expected one of {', '.join(EXACTLY_READINGS)}, got {self.exactly!r}")


@dataclass
class TickContext:
    """What a prescription reads at the start of a tick, for M rows."""

    mask: np.ndarray           # bool[M, A]
    count: np.ndarray          # int[M, W, K]
    features: np.ndarray       # bool[M, F]
    probs: np.ndarray | None   # float[M, A]

    @classmethod
    def of(cls, table: TickTable, rows: np.ndarray | None = None) -> "TickContext":
        rows = np.arange(len(table)) if rows is None else rows
        return cls(table.mask[rows], table.count[rows], table.features[rows],
                   None if table.probs is None else table.probs[rows])


def condition_holds(tip: Tip, features: np.ndarray) -> np.ndarray:
    holds = np.ones(len(features), bool)
    for clause in tip.condition:
        value = features[:, list(clause.predicates)].all(axis=1)
        holds &= ~value if clause.negated else value
    return holds


def prescribe(tip: Tip, ctx: TickContext, joints: np.ndarray, spec: KitchenSpec,
              readings: Readings = Readings()) -> tuple[np.ndarray, np.ndarray]:
    """(applies bool[M], J ⊕ ρ int[M, W]) for the joints int[M, W] (slot per worker, IDLE = none)."""
    n_slots, rows = spec.n_slots, np.arange(len(joints))
    new = joints.copy()
    holds = condition_holds(tip, ctx.features)
    if tip.advice == "wait":
        applies = holds & ctx.mask[:, :-1].any(axis=1)
        new[applies] = IDLE
        return applies, new
    w = tip.worker
    legal = ctx.mask[:, w * n_slots:(w + 1) * n_slots]  # w's open subtasks at the tick's start (w is idle)
    if tip.advice == "idle":
        applies = holds & legal.any(axis=1)
        new[applies, w] = IDLE
        return applies, new

    slot_type = np.asarray(spec.slot_types)
    of_type = legal & (slot_type == tip.task_type)
    applies = holds & of_type.any(axis=1)
    own = joints[:, w]
    has_type = (own >= 0) & (slot_type[np.maximum(own, 0)] == tip.task_type)
    taken = np.zeros((len(joints), n_slots), bool)
    for v in range(spec.n_workers):
        if v != w:
            taken[rows[joints[:, v] >= 0], joints[joints[:, v] >= 0, v]] = True
    free = of_type & ~taken
    if tip.advice == "times":
        forbid = applies & (ctx.count[:, w, tip.task_type] >= tip.times)
        wanted = applies & ~forbid
        want = ~has_type & (own == IDLE if readings.exactly == "fill" else True)
    else:  # assign
        forbid, wanted, want = np.zeros(len(joints), bool), applies, ~has_type
    take = wanted & want & free.any(axis=1)
    new[take, w] = _pick(free, ctx.probs, w, n_slots)[take]
    drop = forbid & has_type
    if readings.never == "next" and ctx.probs is not None:
        others = legal & (slot_type != tip.task_type) & ~taken
        choice = _pick(others, ctx.probs, w, n_slots)
        prefer_end = ctx.probs[:, -1] >= np.where(choice >= 0, ctx.probs[rows, w * n_slots + np.maximum(choice, 0)],
                                                  -1.0)
        new[drop, w] = np.where(prefer_end, IDLE, choice)[drop]
    else:
        new[drop, w] = IDLE
    return applies, new


def _pick(free: np.ndarray, probs: np.ndarray | None, worker: int, n_slots: int) -> np.ndarray:
    """Per row, the free slot π_H likes best for `worker` (lowest slot without π_H); -1 where none is free."""
    if probs is None:
        preference = -np.arange(n_slots, dtype=float)[None, :].repeat(len(free), axis=0)
    else:
        preference = probs[:, worker * n_slots:(worker + 1) * n_slots]
    best = np.where(free, preference, -np.inf).argmax(axis=1)
    return np.where(free.any(axis=1), best, IDLE)


def satisfied(tip: Tip, ctx: TickContext, joints: np.ndarray, spec: KitchenSpec,
              readings: Readings = Readings()) -> np.ndarray:
    """bool[M]: J ⊕ ρ = J (the joint already does what the tip says)."""
    return (prescribe(tip, ctx, joints, spec, readings)[1] == joints).all(axis=1)
