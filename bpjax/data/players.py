"""Synthetic players that behave like the people in the study, so the pipeline runs without a lab.

A player is a :class:`PlayerProfile`; at each decision it acts in this order:

1. with probability ``epsilon`` — a uniformly random legal action (slips);
2. a **flaw** ``(worker, task type)``, with probability ``flaw_rate``: if that worker is idle and a subtask of
   that type is open to it, assign it (e.g. *the chef plates*, *the server cooks*); an **avoided** pair
   ``(worker, task type)`` is never assigned at all (e.g. *the server never cooks*);
3. with probability ``p_optimal(round)`` — the exact optimal action (argmax Q*, lowest index among ties);
   ``p_optimal`` grows over rounds from ``skill`` toward 1 at rate ``learning`` (people improve with practice);
4. otherwise its **base** habit: ``greedy`` (first open subtask to the fastest idle worker able to do it),
   ``keep_busy`` (a random legal assignment, never idle by choice) or ``optimal``.

Trainees who learn (the study's next phase): slips shrink by ``slip_decay`` and flaws (and avoided pairs) by
``flaw_decay`` per round of experience; a flaw's or avoided pair's **habit** (1 at first) scales it, and a tip
that corrects it, once followed, weakens it by ``tip_learning`` (:func:`learn_from_round`). A shown tip is
followed at each decision tick with probability ``compliance``, which moves by ``compliance_step`` after each
round with a tip: up when the round was shorter than the trainee's previous one, down when not.

Players act on the reference simulator (exact, and Q* comes from the exact solver); the profiles are the
ground truth stored beside the traces, so tests can check that the pipeline finds the planted flaws.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bpjax.data.traces import record_episode
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.legality import assignments_of
from bpjax.env.reference import RefState
from bpjax.solve.solver import ExactSolver

BASES = ("greedy", "keep_busy", "optimal")


@dataclass(frozen=True)
class PlayerProfile:
    kind: str                                   # population label, e.g. "chef_plates"
    base: str = "greedy"
    flaws: tuple[tuple[str, str], ...] = ()     # (worker name, task type) done whenever possible
    avoid: tuple[tuple[str, str], ...] = ()     # (worker name, task type) never done
    flaw_rate: float = 1.0
    epsilon: float = 0.05
    skill: float = 0.0                          # probability of the optimal action in round 1
    learning: float = 0.0                       # per-round approach of that probability toward 1
    slip_decay: float = 0.0                     # per round of experience, epsilon shrinks by this share
    flaw_decay: float = 0.0                     # per round of experience, flaws and avoided pairs shrink so
    compliance: float = 1.0                     # chance of following a shown tip at a decision tick
    compliance_step: float = 0.0                # its change after a round with a tip (paid off: up)
    tip_learning: float = 0.0                   # a followed tip weakens the habit it corrects by this share

    def p_optimal(self, round_number: int) -> float:
        return 1.0 - (1.0 - self.skill) * (1.0 - self.learning) ** (round_number - 1)

    def epsilon_at(self, round_number: int) -> float:
        return self.epsilon * (1.0 - self.slip_decay) ** (round_number - 1)

    def habit_at(self, round_number: int) -> float:
        """How much of a flaw (or avoided pair) experience leaves by `round_number`, before tips."""
        return (1.0 - self.flaw_decay) ** (round_number - 1)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "flaws": [list(f) for f in self.flaws], "avoid": [list(f) for f in self.avoid]}


def profiles_from_config(population: Sequence[Mapping[str, Any]], spec: KitchenSpec, strict: bool = False
                         ) -> tuple[list[tuple[PlayerProfile, float]], list[str]]:
    """(profile, population share) pairs from a config list, and notes on what was adapted; errors name the
    field. A flaw (or avoided pair) naming a worker or task type this kitchen lacks is dropped with a note,
    so one population serves every scenario — or, with `strict`, is an error."""
    workers, types = {w.name for w in spec.workers}, set(spec.task_types)
    fields = set(PlayerProfile.__dataclass_fields__) | {"share"}
    out, notes = [], []
    kinds: dict[Any, int] = {}
    for i, entry in enumerate(population):
        where = f"population[{i}]"
        unknown = set(entry) - fields
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown field")
        if entry.get("kind") in kinds:  # players.json and the reports tell kinds apart by name
            raise ConfigError(f"{where}.kind: {entry['kind']!r} is population[{kinds[entry['kind']]}]'s kind too; "
                              f"give each kind its own name")
        kinds.setdefault(entry.get("kind"), i)
        entry = dict(entry)
        share = float(entry.pop("share", 1.0))
        if entry.get("base", "greedy") not in BASES:
            raise ConfigError(f"{where}.base: unknown habit {entry['base']!r} (known: {', '.join(BASES)})")
        pairs = {}
        for name in ("flaws", "avoid"):
            pairs[name] = []
            for j, pair in enumerate(entry.pop(name, []) or []):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ConfigError(f"{where}.{name}[{j}]: expected [worker, task type], got {pair!r}")
                if pair[0] in workers and pair[1] in types:
                    pairs[name].append((pair[0], pair[1]))
                    continue
                missing = f"no worker {pair[0]!r}" if pair[0] not in workers else f"no task type {pair[1]!r}"
                if strict:
                    raise ConfigError(f"{where}.{name}[{j}]: this kitchen has {missing} (workers "
                                      f"{', '.join(w.name for w in spec.workers)}; types {', '.join(spec.task_types)})")
                notes.append(f"{where} ({entry.get('kind', '?')}): {name[:-1] if name == 'flaws' else name} "
                             f"{list(pair)} dropped: this kitchen has {missing}")
        for name in ("flaw_rate", "epsilon", "skill", "learning", "slip_decay", "flaw_decay", "compliance",
                     "compliance_step", "tip_learning"):
            if name in entry and not 0.0 <= float(entry[name]) <= 1.0:
                raise ConfigError(f"{where}.{name}: must be in [0, 1], got {entry[name]}")
        if not 0 < share < float("inf"):  # a share is relative: any finite positive weight (NaN fails too)
            raise ConfigError(f"{where}.share: must be a finite number > 0, got {share}")
        out.append((PlayerProfile(flaws=tuple(pairs["flaws"]), avoid=tuple(pairs["avoid"]), **entry), share))
    if not out:
        raise ConfigError("population: expected at least one kind of player")
    return out, notes


@dataclass
class SyntheticPlayer:
    """Plays rounds of one kitchen with one profile."""

    profile: PlayerProfile
    solver: ExactSolver
    rng: random.Random
    habit: dict[tuple[str, str], float] = field(default_factory=dict)  # flaw / avoided pair -> strength (1)
    _flaw_actions: list[tuple[int, int]] = field(default_factory=list)  # (worker index, task type index)

    def __post_init__(self):
        spec = self.solver.spec
        names = [w.name for w in spec.workers]
        self._flaw_actions = [(names.index(w), spec.task_types.index(k), (w, k)) for w, k in self.profile.flaws]
        self._avoided = [(names.index(w), spec.task_types.index(k), (w, k)) for w, k in self.profile.avoid]

    def act(self, state: RefState, round_number: int, forbidden: frozenset[int] = frozenset()) -> int:
        """The player's action; `forbidden` actions are never taken (a tip the player follows). Where the
        tip leaves only what the player avoids, the tip wins."""
        sim, rng, spec, profile = self.solver.sim, self.rng, self.solver.spec, self.profile
        legal = [a for a in sim.legal_actions(state) if a not in forbidden]
        learned = profile.habit_at(round_number)
        avoided = {a for worker, task_type, pair in self._avoided
                   if learned * self.habit.get(pair, 1.0) >= 1.0 or rng.random() < learned * self.habit.get(pair, 1.0)
                   for a in assignments_of(spec, legal, worker, task_type)}
        if len(avoided) < len(legal):
            forbidden, legal = forbidden | avoided, [a for a in legal if a not in avoided]
        end = sim.end_tick_action
        assignments = [a for a in legal if a != end]
        if rng.random() < profile.epsilon_at(round_number):
            return rng.choice(legal)
        for worker, task_type, pair in self._flaw_actions:
            options = assignments_of(spec, legal, worker, task_type)
            if options and rng.random() < profile.flaw_rate * learned * self.habit.get(pair, 1.0):
                return options[0]
        if self.profile.base == "optimal" or rng.random() < self.profile.p_optimal(round_number):
            return self.optimal_action(state, forbidden)
        if self.profile.base == "keep_busy":
            return rng.choice(assignments) if assignments else end
        return self.greedy_action(assignments) if assignments else end

    def optimal_action(self, state: RefState, forbidden: frozenset[int] = frozenset()) -> int:
        q = self.solver.q_values(state)
        q[list(forbidden)] = -np.inf
        return int(np.argmax(q))

    def greedy_action(self, assignments: list[int]) -> int:
        """The first open subtask (lowest slot) to the fastest idle worker able to do it."""
        sim = self.solver.sim
        slot = min(a % sim.n_slots for a in assignments)
        candidates = [a for a in assignments if a % sim.n_slots == slot]
        return min(candidates, key=lambda a: (sim.duration(a // sim.n_slots, slot), a))

    def play(self, round_number: int) -> list[int]:
        sim = self.solver.sim
        state, actions = sim.reset(), []
        while not any(sim.is_over(state)) and state.tick < self.solver.max_ticks:
            actions.append(self.act(state, round_number))
            state = sim.step(state, actions[-1])[0]
        return actions


def generate_population(spec: KitchenSpec, population: Sequence[Mapping[str, Any]], n_players: int, rounds: int,
                        seed: int, strict: bool = False) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Trace rows of `n_players` × `rounds` and the ground truth (one profile per player); flaws naming what
    the kitchen lacks are dropped (see :func:`profiles_from_config`), or an error with `strict`."""
    kinds, _ = profiles_from_config(population, spec, strict)
    shares = np.asarray([share for _, share in kinds], float)
    counts = np.floor(shares / shares.sum() * n_players).astype(int)
    counts[np.argsort(-(shares / shares.sum() * n_players - counts))[: n_players - counts.sum()]] += 1
    solver = ExactSolver(spec)
    rng = random.Random(seed)
    frames, truth = [], []
    player_index = 0
    for (profile, _), count in zip(kinds, counts):
        for _ in range(count):
            player_id = f"p{player_index:04d}"
            player = SyntheticPlayer(profile, solver, random.Random(rng.getrandbits(64)))
            for round_number in range(1, rounds + 1):
                frames.append(record_episode(spec, player.play(round_number), player_id, round_number,
                                             f"{player_id}-r{round_number}"))
            truth.append({"player_id": player_id, **profile.to_json()})
            player_index += 1
    return pd.concat(frames, ignore_index=True), truth


@dataclass
class TraineeState:
    """What a learning trainee carries from round to round (the study's simulated participants)."""

    player_id: str
    profile: PlayerProfile
    seed: int
    habit: dict[tuple[str, str], float] = field(default_factory=dict)
    compliance: float = 1.0
    rounds: int = 0
    last_ticks: dict[str, int] = field(default_factory=dict)  # per kitchen: the ticks of its latest round

    @classmethod
    def new(cls, player_id: str, profile: PlayerProfile, seed: int) -> "TraineeState":
        return cls(player_id, profile, seed, compliance=profile.compliance)

    def player(self, solver: ExactSolver, round_number: int) -> SyntheticPlayer:
        """The trainee as it plays round `round_number` in `solver`'s kitchen (its own random stream)."""
        return SyntheticPlayer(self.profile, solver, random.Random(self.seed * 1_000_003 + round_number), self.habit)

    def to_json(self) -> dict[str, Any]:
        return {"player_id": self.player_id, **self.profile.to_json(), "final_compliance": round(self.compliance, 4),
                "final_habit": {f"{w}/{k}": round(v, 4) for (w, k), v in self.habit.items()}}


def learn_from_round(trainee: TraineeState, kitchen: str, ticks: int, tip_shown: bool,
                     corrected: Sequence[tuple[str, str]] = ()) -> None:
    """After a round: compliance moves by the profile's step when a tip was shown (up when the round beat the
    trainee's previous one in this kitchen, down when not); each (worker, task type) habit that a followed tip
    corrected weakens by ``tip_learning``."""
    profile = trainee.profile
    previous = trainee.last_ticks.get(kitchen)
    if tip_shown and previous is not None:
        step = profile.compliance_step if ticks < previous else -profile.compliance_step
        trainee.compliance = float(np.clip(trainee.compliance + step, 0.0, 1.0))
    for pair in corrected:
        trainee.habit[pair] = trainee.habit.get(pair, 1.0) * (1.0 - profile.tip_learning)
    trainee.last_ticks[kitchen] = ticks
    trainee.rounds += 1
