"""The kitchen MDP: validated configs, the JAX environment, its gymnax adapter and its pure-Python reference."""

from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.kitchen import Kitchen, make_kitchen, make_params
from bpjax.env.types import EnvParams, EnvState, Observation

__all__ = ["ConfigError", "EnvParams", "EnvState", "GymnaxKitchen", "Kitchen", "KitchenSpec", "Observation",
           "make_gymnax", "make_kitchen", "make_params"]


def __getattr__(name: str):
    """The gymnax adapter is imported on first use: gymnax is an optional dependency."""
    if name in ("GymnaxKitchen", "make_gymnax"):
        from bpjax.env import gymnax_env

        return getattr(gymnax_env, name)
    raise AttributeError(f"module 'bpjax.env' has no attribute {name!r}")
