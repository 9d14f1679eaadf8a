"""Structured-config schema of the command lines, registered in Hydra's ConfigStore.

Primary configs list their schema first in `defaults` (``train_schema``), and every `algo` option lists its
algorithm's schema (``ppo_schema``, ``reinforce_schema``), so Hydra type-checks each override while it
composes: ``n_seeds=abc`` or ``algo.learning_rate=fast`` fail with the field and the expected type, and a
typo'd key (``algo.learning_rat=1``) fails as a key the schema does not have — before anything is compiled.

The algorithm schemas are derived from the agents' own config dataclasses (plus `name` and `n_updates`), so
a new agent setting is a new schema field without a second list to keep in sync.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from bpjax.agents.ppo import PPOConfig
from bpjax.agents.reinforce import ReinforceConfig


@dataclass
class SubtaskSchema:
    name: str = MISSING
    type: str = MISSING
    after: List[str] = field(default_factory=list)


@dataclass
class OrderSchema:
    dish: str = MISSING
    arrival: int = 0


@dataclass
class ScenarioSchema:
    name: str = MISSING
    workers: List[str] = MISSING


@dataclass
class KitchenSchema:
    """Types only; the rules (known dishes, skills per task type, ...) are KitchenSpec.from_dict's."""

    task_types: List[str] = MISSING
    dishes: Dict[str, List[SubtaskSchema]] = MISSING
    skills: Dict[str, List[Optional[int]]] = MISSING  # ticks per task type; null = cannot
    scenario: ScenarioSchema = MISSING
    orders: List[OrderSchema] = MISSING
    handoff: int = 1
    max_ticks: int = 50


@dataclass
class ClusterSchema:
    """Resources of one sweep job on a SLURM cluster, read by conf/hydra/launcher/slurm.yaml."""

    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    gpus_per_node: Optional[int] = None   # JAX shards each job's environments over these
    cpus_per_task: Optional[int] = 8
    mem_gb: Optional[int] = 32
    timeout_min: int = 120
    max_requeues: int = 3                 # preemptions / timeouts resumed from the job's last checkpoint
    array_parallelism: int = 64
    # shell lines before a job (module load ...) go straight to the launcher: hydra.launcher.setup=[...]


@dataclass
class TrainSchema:
    kitchen: KitchenSchema = field(default_factory=KitchenSchema)
    algo: Any = MISSING   # typed by the chosen option's own schema (ppo_schema, reinforce_schema)
    seed: int = 0
    n_seeds: int = 1
    chunk: int = 25
    checkpoint_every: int = 1
    resume: bool = False
    solver_max_states: Optional[int] = 2_000_000
    shard_envs: bool = True      # split each seed's environments over all visible devices (if more than one)
    skills_seed: int = 0         # seed of kitchen/skills=random
    cluster: ClusterSchema = field(default_factory=ClusterSchema)


def _config_type(annotation: Any) -> Any:
    """An OmegaConf-supported type for a dataclass annotation: tuples become lists, `X | None` Optional."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return Optional[_config_type(inner[0])] if len(inner) == 1 and len(args) == 2 else Any
    if origin in (tuple, list):
        return List[_config_type(args[0])] if args else List[Any]
    return annotation


def algorithm_schema(name: str, config_type: type, n_updates: int) -> type:
    """A schema dataclass with `name`, `n_updates` and every field of the agent's config dataclass."""
    hints = typing.get_type_hints(config_type)
    fields: list[tuple] = [("name", str, field(default=name)), ("n_updates", int, field(default=n_updates))]
    for f in dataclasses.fields(config_type):
        default = f.default
        if isinstance(default, tuple):
            fields.append((f.name, _config_type(hints[f.name]), field(default_factory=lambda d=default: list(d))))
        else:
            fields.append((f.name, _config_type(hints[f.name]), field(default=default)))
    return dataclasses.make_dataclass(f"{config_type.__name__}Schema", fields,
                                      namespace={"__module__": __name__})  # picklable by name


PPOConfigSchema = algorithm_schema("ppo", PPOConfig, 150)
ReinforceConfigSchema = algorithm_schema("reinforce", ReinforceConfig, 2000)


def register() -> None:
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainSchema)
    store.store(group="algo", name="ppo_schema", node=PPOConfigSchema)
    store.store(group="algo", name="reinforce_schema", node=ReinforceConfigSchema)
