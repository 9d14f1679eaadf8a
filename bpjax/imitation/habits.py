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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpjax.env.config import KitchenSpec


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
    penalty: float = 1.0                  # prior precision of a person's φ around the population's
    population: np.ndarray | None = None  # φ of everyone
    people: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def for_kitchen(cls, spec: KitchenSpec, penalty: float = 1.0) -> "HabitModel":
        return cls(action_families(spec), penalty)

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
        z = np.einsum("nad,nd->na", self.features(q), np.broadcast_to(phi, (len(q), self.n_params)))
        z = np.where(allowed & np.isfinite(q), z, -np.inf)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def fit(self, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray, centre: np.ndarray | None = None,
            penalty: float = 0.0, steps: int = 50) -> np.ndarray:
        """φ maximising Σ log π(chosen | s, allowed) − penalty/2 ‖φ − centre‖² (Newton's method)."""
        centre = np.zeros(self.n_params) if centre is None else centre
        phi = centre.copy()
        if not len(chosen):
            return phi
        x = self.features(q)                                         # [N, A, D]
        legal = allowed & np.isfinite(q)
        observed = x[np.arange(len(chosen)), chosen].sum(axis=0)     # [D]
        ridge = max(penalty, 1e-6) * np.eye(self.n_params)
        for _ in range(steps):
            p = self.probs(phi, q, legal)                            # [N, A]
            mean = np.einsum("na,nad->nd", p, x)                     # [N, D]
            gradient = observed - mean.sum(axis=0) - penalty * (phi - centre)
            hessian = (np.einsum("na,nad,nae->de", p, x, x) - np.einsum("nd,ne->de", mean, mean)) + ridge
            step = np.linalg.solve(hessian, gradient)
            phi = phi + step
            if np.abs(step).max() < 1e-7:
                break
        return phi

    def fit_population(self, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray) -> "HabitModel":
        self.population = self.fit(q, allowed, chosen, penalty=1e-2)
        return self

    def fit_person(self, person: str, q: np.ndarray, allowed: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """A person's φ from all their decisions so far (pass them all: the fit starts from the prior)."""
        self.people[person] = self.fit(q, allowed, chosen, self.population, self.penalty)
        return self.people[person]

    def of(self, person: str) -> np.ndarray:
        return self.people.get(person, self.population)
