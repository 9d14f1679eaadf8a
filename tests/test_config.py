"""Tests of kitchen config validation (KitchenSpec.from_dict) and Hydra composition of the conf/ groups."""

from __future__ import annotations

import copy
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from bpjax.config import CONF_DIR, compose_config
from bpjax.env.config import MAX_SLOTS, MAX_TICKS, ConfigError, KitchenSpec

KITCHEN_DIR = Path(CONF_DIR) / "kitchen"
DELETE = object()  # sentinel value: remove the field instead of setting it

# Options that only make sense together: the practice scenario's workers are defined by the uniform skills.
PARTNERS = {
    ("scenario", "practice"): ["kitchen/skills=uniform"],
    ("skills", "uniform"): ["kitchen/scenario=practice"],
}


def group_options(group: str) -> list[str]:
    """The option names of a config group, discovered from the YAML files under conf/kitchen/<group>/."""
    return sorted(path.stem for path in (KITCHEN_DIR / group).glob("*.yaml"))


GROUPS = sorted(path.name for path in KITCHEN_DIR.iterdir() if path.is_dir())
GROUP_OPTIONS = [(group, option) for group in GROUPS for option in group_options(group)]


def overrides_for(group: str, option: str) -> list[str]:
    """Overrides selecting `option` of `group`, plus the partner option it needs (if any)."""
    return [f"kitchen/{group}={option}", *PARTNERS.get((group, option), [])]


def kitchen_dict(overrides: list[str] = ()) -> dict[str, Any]:
    """The composed `kitchen` node as a plain dict."""
    return OmegaConf.to_container(compose_config(list(overrides)).kitchen, resolve=True)


@pytest.fixture(scope="module")
def default_kitchen() -> dict[str, Any]:
    return kitchen_dict()


@pytest.fixture
def kitchen(default_kitchen) -> dict[str, Any]:
    """A fresh, mutable copy of the composed default kitchen."""
    return copy.deepcopy(default_kitchen)


def set_field(kitchen: dict[str, Any], path: tuple, value: Any) -> None:
    """Set (or, with DELETE, remove) the one field at `path` (dict keys / list indices)."""
    *parents, last = path
    node = kitchen
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


# ---- invalid configs -----------------------------------------------------------------------------

BURGER_ORDER = {"dish": "burger", "arrival": 0}
NO_COOK_SKILLS = {"chef": [1, None, 6], "sous_chef": [2, None, 2], "server": [3, None, 1]}
too_many_burgers = MAX_SLOTS // 3 + 1  # 3 subtasks per burger

INVALID = [
    # (path of the one changed field, new value, pattern the message must match)
    pytest.param(("skills", "chef"), [1, 4], r"^kitchen\.skills\.chef: 2 entries but 3 task types",
                 id="skill-row-too-short"),
    pytest.param(("skills", "server"), [3, 12, 1, 1], r"^kitchen\.skills\.server: 4 entries but 3 task types",
                 id="skill-row-too-long"),
    pytest.param(("skills", "chef", 0), 0, r"^kitchen\.skills\.chef\[0\] \(chop\): must be >= 1, got 0",
                 id="ticks-zero"),
    pytest.param(("skills", "sous_chef", 1), -3, r"^kitchen\.skills\.sous_chef\[1\] \(cook\): must be >= 1",
                 id="ticks-negative"),
    pytest.param(("skills", "server", 2), 1.5,
                 r"^kitchen\.skills\.server\[2\] \(plate\): expected an integer, got 1\.5", id="ticks-float"),
    pytest.param(("skills", "chef", 1), True, r"^kitchen\.skills\.chef\[1\] \(cook\): expected an integer, got True",
                 id="ticks-bool"),
    pytest.param(("dishes", "burger", 1, "type"), "fry",
                 r"^kitchen\.dishes\.burger\[1\]\.type: unknown task type 'fry'", id="unknown-task-type"),
    pytest.param(("orders", 2, "dish"), "pizza", r"^kitchen\.orders\[2\]\.dish: unknown dish 'pizza'",
                 id="unknown-dish"),
    pytest.param(("dishes", "burger", 1, "after"), ["chop fish"],
                 r"^kitchen\.dishes\.burger\[1\]\.after: unknown subtask 'chop fish'", id="unknown-predecessor"),
    pytest.param(("dishes", "burger", 0, "after"), ["plate burger"],
                 r"^kitchen\.dishes\.burger: predecessor cycle .* -> ", id="predecessor-cycle"),
    pytest.param(("skills",), NO_COOK_SKILLS, r"^kitchen\.orders\[0\]: no worker of scenario 'full' can cook",
                 id="nobody-can-cook"),
    pytest.param(("orders", 3, "arrival"), 50,
                 r"^kitchen\.orders\[3\]\.arrival: tick 50 is beyond the horizon max_ticks=50", id="arrival-at-horizon"),
    pytest.param(("orders", 1, "arrival"), 70, r"^kitchen\.orders\[1\]\.arrival: tick 70 is beyond the horizon",
                 id="arrival-beyond-horizon"),
    pytest.param(("orders", 0, "arrival"), -1, r"^kitchen\.orders\[0\]\.arrival: must be >= 0, got -1",
                 id="arrival-negative"),
    pytest.param(("handoff",), -1, r"^kitchen\.handoff: must be >= 0, got -1", id="handoff-negative"),
    pytest.param(("handoff",), True, r"^kitchen\.handoff: expected an integer, got True", id="handoff-bool"),
    pytest.param(("max_ticks",), 0, r"^kitchen\.max_ticks: must be >= 1, got 0", id="max-ticks-zero"),
    pytest.param(("max_ticks",), 2.5, r"^kitchen\.max_ticks: expected an integer, got 2\.5", id="max-ticks-float"),
    pytest.param(("scenario", "workers", 2), "waiter", r"^kitchen\.scenario\.workers: unknown worker 'waiter'",
                 id="unknown-worker"),
    pytest.param(("scenario", "workers", 1), "chef", r"^kitchen\.scenario\.workers: duplicate worker",
                 id="duplicate-worker"),
    pytest.param(("chef_hat",), "tall", r"^kitchen\.chef_hat: unknown field", id="unknown-top-level-field"),
    pytest.param(("dishes", "burger", 1, "afer"), ["chop meat"],
                 r"^kitchen\.dishes\.burger\[1\]\.afer: unknown field \(known: name, type, after\)",
                 id="unknown-subtask-field"),
    pytest.param(("orders", 2, "arival"), 3, r"^kitchen\.orders\[2\]\.arival: unknown field", id="unknown-order-field"),
    pytest.param(("scenario", "worker"), ["chef"], r"^kitchen\.scenario\.worker: unknown field",
                 id="unknown-scenario-field"),
    *[pytest.param((key,), DELETE, rf"^kitchen\.{key}: missing", id=f"missing-{key}")
      for key in ("task_types", "dishes", "skills", "scenario", "orders")],
    pytest.param(("orders",), [BURGER_ORDER] * too_many_burgers,
                 rf"^kitchen\.orders: {3 * too_many_burgers} subtask slots exceed the ceiling of {MAX_SLOTS}",
                 id="too-many-slots"),
    pytest.param(("max_ticks",), MAX_TICKS + 1, rf"^kitchen\.max_ticks: must be <= {MAX_TICKS}, got {MAX_TICKS + 1}",
                 id="max-ticks-beyond-ceiling"),
    pytest.param(("max_ticks",), 10**9, rf"^kitchen\.max_ticks: must be <= {MAX_TICKS}", id="max-ticks-huge"),
    pytest.param(("handoff",), MAX_TICKS + 1, rf"^kitchen\.handoff: must be <= {MAX_TICKS}", id="handoff-beyond-ceiling"),
    pytest.param(("skills", "chef", 1), 2**31, rf"^kitchen\.skills\.chef\[1\] \(cook\): must be <= {MAX_TICKS}",
                 id="ticks-beyond-ceiling"),
]


@pytest.mark.parametrize("path, value, pattern", INVALID)
def test_invalid_config_names_the_field(kitchen, path, value, pattern):
    """Changing one field to a bad value raises a one-line ConfigError that names that field."""
    set_field(kitchen, path, value)
    with pytest.raises(ConfigError, match=pattern) as error:
        KitchenSpec.from_dict(kitchen)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("after, expected_cycle", [
    pytest.param(["plate burger"], {"chop meat", "cook burger", "plate burger"}, id="three-cycle"),
    pytest.param(["chop meat"], {"chop meat"}, id="self-loop"),
])
def test_cycle_message_shows_the_cycle(kitchen, after, expected_cycle):
    """The cycle message lists the subtasks of the cycle, closing back on the first."""
    set_field(kitchen, ("dishes", "burger", 0, "after"), after)
    with pytest.raises(ConfigError) as error:
        KitchenSpec.from_dict(kitchen)
    cycle = re.search(r"predecessor cycle (.*)$", str(error.value)).group(1).split(" -> ")
    assert cycle[0] == cycle[-1]
    assert set(cycle) == expected_cycle
    assert len(cycle) == len(expected_cycle) + 1


@pytest.mark.parametrize("path, value", [
    pytest.param(("orders",), [{"dish": "pasta", "arrival": 0}] * (MAX_SLOTS // 4), id="exactly-max-slots"),
    pytest.param(("orders", 3, "arrival"), 49, id="arrival-just-inside-horizon"),
    pytest.param(("max_ticks",), MAX_TICKS, id="max-ticks-at-ceiling"),
    pytest.param(("skills", "server", 1), MAX_TICKS, id="ticks-at-ceiling"),
    pytest.param(("handoff",), 0, id="handoff-zero"),
    pytest.param(("max_ticks",), 1, id="max-ticks-one"),
    pytest.param(("skills", "server", 1), None, id="one-worker-cannot-cook"),
    pytest.param(("orders", 0), "burger", id="bare-dish-shorthand"),
])
def test_edge_values_are_accepted(kitchen, path, value):
    """Values right at the limits are valid."""
    set_field(kitchen, path, value)
    KitchenSpec.from_dict(kitchen)


# ---- composition ---------------------------------------------------------------------------------

def test_every_group_has_options():
    assert {"recipes", "skills", "orders", "scenario"} <= set(GROUPS)
    assert all(group_options(group) for group in GROUPS)


@pytest.mark.parametrize("group, option", GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_option_composes_and_validates(group, option):
    """Each option composes with the defaults, its content lands under `kitchen`, and the kitchen is valid."""
    cfg = compose_config(overrides_for(group, option))
    option_content = OmegaConf.to_container(OmegaConf.load(KITCHEN_DIR / group / f"{option}.yaml"))
    unresolved = OmegaConf.to_container(cfg.kitchen)  # an interpolated option (skills=random) as written
    for key, value in option_content.items():
        assert unresolved[key] == value
    spec = KitchenSpec.from_dict(cfg.kitchen)  # an OmegaConf node is accepted as is
    assert spec == KitchenSpec.from_dict(OmegaConf.to_container(cfg.kitchen, resolve=True))


def test_every_shipped_scenario_composes_with_the_default_skills():
    """The paper's skills define the practice scenario's cooks too, so every scenario runs by default; a
    scenario naming a worker no skill matrix defines is one line naming it."""
    for scenario in group_options("scenario"):
        KitchenSpec.from_dict(kitchen_dict([f"kitchen/scenario={scenario}"]))
    with pytest.raises(ConfigError, match=r"^kitchen\.scenario\.workers: unknown worker 'cook_a'") as error:
        KitchenSpec.from_dict(kitchen_dict(["kitchen/skills=specialists", "kitchen/scenario=practice"]))
    assert "\n" not in str(error.value)


SCENARIO_ORDERS = list(itertools.product(group_options("scenario"), group_options("orders")))


@pytest.mark.parametrize("scenario, orders", SCENARIO_ORDERS, ids=[f"{s}-{o}" for s, o in SCENARIO_ORDERS])
def test_to_dict_round_trips(scenario, orders):
    """from_dict(spec.to_dict()) rebuilds the same spec for every scenario/orders combination."""
    spec = KitchenSpec.from_dict(kitchen_dict([*overrides_for("scenario", scenario), f"kitchen/orders={orders}"]))
    assert spec.scenario == scenario
    assert KitchenSpec.from_dict(spec.to_dict()) == spec


# ---- derived sizes -------------------------------------------------------------------------------

def test_paper_kitchen_sizes(default_kitchen):
    """4 burgers x 3 subtasks, 3 workers: 12 slots, 3 * 12 assignments + end-tick."""
    spec = KitchenSpec.from_dict(default_kitchen)
    assert (spec.n_workers, spec.slots_per_order) == (3, 3)
    assert spec.n_slots == 12
    assert spec.n_actions == 37
    assert spec.end_tick_action == 36


def test_pasta_mix_pads_the_burger():
    """Orders pasta, burger, pasta: 4 slots per order, the burger's fourth slot (7) is padding."""
    spec = KitchenSpec.from_dict(kitchen_dict(["kitchen/orders=pasta_mix"]))
    assert spec.slots_per_order == 4
    assert spec.n_slots == 12
    burger_padding = 1 * spec.slots_per_order + 3
    assert spec.slot_subtask(burger_padding) is None
    assert "padding" in spec.slot_label(burger_padding)
    assert spec.slot_subtask(burger_padding - 1).name == "plate burger"
    real = [slot for slot in range(spec.n_slots) if spec.slot_subtask(slot) is not None]
    assert len(real) == 4 + 3 + 4
