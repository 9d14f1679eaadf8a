"""A trainee policy learned from few decisions, shrunk toward one learned from many.

π(a | s) = w(s) π_local(a | s) + (1 − w(s)) π_prior(a | s), with w(s) = n(s) / (n(s) + strength), n(s) the
local decisions made at exactly this observation. Where the local data (the bottom quartile, one person) has
seen a state often, its own policy speaks; where it never has, the prior (everyone's) does. A simulated trainee
told a tip soon leaves the states its data covers, and there a policy fitted to few decisions extrapolates
badly: shrinking keeps the simulation's gains close to what following the tip really does
(``benchmarks/tip_recovery.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def observation_keys(obs: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.ascontiguousarray(obs, np.float32)]


@dataclass
class ShrunkPolicy:
    local: object                 # a TraineePolicy, fitted by :meth:`fit`
    prior: object                 # a TraineePolicy, already fitted on more data
    strength: float = 5.0         # decisions at a state before the local policy carries half the weight
    counts: dict[bytes, int] = field(default_factory=dict, init=False)

    def fit(self, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> "ShrunkPolicy":
        self.local.fit(obs, mask, action)
        self.counts = {}
        for key in observation_keys(obs):
            self.counts[key] = self.counts.get(key, 0) + 1
        return self

    def weights(self, obs: np.ndarray) -> np.ndarray:
        n = np.asarray([self.counts.get(key, 0) for key in observation_keys(obs)], float)
        return n / (n + self.strength) if self.strength > 0 else np.ones(len(n))

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.weights(obs)
        local = self.local.probs(obs, mask)
        if np.all(w == 1):
            return local
        return w[:, None] * local + (1 - w[:, None]) * self.prior.probs(obs, mask)


@dataclass
class PersonalPolicies:
    """Many people's policies from their own few decisions, each shrunk toward one shared prior (the
    population's policy): at a state s, over the actions allowed there,

        π_p(a | s) = (c_p(s, a) + strength · π_prior(a | s)) / (n_p(s) + strength),

    c_p the person's recorded choices at exactly s and n_p(s) their number — a Dirichlet posterior whose prior
    is the population's policy worth `strength` decisions. A person with no decisions at s is the population."""

    prior: object
    n_actions: int
    strength: float = 5.0
    counts: dict[tuple[str, bytes], np.ndarray] = field(default_factory=dict, init=False)

    def add(self, person: str, obs: np.ndarray, action: np.ndarray) -> "PersonalPolicies":
        for key, a in zip(observation_keys(obs), np.asarray(action).tolist()):
            row = self.counts.setdefault((person, key), np.zeros(self.n_actions))
            row[a] += 1
        return self

    def probs(self, persons, obs: np.ndarray, mask: np.ndarray, prior_probs: np.ndarray | None = None) -> np.ndarray:
        """float[N, A] for row i of person `persons[i]`; `prior_probs` may be given when already computed."""
        prior = self.prior.probs(obs, mask) if prior_probs is None else prior_probs
        local = np.zeros_like(prior)
        for i, (person, key) in enumerate(zip(persons, observation_keys(obs))):
            row = self.counts.get((person, key))
            if row is not None:
                local[i] = np.where(mask[i], row, 0.0)
        n = local.sum(axis=1, keepdims=True)
        return (local + self.strength * prior) / (n + self.strength)

    def of(self, person: str) -> "PersonPolicy":
        return PersonPolicy(self, person)


@dataclass
class PersonPolicy:
    """One person's policy of :class:`PersonalPolicies`, as a TraineePolicy (``probs(obs, mask)``)."""

    policies: PersonalPolicies
    person: str

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.policies.probs([self.person] * len(obs), obs, mask)
