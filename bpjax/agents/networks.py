"""Flax (Linen) policy and value networks with action masking.

Illegal actions get a large negative logit (not -inf, so entropies and their gradients stay finite): a
masked categorical never samples them.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

MASKED_LOGIT = -1e9


def masked_logits(logits: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask, logits, MASKED_LOGIT)


def log_policy(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """Log-probabilities of the masked categorical."""
    return jax.nn.log_softmax(masked_logits(logits, mask), axis=-1)


def entropy(logits: jax.Array, mask: jax.Array) -> jax.Array:
    log_p = log_policy(logits, mask)
    return -jnp.sum(jnp.where(mask, jnp.exp(log_p) * log_p, 0.0), axis=-1)


def sample_action(key: jax.Array, logits: jax.Array, mask: jax.Array) -> jax.Array:
    return jax.random.categorical(key, masked_logits(logits, mask), axis=-1).astype(jnp.int32)


def sample_action_by_cdf(key: jax.Array, logits: jax.Array, mask: jax.Array) -> jax.Array:
    """A draw from the masked categorical of every row of `logits` with one uniform per row (inverting its
    CDF): the same distribution as `sample_action`, whose Gumbel-max trick needs a random number and two
    logarithms per action, most of a small policy's rollout step."""
    return action_at_quantile(jax.random.uniform(key, logits.shape[:-1]), logits, mask)


def action_at_quantile(u: jax.Array, logits: jax.Array, mask: jax.Array) -> jax.Array:
    """The action of the masked categorical at quantile `u` in [0, 1): the first whose cumulative
    probability exceeds u (a masked action adds nothing to it, so it is never the one)."""
    cdf = jnp.cumsum(jax.nn.softmax(masked_logits(logits, mask), axis=-1), axis=-1)
    action = jnp.sum(cdf <= u[..., None] * cdf[..., -1:], axis=-1)
    # u * total rounded up to the total (u within an ulp of 1) falls past the end: the last legal action
    last_legal = mask.shape[-1] - 1 - jnp.argmax(mask[..., ::-1], axis=-1)
    return jnp.where(action < mask.shape[-1], action, last_legal).astype(jnp.int32)


def greedy_action(logits: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.argmax(masked_logits(logits, mask), axis=-1).astype(jnp.int32)


class MLP(nn.Module):
    hidden: Sequence[int]
    out: int
    out_scale: float = 0.01  # small initial logits: a near-uniform (over legal actions) first policy

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.tanh(nn.Dense(width, kernel_init=nn.initializers.orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)


class ActorCritic(nn.Module):
    """Separate policy and value MLPs on the scaled observation. `value=False` builds the policy alone."""

    n_actions: int
    hidden: Sequence[int] = (64, 64)
    value: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = MLP(self.hidden, self.n_actions, name="policy")(obs)
        if not self.value:
            return logits, jnp.zeros(obs.shape[:-1])
        return logits, MLP(self.hidden, 1, out_scale=1.0, name="critic")(obs)[..., 0]
