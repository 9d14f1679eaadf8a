"""A trainee as a noisy optimiser with habits: a behaviour model that holds off the states its data covers.

    π(a | s) ∝ exp(β · A*(s, a) + θ[family(a)])   over the actions allowed at s,

A*(s, a) = Q*(s, a) − max_a' Q*(s, a') ≤ 0 the exact advantage (in ticks), β how sharply the trainee prefers
what is better, and θ a habit per action family: the (worker, task type) an assignment gives, with ending the
tick as the reference (θ = 0). "The server cooks whenever it can" is a large θ[server, cook]. The model is
a conditional logit (concave log-likelihood, fitted by Newton's method). Its advantage term is computed
exactly in every state, including the states a tip leads a simulated trainee into, so its counterfactuals do
not fall apart there as a policy fitted state by state does.

The population's parameters are fitted on everyone's decisions. Each person's are the maximum a posteriori
estimate under a normal prior centred on the population's (precision `penalty`): a person with few decisions
is the population, and a few telling ones (the server cooking where others do not) move their θ.

**Across kitchens.** The families are (worker, task type) pairs, so θ means the same in every kitchen with the
same workers and task types (other orders, another dish). What a person carries from one kitchen to the next
is their *deviation* δ from the population: in a kitchen whose population has φ₀, the person is φ₀ + δ, and δ
is fitted on all their decisions in every such kitchen, each read against its own kitchen's φ₀
(:class:`Decisions`). A person who let the server cook in three burger rounds is, in their first pasta round,
the pasta population plus that habit (and β's deviation: how much sharper or blunter than the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from bpjax.env.config import KitchenSpec


def family_names(spec: KitchenSpec) -> tuple[str, ...]:
    """The θ families' names, "worker/task type", in parameter order (what must match across kitchens)."""
    return tuple(f"{w.name}/{k}" for w in spec.workers for k in spec.task_types)


@dataclass(frozen=True)
class Decisions:
    """A person's decisions in one kitchen as the habit model reads them: each decision's features, what it was
    chosen from and what was chosen, with that kitchen's population φ (the centre its deviation is read from)."""

    features: np.ndarray    # float[N, A, D]
    legal: np.ndarray       # bool[N, A]
    chosen: np.ndarray      # int[N]
    centre: np.ndarray      # float[D]
    names: tuple[str, ...]  # the families (family_names): decisions of kitchens with other names do not mix

    def __len__(self) -> int:
        return len(self.chosen)


def fit_deviation(parts: Sequence[Decisions], penalty: float, steps: int = 50) -> np.ndarray:
    """δ maximising Σ_parts Σ log π(chosen | centre + δ) − penalty/2 ‖δ‖² (concave): Newton's method, each
    step halved until the objective improves (a family a person never or always took has no finite optimum
    without the prior, and a full Newton step from a flat start can overshoot far)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0)
    n_params = parts[0].features.shape[-1]
    rows = [np.arange(len(p)) for p in parts]

    def objective(delta: np.ndarray) -> float:
        total = -0.5 * penalty * delta @ delta
        for part, r in zip(parts, rows):
            z = np.where(part.legal, part.features @ (part.centre + delta), -np.inf)
            top = z.max(axis=1)
            total += float((z[r, part.chosen] - top - np.log(np.exp(z - top[:, None]).sum(axis=1))).sum())
        return total

    delta = np.zeros(n_params)
    value = objective(delta)
    observed = sum(p.features[r, p.chosen].sum(axis=0) for p, r in zip(parts, rows))
    ridge = max(penalty, 1e-6) * np.eye(n_params)
    for _ in range(steps):
        gradient, hessian = observed - penalty * delta, ridge.copy()
        for part in parts:
            p = _softmax(part.features @ (part.centre + delta), part.legal)     # [N, A]
            mean = np.einsum("na,nad->nd", p, part.features)                   # [N, D]
            gradient -= mean.sum(axis=0)
            hessian += np.einsum("na,nad,nae->de", p, part.features, part.features) - mean.T @ mean
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):
            trial = objective(delta + step)
            if trial >= value - 1e-9:
                break
            step = step / 2
        delta, value = delta + step, max(trial, value)
        if np.abs(step).max() < 1e-7:
            break
    return delta


def _softmax(z: np.ndarray, legal: np.ndarray) -> np.ndarray:
    z = np.where(legal, z, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def action_families(spec: KitchenSpec) -> np.ndarray:
    """int[A]: each flat action's family, worker * K + task type; "end the tick" is W * K."""
    n_types = len(spec.task_types)
    slot_type = np.maximum(np.asarray(spec.slot_types), 0)
    actions = np.arange(spec.n_actions)
    return np.where(actions == spec.end_tick_action, spec.n_workers * n_types,
                    actions // spec.n_slots * n_types + slot_type[actions % spec.n_slots])


@dataclass
class HabitModel:
    """π over flat actions from Q* rows: parameters φ = (β, θ for every family but the last)."""

    families: np.ndarray                  # int[A]
    penalty: float = 0.1                  # prior precision of a person's φ around the population's
    population: np.ndarray | None = None  # φ of everyone
    people: dict[str, np.ndarray] = field(default_factory=dict)
    names: tuple[str, ...] = ()           # family_names of the kitchen

    @classmethod
    def for_kitchen(cls, spec: KitchenSpec, penalty: float = 0.1) -> "HabitModel":
        return cls(action_families(spec), penalty, names=family_names(spec))

    @property
    def n_params(self) -> int:
        return int(self.families.max()) + 1  # β, and one θ per family except the reference

    def features(self, q: np.ndarray) -> np.ndarray:
        """float[N, A, D]: the advantage and the family one-hot (reference family dropped) of every action."""
        best = np.max(np.where(np.isfinite(q), q, -np.inf), axis=1, keepdims=True)
        advantage = np.where(np.isfinite(q), q - best, 0.0)
        onehot = np.eye(self.n_params)[self.families][:, :-1]  # [A, D-1]
        return np.concatenate([advantage[..., None], np.broadcast_to(onehot, q.shape + (self.n_params - 1,))], -1)

    def logits(self, phi: np.ndarray, q: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        z = self.features(q) @ phi
        return np.where(allowed & np.isfinite(q), z, -np.inf)

    def probs(self, phi: np.ndarray, q: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """float[N, A]; `phi` is one parameter vector or one per row [N, D]."""
        phi = np.broadcast_to(phi, (len(q), self.n_params))
        best = np.max(np.where(np.isfinite(q), q, -np.inf), axis=1, keepdims=True)
        advantage = np.where(np.isfinite(q), q - best, 0.0)
        # the features' dot product without building them: β·A* plus the θ of each action's family (reference 0)
        theta = np.concatenate([phi[:, 1:], np.zeros((len(q), 1))], axis=1)
        z = np.where(allowed & np.isfinite(q), phi[:, :1] * advantage + theta[:, self.families], -np.inf)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def decisions(self, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray,
                  centre: np.ndarray | None = None) -> Decisions:
        """Decisions of this kitchen (Q* rows, what each was chosen from, the choice), read against `centre`
        (default: the population's φ)."""
        centre = self.population if centre is None else centre
        return Decisions(self.features(q), np.asarray(allowed) & np.isfinite(q), np.asarray(chosen, np.int64),
                         np.asarray(centre, float), self.names)

    def fit(self, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray, centre: np.ndarray | None = None,
            penalty: float = 0.0, steps: int = 50) -> np.ndarray:
        """φ maximising Σ log π(chosen | s, allowed) − penalty/2 ‖φ − centre‖² (Newton's method)."""
        centre = np.zeros(self.n_params) if centre is None else np.asarray(centre, float)
        delta = fit_deviation([self.decisions(q, allowed, chosen, centre)], penalty, steps)
        return centre + delta if len(delta) else centre

    def fit_population(self, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray,
                       players: np.ndarray | None = None) -> "HabitModel":
        """The population's φ from everyone's decisions. With `players` (who made each decision): the median,
        parameter by parameter, of each player's own φ (fitted around the pooled one with `penalty`), so a
        habit of a minority (a quarter who let the chef plate) is not presumed of everyone."""
        self.population = self.fit(q, allowed, chosen, penalty=1e-2)
        if players is not None and len(set(players)) > 2:
            players = np.asarray(players)
            own = [self.fit(q[players == p], allowed[players == p], chosen[players == p], self.population,
                            self.penalty) for p in dict.fromkeys(players)]
            self.population = np.median(own, axis=0)
        return self

    def fit_person(self, person: str, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray,
                   earlier: Sequence[Decisions] = ()) -> np.ndarray:
        """A person's φ here from all their decisions so far in this kitchen (pass them all: the fit starts
        from the prior) and their `earlier` decisions in other kitchens with the same families."""
        parts = [d for d in earlier if d.names == self.names] + [self.decisions(q, allowed, chosen)]
        delta = fit_deviation(parts, self.penalty)
        self.people[person] = self.population + delta if len(delta) else self.population
        return self.people[person]

    def carry(self, person: str, earlier: Sequence[Decisions]) -> np.ndarray:
        """A person who has not played this kitchen yet: the population here plus the deviation their
        decisions in other kitchens show (just the population when there are none with the same families)."""
        delta = fit_deviation([d for d in earlier if d.names == self.names], self.penalty)
        self.people[person] = self.population + delta if len(delta) else self.population
        return self.people[person]

    def of(self, person: str) -> np.ndarray:
        return self.people.get(person, self.population)
