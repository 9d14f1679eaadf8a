"""How well a learned trainee policy imitates: held-out action accuracy, mean ticks of its rounds, and the
total-variation distance between its state-action occupancy and the trainee's."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bpjax.env.reference import ReferenceKitchen
from bpjax.imitation.policies import TraineePolicy


def held_out_accuracy(policy: TraineePolicy, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> float:
    """Share of held-out decisions where the policy's most likely action is the one taken."""
    return float((policy.probs(obs, mask).argmax(axis=1) == action).mean())


def play_rounds(policy: TraineePolicy, ref: ReferenceKitchen, n_rounds: int, seed: int):
    """`n_rounds` of the policy on the reference, stepped in lockstep so each step is one batched
    prediction. Returns (ticks per round, list of (observation bytes, action) of every decision)."""
    rng = np.random.default_rng(seed)
    states = [ref.reset() for _ in range(n_rounds)]
    live = list(range(n_rounds))
    pairs = []
    while live:
        obs = np.asarray([ref.observation(states[i]) for i in live], np.float32)
        mask = np.asarray([ref.action_mask(states[i]) for i in live])
        probs = policy.probs(obs, mask)
        actions = [int(rng.choice(len(p), p=p)) for p in probs]
        pairs += state_action_pairs(obs, actions)
        still = []
        for i, action in zip(live, actions):
            states[i], _, terminated, truncated, _ = ref.step(states[i], action)
            if not (terminated or truncated):
                still.append(i)
        live = still
    return np.asarray([s.tick for s in states]), pairs


def state_action_pairs(obs: np.ndarray, action: np.ndarray) -> list[tuple[bytes, int]]:
    """Decisions as hashable (float32 observation bytes, action) pairs, the unit of the occupancy measure."""
    return [(o.tobytes(), int(a)) for o, a in zip(np.asarray(obs, np.float32), action)]


def occupancy_distance(pairs_a, pairs_b) -> float:
    """Total variation between two empirical state-action occupancy measures."""
    a, b = Counter(pairs_a), Counter(pairs_b)
    n_a, n_b = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a[k] / n_a - b[k] / n_b) for k in set(a) | set(b))
