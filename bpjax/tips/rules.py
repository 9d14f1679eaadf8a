"""Rule-list tips: Bayesian Rule Lists (imodels) on interpretable boolean predicates of the state.

Where the trainee departs from π* at a cost (Q*-loss > 0), what should it have done? For each action family
"assign <worker> to a <type> subtask" (and "wait": end the tick), a one-vs-rest BRL — imodels' BRL is binary
and needs 0/1 features — learns "if [state] then [family]" rules from the optimal action at those states.
Each rule is printed as a sentence with its support (share of the costly decisions it covers) and confidence
(share of those where π*'s action is in the family).

BRL settings (documented, config-overridable): `max_iter` 2,000 MCMC iterations per chain (burn-in set to half
of it: imodels' `set_params(max_iter=...)` alone leaves a stale burn-in), 3 chains, rules of at most 2
predicates with support ≥ 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.reference import ReferenceKitchen, RefState


def state_predicates(states: list[RefState], spec: KitchenSpec) -> tuple[np.ndarray, list[str]]:
    """0/1 features [N, F] with readable names: who is idle, which task types are open to whom, everyone
    idle, and how many subtasks of each type are done."""
    n_slots, names, columns = spec.n_slots, [], []
    type_of = [spec.slot_subtask(s).task_type if spec.slot_subtask(s) else -1 for s in range(n_slots)]
    sim = ReferenceKitchen(spec.to_dict())
    opened = [{type_of[s] for s in sim.available_slots(state)} for state in states]
    for w, worker in enumerate(spec.workers):
        name = worker.name.replace("_", "-")
        names.append(f"the {name} is idle")
        columns.append([state.worker_slot[w] is None for state in states])
    for k, kind in enumerate(spec.task_types):
        names.append(f"a {kind} subtask is open")
        columns.append([k in o for o in opened])
    names.append("everyone is idle")
    columns.append([all(s is None for s in state.worker_slot) for state in states])
    for k, kind in enumerate(spec.task_types):
        for n in range(1, len(spec.orders)):
            names.append(f"at least {n} {kind} subtask{'s' if n > 1 else ''} done")
            columns.append([sum(state.done[s] for s in range(n_slots) if type_of[s] == k) >= n for state in states])
    return np.asarray(columns, np.int64).T, names


@dataclass
class RuleTip:
    family: str
    rules: list[str]         # "if A and B then <family>" sentences, in list order
    support: list[float]
    confidence: list[float]


def action_families(spec: KitchenSpec, actions: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Family index per action: (worker, task type) pairs, then "wait" (end the tick)."""
    labels = [f"assign the {w.name.replace('_', '-')} to {k}" for w in spec.workers for k in spec.task_types]
    labels.append("wait (end the tick)")
    type_of = np.array([spec.slot_subtask(s).task_type if spec.slot_subtask(s) else 0 for s in range(spec.n_slots)])
    worker, slot = actions // spec.n_slots, actions % spec.n_slots
    family = np.where(actions == spec.end_tick_action, len(labels) - 1,
                      worker * len(spec.task_types) + type_of[np.minimum(slot, spec.n_slots - 1)])
    return family, labels


def brl_tips(states: list[RefState], q: np.ndarray, action: np.ndarray, spec: KitchenSpec, min_positive: int = 10,
             max_iter: int = 2000, seed: int = 0, optimal: np.ndarray | None = None) -> list[RuleTip]:
    """One rule list per action family that π* takes at enough of the trainee's costly decisions (where the
    action taken is not among the `optimal` ones; by default, where it is below the best Q)."""
    from imodels import BayesianRuleListClassifier

    rows = np.arange(len(action))
    costly = ~optimal[rows, action] if optimal is not None else q[rows, action] < q.max(axis=1)
    if not costly.any():
        return []
    features, names = state_predicates([s for s, c in zip(states, costly) if c], spec)
    optimal_family, labels = action_families(spec, q[costly].argmax(axis=1))
    tips = []
    for family in np.unique(optimal_family):
        target = (optimal_family == family).astype(int)
        if target.sum() < min_positive or target.all():
            continue
        model = BayesianRuleListClassifier(max_iter=max_iter, n_chains=3, maxcardinality=2, minsupport=0.1,
                                           random_state=seed)
        model.burnin = max_iter // 2  # set_params/constructor leave the burn-in of the default max_iter
        model.fit(features, target, feature_names=names)
        tips.append(_describe(model, features, names, target, labels[family]))
    return tips


def _describe(model, features: np.ndarray, names: list[str], target: np.ndarray, family: str) -> RuleTip:
    """Sentences, support and confidence of the list's rules that point to <family>. The first rule of a list
    that holds decides, so each sentence carries the earlier rules as "and not (...)" conditions."""
    rules, support, confidence, earlier = [], [], [], []
    remaining = np.ones(len(target), bool)
    for antecedent in model.final_itemsets:
        if antecedent == "null":
            break
        columns = [int(item.split("_", 1)[1]) for item in antecedent]  # imodels names feature i "X_i" (= 1)
        text = " and ".join(names[c] for c in columns)
        covered = remaining & np.all(features[:, columns] == 1, axis=1)
        if covered.any() and target[covered].mean() > target.mean():
            unless = "".join(f" and not ({e})" for e in earlier)  # earlier rules of the list take precedence
            rules.append(f"If {text}{unless}, then {family}.")
            support.append(float(covered.mean()))
            confidence.append(float(target[covered].mean()))
        earlier.append(text)
        remaining &= ~covered
    return RuleTip(family, rules, support, confidence)
