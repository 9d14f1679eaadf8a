"""GAIL: a Flax discriminator D(s, a) told apart the trainee's decisions from the generator's; the generator
is the PPO of ``bpjax.agents.ppo`` trained on the reward -log(1 - D(s, a)). One iteration = PPO collects a
rollout of `n_envs` envs -> `disc_steps` discriminator updates -> PPO learns on the discriminator's reward;
the whole loop is one jitted lax.scan.

Note the reward is non-negative, so it also pays the generator for every decision it makes; rounds cannot
run past the horizon, and the trainee data's own round length keeps the discriminator honest about that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bpjax.agents.networks import MLP
from bpjax.agents.ppo import PPOConfig, make_ppo_parts
from bpjax.env.kitchen import Kitchen
from bpjax.env.types import EnvParams
from bpjax.imitation.policies import network_probs


def discriminator_features(obs: jax.Array, action: jax.Array, n_actions: int) -> jax.Array:
    return jnp.concatenate([obs, jax.nn.one_hot(action, n_actions)], axis=-1)


def discriminator_loss(params, network: MLP, expert: jax.Array, generated: jax.Array) -> jax.Array:
    """Binary cross-entropy: the trainee's (state, action) pairs labelled 1, the generator's 0."""
    return (optax.sigmoid_binary_cross_entropy(network.apply(params, expert)[..., 0], 1.0).mean()
            + optax.sigmoid_binary_cross_entropy(network.apply(params, generated)[..., 0], 0.0).mean())


@dataclass
class GAILPolicy:
    env: Kitchen
    env_params: EnvParams
    n_iterations: int = 100
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(n_envs=64, n_steps=32, entropy_coef=0.01))
    disc_hidden: tuple[int, ...] = (64, 64)
    disc_learning_rate: float = 1e-3
    disc_steps: int = 4
    disc_batch: int = 256
    reward: str = "gail"  # "gail": -log(1 - D); "logit": log D - log(1 - D) (no bonus for merely acting)
    seed: int = 0
    ppo_params: Any = field(default=None, init=False)
    history: dict = field(default_factory=dict, init=False)

    def fit(self, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> "GAILPolicy":
        env, env_params, n_actions = self.env, self.env_params, self.env.n_actions
        scale = env.obs_scale(env_params)
        expert = discriminator_features(jnp.asarray(obs) / scale, jnp.asarray(action, jnp.int32), n_actions)
        parts = make_ppo_parts(env, env_params, self.ppo)
        self._network = parts.network
        disc = MLP(self.disc_hidden, 1, out_scale=1.0)
        disc_optimizer = optax.adam(self.disc_learning_rate)
        key, ppo_key, disc_key = jax.random.split(jax.random.key(self.seed), 3)
        disc_params = disc.init(disc_key, expert[:1])

        def iteration(carry, _):
            ppo_state, disc_params, disc_opt, key = carry
            ppo_state, traj = parts.collect(ppo_state)
            generated = discriminator_features(traj["obs"], traj["action"], n_actions)  # [T, N, F]
            flat = generated.reshape(-1, generated.shape[-1])

            def disc_step(carry, key):
                params, opt_state = carry
                expert_key, generated_key = jax.random.split(key)
                e = expert[jax.random.randint(expert_key, (self.disc_batch,), 0, len(expert))]
                g = flat[jax.random.randint(generated_key, (self.disc_batch,), 0, len(flat))]
                loss, grads = jax.value_and_grad(discriminator_loss)(params, disc, e, g)
                updates, opt_state = disc_optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            key, step_key = jax.random.split(key)
            (disc_params, disc_opt), disc_losses = jax.lax.scan(
                disc_step, (disc_params, disc_opt), jax.random.split(step_key, self.disc_steps))
            logit = disc.apply(disc_params, generated)[..., 0]
            reward = jax.nn.softplus(logit) if self.reward == "gail" else logit  # -log(1 - D) | log D/(1-D)
            ppo_state, metrics = parts.learn(ppo_state, traj, reward)
            return (ppo_state, disc_params, disc_opt, key), {**metrics, "disc_loss": disc_losses.mean()}

        @jax.jit
        def train(ppo_state, disc_params, key):
            carry = (ppo_state, disc_params, disc_optimizer.init(disc_params), key)
            return jax.lax.scan(iteration, carry, None, self.n_iterations)

        (ppo_state, _, _, _), history = train(parts.init(ppo_key), disc_params, key)
        self.ppo_params = ppo_state.params
        self.history = jax.tree.map(np.asarray, history)
        return self

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scale = self.env.obs_scale(self.env_params)
        logits, _ = self._network.apply(self.ppo_params, jnp.asarray(obs) / scale)
        return network_probs(logits, mask)
