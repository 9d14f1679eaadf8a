"""The kitchen as a gymnax environment, so gymnax's wrappers and PureJaxRL-style trainers run it unchanged.

    from bpjax.env import make_gymnax
    env, params = make_gymnax()                      # the paper's kitchen; or a KitchenSpec, or overrides
    obs, state = env.reset(key, params)              # obs: float32[obs_size], the scaled features
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

gymnax's own ``step`` auto-resets and puts ``final_observation`` (the features before the reset),
``terminated`` and ``truncated`` in ``info``; this env adds ``action_mask`` (of the returned state, so a
masking agent can use it), ``illegal_action`` and ``ticks_elapsed``.

An agent that ignores the mask must not be able to stall time for free, so here an illegal action on a
running round is played as "end tick": time passes (and the usual auto-advance follows), the reward is minus
the ticks elapsed (at least -1), and ``info["illegal_action"]`` is True. The native env keeps its rule (a
no-op with reward 0). gymnax is an optional dependency: ``pip install 'bpjax[gymnax]'``.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp

try:
    from gymnax.environments import environment, spaces
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("bpjax.env.make_gymnax needs gymnax: pip install 'bpjax[gymnax]'") from error

from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import Kitchen, make_kitchen
from bpjax.env.types import EnvParams, EnvState


class GymnaxKitchen(environment.Environment[EnvState, EnvParams]):
    """gymnax's interface over a :class:`~bpjax.env.kitchen.Kitchen` (which it plays with
    ``illegal_ends_tick``); observations are the flat scaled features."""

    def __init__(self, kitchen: Kitchen, params: EnvParams, name: str = "BurgerQueen"):
        super().__init__()
        self.kitchen = dataclasses.replace(kitchen, illegal_ends_tick=True)
        self._default_params = params
        self._name = name

    @property
    def default_params(self) -> EnvParams:
        return self._default_params

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self.kitchen.n_actions

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.kitchen.n_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.kitchen.obs_size,), jnp.float32)

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key: jax.Array | None = None) -> jax.Array:
        params = self.default_params if params is None else params
        return self.kitchen.get_obs(state, params).features

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return self.kitchen.is_terminal(state, params)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return self.kitchen.is_truncated(state, params)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        state = self.kitchen.reset_env(key, params)
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: EnvState, action, params: EnvParams):
        """One decision without auto-reset: (obs, state, reward, terminated, info); gymnax's `step` adds
        truncation (from :meth:`is_truncated`) and the reset."""
        state, reward, _, _, info = self.kitchen.step_env(key, state, action, params)
        return self.get_obs(state, params), state, reward, self.is_terminated(state, params), info

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: EnvState, action, params: EnvParams | None = None):
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = super().step(key, state, action, params)
        info = {**info, "action_mask": self.kitchen.action_mask(state, params)}  # of the state after any reset
        return obs, state, reward, terminated, truncated, info


def make_gymnax(overrides: KitchenSpec | Sequence[str] | None = None) -> tuple[GymnaxKitchen, EnvParams]:
    """(env, default params) of a kitchen: a validated :class:`KitchenSpec`, or Hydra-style overrides of the
    shipped config (e.g. ``["kitchen/scenario=understaffed"]``); None is the paper's kitchen."""
    if isinstance(overrides, KitchenSpec):
        spec = overrides
    else:
        from bpjax.config import compose_config  # the config layer sits above the env: import on use

        spec = KitchenSpec.from_dict(compose_config(list(overrides or ())).kitchen)
    kitchen, params = make_kitchen(spec)
    return GymnaxKitchen(kitchen, params, name=_name_of(spec)), params


def _name_of(spec: KitchenSpec) -> str:
    return f"BurgerQueen-{spec.scenario}" if spec.scenario else "BurgerQueen"
