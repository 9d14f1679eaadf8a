"""Trainee policies learned from (observation, mask, action) decisions.

Every method answers ``probs(obs, mask) -> float[N, A]``: a distribution over the flat actions that puts no
mass on illegal ones (a model's mass on an illegal action is dropped and the rest renormalised; with none
left, uniform over the legal actions).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bpjax.agents.common import check_range
from bpjax.agents.networks import MLP, log_policy


class TraineePolicy(Protocol):
    def fit(self, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> "TraineePolicy": ...

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


def network_probs(logits: jax.Array, mask: np.ndarray) -> np.ndarray:
    """float64 probabilities of the masked categorical, renormalised so samplers that check sums accept it."""
    probs = np.asarray(jnp.exp(log_policy(logits, jnp.asarray(mask))), np.float64)
    return probs / probs.sum(axis=1, keepdims=True)


def masked_cross_entropy(logits: jax.Array, mask: jax.Array, action: jax.Array) -> jax.Array:
    """Mean negative log-likelihood of the taken actions under the masked categorical (behaviour cloning)."""
    return -jnp.take_along_axis(log_policy(logits, mask), action[:, None], axis=1).mean()


def restrict_to_legal(probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    probs = np.where(mask, probs, 0.0)
    total = probs.sum(axis=1, keepdims=True)
    uniform = mask / mask.sum(axis=1, keepdims=True)
    return np.where(total > 0, probs / np.where(total > 0, total, 1.0), uniform)


@dataclass
class ForestPolicy:
    """The study's supervised option: a scikit-learn classifier on state features -> action (i.i.d. pairs)."""

    kind: str = "forest"  # "forest" (random forest) | "boosting" (histogram gradient boosting)
    n_estimators: int = 100
    max_depth: int | None = 12
    seed: int = 0
    model: Any = field(default=None, init=False)
    n_actions: int = field(default=0, init=False)

    def __post_init__(self):
        check_range("algo.n_estimators", self.n_estimators, 1, 100_000)
        check_range("algo.max_depth", self.max_depth, 1, 1000)

    def fit(self, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> "ForestPolicy":
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

        if self.kind == "forest":
            self.model = RandomForestClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                                n_jobs=-1, random_state=self.seed)
        elif self.kind == "boosting":
            self.model = HistGradientBoostingClassifier(max_iter=self.n_estimators, max_depth=self.max_depth,
                                                        random_state=self.seed)
        else:
            raise ValueError(f"imitation.kind: expected 'forest' or 'boosting', got {self.kind!r}")
        self.n_actions = mask.shape[1]
        with warnings.catch_warnings():  # actions are classes by design, however few the decisions: no advice
            warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
            self.model.fit(obs, action)
        if hasattr(self.model, "n_jobs"):
            self.model.n_jobs = 1  # predictions come one state at a time in simulation: no worker pool
        return self

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        full = np.zeros((len(obs), self.n_actions))
        full[:, self.model.classes_] = self.model.predict_proba(obs)
        return restrict_to_legal(full, mask)


@dataclass
class BehaviourCloning:
    """A Flax MLP trained by masked cross-entropy (Adam), the whole loop one jitted lax.scan over epochs of
    minibatches. Inputs are divided by `obs_scale` (the env's, so features lie in [0, 1])."""

    obs_scale: np.ndarray
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    epochs: int = 30
    batch_size: int = 256
    seed: int = 0
    params: Any = field(default=None, init=False)
    network: Any = field(default=None, init=False)

    def __post_init__(self):
        check_range("algo.hidden", self.hidden, 1, 2**14)
        check_range("algo.learning_rate", self.learning_rate, 0, 1, low_open=True)
        check_range("algo.epochs", self.epochs, 1, 100_000)
        check_range("algo.batch_size", self.batch_size, 1, 2**20)

    def fit(self, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> "BehaviourCloning":
        self.network = MLP(self.hidden, mask.shape[1], out_scale=0.01)
        x = jnp.asarray(obs / self.obs_scale, jnp.float32)
        m, a = jnp.asarray(mask), jnp.asarray(action, jnp.int32)
        n_batches = max(1, len(x) // self.batch_size)
        optimizer = optax.adam(self.learning_rate)
        key, init_key = jax.random.split(jax.random.key(self.seed))
        params = self.network.init(init_key, x[:1])

        def loss(params, xb, mb, ab):
            return masked_cross_entropy(self.network.apply(params, xb), mb, ab)

        def epoch(carry, key):
            def step(carry, idx):
                params, opt_state = carry
                value, grads = jax.value_and_grad(loss)(params, x[idx], m[idx], a[idx])
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), value
            order = jax.random.permutation(key, len(x))[: n_batches * self.batch_size]
            carry, values = jax.lax.scan(step, carry, order.reshape(n_batches, -1))
            return carry, values.mean()

        @jax.jit
        def train(params, key):
            (params, _), losses = jax.lax.scan(epoch, (params, optimizer.init(params)),
                                               jax.random.split(key, self.epochs))
            return params, losses

        self.params, self.losses = train(params, key)
        return self

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return network_probs(self.network.apply(self.params, jnp.asarray(obs / self.obs_scale, jnp.float32)), mask)

