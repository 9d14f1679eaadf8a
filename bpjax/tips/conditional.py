"""State-conditioned tips: "if ψ(s), then a" with ψ a conjunction of at most two named state predicates
(``bpjax.tips.rules.state_predicates``) and a one of

* "assign <worker> to a <type> subtask" — where ψ holds and such an assignment is legal, take the first one;
* "leave <worker> idle" — where ψ holds and the trainee assigns that worker, it does its next most likely
  other action under π_H instead ("end tick" without π_H's probabilities).

Scored, filtered and ranked exactly like the study's count tips (``bpjax.tips.study``): the first-order Q*
gain per round, applicability ≥ `min_applicability`, agreement with π* ≥ 1 − `max_disagreement`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.reference import RefState
from bpjax.tips.rules import state_predicates
from bpjax.tips.study import TipScores, _fallback


@dataclass(frozen=True)
class ConditionalTip:
    condition: tuple[str, ...]
    advice: str

    def text(self, spec: KitchenSpec | None = None) -> str:
        return f"If {' and '.join(self.condition)}, {self.advice}."


def score_conditional_tips(table: dict[str, np.ndarray], states: list[RefState], spec: KitchenSpec,
                           trainee_probs: np.ndarray | None = None, max_predicates: int = 2,
                           min_applicability: float = 0.1, max_disagreement: float = 0.5) -> list[TipScores]:
    """Score every (condition, advice) pair; best score first. Conditions are tried shortest first, and one
    that selects exactly the decisions of an earlier condition with the same advice is left out."""
    q, action, mask, optimal = table["q"], table["action"], table["mask"], table["optimal"]
    rows = np.arange(len(action))
    n_rounds = table["round"].max() + 1
    q_taken = q[rows, action]
    features, names = state_predicates(states, spec)
    fallback_order = None if trainee_probs is None else np.argsort(-np.where(mask, trainee_probs, -1.0), axis=1)
    advice = []  # (text, chosen action where it applies, applies-without-condition, agrees with π*)
    for w, worker in enumerate(spec.workers):
        name = worker.name.replace("_", "-")
        own = w * spec.n_slots + np.arange(spec.n_slots)
        for k, kind in enumerate(spec.task_types):
            actions_wk = w * spec.n_slots + np.flatnonzero(table["slot_type"] == k)
            if not len(actions_wk) or worker.ticks[k] is None:
                continue
            open_wk = mask[:, actions_wk]
            chosen = actions_wk[open_wk.argmax(axis=1)]
            advice.append((f"assign the {name} to a {kind} subtask", chosen, open_wk.any(axis=1),
                           optimal[rows, chosen]))
        takes_w = np.isin(action, own)
        other_optimal = np.any(optimal & ~np.isin(np.arange(q.shape[1]), own), axis=1)
        advice.append((f"leave the {name} idle", _fallback(fallback_order, own, spec.end_tick_action, len(action)),
                       takes_w, other_optimal))
    conditions = [c for size in range(1, max_predicates + 1) for c in combinations(range(len(names)), size)]
    results, seen = [], set()
    for condition in conditions:
        holds = np.all(features[:, condition] == 1, axis=1)
        if not holds.any():
            continue
        for text, chosen, possible, agrees in advice:
            applies = holds & possible
            signature = (text, applies.tobytes())
            if not applies.any() or signature in seen:
                continue  # a longer condition that picks the same decisions as a shorter one adds nothing
            seen.add(signature)
            gain = np.where(applies, q[rows, chosen] - q_taken, 0.0)
            applicability = float(applies.mean())
            disagreement = float((~agrees)[applies].mean())
            tip = ConditionalTip(tuple(names[c] for c in condition), text)
            results.append(TipScores(tip, tip.text(), float(gain.sum() / n_rounds), float(agrees[applies].mean()),
                                     applicability, disagreement,
                                     applicability >= min_applicability and disagreement <= max_disagreement))
    return sorted(results, key=lambda r: (-r.score, len(r.tip.condition)))
