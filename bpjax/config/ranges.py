"""Allowed ranges of numeric settings, declared on the schema field that owns the setting, and the check that
walks a composed config against them (before any work, one ConfigError line naming the key).

A field declares its range with :func:`setting`::

    n_seeds: int = setting(1, low=1, high=4096)
    learning_rate: float = setting(1e-3, low=0, low_open=True)

The range applies to the value, or to every element of a list / every value of a mapping of numbers
(``skills: {chef: [1, 4, 6]}``); ``None`` is always allowed where the type is Optional.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

RANGE_KEY = "bpjax_range"


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False    # low itself is not allowed (learning rates > 0)
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{_number(self.low)}, "
                    f"{_number(self.high)}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        return f"{'<' if self.high_open else '<='} {_number(self.high)}"


def _number(x: float) -> str:
    return f"{int(x):,}".replace(",", "_") if float(x).is_integer() and abs(x) >= 10_000 else f"{x:g}"


def setting(default: Any = dataclasses.MISSING, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose numeric value (or elements) must lie in the given range."""
    metadata = {RANGE_KEY: Range(low, high, low_open, high_open)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def range_of(f: dataclasses.Field) -> Range | None:
    return f.metadata.get(RANGE_KEY)


def _numbers(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, number) for a value that is a number, a list of them or a mapping of those."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}[{index}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def out_of_range(schema: type, values: Mapping[str, Any], prefix: str = "") -> str | None:
    """The first ``key: must be ..., got ...`` message for a value of `values` outside the range its field of
    `schema` declares (one level: the fields of `schema` itself); None when every value is allowed."""
    for f in dataclasses.fields(schema):
        allowed = range_of(f)
        if allowed is None or f.name not in values:
            continue
        for where, number in _numbers(values[f.name], f"{prefix}{f.name}"):
            if not allowed.contains(number):
                return f"{where}: must be {allowed.describe()}, got {number!r}"
    return None


def check_config(cfg: Any) -> str | None:
    """Walk a composed config: every node typed by a schema dataclass is checked against its fields' ranges
    (interpolations resolved), and no value is left missing (``???``: a list entry without a required key). The
    first violation as one line, or None."""
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        return f"{missing[0]}: Missing mandatory value"
    return _walk(cfg, OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False), "")


def _walk(node: Any, plain: Any, prefix: str) -> str | None:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig):
        schema = OmegaConf.get_type(node)
        if dataclasses.is_dataclass(schema):
            message = out_of_range(schema, plain, prefix)
            if message:
                return message
        children = [(key, f"{prefix}{key}.") for key in node.keys()]
    elif isinstance(node, ListConfig):
        children = [(index, f"{prefix[:-1]}[{index}].") for index in range(len(node))]
    else:
        return None
    for key, where in children:
        if OmegaConf.is_missing(node, key):
            continue
        child = node[key]
        if isinstance(child, (DictConfig, ListConfig)):
            message = _walk(child, plain[key], where)
            if message:
                return message
    return None
