"""The kitchen MDP: validated configs, the JAX environment and its pure-Python reference."""

from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.kitchen import Kitchen, make_kitchen, make_params
from bpjax.env.types import EnvParams, EnvState

__all__ = ["ConfigError", "EnvParams", "EnvState", "Kitchen", "KitchenSpec", "make_kitchen", "make_params"]
