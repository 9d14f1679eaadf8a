"""The study's tip algorithm: "worker w should do task type k exactly j times" (j = 0 reads "never").

A tip ρ = (w, k, j) acts on a decision state s of a round in which w has so far done `c` subtasks of type k:

* **force** (c < j): if w is idle and a type-k subtask is open to it, assign w to the first such subtask.
  The tip forces the assignment *at every chance* while the count is below j (the rule this project chose of
  the two the study leaves open; the other — only where the trainee would leave w idle — is not implemented).
* **forbid** (c ≥ j): where the trainee's action assigns w to a type-k subtask, the trainee does something
  else instead: the trainee's next most likely legal action under π_H when its probabilities are given,
  otherwise "end tick" (leave w idle).

Score (first-order estimate of J(π_H ⊕ ρ) − J(π_H), from the performance-difference lemma): the average
over rounds of Σ_t Q*(s_t, (π_H ⊕ ρ)(s_t)) − Q*(s_t, π_H(s_t)), with π_H(s_t) the action the trainee took.
Filters: a tip must apply in at least `min_applicability` of the observed states, and agree with π* in at
least 1 − `max_disagreement` of the states where it applies — a forced assignment agrees when it is optimal,
a forbidden one when π* has an optimal action other than w → k. The baseline scorer replaces Q* by that
agreement rate (how often the optimal policy does what the tip says: state–action counts).

Q is the exact Q* by default; with a learned π* (``bpjax.tips.optimum``) it is a Monte-Carlo estimate, and
"optimal" means within the optimum's tolerance of the best action (the table's ``optimal`` mask).
Everything after Q is vectorised over decisions with numpy (no Python loop per decision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpjax.data.traces import TraceSet
from bpjax.env.config import KitchenSpec
from bpjax.solve.solver import ExactSolver
from bpjax.tips.optimum import ExactOptimum, LearnedOptimum


@dataclass(frozen=True)
class Tip:
    worker: int
    task_type: int
    times: int

    def text(self, spec: KitchenSpec) -> str:
        worker, kind = spec.workers[self.worker].name.replace("_", "-"), spec.task_types[self.task_type]
        how = "never" if self.times == 0 else f"exactly {self.times} time{'s' if self.times > 1 else ''}"
        return f"The {worker} should {kind} {how}." if self.times else f"The {worker} should never {kind}."


@dataclass
class TipScores:
    tip: Tip
    text: str
    score: float           # first-order gain in ticks per round (Q* based)
    baseline_score: float  # share of applicable states where π* takes the tip's action
    applicability: float   # share of observed states where the tip applies
    disagreement: float    # share of those where the tip's action is not optimal
    kept: bool             # passes both filters


def decision_table(traces: TraceSet, spec: KitchenSpec, optimum: ExactOptimum | LearnedOptimum | None = None
                   ) -> dict[str, np.ndarray]:
    """Per decision: Q[N, A] (exact Q* by default, else `optimum`'s), which actions count as optimal (within
    the optimum's tolerance of the best), the action taken, the legal mask, the round index and, per (worker,
    type), how many subtasks of that type the worker had been given earlier in the round [N, W, K]."""
    optimum = optimum or ExactOptimum(ExactSolver(spec))
    q = optimum.q_values(traces)
    optimal = traces.mask & (q >= q.max(axis=1, keepdims=True) - optimum.tolerance)
    n_slots, n_workers, n_types = spec.n_slots, spec.n_workers, len(spec.task_types)
    slot_type = np.array([spec.slot_subtask(s).task_type if spec.slot_subtask(s) else -1 for s in range(n_slots)])
    action = traces.action.astype(np.int64)
    is_assign = action < spec.end_tick_action
    worker = np.where(is_assign, action // n_slots, -1)
    kind = np.where(is_assign, slot_type[np.where(is_assign, action % n_slots, 0)], -1)
    done_now = np.zeros((len(action), n_workers, n_types), np.int32)
    done_now[np.flatnonzero(is_assign), worker[is_assign], kind[is_assign]] = 1
    episode = traces.frame["episode_id"].to_numpy()
    round_index = np.unique(episode, return_inverse=True)[1]
    # counts before each decision: cumulative sum within the round, minus the decision itself
    cumulative = np.cumsum(done_now, axis=0)
    start = np.r_[0, np.flatnonzero(round_index[1:] != round_index[:-1]) + 1]
    offsets = np.repeat(np.r_[np.zeros((1, n_workers, n_types), np.int32), cumulative[start[1:] - 1]],
                        np.diff(np.r_[start, len(action)]), axis=0)
    return {"q": q, "optimal": optimal, "action": action, "mask": traces.mask, "round": round_index,
            "count": cumulative - done_now - offsets, "slot_type": slot_type}


def tip_actions(table: dict[str, np.ndarray], spec: KitchenSpec, tip: Tip,
                fallback_order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(π_H ⊕ ρ)(s) at every decision, where the tip applies, and where it forces (vs forbids)."""
    action, mask, n = table["action"], table["mask"], len(table["action"])
    actions_wk = tip.worker * spec.n_slots + np.flatnonzero(table["slot_type"] == tip.task_type)
    open_wk = mask[:, actions_wk]
    count = table["count"][:, tip.worker, tip.task_type]
    force = (count < tip.times) & open_wk.any(axis=1)
    forbid = (count >= tip.times) & np.isin(action, actions_wk)
    fallback = _fallback(fallback_order, actions_wk, spec.end_tick_action, n)
    chosen = np.where(force, actions_wk[open_wk.argmax(axis=1)], np.where(forbid, fallback, action))
    return chosen, force | forbid, force


def score_count_tips(table: dict[str, np.ndarray], spec: KitchenSpec, max_times: int | None = None,
                     trainee_probs: np.ndarray | None = None, min_applicability: float = 0.1,
                     max_disagreement: float = 0.5) -> list[TipScores]:
    """Score every candidate (worker, type, times) tip; best score first (ties: fewer times first). A j that
    acts exactly like j - 1 on every observed decision is left out."""
    q, mask, optimal = table["q"], table["mask"], table["optimal"]
    rows = np.arange(len(table["action"]))
    n_rounds = table["round"].max() + 1
    q_taken = q[rows, table["action"]]
    max_times = max_times if max_times is not None else len(spec.orders)
    # the trainee's fallback when a tip forbids its action: next most likely legal action, else end tick
    fallback_order = None if trainee_probs is None else np.argsort(-np.where(mask, trainee_probs, -1.0), axis=1)
    results = []
    for w in range(spec.n_workers):
        for k in range(len(spec.task_types)):
            actions_wk = w * spec.n_slots + np.flatnonzero(table["slot_type"] == k)
            if not len(actions_wk) or spec.workers[w].ticks[k] is None:
                continue
            # π* agrees with a forbidden w -> k where it has an optimal action that is not w -> k
            other_optimal = np.any(optimal & ~np.isin(np.arange(q.shape[1]), actions_wk), axis=1)
            previous, previous_applies = None, None
            for times in range(max_times + 1):
                tip = Tip(w, k, times)
                chosen, applies, force = tip_actions(table, spec, tip, fallback_order)
                if (previous is not None and np.array_equal(chosen, previous)
                        and np.array_equal(applies, previous_applies)):
                    continue  # a larger j that changes nothing in the data: the smaller one says it
                previous, previous_applies = chosen, applies
                gain = q[rows, chosen] - q_taken
                # a forced assignment agrees with π* when it is optimal
                agrees = np.where(force, optimal[rows, chosen], other_optimal)
                applicability = float(applies.mean())
                disagreement = float((~agrees)[applies].mean()) if applies.any() else 1.0
                results.append(TipScores(
                    tip, tip.text(spec), float(np.where(applies, gain, 0.0).sum() / n_rounds),
                    baseline_score=float(agrees[applies].mean()) if applies.any() else 0.0,
                    applicability=applicability, disagreement=disagreement,
                    kept=applicability >= min_applicability and disagreement <= max_disagreement))
    return sorted(results, key=lambda r: (-r.score, r.tip.times))


def _fallback(order: np.ndarray | None, forbidden: np.ndarray, end_tick: int, n: int) -> np.ndarray:
    if order is None:
        return np.full(n, end_tick)
    allowed = ~np.isin(order, forbidden)
    return order[np.arange(n), allowed.argmax(axis=1)]
