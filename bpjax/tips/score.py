"""The study's score of a tip, per decision tick, with its support and agreement.

score(ρ) = mean over rounds of Σ over the ticks where ρ applies of cost(s, J) − cost(s, J ⊕ ρ), in ticks:
`cost` is the ticks from the tick's start s until every order is done when the joint assignment is played and
π* acts after it (−Q*(s, J)), J the recorded joint and J ⊕ ρ the joint as the tip would have it
(:mod:`bpjax.tips.prescribe`). Each tick counts once, whatever its number of assignments; a first-order estimate
of what following ρ is worth (the performance-difference lemma), since π* and not the trainee acts after it.

support = share of the decision ticks where ρ applies; agreement = share of those where some optimal joint
satisfies ρ (J* ⊕ ρ = J*), disagreement = 1 − agreement; the state–action-count baseline ranks by agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from bpjax.tips.candidates import Tip
from bpjax.tips.prescribe import Readings, TickContext, prescribe, satisfied
from bpjax.tips.ticks import TickTable


@dataclass
class TipScore:
    tip: Tip
    text: str
    score: float        # first-order gain, ticks per round
    support: float      # share of decision ticks where the tip applies
    agreement: float    # share of those where an optimal joint satisfies it
    changed: float      # share of decision ticks whose joint the tip changes
    applies: np.ndarray = field(repr=False)  # bool[T]

    @property
    def disagreement(self) -> float:
        return 1.0 - self.agreement


class JointCosts:
    """cost(s, J), asked of the optimum once per distinct (state, joint): share one across tick tables of the
    same kitchen (people, rounds) and nothing is computed twice."""

    def __init__(self, optimum):
        self.optimum = optimum
        self._cache: dict[tuple, float] = {}

    def __call__(self, states: Sequence, joints: np.ndarray) -> np.ndarray:
        keys = [(state, *joint) for state, joint in zip(states, np.asarray(joints).tolist())]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            costs = self.optimum.joint_costs([k[0] for k in missing], np.asarray([k[1:] for k in missing], np.int64))
            self._cache.update(zip(missing, costs.tolist()))
        return np.asarray([self._cache[k] for k in keys], float)


def score_tips(table: TickTable, tips: Sequence[Tip], optimum, readings: Readings = Readings(),
               costs: JointCosts | None = None) -> list[TipScore]:
    """Score every tip that applies somewhere; best score first. Tips that apply at the same ticks and
    change the joints the same way are one tip: the first of them in `tips` (list shorter wordings first)
    is kept."""
    [scores] = score_tips_by_group(table, tips, optimum, np.zeros(len(table), np.int64), 1, readings, costs)
    return scores


def score_tips_by_group(table: TickTable, tips: Sequence[Tip], optimum, group: np.ndarray, n_groups: int,
                        readings: Readings = Readings(), costs: JointCosts | None = None) -> list[list[TipScore]]:
    """:func:`score_tips` for several groups of the table's ticks at once (one person each, say: `group` is
    int[T] in 0 .. n_groups - 1): each tip is prescribed once over every tick and its gains summed per group.
    Per group, the tips that apply somewhere in it, best score first (`applies` over the group's ticks)."""
    spec, n = table.spec, len(table)
    costs = costs or JointCosts(optimum)
    states = table.states
    ctx = TickContext.of(table)
    optimal = optimum.optimal_joints(table.states)
    optimal_row = np.repeat(np.arange(n), [len(o) for o in optimal])
    optimal_joints = np.concatenate(optimal) if optimal else np.zeros((0, spec.n_workers), np.int64)
    optimal_ctx = TickContext.of(table, optimal_row)
    group = np.asarray(group, np.int64)
    ticks_of = np.bincount(group, minlength=n_groups).astype(float)
    rounds_of = np.asarray([len(np.unique(table.round[group == g])) for g in range(n_groups)], float)

    pending, seen = [], set()
    for tip in tips:
        applies, new = prescribe(tip, ctx, table.joint, spec, readings)
        if not applies.any():
            continue
        signature = (applies.tobytes(), new.tobytes())
        if signature in seen:
            continue
        seen.add(signature)
        pending.append((tip, applies, new, np.flatnonzero((new != table.joint).any(axis=1))))
    changed_rows = np.concatenate([rows for *_, rows in pending] + [np.zeros(0, np.int64)])
    changed_joints = np.concatenate([new[rows] for _, _, new, rows in pending] + [np.zeros((0, spec.n_workers),
                                                                                          np.int64)])
    costs([states[r] for r in np.r_[np.arange(n), changed_rows]], np.concatenate([table.joint, changed_joints]))
    recorded = costs(states, table.joint)

    out: list[list[TipScore]] = [[] for _ in range(n_groups)]
    for tip, applies, new, rows in pending:
        gain = np.bincount(group[rows], recorded[rows] - costs([states[r] for r in rows], new[rows]),
                           minlength=n_groups)
        agree = np.bincount(optimal_row, weights=satisfied(tip, optimal_ctx, optimal_joints, spec, readings),
                            minlength=n) > 0
        applies_in = np.bincount(group, applies, minlength=n_groups)
        agree_in = np.bincount(group, applies & agree, minlength=n_groups)
        changed_in = np.bincount(group[rows], minlength=n_groups)
        text = tip.text(spec)
        for g in np.flatnonzero(applies_in):
            out[g].append(TipScore(tip, text, float(gain[g] / max(rounds_of[g], 1)), float(applies_in[g] / ticks_of[g]),
                                   float(agree_in[g] / applies_in[g]), float(changed_in[g] / ticks_of[g]),
                                   applies[group == g]))
    return [sorted(scores, key=lambda s: -s.score) for scores in out]
