"""A policy from few decisions shrunk toward one from many: the weights follow the local counts per state."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpjax.imitation.shrinkage import ShrunkPolicy


class Fixed:
    """A fitted-policy stand-in that always answers the same distribution (restricted to the mask)."""

    def __init__(self, probs):
        self.p = np.asarray(probs, float)

    def fit(self, obs, mask, action):
        return self

    def probs(self, obs, mask):
        p = np.where(mask, self.p, 0.0)
        return p / p.sum(axis=1, keepdims=True)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 6), st.floats(0.5, 20.0), st.integers(0, 3))
def test_weights_are_local_counts_over_counts_plus_strength(seen, strength, other):
    obs = np.zeros((seen + other, 2), np.float32)
    obs[seen:, 0] = 1.0  # `other` decisions at a second state
    mask = np.ones((len(obs), 3), bool)
    policy = ShrunkPolicy(Fixed([1, 0, 0]), Fixed([0, 0.5, 0.5]), strength).fit(obs, mask, np.zeros(len(obs), int))
    query = np.array([[0.0, 0.0], [2.0, 0.0]], np.float32)  # the first state, and one never seen
    probs = policy.probs(query, np.ones((2, 3), bool))
    w = seen / (seen + strength)
    np.testing.assert_allclose(probs[0], [w, (1 - w) / 2, (1 - w) / 2])
    np.testing.assert_allclose(probs[1], [0, 0.5, 0.5])  # unseen: the prior alone


def test_probabilities_stay_on_legal_actions():
    obs = np.zeros((3, 2), np.float32)
    policy = ShrunkPolicy(Fixed([0.7, 0.2, 0.1]), Fixed([0.1, 0.1, 0.8]), 2.0).fit(obs, np.ones((3, 3), bool),
                                                                                 np.zeros(3, int))
    mask = np.array([[True, False, True]])
    probs = policy.probs(obs[:1], mask)
    assert probs[0, 1] == 0 and np.isclose(probs.sum(), 1.0)
