"""The JAX env against the independent pure-Python reference, step by step, on random action sequences.

Episodes are generated on the reference (mostly legal actions, some illegal ones), then replayed through the
JAX env in one vmapped scan; observations, masks, rewards, termination, truncation and the illegal-action
flag must be identical at every step.
"""

from __future__ import annotations

import zlib

import pytest

from bpjax.env.reference import ReferenceKitchen
from tests.conftest import compare, reference_episodes, spec_for

SCENARIOS = ["kitchen/scenario=full", "kitchen/scenario=understaffed"]
ORDERS = ["four_burgers", "one_burger", "pasta_mix", "tacos_practice", "arrivals"]
CASES = (
    [((scenario, f"kitchen/orders={orders}"), 1000 if orders == "four_burgers" else 300)
     for scenario in SCENARIOS for orders in ORDERS]
    + [(("kitchen/skills=uniform", "kitchen/scenario=practice", "kitchen/orders=tacos_practice"), 300),
       (("kitchen/orders=pasta_mix", "kitchen.handoff=0"), 300),
       (("kitchen/orders=pasta_mix", "kitchen.handoff=2"), 300),
       (("kitchen/scenario=understaffed", "kitchen.max_ticks=12"), 300),  # many truncated rounds
       (("kitchen/orders=arrivals", "kitchen.max_ticks=9"), 300)]
)


# the four-burger and multi-dish grids replay the most episodes: they run in the slow tier
HEAVY = ("kitchen/orders=four_burgers", "kitchen/orders=pasta_mix", "kitchen/orders=tacos_practice")


@pytest.mark.parametrize("overrides,n_episodes", [
    pytest.param(*c, marks=pytest.mark.slow) if c[0][-1] in HEAVY and len(c[0]) == 2 and c[0][0] in SCENARIOS
    else c for c in CASES], ids=[" ".join(c[0]) for c in CASES])
def test_jax_env_matches_reference(overrides, n_episodes):
    spec = spec_for(*overrides)
    compared = compare(spec, n_episodes, seed=zlib.crc32(" ".join(overrides).encode()))
    assert compared >= n_episodes * 3  # every round needs at least 3 decisions


def test_episodes_end_both_ways():
    """The cases above really exercise termination and truncation (guards against a vacuous comparison)."""
    ref = ReferenceKitchen(spec_for("kitchen/scenario=understaffed", "kitchen.max_ticks=12").to_dict())
    endings = [steps[-1][4:6] for steps, _ in reference_episodes(ref, 200, seed=1)]
    assert any(trunc for _, trunc in endings)
    ref = ReferenceKitchen(spec_for().to_dict())
    endings = [steps[-1][4:6] for steps, _ in reference_episodes(ref, 200, seed=2)]
    assert any(term for term, _ in endings)
