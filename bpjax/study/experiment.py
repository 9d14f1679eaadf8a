"""A simulated between-subjects experiment: do tips help trainees, and do personal and dynamic ones help more?

Four arms see the same trainees (the same profiles and random streams, so the arms are paired) play the same
blocks of rounds (e.g. 3 burger rounds, then 3 pasta rounds, like the study's pilot):

* **control**: no tip;
* **static**: one tip per kitchen for everyone — the pipeline's #1, mined from a pilot sample of the same
  population (bottom quartile, π_H shrunk toward everyone's, simulated before it is shown);
* **personalised**: each trainee's own #1 tip, mined after every round from its habit model
  (:mod:`bpjax.study.personal`), which rests on all its decisions so far, in this kitchen and the kitchens of
  the blocks before; so a later block's first round already shows its own tip, mined from its habits before
  it plays there; with nothing known of it yet (the first block's first round), the population's;
* **dynamic**: a Bayesian bandit per trainee over the tips its latest mining recommends (at first the
  population's), updated by its observed ticks (:mod:`bpjax.study.bandit`).

Trainees learn (:class:`bpjax.data.players.TraineeState`): slips and flaws fade with experience, a followed
tip weakens the habit it corrects, compliance follows the pay-off. Every round of every arm is one batch of
the JAX env; suboptimal decisions are decision ticks whose joint assignment loses ticks against Q*.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from bpjax.data.players import (TraineeState, generate_population, learn_from_round, profiles_from_config)
from bpjax.data.traces import record_episode, validate_traces
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.imitation import make_policy
from bpjax.imitation.habits import HabitModel
from bpjax.imitation.shrinkage import ShrunkPolicy
from bpjax.solve.solver import ExactSolver
from bpjax.study.chooser import CHOSEN, TipChooser, population_tips
from bpjax.tips.candidates import Tip
from bpjax.tips.optimum import ExactOptimum
from bpjax.tips.recommend import TipReport, TipSettings, mine_tips
from bpjax.tips.score import JointCosts
from bpjax.tips.simulate import PlayerChooser, play_rounds, random_streams

ARMS = ("control", "static", "personalised", "dynamic")


@dataclass(frozen=True)
class Block:
    dish: str          # what the rounds are called in the results ("burger", "pasta")
    spec: KitchenSpec
    rounds: int


@dataclass(frozen=True)
class StudySettings:
    trainees: int = 160                # per arm
    arms: tuple[str, ...] = ARMS
    pilot_players: int = 40            # the sample the static tip is mined from, per kitchen
    pilot_rounds: int = 3
    strength: float = 5.0              # shrinkage of the pilot's π_H toward everyone's (decisions per state)
    penalty: float = 0.1               # prior precision of each person's habits around the population's
    population: TipSettings = field(default_factory=lambda: TipSettings(rule_lists=False))
    personal: TipSettings = field(default_factory=lambda: TipSettings(
        rule_lists=False, simulate=3, per_family=1, max_predicates=1, compliance=(1.0,), eval_trainees=48,
        eval_rounds=1))
    prior_inflation: float = 2.0       # the dynamic bandit's prior: the simulated interval, this much wider
    seed: int = 0

    def __post_init__(self):
        for name in ("trainees", "pilot_players", "pilot_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms or len(set(self.arms)) != len(self.arms):
            raise ConfigError(f"arms: expected distinct arms among {', '.join(ARMS)}, got {list(self.arms)}")
        if not self.strength > 0:
            raise ConfigError(f"strength: expected decisions > 0, got {self.strength!r}")
        if not self.prior_inflation >= 1:
            raise ConfigError(f"prior_inflation: expected >= 1, got {self.prior_inflation!r}")


@dataclass
class RoundResult:
    arm: str
    round: int
    dish: str
    ticks: np.ndarray           # int[trainees]
    suboptimal: np.ndarray      # float[trainees, 2]: suboptimal decision ticks, decision ticks
    tips: list[str | None]      # the tip each trainee was shown


@dataclass
class StudyResult:
    rounds: list[RoundResult]
    population_tips: dict[str, list[dict]]   # per dish: the pilot's recommended tips
    trainees: list[dict]                     # ground truth (profiles, final state in the last arm)
    settings: StudySettings
    seconds: float
    kinds: list[str] = field(default_factory=list)                    # each trainee's profile kind
    final_habits: dict[str, list[dict]] = field(default_factory=dict)  # arm -> per trainee, habits a tip weakened
    timing: dict[str, float] = field(default_factory=dict)            # seconds per part of the study


def assign_profiles(population: Sequence[Mapping[str, Any]], spec: KitchenSpec, n: int) -> list:
    """n profiles in the population's shares (largest remainders), in a fixed order."""
    kinds, _ = profiles_from_config(population, spec)
    shares = np.asarray([share for _, share in kinds], float)
    counts = np.floor(shares / shares.sum() * n).astype(int)
    counts[np.argsort(-(shares / shares.sum() * n - counts))[: n - counts.sum()]] += 1
    return [profile for (profile, _), count in zip(kinds, counts) for _ in range(count)]


def mine_population(block: Block, population, settings: StudySettings, seed: int, env, params, optimum,
                    costs: JointCosts) -> tuple[TipReport, object]:
    """The pipeline's tip stage on a pilot sample of the population in this kitchen; also returns the habit
    model of the pilot's players, the prior of each person's."""
    frame, _ = generate_population(block.spec, population, settings.pilot_players, settings.pilot_rounds, seed)
    traces = validate_traces(frame, f"pilot {block.dish}")
    prior = make_policy("forest", env, params, seed=seed).fit(traces.obs, traces.mask, traces.action)
    bottom = traces.of_players(traces.bottom_players(0.25)[0])
    trainee = ShrunkPolicy(make_policy("forest", env, params, seed=seed), prior, settings.strength).fit(
        bottom.obs, bottom.mask, bottom.action)
    report = mine_tips(bottom, block.spec, env, params, optimum, trainee, replace(settings.population, seed=seed),
                       costs=costs)
    habits = HabitModel.for_kitchen(block.spec, settings.penalty).fit_population(
        optimum.q_values(traces), traces.mask, traces.action, traces.frame["player_id"].to_numpy())
    return report, habits


def corrected_pairs(tip: Tip, spec: KitchenSpec) -> list[tuple[str, str]]:
    """The (worker, task type) habits a followed tip weakens: the ones following it rules out
    (:meth:`bpjax.tips.candidates.Tip.rules_out`; for "assign w to k", what w did instead of k)."""
    return [(spec.workers[w].name, spec.task_types[k]) for w, k in tip.rules_out(spec)]


def run_study(blocks: Sequence[Block], population: Sequence[Mapping[str, Any]], settings: StudySettings = StudySettings(),
              progress: Callable[[str], None] | None = None) -> StudyResult:
    say = progress or (lambda message: None)
    started = time.perf_counter()
    clock = _Clock()
    rng = np.random.default_rng(settings.seed)
    profiles = assign_profiles(population, blocks[0].spec, settings.trainees)
    seeds = rng.integers(0, 2**31, settings.trainees)
    ids = [f"t{i:03d}" for i in range(settings.trainees)]
    trainees = {arm: [TraineeState.new(pid, profile, int(seed)) for pid, profile, seed in zip(ids, profiles, seeds)]
                for arm in settings.arms}
    # arm -> person -> their decisions in the kitchens before
    earlier: dict[str, dict[str, list]] = {arm: {} for arm in settings.arms}
    results, population_recommended = [], {}
    round_number = 0
    for b, block in enumerate(blocks):
        spec = block.spec
        with clock("pilots"):
            solver = ExactSolver(spec)
            env, params = make_kitchen(spec)
            optimum = ExactOptimum(solver)
            costs = JointCosts(optimum)
            say(f"{block.dish}: pilot of {settings.pilot_players} players, the population's tips")
            pilot, habits = mine_population(block, population, settings, settings.seed + 1000 + b, env, params,
                                            optimum, costs)
        population_recommended[block.dish] = [{"text": t.scored.text, "simulated_gain": round(t.gain, 3),
                                               "simulated_gain_ci": [round(x, 3) for x in t.ci]}
                                              for t in pilot.recommended]
        choosers = {arm: TipChooser(arm, spec, env, params, optimum, population_tips(pilot), habits,
                                    (pilot.control["ticks"], pilot.control["ticks_sd"]), settings.personal,
                                    settings.prior_inflation, settings.seed + 17 * b, costs, earlier[arm])
                    for arm in settings.arms}
        for arm, chooser in choosers.items():  # a person's habits from the kitchens before: their tips here
            carried = [pid for pid in ids if earlier[arm].get(pid)]
            if chooser.mode in CHOSEN and carried:
                say(f"  {arm}: mining each trainee's tips for {block.dish} from its habits so far")
                with clock("personal mining"):
                    chooser.remine(carried)
        for r in range(block.rounds):
            round_number += 1
            say(f"round {round_number} ({block.dish}): {len(settings.arms)} arms x {settings.trainees} trainees")
            arm_of = np.repeat(np.arange(len(settings.arms)), settings.trainees)
            who = np.tile(np.arange(settings.trainees), len(settings.arms))
            states = [trainees[settings.arms[a]][t] for a, t in zip(arm_of, who)]
            tips = [choosers[settings.arms[a]].tip_for(ids[t]) for a, t in zip(arm_of, who)]
            u_decision, u_tick = random_streams(spec, settings.trainees, settings.seed * 7919 + round_number)
            players = [state.player(solver, round_number) for state in states]
            with clock("rounds: play"):
                played = play_rounds(env, params, spec, PlayerChooser(players, spec.n_slots), tips,
                                     np.asarray([s.compliance if tip is not None else 0.0
                                                 for s, tip in zip(states, tips)]),
                                     u_decision[who], u_tick[who], who, np.full(len(who), round_number),
                                     settings.personal.readings)
            with clock("rounds: judging decisions"):
                bad = optimum.suboptimal_joints(played.tick_states, played.tick_joints)
            suboptimal = np.stack([np.bincount(played.tick_round, weights=bad, minlength=len(tips)),
                                   np.bincount(played.tick_round, minlength=len(tips)).astype(float)], axis=1)
            with clock("rounds: recording, habit fits"):
                for a, arm in enumerate(settings.arms):
                    rows = np.flatnonzero(arm_of == a)
                    frame = pd.concat([record_episode(spec, played.actions[i], ids[who[i]], round_number,
                                                      f"{arm}-{ids[who[i]]}-r{round_number}") for i in rows],
                                      ignore_index=True)
                    followed = choosers[arm].record(frame, {ids[who[i]]: int(played.ticks[i]) for i in rows})
                    for i in rows:
                        pid, tip = ids[who[i]], tips[i]
                        learn_from_round(trainees[arm][who[i]], block.dish, int(played.ticks[i]), tip is not None,
                                         corrected_pairs(tip, spec) if followed[pid] else [])
                    results.append(RoundResult(arm, round_number, block.dish, played.ticks[rows].copy(),
                                               suboptimal[rows], [None if tips[i] is None else tips[i].text(spec)
                                                                  for i in rows]))
            if r + 1 < block.rounds:  # re-mine each trainee's own tips for the next round
                for arm in settings.arms:
                    if choosers[arm].mode in CHOSEN:
                        say(f"  {arm}: mining each trainee's own tips from its rounds so far")
                        with clock("personal mining"):
                            choosers[arm].remine()
        for arm, chooser in choosers.items():  # what this kitchen showed of each person, for the next
            for pid in ids:
                decisions = chooser.decisions_of(pid)
                if decisions is not None:
                    earlier[arm].setdefault(pid, []).append(decisions)
    truth = [state.to_json() for state in trainees[settings.arms[-1]]]
    final = {arm: [{f"{w}/{k}": round(v, 4) for (w, k), v in state.habit.items()} for state in trainees[arm]]
             for arm in settings.arms}
    return StudyResult(results, population_recommended, truth, settings, time.perf_counter() - started,
                       [profile.kind for profile in profiles], final, clock.seconds)


class _Clock:
    """Seconds spent per part of the study (a part may be entered many times)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, part: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start
