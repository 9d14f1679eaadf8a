"""The kitchen as a plain gymnasium environment on bpjax's pure-Python reference simulator, with
``action_masks()`` for sb3-contrib's MaskablePPO: what a user of Stable-Baselines3 would write.

Benchmark code (the package never imports it). Observations are the reference's features divided by the
JAX env's ``obs_scale``, so an agent here sees exactly the scaled features a bpjax agent sees; rewards,
termination and truncation are the reference's (the auto-advance included). There is no auto-reset:
gymnasium's vector env and SB3 reset a finished round themselves.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from bpjax.env.reference import ReferenceKitchen, RefState


class ReferenceKitchenEnv(gym.Env):
    """One kitchen (a plain config dict, as `KitchenSpec.to_dict()` gives) and its observation divisor."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, kitchen: dict[str, Any], obs_scale: np.ndarray) -> None:
        self.kitchen = ReferenceKitchen(kitchen)
        self.obs_scale = np.asarray(obs_scale, np.float32)
        if self.obs_scale.shape != (self.kitchen.obs_size,):
            raise ValueError(f"obs_scale: expected shape ({self.kitchen.obs_size},), got {self.obs_scale.shape}")
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.kitchen.obs_size,), np.float32)
        self.action_space = gym.spaces.Discrete(self.kitchen.n_actions)
        self.state: RefState = self.kitchen.reset()

    def _observation(self) -> np.ndarray:
        return np.asarray(self.kitchen.observation(self.state), np.float32) / self.obs_scale

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # the kitchen itself is deterministic
        self.state = self.kitchen.reset()
        return self._observation(), {}

    def step(self, action):
        self.state, reward, terminated, truncated, info = self.kitchen.step(self.state, int(action))
        return self._observation(), float(reward), terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """bool[n_actions]: exactly the legal actions of the current state (sb3-contrib's interface)."""
        return np.asarray(self.kitchen.action_mask(self.state), bool)
