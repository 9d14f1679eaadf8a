"""Rule-list tips: Bayesian Rule Lists (imodels) on the named state predicates.

Where the trainee departs from π* at a cost (Q-loss > 0 at a decision), what should it have done? For each
action family — "assign <worker> to a <type> subtask", and "wait" (end the tick) — that π* takes at enough of
those decisions, a one-vs-rest BRL (imodels' BRL is binary and needs 0/1 features) learns "if [state] then
[family]" rules from the optimal action there. Each rule becomes a candidate tip of kind "rule", scored and
simulated like every other tip: its condition is the rule's antecedent, and the earlier rules of its list
(which take precedence) as "not (...)" clauses. Support and confidence are kept for the report.

BRL settings (config-overridable): `max_iter` 2,000 MCMC iterations per chain (burn-in set to half of it:
imodels' `set_params(max_iter=...)` alone leaves a stale burn-in), 3 chains, rules of at most 2 predicates with
support >= 10%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.reference import RefState
from bpjax.tips.candidates import Clause, Tip
from bpjax.tips.predicates import StateBatch, predicate_names, predicates
from bpjax.tips.prescribe import condition_holds


@dataclass
class RuleList:
    family: str                                   # e.g. "assign the chef to cook"
    tips: list[Tip] = field(default_factory=list)  # the list's rules that point to the family, in order
    support: list[float] = field(default_factory=list)     # share of the costly decisions each covers
    confidence: list[float] = field(default_factory=list)  # share of those where π*'s action is the family


def action_families(spec: KitchenSpec, actions: np.ndarray) -> tuple[np.ndarray, list[Tip]]:
    """Family index per action, and each family's advice: (worker, task type) assignments, then "wait"."""
    advice = [Tip("rule", "assign", w, k) for w in range(spec.n_workers) for k in range(len(spec.task_types))]
    advice.append(Tip("rule", "wait"))
    slot_type = np.maximum(np.asarray(spec.slot_types), 0)
    worker, slot = actions // spec.n_slots, actions % spec.n_slots
    family = np.where(actions == spec.end_tick_action, len(advice) - 1,
                      worker * len(spec.task_types) + slot_type[np.minimum(slot, spec.n_slots - 1)])
    return family, advice


def family_label(tip: Tip, spec: KitchenSpec) -> str:
    if tip.advice == "wait":
        return "wait (end the tick)"
    return f"assign the {spec.worker_label(tip.worker)} to {spec.task_types[tip.task_type]}"


def costly_decisions(q: np.ndarray, action: np.ndarray, optimal: np.ndarray | None = None) -> np.ndarray:
    """bool[N]: decisions whose action is not among the optimal ones (by default: below the best Q)."""
    rows = np.arange(len(action))
    return ~optimal[rows, action] if optimal is not None else q[rows, action] < q.max(axis=1)


def rule_lists(states: Sequence[RefState], q: np.ndarray, action: np.ndarray, spec: KitchenSpec,
               optimal: np.ndarray | None = None, min_positive: int = 10, max_iter: int = 2000, seed: int = 0
               ) -> list[RuleList]:
    """One rule list per action family that π* takes at enough of the trainee's costly decisions."""
    from imodels import BayesianRuleListClassifier

    costly = costly_decisions(q, action, optimal)
    if not costly.any():
        return []
    features = predicates(StateBatch.from_reference([s for s, c in zip(states, costly) if c], spec.n_slots), spec)
    features = features.astype(np.int64)
    names = predicate_names(spec)
    family, advice = action_families(spec, q[costly].argmax(axis=1))
    out = []
    for index in np.unique(family):
        target = (family == index).astype(int)
        if target.sum() < min_positive or target.all():
            continue
        model = BayesianRuleListClassifier(max_iter=max_iter, n_chains=3, maxcardinality=2, minsupport=0.1,
                                           random_state=seed)
        model.burnin = max_iter // 2  # set_params/constructor leave the burn-in of the default max_iter
        model.fit(features, target, feature_names=names)
        out.append(_rules(model, features, target, advice[index], spec))
    return out


def _rules(model, features: np.ndarray, target: np.ndarray, advice: Tip, spec: KitchenSpec) -> RuleList:
    """The list's rules as tips. The first rule of a list that holds decides, so each carries the earlier
    rules' antecedents as negated clauses; predicates the advice implies are dropped (where the tip applies
    they hold). A rule is kept when the decisions its tip covers (its condition and the implied predicates
    hold) point to the family more often than the base rate: support and confidence are over those."""
    out = RuleList(family_label(advice, spec))
    implied = sorted(advice.implied(spec))
    applicable = features[:, implied].all(axis=1) if implied else np.ones(len(target), bool)
    earlier: list[tuple[int, ...]] = []
    for antecedent in model.final_itemsets:
        if antecedent == "null":
            break
        columns = tuple(int(item.split("_", 1)[1]) for item in antecedent)  # imodels names feature i "X_i"
        positive = tuple(c for c in columns if c not in implied)
        negated = [tuple(c for c in e if c not in implied) for e in earlier]
        earlier.append(columns)
        if not all(negated):  # a negated clause left empty never holds: nor does the rule
            continue
        tip = Tip("rule", advice.advice, advice.worker, advice.task_type,
                  condition=((Clause(positive),) if positive else ()) + tuple(Clause(e, negated=True) for e in negated))
        covered = applicable & condition_holds(tip, features)
        if covered.any() and target[covered].mean() > target.mean():
            out.tips.append(tip)
            out.support.append(float(covered.mean()))
            out.confidence.append(float(target[covered].mean()))
    return out
