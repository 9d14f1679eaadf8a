"""GAIL: a Flax discriminator D(s, a) tells the trainee's decisions from the generator's; the generator is the
PPO of ``bpjax.agents.ppo`` trained on a reward from D. One iteration = PPO collects a rollout of `n_envs`
envs -> `disc_steps` discriminator updates -> PPO learns on the discriminator's reward; the whole loop is one
jitted lax.scan.

The default is GAIL as it is made to work in practice, each piece a published fix:

- **warm start from behaviour cloning**: the actor starts as the BC fit (``bc_epochs`` epochs), so the
  adversarial phase corrects BC's compounding errors rather than learning from scratch;
- **a BC regulariser** on the generator (``bc_coef`` × masked cross-entropy on a trainee minibatch, added to
  every PPO minibatch loss, as in GAIL + BC variants) keeps the generator on the trainee's actions where the
  discriminator's reward is uninformative;
- **absorbing state** (Kostrikov et al., DAC): every finished round moves to an absorbing state that the
  discriminator sees too (as often as rounds end, on each side), and the generator's return at the end of a
  round is bootstrapped with the absorbing state's reward, γ r_abs / (1 − γ). Without it a reward of fixed
  sign biases round length: −log(1 − D) > 0 pays for every decision (rounds run long), −log D < 0 for
  ending early;
- **reward log D − log(1 − D)** (the logit; either sign), and a **gradient penalty** on the discriminator
  (WGAN-GP style, on interpolates of trainee and generator features) so it stays smooth instead of
  memorising the few thousand trainee decisions.

``GAILPolicy(env, env_params, **ORIGINAL_RECIPE)`` is the original recipe of Ho & Ermon (−log(1 − D), a
random initial actor, none of the fixes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bpjax.agents.common import check_range
from bpjax.agents.networks import MLP
from bpjax.agents.ppo import PPOConfig, make_ppo_parts
from bpjax.env.kitchen import Kitchen
from bpjax.env.types import EnvParams
from bpjax.imitation.policies import BehaviourCloning, masked_cross_entropy, network_probs

REWARDS = ("logit", "gail")
ORIGINAL_RECIPE = {"reward": "gail", "absorbing": False, "bc_epochs": 0, "bc_coef": 0.0, "grad_penalty": 0.0,
                   "ppo": PPOConfig(n_envs=64, n_steps=32, entropy_coef=0.01)}


def discriminator_features(obs: jax.Array, action: jax.Array, n_actions: int) -> jax.Array:
    """[scaled observation, one-hot action, absorbing flag = 0]."""
    return jnp.concatenate([obs, jax.nn.one_hot(action, n_actions), jnp.zeros(obs.shape[:-1] + (1,))], axis=-1)


def absorbing_features(size: int) -> jax.Array:
    """The absorbing state's features: zeros but the absorbing flag."""
    return jnp.zeros((1, size)).at[0, -1].set(1.0)


def discriminator_loss(params, network: MLP, expert: jax.Array, generated: jax.Array,
                       expert_absorbing: jax.Array | float = 0.0,
                       generated_absorbing: jax.Array | float = 0.0) -> jax.Array:
    """Binary cross-entropy: the trainee's (state, action) pairs labelled 1, the generator's 0. The absorbing
    state counts on each side with its share of that side's occupancy (`*_absorbing`, 0 = none)."""
    absorbing = network.apply(params, absorbing_features(expert.shape[-1]))[0, 0]
    expert_loss = optax.sigmoid_binary_cross_entropy(network.apply(params, expert)[..., 0], 1.0).mean()
    generated_loss = optax.sigmoid_binary_cross_entropy(network.apply(params, generated)[..., 0], 0.0).mean()
    return ((1 - expert_absorbing) * expert_loss
            + expert_absorbing * optax.sigmoid_binary_cross_entropy(absorbing, 1.0)
            + (1 - generated_absorbing) * generated_loss
            + generated_absorbing * optax.sigmoid_binary_cross_entropy(absorbing, 0.0))


def gradient_penalty(params, network: MLP, expert: jax.Array, generated: jax.Array, key: jax.Array) -> jax.Array:
    """Mean (‖∇ₓ logit D(x)‖ − 1)² on random interpolates of trainee and generator features."""
    mix = jax.random.uniform(key, (len(expert), 1))
    points = mix * expert + (1 - mix) * generated
    grads = jax.vmap(jax.grad(lambda x: network.apply(params, x)[0]))(points)
    return ((jnp.linalg.norm(grads, axis=-1) - 1.0) ** 2).mean()


def reward_from_logit(logit: jax.Array, kind: str) -> jax.Array:
    """"gail": −log(1 − D) = softplus(logit) (always ≥ 0); "logit": log D − log(1 − D) (either sign)."""
    return jax.nn.softplus(logit) if kind == "gail" else logit


@dataclass
class GAILPolicy:
    env: Kitchen
    env_params: EnvParams
    n_iterations: int = 100
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(
        n_envs=64, n_steps=32, learning_rate=1e-4, gamma=0.99, entropy_coef=0.0))
    disc_hidden: tuple[int, ...] = (64, 64)
    disc_learning_rate: float = 1e-3
    disc_steps: int = 4
    disc_batch: int = 256
    reward: str = "logit"       # "logit": log D − log(1 − D); "gail": −log(1 − D), the original
    absorbing: bool = True      # DAC's absorbing state (needs ppo.gamma < 1)
    bc_epochs: int = 30         # warm start of the actor by behaviour cloning; 0 = random initial actor
    bc_coef: float = 3.0        # weight of the behaviour-cloning loss in the generator's loss; 0 = none
    grad_penalty: float = 10.0  # weight of the discriminator's gradient penalty; 0 = none
    seed: int = 0
    ppo_params: Any = field(default=None, init=False)
    history: dict = field(default_factory=dict, init=False)

    def __post_init__(self):
        if not isinstance(self.ppo, PPOConfig):  # settings from a config file
            self.ppo = PPOConfig(**{k: tuple(v) if k == "hidden" else v for k, v in dict(self.ppo).items()})
        for name, low, high in (("n_iterations", 1, 10**6), ("disc_hidden", 1, 2**14), ("disc_steps", 1, 10**4),
                                ("disc_batch", 1, 2**20), ("bc_epochs", 0, 10**5)):
            check_range(f"algo.{name}", getattr(self, name), low, high)
        check_range("algo.disc_learning_rate", self.disc_learning_rate, 0, 1, low_open=True)
        for name in ("bc_coef", "grad_penalty"):
            check_range(f"algo.{name}", getattr(self, name), 0, 1e6)
        if self.reward not in REWARDS:
            raise ValueError(f"reward: expected one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.absorbing and not self.ppo.gamma < 1:
            raise ValueError(f"absorbing: needs ppo.gamma < 1 (the absorbing state's value is r / (1 - gamma)), "
                             f"got gamma={self.ppo.gamma}")

    def fit(self, obs: np.ndarray, mask: np.ndarray, action: np.ndarray) -> "GAILPolicy":
        env, env_params, n_actions, gamma = self.env, self.env_params, self.env.n_actions, self.ppo.gamma
        scale = np.asarray(env.obs_scale(env_params))
        x, m, a = jnp.asarray(obs / scale, jnp.float32), jnp.asarray(mask), jnp.asarray(action, jnp.int32)
        expert = discriminator_features(x, a, n_actions)
        # every trainee round starts in the (deterministic) initial state and, finished, moves to the absorbing one
        initial = np.asarray(env.raw_features(env.reset_env(None, env_params), env_params))
        n_rounds = int(np.all(obs == initial, axis=1).sum())
        expert_absorbing = n_rounds / (len(obs) + n_rounds) if self.absorbing else 0.0

        def bc_loss(params, key):
            rows = jax.random.randint(key, (self.disc_batch,), 0, len(x))
            logits, _ = parts.network.apply(params, x[rows])
            return self.bc_coef * masked_cross_entropy(logits, m[rows], a[rows])

        parts = make_ppo_parts(env, env_params, self.ppo, bc_loss if self.bc_coef > 0 else None)
        self._network = parts.network
        disc = MLP(self.disc_hidden, 1, out_scale=1.0)
        disc_optimizer = optax.adam(self.disc_learning_rate)
        key, ppo_key, disc_key = jax.random.split(jax.random.key(self.seed), 3)
        disc_params = disc.init(disc_key, expert[:1])
        ppo_state = parts.init(ppo_key)
        if self.bc_epochs > 0:
            bc = BehaviourCloning(scale, hidden=self.ppo.hidden, epochs=self.bc_epochs, seed=self.seed)
            actor = bc.fit(obs, mask, action).params["params"]
            ppo_state = ppo_state.replace(params={"params": {**ppo_state.params["params"], "policy": actor}})

        def disc_objective(params, e, g, generated_absorbing, key):
            loss = discriminator_loss(params, disc, e, g, expert_absorbing, generated_absorbing)
            if self.grad_penalty > 0:
                loss = loss + self.grad_penalty * gradient_penalty(params, disc, e, g, key)
            return loss

        def iteration(carry, _):
            ppo_state, disc_params, disc_opt, key = carry
            ppo_state, traj = parts.collect(ppo_state)
            generated = discriminator_features(traj.obs.features, traj.action, n_actions)  # [T, N, F]
            flat = generated.reshape(-1, generated.shape[-1])
            ended = traj.terminated.sum()
            generated_absorbing = ended / (len(flat) + ended) if self.absorbing else 0.0

            def disc_step(carry, key):
                params, opt_state = carry
                expert_key, generated_key, penalty_key = jax.random.split(key, 3)
                e = expert[jax.random.randint(expert_key, (self.disc_batch,), 0, len(expert))]
                g = flat[jax.random.randint(generated_key, (self.disc_batch,), 0, len(flat))]
                loss, grads = jax.value_and_grad(disc_objective)(params, e, g, generated_absorbing, penalty_key)
                updates, opt_state = disc_optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            key, step_key = jax.random.split(key)
            (disc_params, disc_opt), disc_losses = jax.lax.scan(
                disc_step, (disc_params, disc_opt), jax.random.split(step_key, self.disc_steps))
            reward = reward_from_logit(disc.apply(disc_params, generated)[..., 0], self.reward)
            if self.absorbing:  # a finished round's return goes on in the absorbing state: γ r_abs / (1 − γ)
                absorbing_reward = reward_from_logit(disc.apply(disc_params, absorbing_features(flat.shape[-1]))[0, 0],
                                                     self.reward)
                reward = reward + traj.terminated * gamma * absorbing_reward / (1 - gamma)
            ppo_state, metrics = parts.learn(ppo_state, traj, reward)
            return (ppo_state, disc_params, disc_opt, key), {**metrics, "disc_loss": disc_losses.mean(),
                                                             "reward": reward.mean()}

        @jax.jit
        def train(ppo_state, disc_params, key):
            carry = (ppo_state, disc_params, disc_optimizer.init(disc_params), key)
            return jax.lax.scan(iteration, carry, None, self.n_iterations)

        (ppo_state, _, _, _), history = train(ppo_state, disc_params, key)
        self.ppo_params = ppo_state.params
        self.history = jax.tree.map(np.asarray, history)
        return self

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scale = self.env.obs_scale(self.env_params)
        logits, _ = self._network.apply(self.ppo_params, jnp.asarray(obs) / scale)
        return network_probs(logits, mask)
