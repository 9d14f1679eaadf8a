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
