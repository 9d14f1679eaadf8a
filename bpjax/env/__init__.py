"""The kitchen MDP: validated configs, the JAX environment, its gymnax adapter and its pure-Python reference.

Only the configs are imported with the package; the JAX environment (and gymnax, an optional dependency) on
first use, so that code reading a kitchen's config (a command's ``--help``, the traces) does not import JAX.
"""

import importlib

from bpjax.env.config import ConfigError, KitchenSpec

__all__ = ["ConfigError", "EnvParams", "EnvState", "GymnaxKitchen", "Kitchen", "KitchenSpec", "Observation",
           "make_gymnax", "make_kitchen", "make_params"]
_LAZY = {"Kitchen": "kitchen", "make_kitchen": "kitchen", "make_params": "kitchen", "EnvParams": "types",
         "EnvState": "types", "Observation": "types", "GymnaxKitchen": "gymnax_env", "make_gymnax": "gymnax_env"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"bpjax.env.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bpjax.env' has no attribute {name!r}")
