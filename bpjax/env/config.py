"""Validated kitchen configuration: the plain-data description every other module builds from.

All checks run here, in plain Python, before anything is compiled, so a bad config fails with one line
naming the offending field instead of a shape error deep inside XLA.

Ceilings: ``max_ticks``, order arrivals, ``handoff`` and skill ticks are at most :data:`MAX_TICKS`, so every
tick the env computes (at most a horizon plus one subtask plus a hand-off) stays far inside int32, and the
number of slots is at most :data:`MAX_SLOTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

MAX_TICKS = 10_000  # ceiling of the horizon, arrivals, hand-off and skill ticks (rounds are scanned this far)
MAX_SLOTS = 1_024   # ceiling of orders x slots per order (the step's program grows with the slot count)


class ConfigError(ValueError):
    """An invalid kitchen configuration; the message names the field."""


@dataclass(frozen=True)
class Subtask:
    name: str
    task_type: int  # index into KitchenSpec.task_types
    after: tuple[int, ...]  # indices of predecessor subtasks within the same recipe


@dataclass(frozen=True)
class Worker:
    name: str
    ticks: tuple[int | None, ...]  # per task type; None = cannot do it


@dataclass(frozen=True)
class Order:
    dish: str
    arrival: int


@dataclass(frozen=True)
class KitchenSpec:
    """A validated kitchen. Build it with :func:`KitchenSpec.from_dict`."""

    task_types: tuple[str, ...]
    dishes: Mapping[str, tuple[Subtask, ...]]
    workers: tuple[Worker, ...]
    orders: tuple[Order, ...]
    handoff: int
    max_ticks: int
    scenario: str = ""

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def slots_per_order(self) -> int:
        return max(len(self.dishes[o.dish]) for o in self.orders)

    @property
    def n_slots(self) -> int:
        return len(self.orders) * self.slots_per_order

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def n_actions(self) -> int:
        return self.n_workers * self.n_slots + 1

    @property
    def end_tick_action(self) -> int:
        return self.n_workers * self.n_slots

    @cached_property
    def slot_types(self) -> tuple[int, ...]:
        """Task type index of every slot; -1 for a padding slot."""
        return tuple(-1 if (s := self.slot_subtask(slot)) is None else s.task_type for slot in range(self.n_slots))

    def worker_label(self, worker: int) -> str:
        """A worker's name as people read it ("sous-chef")."""
        return self.workers[worker].name.replace("_", "-")

    def slot_subtask(self, slot: int) -> Subtask | None:
        """The subtask in `slot`, or None for a padding slot."""
        order, index = divmod(slot, self.slots_per_order)
        recipe = self.dishes[self.orders[order].dish]
        return recipe[index] if index < len(recipe) else None

    def slot_label(self, slot: int) -> str:
        order, _ = divmod(slot, self.slots_per_order)
        subtask = self.slot_subtask(slot)
        name = subtask.name if subtask else "padding"
        return f"{self.orders[order].dish} #{order + 1}: {name}"

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, kitchen: Mapping[str, Any]) -> "KitchenSpec":
        """Validate a kitchen mapping (plain dict or OmegaConf node) and build the spec.

        Raises :class:`ConfigError` naming the first offending field.
        """
        kitchen = _to_plain(kitchen)
        if not isinstance(kitchen, Mapping):
            raise ConfigError(f"kitchen: expected a mapping, got {type(kitchen).__name__}")
        for key in ("task_types", "dishes", "skills", "scenario", "orders"):
            if key not in kitchen:
                raise ConfigError(f"kitchen.{key}: missing")
        unknown = set(kitchen) - {"task_types", "dishes", "skills", "scenario", "orders", "handoff", "max_ticks"}
        if unknown:
            raise ConfigError(f"kitchen.{sorted(unknown)[0]}: unknown field")

        task_types = _parse_task_types(kitchen["task_types"])
        dishes = {name: _parse_recipe(f"kitchen.dishes.{name}", recipe, task_types)
                  for name, recipe in _mapping("kitchen.dishes", kitchen["dishes"]).items()}
        handoff = _int_in("kitchen.handoff", kitchen.get("handoff", 1), 0, MAX_TICKS)
        max_ticks = _int_in("kitchen.max_ticks", kitchen.get("max_ticks", 50), 1, MAX_TICKS)
        workers, scenario = _parse_workers(kitchen["skills"], kitchen["scenario"], task_types)
        orders = _parse_orders(kitchen["orders"], dishes, max_ticks)

        for order_index, order in enumerate(orders):
            for subtask in dishes[order.dish]:
                if all(worker.ticks[subtask.task_type] is None for worker in workers):
                    raise ConfigError(
                        f"kitchen.orders[{order_index}]: no worker of scenario '{scenario}' can "
                        f"{task_types[subtask.task_type]} ('{subtask.name}' of {order.dish})")
        spec = cls(task_types, dishes, workers, orders, handoff, max_ticks, scenario)
        if spec.n_slots > MAX_SLOTS:
            raise ConfigError(f"kitchen.orders: {spec.n_slots} subtask slots exceed the ceiling of {MAX_SLOTS} "
                              f"({len(orders)} orders x {spec.slots_per_order} subtasks)")
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The plain mapping this spec was built from (normalised), e.g. for the reference simulator."""
        return {
            "task_types": list(self.task_types),
            "dishes": {name: [{"name": s.name, "type": self.task_types[s.task_type],
                               "after": [recipe[p].name for p in s.after]} for s in recipe]
                       for name, recipe in self.dishes.items()},
            "skills": {w.name: list(w.ticks) for w in self.workers},
            "scenario": {"name": self.scenario, "workers": [w.name for w in self.workers]},
            "orders": [{"dish": o.dish, "arrival": o.arrival} for o in self.orders],
            "handoff": self.handoff,
            "max_ticks": self.max_ticks,
        }


# ---- field parsers -----------------------------------------------------------------------------

def _to_plain(node: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf ships with hydra-core
        return node
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{field}: expected a non-empty mapping")
    return value


def _sequence(field: str, value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{field}: expected a non-empty list")
    return list(value)


def _int_at_least(field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field}: expected an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{field}: must be >= {low}, got {value}")
    return value


def _int_in(field: str, value: Any, low: int, high: int) -> int:
    value = _int_at_least(field, value, low)
    if value > high:
        raise ConfigError(f"{field}: must be <= {high}, got {value}")
    return value


def _parse_task_types(value: Any) -> tuple[str, ...]:
    types = _sequence("kitchen.task_types", value)
    if not all(isinstance(t, str) and t for t in types):
        raise ConfigError("kitchen.task_types: expected names (strings)")
    if len(set(types)) != len(types):
        raise ConfigError(f"kitchen.task_types: duplicate names in {types}")
    return tuple(types)


def _no_unknown(field: str, entry: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """A misspelt key would silently drop what it meant (a subtask's `afer` its predecessors): refuse it."""
    unknown = sorted(str(key) for key in entry if key not in known)
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}: unknown field (known: {', '.join(known)})")


def _parse_recipe(field: str, value: Any, task_types: tuple[str, ...]) -> tuple[Subtask, ...]:
    entries = _sequence(field, value)
    names: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "name" not in entry or "type" not in entry:
            raise ConfigError(f"{field}[{i}]: expected a mapping with 'name', 'type' and 'after'")
        _no_unknown(f"{field}[{i}]", entry, ("name", "type", "after"))
        if entry["name"] in names:
            raise ConfigError(f"{field}[{i}].name: duplicate subtask '{entry['name']}'")
        names.append(entry["name"])
    subtasks = []
    for i, entry in enumerate(entries):
        if entry["type"] not in task_types:
            raise ConfigError(f"{field}[{i}].type: unknown task type '{entry['type']}' "
                              f"(known: {', '.join(task_types)})")
        after = entry.get("after") or []
        if not isinstance(after, (list, tuple)):
            raise ConfigError(f"{field}[{i}].after: expected a list of subtask names")
        for pred in after:
            if pred not in names:
                raise ConfigError(f"{field}[{i}].after: unknown subtask '{pred}'")
        subtasks.append(Subtask(entry["name"], task_types.index(entry["type"]),
                                tuple(sorted(names.index(p) for p in set(after)))))
    _check_acyclic(field, subtasks)
    return tuple(subtasks)


def _check_acyclic(field: str, subtasks: list[Subtask]) -> None:
    state: dict[int, str] = {}  # index -> "visiting" | "done"

    def visit(i: int, path: list[str]) -> None:
        if state.get(i) == "done":
            return
        if state.get(i) == "visiting":
            cycle = path[path.index(subtasks[i].name):] + [subtasks[i].name]
            raise ConfigError(f"{field}: predecessor cycle {' -> '.join(cycle)}")
        state[i] = "visiting"
        for p in subtasks[i].after:
            visit(p, path + [subtasks[i].name])
        state[i] = "done"

    for i in range(len(subtasks)):
        visit(i, [])


def _parse_workers(skills: Any, scenario: Any, task_types: tuple[str, ...]) -> tuple[tuple[Worker, ...], str]:
    skills = _mapping("kitchen.skills", skills)
    if not isinstance(scenario, Mapping):
        raise ConfigError("kitchen.scenario: expected a mapping with 'workers'")
    _no_unknown("kitchen.scenario", scenario, ("name", "workers"))
    names = _sequence("kitchen.scenario.workers", scenario.get("workers"))
    if len(set(names)) != len(names):
        raise ConfigError(f"kitchen.scenario.workers: duplicate worker in {names}")
    workers = []
    for name in names:
        if name not in skills:
            raise ConfigError(f"kitchen.scenario.workers: unknown worker '{name}' "
                              f"(kitchen.skills defines {', '.join(map(str, skills))})")
        field = f"kitchen.skills.{name}"
        row = _sequence(field, skills[name])
        if len(row) != len(task_types):
            raise ConfigError(f"{field}: {len(row)} entries but {len(task_types)} task types "
                              f"({', '.join(task_types)})")
        ticks = tuple(None if t is None else _int_in(f"{field}[{k}] ({task_types[k]})", t, 1, MAX_TICKS)
                      for k, t in enumerate(row))
        workers.append(Worker(name, ticks))
    return tuple(workers), str(scenario.get("name", ""))


def _parse_orders(value: Any, dishes: Mapping[str, tuple[Subtask, ...]], max_ticks: int) -> tuple[Order, ...]:
    orders = []
    for i, entry in enumerate(_sequence("kitchen.orders", value)):
        field = f"kitchen.orders[{i}]"
        if isinstance(entry, str):  # shorthand: a bare dish name arrives at tick 0
            entry = {"dish": entry}
        if not isinstance(entry, Mapping) or "dish" not in entry:
            raise ConfigError(f"{field}: expected a mapping with 'dish' (and optional 'arrival')")
        _no_unknown(field, entry, ("dish", "arrival"))
        if entry["dish"] not in dishes:
            raise ConfigError(f"{field}.dish: unknown dish '{entry['dish']}' (known: {', '.join(dishes)})")
        arrival = _int_at_least(f"{field}.arrival", entry.get("arrival", 0), 0)
        if arrival >= max_ticks:
            raise ConfigError(f"{field}.arrival: tick {arrival} is beyond the horizon max_ticks={max_ticks}")
        orders.append(Order(entry["dish"], arrival))
    return tuple(orders)
