"""Which tip each person is shown next, in one kitchen: the rule of one arm of the experiment, and of the game's
``tip.mode``.

* ``control``: none;
* ``static``: the population's #1 (mined from earlier trainees by the pipeline's tip stage);
* ``personalised``: the person's own #1 (:mod:`bpjax.study.personal`), re-mined after every round from their
  habit model; before anything is known of them, and when nothing new helps, the tip they have (or the
  population's);
* ``dynamic``: a Bayesian bandit per person (:mod:`bpjax.study.bandit`) over the tips the person's latest
  mining recommends — those against the person's own habits when some help, else all that help (before any
  mining, the population's) — updated by the person's observed ticks.

A person's habits are read off their choices *among what the tip shown left them* (a tip that forbids the chef
to plate hides whether this person would have), by the habit model (:class:`bpjax.imitation.habits.HabitModel`),
from all their decisions so far: in this kitchen, and in the `earlier` kitchens with the same workers and task
types (another dish, other orders), whose decisions carry over as the person's deviation from the population.
So a person who comes with earlier decisions can be mined (:meth:`TipChooser.remine`) before their first round
here, and is shown their own tip from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bpjax.data.traces import validate_traces
from bpjax.imitation.habits import Decisions, HabitModel
from bpjax.study.bandit import TipBandit
from bpjax.study.personal import personal_tips
from bpjax.tips.candidates import Tip, count_tips, state_tips
from bpjax.tips.prescribe import TickContext, prescribe
from bpjax.tips.recommend import TipSettings
from bpjax.tips.score import JointCosts
from bpjax.tips.simulate import constrain
from bpjax.tips.ticks import tick_table

MODES = ("control", "static", "personalised", "dynamic")
CHOSEN = ("personalised", "dynamic")   # the modes that follow each person's habits


@dataclass(frozen=True)
class PopulationTip:
    tip: Tip
    gain: float                      # simulated gain per round
    ci: tuple[float, float]


@dataclass
class TipChooser:
    mode: str
    spec: object                     # KitchenSpec
    env: object
    params: object
    optimum: object                  # ExactOptimum
    population: list[PopulationTip]  # the population's recommended tips, best first
    habits: HabitModel               # fitted on the population (people are added as they play)
    control: tuple[float, float]     # the population's simulated ticks without a tip: mean, sd
    settings: TipSettings = field(default_factory=lambda: TipSettings(
        rule_lists=False, simulate=3, per_family=1, max_predicates=1, compliance=(1.0,), eval_trainees=32,
        eval_rounds=1))
    prior_inflation: float = 2.0
    seed: int = 0
    costs: JointCosts | None = None
    earlier: dict[str, list[Decisions]] = field(default_factory=dict)  # person -> decisions in other kitchens
    score_rounds: int = 8            # simulated rounds of a person's model that their candidates are scored on
    shown: dict[str, Tip | None] = field(default_factory=dict, init=False)
    decisions: dict[str, list] = field(default_factory=dict, init=False)  # (q, choice set, action) per round
    bandits: dict[str, TipBandit] = field(default_factory=dict, init=False)
    expected: dict[str, tuple[float, float]] = field(default_factory=dict, init=False)
    drawn: set = field(default_factory=set, init=False)   # people whose tip the bandit drew for the next round
    minings: int = field(default=0, init=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        self.habits = replace(self.habits, people={})
        self.costs = self.costs or JointCosts(self.optimum)
        self.rng = np.random.default_rng(self.seed)
        self.candidates = count_tips(self.spec) + state_tips(self.spec, self.settings.max_predicates)

    # ---- what a person sees ----------------------------------------------------------------------
    def tip_for(self, person: str) -> Tip | None:
        """The tip `person` is shown in their next round (a new person: their mined tip if :meth:`remine` ran
        for them, else the population's #1; for the dynamic mode a draw from their bandit)."""
        if self.mode == "control":
            return None
        self._meet(person)
        if self.mode == "dynamic" and person not in self.drawn:
            self.shown[person] = self.bandits[person].choose(self.rng)
            self.drawn.add(person)
        return self.shown[person]

    def _meet(self, person: str) -> None:
        if person in self.shown:
            return
        self.shown[person] = self.population[0].tip if self.population else None
        if self.mode == "dynamic":
            bandit = self.bandits[person] = TipBandit(self.prior_inflation)
            for t in self.population:
                bandit.offer(t.tip, t.gain, t.ci)
            self.expected[person] = (self.control[0], max(self.control[1], 1.0) ** 2)

    # ---- what a round tells -----------------------------------------------------------------------
    def record(self, frame: pd.DataFrame, ticks: dict[str, int]) -> dict[str, bool]:
        """A round of several people (trace rows; each person played with `tip_for(person)`): their habits, the
        bandits, and whether each followed their tip for the whole round (returned)."""
        spec, readings = self.spec, self.settings.readings
        if self.mode == "control":  # nothing shown, nothing to learn about anyone's habits
            return dict.fromkeys(frame["player_id"], False)
        traces = validate_traces(frame, "round")
        table = tick_table(traces, spec)
        tick_of_row = np.cumsum(np.isin(np.arange(len(traces.action)), table.first_row)) - 1
        choice_set = traces.mask.copy()  # what each decision was chosen from: the tip's allowed actions
        followed = {}
        for person in dict.fromkeys(traces.frame["player_id"]):
            tip = self.shown.get(person) if self.mode != "control" else None
            mine = np.flatnonzero(table.player == person)
            done = False
            if tip is not None:
                applies, new = prescribe(tip, TickContext.of(table, mine), table.joint[mine], spec, readings)
                done = bool(applies.any() and (new[applies] == table.joint[mine][applies]).all())
                rows = np.flatnonzero(np.isin(tick_of_row, mine))
                allowed = traces.mask[rows].copy()
                constrain(tip, allowed, traces.mask[rows], table.count[tick_of_row[rows]],
                          table.features[tick_of_row[rows]], spec, readings)
                complied = allowed[np.arange(len(rows)), traces.action[rows]]
                choice_set[rows[complied]] = allowed[complied]
                if self.mode == "dynamic":
                    control, noise = self.expected[person]
                    self.bandits[person].observe(tip, control - float(ticks[person]), noise)
            followed[person] = done
        if self.mode in CHOSEN:  # only these modes read a person's habits
            q = self.optimum.q_values(traces)
            player_of_row = traces.frame["player_id"].to_numpy()
            for person in followed:
                own = player_of_row == person
                self.decisions.setdefault(person, []).append((q[own], choice_set[own], traces.action[own]))
                self.habits.fit_person(person, *(np.concatenate(part) for part in zip(*self.decisions[person])),
                                       earlier=self.earlier.get(person, ()))
        self.drawn.difference_update(followed)
        return followed

    def decisions_of(self, person: str) -> Decisions | None:
        """The person's decisions in this kitchen, for the next kitchen's chooser (its `earlier`)."""
        if person not in self.decisions:
            return None
        return self.habits.decisions(*(np.concatenate(part) for part in zip(*self.decisions[person])))

    def remine(self, people=None) -> None:
        """Mine the personal tips of `people` (default: everyone with decisions here) from their habit models:
        their decisions here and in earlier kitchens (a person with neither is the population)."""
        if self.mode not in CHOSEN:
            return
        people = list(self.decisions) if people is None else list(people)
        if not people:
            return
        for person in people:
            self._meet(person)
            if person not in self.habits.people:  # not played here yet: what the earlier kitchens say
                self.habits.carry(person, self.earlier.get(person, ()))
        mined = personal_tips(people, self.spec, self.env, self.params, self.optimum, self.habits, self.candidates,
                              replace(self.settings, seed=self.seed + 7919 * self.minings), self.costs,
                              always=[t.tip for t in self.population], score_rounds=self.score_rounds)
        self.minings += 1
        for person in people:
            own = mined[person]
            if self.mode == "personalised":  # the best that helps; with none, no reason to stop the current
                if own.recommended:
                    self.shown[person] = own.recommended[0].scored.tip
            else:
                bandit = self.bandits[person]
                for t in own.recommended:
                    bandit.offer(t.scored.tip, t.gain, t.ci)
                # the tips against the person's own habits when some help, as the personalised mode ranks them
                bandit.keep_active(own.against or {t.scored.tip for t in own.recommended})
                self.expected[person] = (own.control_ticks, max(own.control_sd, 1.0) ** 2)


def population_tips(report) -> list[PopulationTip]:
    """A tip stage's recommended tips (``bpjax.tips.recommend.TipReport``) as the choosers' candidates."""
    return [PopulationTip(t.scored.tip, t.gain, t.ci) for t in report.recommended]



def chooser_from_files(mode: str, spec, tips_file, traces_path=None, seed: int = 0) -> TipChooser:
    """A chooser for the game: the population's tips from a pipeline's ``tips.json`` (its recommended list), and
    for the personalised and dynamic modes the population's habits fitted on `traces_path` (the traces that
    tips.json was mined from, e.g. the game's own earlier wave). ValueError naming what is missing."""
    import json
    from pathlib import Path

    from bpjax.data.traces import read_traces
    from bpjax.env.kitchen import make_kitchen
    from bpjax.solve.solver import ExactSolver
    from bpjax.tips.candidates import tip_from_json
    from bpjax.tips.optimum import ExactOptimum

    payload = json.loads(Path(tips_file).read_text(encoding="utf-8"))
    recommended = payload.get("recommended") if isinstance(payload, dict) else None
    if not isinstance(recommended, list):
        raise ValueError(f"tip.file: {tips_file} is not a pipeline's tips.json (no 'recommended' list)")
    tips = [PopulationTip(tip_from_json(t, spec), float(t["simulated_gain"]), tuple(t["simulated_gain_ci"]))
            for t in recommended]
    optimum = ExactOptimum(ExactSolver(spec))
    habits = HabitModel.for_kitchen(spec)
    if mode in ("personalised", "dynamic"):
        if traces_path is None:
            raise ValueError(f"tip.traces: tip.mode={mode} needs the traces tips.json was mined from")
        traces = read_traces(traces_path)
        if traces.spec is not None and traces.spec.to_dict() != spec.to_dict():
            raise ValueError(f"tip.traces: {traces_path} holds rounds of another kitchen than the game's")
        habits.fit_population(optimum.q_values(traces), traces.mask, traces.action,
                              traces.frame["player_id"].to_numpy())
    trainees = payload.get("trainees") or {}
    control = (float(trainees.get("policy_simulated_ticks", spec.max_ticks)), 3.0)
    env, params = make_kitchen(spec)
    return TipChooser(mode, spec, env, params, optimum, tips, habits, control, seed=seed)
