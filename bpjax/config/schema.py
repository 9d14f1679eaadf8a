"""Structured-config schemas of the command lines, registered in Hydra's ConfigStore.

Every primary config lists its schema first in `defaults` (``train_schema``, ``solve_schema``,
``traces_schema``, ``imitate_schema``, ``play_schema``), and every `algo` option lists its learner's schema
(``ppo_schema``, ``forest_schema``, ...), so Hydra type-checks each override while it composes:
``n_seeds=abc`` or ``algo.learning_rate=fast`` fail with the field and the expected type, and a typo'd key
(``algo.learning_rat=1``) fails as a key the schema does not have — before anything runs.

The learner and player schemas are derived from the code's own config dataclasses (``PPOConfig``,
``ReinforceConfig``, ``ForestPolicy``, ``BehaviourCloning``, ``GAILPolicy``, ``PlayerProfile``), so a new
setting there is a new schema field without a second list to keep in sync. The command lines' own settings
are declared here, each numeric one with its allowed range (:func:`bpjax.config.ranges.setting`), checked
by :func:`bpjax.config.ranges.out_of_range` before any work.

Kitchen defaults (``handoff``, ``max_ticks``) live in :class:`KitchenSchema` alone.

Deriving a schema imports its dataclass's module, and so JAX; ``--help`` registers untyped stand-ins for the
derived schemas instead (:func:`register` with ``typed=False``), so it answers without importing JAX.
"""

import dataclasses
import importlib
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from bpjax.config.ranges import setting

MAX_TICKS = 10_000          # ceiling of a kitchen's horizon, hand-off and skill ticks (episodes scan that far)
MAX_SEED = 2**32 - 1        # seeds are uint32 in JAX
MAX_SEEDS = 4096            # seeds trained side by side in one process
MAX_UPDATES = 10_000_000
MAX_PLAYERS = 100_000
MAX_ROUNDS = 1_000
MAX_EPISODES = 1_000_000
MAX_STATES = 1_000_000_000  # solver memo entries (each a few hundred bytes)


# ---- the kitchen ---------------------------------------------------------------------------------

@dataclass
class SubtaskSchema:
    name: str = MISSING
    type: str = MISSING
    after: List[str] = field(default_factory=list)


@dataclass
class OrderSchema:
    dish: str = MISSING
    arrival: int = setting(0, low=0, high=MAX_TICKS - 1)


@dataclass
class ScenarioSchema:
    name: str = MISSING
    workers: List[str] = MISSING


@dataclass
class KitchenSchema:
    """Types, ranges and the kitchen defaults; the rules (known dishes, skills per task type, ...) are
    KitchenSpec.from_dict's."""

    task_types: List[str] = MISSING
    dishes: Dict[str, List[SubtaskSchema]] = MISSING
    # ticks per task type; null = cannot
    skills: Dict[str, List[Optional[int]]] = setting(MISSING, low=1, high=MAX_TICKS)
    scenario: ScenarioSchema = MISSING
    orders: List[OrderSchema] = MISSING
    handoff: int = setting(1, low=0, high=MAX_TICKS)       # extra tick a subtask keeps its worker
    max_ticks: int = setting(50, low=1, high=MAX_TICKS)    # horizon: the round is truncated here


def kitchen_field() -> Any:
    return field(default_factory=KitchenSchema)


# ---- deriving schemas from the code's config dataclasses -----------------------------------------

_built: dict[str, type] = {}


def _config_type(annotation: Any) -> Any:
    """An OmegaConf-supported type for a dataclass annotation: tuples become lists, `X | None` Optional."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return Optional[_config_type(inner[0])] if len(inner) == 1 and len(args) == 2 else Any
    if origin in (tuple, list):
        return List[_config_type(args[0])] if args else List[Any]
    if dataclasses.is_dataclass(annotation):  # a nested config (GAIL's `ppo`)
        return dataclass_schema(annotation, name=f"{annotation.__name__}Fields")
    return annotation


def _plain(value: Any) -> Any:
    """A default as a config holds it: tuples as lists (recursively)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _schema_default(f: dataclasses.Field, schema_type: Any) -> dataclasses.Field:
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if default is dataclasses.MISSING:  # a required setting: the config must give it
        return field(default=MISSING, metadata=f.metadata)
    if dataclasses.is_dataclass(default):  # a nested config: its schema, with this field's defaults
        values = {k: _plain(v) for k, v in dataclasses.asdict(default).items()}
        made = lambda: schema_type(**values)  # noqa: E731
        return field(default_factory=made, metadata=f.metadata)
    if isinstance(default, (tuple, list)):
        return field(default_factory=lambda d=default: _plain(d), metadata=f.metadata)
    return field(default=default, metadata=f.metadata)


def dataclass_schema(config_type: type, *, name: str | None = None, exclude: tuple[str, ...] = (),
                     extra: tuple[tuple, ...] = ()) -> type:
    """A schema dataclass with the `extra` fields first, then every init field of `config_type` (but
    `exclude`), with its type made config-friendly, its default and its field metadata (ranges)."""
    hints = typing.get_type_hints(config_type)
    fields: list[tuple] = list(extra)
    for f in dataclasses.fields(config_type):
        if f.init and f.name not in exclude:
            schema_type = _config_type(hints[f.name])
            fields.append((f.name, schema_type, _schema_default(f, schema_type)))
    schema = dataclasses.make_dataclass(name or f"{config_type.__name__}Schema", fields,
                                        namespace={"__module__": __name__})
    _built[schema.__name__] = schema  # picklable by name, through this module's __getattr__
    return schema


def algorithm_schema(name: str, config_type: type, n_updates: int) -> type:
    """A training algorithm's schema: `name`, `n_updates` and every field of the agent's config dataclass."""
    return dataclass_schema(config_type, extra=(
        ("name", str, field(default=name)),
        ("n_updates", int, setting(n_updates, low=1, high=MAX_UPDATES))))


def learner_schema(name: str, config_type: type, exclude: tuple[str, ...]) -> type:
    """A trainee-policy learner's schema: `name` and the learner dataclass's settings (not its inputs)."""
    return dataclass_schema(config_type, name=f"{name.capitalize()}LearnerSchema", exclude=exclude,
                            extra=(("name", str, field(default=name)),))


def _learner(name: str, module: str, class_name: str, exclude: tuple[str, ...]) -> Callable[[], type]:
    return lambda: learner_schema(name, getattr(importlib.import_module(module), class_name), exclude)


def _algorithm(name: str, module: str, class_name: str, n_updates: int) -> Callable[[], type]:
    return lambda: algorithm_schema(name, getattr(importlib.import_module(module), class_name), n_updates)


def _tips() -> type:
    from bpjax.tips.recommend import TipSettings

    return dataclass_schema(TipSettings, name="TipsSchema", exclude=("seed",))


def _player() -> type:
    from bpjax.data.players import PlayerProfile

    return dataclass_schema(PlayerProfile, name="PlayerSchema",
                            extra=(("share", float, setting(1.0, low=0, low_open=True)),))


# schemas derived from the code's dataclasses, by class name; each built (and its module imported) on first use
DERIVED: dict[str, Callable[[], type]] = {
    "PPOConfigSchema": _algorithm("ppo", "bpjax.agents.ppo", "PPOConfig", 150),
    "ReinforceConfigSchema": _algorithm("reinforce", "bpjax.agents.reinforce", "ReinforceConfig", 2000),
    "ForestLearnerSchema": _learner("forest", "bpjax.imitation.policies", "ForestPolicy", ("kind", "seed")),
    "BoostingLearnerSchema": _learner("boosting", "bpjax.imitation.policies", "ForestPolicy", ("kind", "seed")),
    "BcLearnerSchema": _learner("bc", "bpjax.imitation.policies", "BehaviourCloning", ("obs_scale", "seed")),
    "GailLearnerSchema": _learner("gail", "bpjax.imitation.gail", "GAILPolicy", ("env", "env_params", "seed")),
    "PlayerSchema": _player,
    "TipsSchema": _tips,
}
ALGO_OPTIONS = {"ppo_schema": "PPOConfigSchema", "reinforce_schema": "ReinforceConfigSchema",
                "forest_schema": "ForestLearnerSchema", "boosting_schema": "BoostingLearnerSchema",
                "bc_schema": "BcLearnerSchema", "gail_schema": "GailLearnerSchema"}
TRAIN_ALGOS = ("ppo_schema", "reinforce_schema")
LEARNERS = ("forest_schema", "boosting_schema", "bc_schema", "gail_schema")


def derived(class_name: str) -> type:
    """A derived schema class, built once."""
    if class_name not in _built:
        DERIVED[class_name]()
    return _built[class_name]


# ---- the command lines' own settings ---------------------------------------------------------------

@dataclass
class ClusterSchema:
    """Resources of one sweep job on a SLURM cluster, read by conf/hydra/launcher/slurm.yaml."""

    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    gpus_per_node: Optional[int] = setting(None, low=0, high=1024)  # JAX shards each job's envs over these
    cpus_per_task: Optional[int] = setting(8, low=1, high=4096)
    mem_gb: Optional[int] = setting(32, low=1, high=100_000)
    timeout_min: int = setting(120, low=1, high=525_600)
    max_requeues: int = setting(3, low=0, high=1000)  # preemptions / timeouts resumed from the last checkpoint
    array_parallelism: int = setting(64, low=1, high=100_000)
    # shell lines before a job (module load ...) go straight to the launcher: hydra.launcher.setup=[...]


@dataclass
class BaselinesSchema:
    episodes: int = setting(256, low=1, high=MAX_EPISODES)  # rollouts per stochastic baseline


@dataclass
class JoinLimitSchema:
    joins: int = setting(60, low=1, high=1_000_000)      # joins (all participants together) beyond this ...
    seconds: float = setting(60.0, low=0, high=86_400, low_open=True)  # ... in any window this long: 429


@dataclass
class TipSchema:
    """The game's tips (docs/play-tips.md); the mode names and what each mode needs are checked by
    bpjax.play.cli."""

    mode: str = "none"             # none | static | personalised | dynamic
    file: Optional[str] = None     # a tips.json written by `python -m bpjax.pipeline` (every mode but none)
    rank: int = setting(1, low=1, high=10_000)  # static: which of its tips (its "rank" field)
    traces: Optional[str] = None   # personalised / dynamic: the traces tips.json was mined from
    wait_s: float = setting(30.0, low=0, high=3600, low_open=True)  # a round waits this long for its tip
    seed: int = setting(0, low=0, high=MAX_SEED)  # the chooser's (the dynamic mode's draws)
    show: bool = False             # the older spelling of mode=static


def seed_field() -> Any:
    return setting(0, low=0, high=MAX_SEED)


def skills_seed_field() -> Any:
    return setting(0, low=0, high=MAX_SEED)  # seed of kitchen/skills=random


def _primary(player: Any) -> dict[str, type]:
    """The primary schemas; `player` types the entries of `population` (Any for --help)."""

    @dataclass
    class SolveSchema:
        kitchen: KitchenSchema = kitchen_field()
        skills_seed: int = skills_seed_field()
        seed: int = seed_field()
        # the search stops with one line beyond this many states (null: no limit)
        max_states: Optional[int] = setting(2_000_000, low=1, high=MAX_STATES)
        baselines: BaselinesSchema = field(default_factory=BaselinesSchema)
        progress: bool = True

    @dataclass
    class TrainSchema:
        kitchen: KitchenSchema = kitchen_field()
        algo: Any = MISSING   # typed by the chosen option's own schema (ppo_schema, reinforce_schema)
        seed: int = seed_field()
        n_seeds: int = setting(1, low=1, high=MAX_SEEDS)
        # kitchens skills_seed .. skills_seed + n_kitchens - 1 (kitchen/skills=random), trained in one call
        n_kitchens: int = setting(1, low=1, high=MAX_SEEDS)
        chunk: int = setting(25, low=1, high=MAX_UPDATES)
        checkpoint_every: int = setting(1, low=1, high=MAX_UPDATES)
        resume: bool = False
        # exact optimum for context (cached per kitchen), skipped beyond this many states; 0 = never solve
        solver_max_states: Optional[int] = setting(2_000_000, low=0, high=MAX_STATES)
        shard_envs: bool = True      # split each seed's environments over all visible devices (if more than one)
        # XLA devices the CPU is split into (0: one per core this job may use); a population's runs are split
        # over them. 1 keeps results independent of the machine's cores
        cpu_devices: int = setting(1, low=0, high=4096)
        skills_seed: int = skills_seed_field()
        progress: bool = True
        cluster: ClusterSchema = field(default_factory=ClusterSchema)

    @dataclass
    class TracesSchema:
        kitchen: KitchenSchema = kitchen_field()
        population: List[player] = MISSING  # type: ignore[valid-type]
        skills_seed: int = skills_seed_field()
        seed: int = seed_field()
        n_players: int = setting(40, low=1, high=MAX_PLAYERS)
        rounds: int = setting(5, low=1, high=MAX_ROUNDS)
        format: str = "parquet"   # parquet | csv
        progress: bool = True

    @dataclass
    class ImitateSchema:
        kitchen: KitchenSchema = kitchen_field()
        population: List[player] = MISSING  # type: ignore[valid-type]
        algo: Any = MISSING       # the learner, typed by its option's schema (forest_schema, bc_schema, ...)
        method: str = MISSING     # ${algo.name}; `method=bc` picks another learner with its defaults
        skills_seed: int = skills_seed_field()
        skip_invalid: bool = False
        traces: Optional[str] = None
        players: Optional[str] = None
        kind: Optional[str] = None
        n_players: int = setting(40, low=1, high=MAX_PLAYERS)
        rounds: int = setting(5, low=1, high=MAX_ROUNDS)
        seed: int = seed_field()
        held_out: float = setting(0.25, low=0, high=1, low_open=True, high_open=True)
        eval_rounds: int = setting(200, low=1, high=MAX_EPISODES)
        progress: bool = True

    @dataclass
    class MonteCarloSchema:
        algo: Any = MISSING   # pi*'s learner, typed by its option's schema (ppo_schema)
        n_seeds: int = setting(2, low=1, high=MAX_SEEDS)
        rollout_policy: str = "sample"  # sample | greedy
        n_rollouts: int = setting(16, low=1, high=10_000)
        estimate: str = "best"          # best | mean
        tolerance: float = setting(0.0, low=0, high=MAX_TICKS)

    @dataclass
    class PipelineSchema:
        kitchen: KitchenSchema = kitchen_field()
        population: List[player] = MISSING  # type: ignore[valid-type]
        algo: Any = MISSING       # pi_H's learner, typed by its option's schema (forest_schema, ...)
        tips: Any = MISSING       # typed by tips_schema (bpjax.tips.recommend.TipSettings)
        monte_carlo: MonteCarloSchema = field(default_factory=MonteCarloSchema)
        skills_seed: int = skills_seed_field()
        seed: int = seed_field()
        strict_population: bool = False
        skip_invalid: bool = False
        traces: Optional[str] = None
        n_players: int = setting(40, low=1, high=MAX_PLAYERS)
        rounds: int = setting(5, low=1, high=MAX_ROUNDS)
        bottom_quantile: float = setting(0.25, low=0, high=1, low_open=True)
        players: Optional[List[str]] = None   # mine for these player ids instead of the bottom quantile
        imitation: str = MISSING  # ${algo.name}
        shrinkage: float = setting(5.0, low=0, high=1e9)
        qvalues: str = "auto"     # auto | exact | monte_carlo
        solver_max_states: Optional[int] = setting(2_000_000, low=0, high=MAX_STATES)  # 0: never solve
        progress: bool = True

    @dataclass
    class BlockSchema:
        dish: str = MISSING
        rounds: int = setting(3, low=1, high=MAX_ROUNDS)
        orders: List[Any] = MISSING

    @dataclass
    class StudySchema:
        kitchen: KitchenSchema = kitchen_field()
        population: List[player] = MISSING  # type: ignore[valid-type]
        blocks: List[BlockSchema] = MISSING
        trainees: int = setting(160, low=1, high=MAX_PLAYERS)
        arms: List[str] = field(default_factory=lambda: ["control", "static", "personalised", "dynamic"])
        pilot_players: int = setting(40, low=1, high=MAX_PLAYERS)
        pilot_rounds: int = setting(3, low=1, high=MAX_ROUNDS)
        strength: float = setting(5.0, low=0, high=1e9, low_open=True)
        penalty: float = setting(0.1, low=0, high=1e9, low_open=True)
        prior_inflation: float = setting(2.0, low=1, high=1e6)
        seed: int = seed_field()
        skills_seed: int = skills_seed_field()
        progress: bool = True

    @dataclass
    class PlaySchema:
        kitchen: KitchenSchema = kitchen_field()
        practice_kitchen: KitchenSchema = kitchen_field()
        skills_seed: int = skills_seed_field()
        rounds: int = setting(3, low=1, high=MAX_ROUNDS)
        practice_rounds: int = setting(1, low=0, high=MAX_ROUNDS)
        tip: TipSchema = field(default_factory=TipSchema)
        host: str = "127.0.0.1"
        port: int = setting(8000, low=0, high=65535)
        out_dir: str = "traces"
        allowed_hosts: List[str] = field(default_factory=list)    # more Host names to answer (docs/security.md)
        allowed_origins: List[str] = field(default_factory=list)  # more page origins for POSTs
        join_limit: JoinLimitSchema = field(default_factory=JoinLimitSchema)
        progress: bool = True

    made = (SolveSchema, TrainSchema, TracesSchema, ImitateSchema, PlaySchema, PipelineSchema, MonteCarloSchema,
            StudySchema, BlockSchema)
    for schema in made:
        schema.__qualname__ = schema.__name__  # picklable by name, through this module's __getattr__
    return {schema.__name__: schema for schema in made}


PRIMARY = {"solve_schema": "SolveSchema", "train_schema": "TrainSchema", "traces_schema": "TracesSchema",
           "imitate_schema": "ImitateSchema", "play_schema": "PlaySchema", "pipeline_schema": "PipelineSchema",
           "study_schema": "StudySchema"}
# what each command's config needs typed: its primary schema, the algo options it uses, a typed population,
# the typed tips group (deriving it imports the tip stage and pandas)
NEEDS: dict[str, tuple[str, tuple[str, ...], bool, bool]] = {
    "config": ("solve_schema", (), False, False), "train": ("train_schema", TRAIN_ALGOS, False, False),
    "traces": ("traces_schema", (), True, False), "imitate": ("imitate_schema", LEARNERS, True, False),
    "play": ("play_schema", (), False, False),
    "pipeline": ("pipeline_schema", (*TRAIN_ALGOS, *LEARNERS), True, True),
    "study": ("study_schema", (), True, False)}
EVERYTHING = ("", tuple(ALGO_OPTIONS), True, True)  # an unknown config, or all of them (config_name None)
_typed_primary: dict[str, type] = {}


def primary_schemas(typed_population: bool = True) -> dict[str, type]:
    """The primary schema classes by name; population entries typed by PlayerSchema (else Any)."""
    if not typed_population:
        return _primary(Any)
    if not _typed_primary:
        _typed_primary.update(_primary(derived("PlayerSchema")))
    return _typed_primary


def __getattr__(name: str) -> type:
    """Schema classes by name (``bpjax.config.schema.TrainSchema``), built on first use: pickled configs
    (sweep jobs) find their class here."""
    if name in PRIMARY.values():
        return primary_schemas()[name]
    if name in DERIVED:
        return derived(name)
    if name in _built:
        return _built[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


HELP_FLAGS = ("--help", "-h", "--hydra-help")


def register(typed: bool | None = None, config_name: str | None = None) -> None:
    """Store the schemas in Hydra's ConfigStore: all of them typed, or (`config_name`) those that config
    uses typed and empty stand-ins for the other learner and tips schemas, so a command imports only what it
    needs.
    ``typed=False`` (``--help``): no derived schema at all, and so no JAX import; None: typed unless this
    process answers ``--help``."""
    if typed is None:
        typed = not any(flag in sys.argv[1:] for flag in HELP_FLAGS)
    store = ConfigStore.instance()
    primary_node, algos, typed_population, typed_tips = NEEDS.get(config_name, EVERYTHING) \
        if config_name is not None else EVERYTHING
    schemas = primary_schemas(typed and typed_population)
    for node_name, class_name in PRIMARY.items():
        if config_name is None or node_name == primary_node:
            store.store(name=node_name, node=schemas[class_name])
    for node_name, class_name in ALGO_OPTIONS.items():
        store.store(group="algo", name=node_name, node=derived(class_name) if typed and node_name in algos else {})
    store.store(group="tips", name="tips_schema", node=derived("TipsSchema") if typed and typed_tips else {})
    store.store(name="kitchen_schema", node=KitchenSchema)  # for configs without a schema of their own
