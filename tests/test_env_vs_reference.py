"""The JAX env against the independent pure-Python reference, step by step, on random action sequences.

Episodes are generated on the reference (mostly legal actions, some illegal ones), then replayed through the
JAX env in one vmapped scan; observations, masks, rewards, termination, truncation and the illegal-action
flag must be identical at every step.
"""

from __future__ import annotations

import zlib

import pytest

from bpjax.env.config import KitchenSpec
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
       (("kitchen/orders=arrivals", "kitchen.max_ticks=9"), 300),
       # every tick at its ceiling (MAX_TICKS): horizon, hand-off and skills of 10,000 ticks, no overflow
       (("kitchen/orders=arrivals", "kitchen.max_ticks=10000", "kitchen.handoff=10000",
         "kitchen.skills.chef=[10000,10000,10000]", "kitchen.orders.3.arrival=9999"), 100)]
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


def _many_orders(dishes: list[str], arrivals: list[int], max_ticks: int, *overrides: str):
    """The configured kitchen with its orders replaced by `dishes` (arriving at `arrivals`, cycled)."""
    kitchen = spec_for(*overrides).to_dict()
    kitchen["orders"] = [{"dish": dish, "arrival": arrivals[i % len(arrivals)]} for i, dish in enumerate(dishes)]
    kitchen["max_ticks"] = max_ticks
    return KitchenSpec.from_dict(kitchen)


# > 32 slots: several uint32 words per set; burgers (3 slots) straddle each 32-slot word boundary, pasta's
# 4-slot orders align with it, and the mixes put predecessors in the word below their successor.
LARGE = [
    pytest.param(("burger",) * 12, [0], 400, (), 40, id="12-burgers-36-slots"),
    pytest.param(("pasta", "burger") * 6 + ("pasta",), [0, 3, 7], 400, ("kitchen/scenario=understaffed",), 30,
                 id="pasta-burger-mix-46-slots-arrivals"),
    pytest.param(("burger", "pasta") * 10, [0], 60, (), 30, id="70-slots-truncated"),
    pytest.param(("burger",) * 22, [0, 5], 500, ("kitchen.handoff=0",), 20, id="22-burgers-66-slots-3-words"),
]


@pytest.mark.parametrize("dishes,arrivals,max_ticks,overrides,n_episodes", LARGE)
def test_jax_env_matches_reference_beyond_32_slots(dishes, arrivals, max_ticks, overrides, n_episodes):
    spec = _many_orders(list(dishes), arrivals, max_ticks, *overrides)
    assert spec.n_slots > 32
    compared = compare(spec, n_episodes, seed=zlib.crc32(repr((dishes, arrivals, overrides)).encode()))
    assert compared >= n_episodes * 30  # long rounds: at least 30 decisions each, even the truncated ones
