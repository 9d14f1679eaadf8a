"""Populations of kitchens of one shape: their params stacked along a leading kitchen axis.

The env's static structure is its shape (workers, orders, slots per order, task types; :class:`Kitchen`), so
every kitchen of one shape runs the same compiled program, and a population ``vmap``s over the stacked
params::

    env, params = make_population(specs)          # params: EnvParams with a leading axis of len(specs)
    jax.vmap(env.reset_env, in_axes=(None, 0))(None, params)
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.kitchen import Kitchen, kitchen_of, make_params
from bpjax.env.types import EnvParams


def shape_of(spec: KitchenSpec) -> str:
    """The shape a kitchen's program depends on, in words (for error messages)."""
    return (f"{spec.n_workers} workers, {len(spec.orders)} orders x {spec.slots_per_order} slots, "
            f"{len(spec.task_types)} task types")


def stack_params(params: Sequence[EnvParams]) -> EnvParams:
    """One EnvParams whose every leaf has a leading axis over `params` (all of one shape)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)


def population_env(specs: Sequence[KitchenSpec]) -> Kitchen:
    """The env shared by kitchens of one shape (no JAX work: a check before any); ConfigError naming the first
    kitchen of another shape."""
    if not specs:
        raise ConfigError("kitchens: a population needs at least one kitchen")
    env = kitchen_of(specs[0])
    for index, spec in enumerate(specs[1:], start=1):
        if kitchen_of(spec) != env:
            raise ConfigError(f"kitchens[{index}]: shape {shape_of(spec)} differs from kitchens[0]'s "
                              f"({shape_of(specs[0])}); a population shares one shape")
    return env


def make_population(specs: Sequence[KitchenSpec]) -> tuple[Kitchen, EnvParams]:
    """The shared env and the stacked params of kitchens of one shape; ConfigError naming the first kitchen
    of another shape."""
    return population_env(specs), stack_params([make_params(spec) for spec in specs])
