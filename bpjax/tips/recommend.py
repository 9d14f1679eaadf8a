"""The tip stage: from the trainees' decisions to the tips worth showing them, each checked by simulation.

1. Candidates (:mod:`bpjax.tips.candidates`): the study's count tips, state tips and rule-list tips.
2. Each is scored per decision tick (:mod:`bpjax.tips.score`): first-order score, support, agreement.
3. The study's filters: support >= `min_support`, disagreement <= `max_disagreement`; and a positive score.
4. The top `simulate` of those (by score, or by agreement with ``rank_by="baseline"``), at most `per_family`
   of one advice family (worker, task type, advice), are simulated with π_H following each one
   (:mod:`bpjax.tips.simulate`, compliance "replan", paired seeds).
5. **Recommended**: the simulated tips whose gain at the first compliance level has an interval above zero
   (95%, simultaneous over the tips simulated: picking the best of several noisy estimates would otherwise
   recommend lucky draws), best simulated gain first. None may qualify: then no tip is recommended, which is
   an honest answer.

The simulation rests on π_H: its fidelity is reported as the ticks of π_H's own simulated rounds beside the
trainees' recorded ones.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from typing import Any, Mapping


from bpjax.data.traces import TraceSet
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.tips.candidates import Tip, count_tips, state_tips
from bpjax.tips.prescribe import Readings
from bpjax.tips.rules import RuleList, rule_lists
from bpjax.tips.score import JointCosts, TipScore, score_tips
from bpjax.tips.simulate import PolicyChooser, TipEvaluation, simulate_tips
from bpjax.tips.ticks import tick_table

RANKINGS = ("algorithm", "baseline")


@dataclass(frozen=True)
class TipSettings:
    min_support: float = 0.1         # share of decision ticks where a tip must apply (the study's 10 %)
    max_disagreement: float = 0.5    # share of those where π* may do otherwise
    simulate: int = 10               # candidates checked by simulation
    per_family: int = 2              # at most this many of one advice family among them
    rank_by: str = "algorithm"       # algorithm: first-order score | baseline: agreement with π*
    never: str = "idle"              # see bpjax.tips.prescribe
    exactly: str = "fill"
    max_predicates: int = 2          # state tips' conditions
    max_times: int | None = None     # count tips: j up to this (default: the number of orders)
    rule_lists: bool = True          # mine Bayesian rule lists as candidates too
    compliance: tuple[float, ...] = (1.0, 0.5)  # the first decides what is recommended
    eval_trainees: int = 32          # simulated trainees per arm
    eval_rounds: int = 2             # rounds each
    confidence: float = 0.95         # of the gains' intervals, simultaneous over the tips simulated
    seed: int = 0

    def __post_init__(self):
        _check_share("min_support", self.min_support)
        _check_share("max_disagreement", self.max_disagreement)
        for name, high in (("simulate", 1000), ("per_family", 1000), ("eval_trainees", 100_000), ("eval_rounds", 1000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigError(f"tips.{name}: expected an integer in 1..{high}, got {value!r}")
        if self.eval_trainees * self.eval_rounds < 2:
            raise ConfigError("tips.eval_trainees: with eval_rounds, at least 2 paired rounds are needed for a "
                              "confidence interval")
        if self.rank_by not in RANKINGS:
            raise ConfigError(f"tips.rank_by: expected one of {', '.join(RANKINGS)}, got {self.rank_by!r}")
        if not isinstance(self.max_predicates, int) or not 0 <= self.max_predicates <= 3:
            raise ConfigError(f"tips.max_predicates: expected 0 to 3, got {self.max_predicates!r}")
        if self.max_times is not None and (not isinstance(self.max_times, int) or not 0 <= self.max_times <= 1000):
            raise ConfigError(f"tips.max_times: expected an integer in 0..1000 or null, got {self.max_times!r}")
        if not self.compliance:
            raise ConfigError("tips.compliance: expected at least one compliance level")
        for value in self.compliance:
            _check_share("compliance", value)
        if not isinstance(self.confidence, float) or not 0.5 <= self.confidence < 1:
            raise ConfigError(f"tips.confidence: expected a probability in [0.5, 1), got {self.confidence!r}")
        Readings(self.never, self.exactly)

    @property
    def readings(self) -> Readings:
        return Readings(self.never, self.exactly)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], seed: int = 0) -> "TipSettings":
        """From the pipeline's `tips` config group; an unknown key is a ConfigError naming it."""
        known = {f.name for f in fields(cls)}
        values = dict(config)
        for key in values:
            if key not in known:
                raise ConfigError(f"tips.{key}: unknown setting (known: {', '.join(sorted(known - {'seed'}))})")
        if "compliance" in values:
            values["compliance"] = tuple(values["compliance"])
        return cls(**{"seed": seed, **values})


def _check_share(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"tips.{name}: expected a share in [0, 1], got {value!r}")


@dataclass
class SimulatedTip:
    scored: TipScore
    evaluations: list[TipEvaluation]  # one per compliance level

    @property
    def gain(self) -> float:
        return self.evaluations[0].saved

    @property
    def ci(self) -> tuple[float, float]:
        return self.evaluations[0].saved_ci


@dataclass
class TipReport:
    candidates: list[TipScore]        # every scored tip, best first-order score first
    simulated: list[SimulatedTip]     # the ones checked by simulation, in the order they were ranked
    recommended: list[SimulatedTip]   # gain's 95% interval above zero, best simulated gain first
    control: dict[str, float]         # π_H's own simulated rounds: mean ticks, share of suboptimal decision ticks
    trainee_ticks: float              # the trainees' recorded mean ticks (complete rounds)
    n_ticks: int                      # decision ticks in the data
    n_rounds: int
    rule_lists: list[RuleList] = field(default_factory=list)
    settings: TipSettings = field(default_factory=TipSettings)
    not_simulated: dict[int, str] = field(default_factory=dict)  # id(TipScore) -> why it was not simulated

    def eligible(self, scored: TipScore) -> bool:
        s = self.settings
        return scored.score > 0 and scored.support >= s.min_support and scored.disagreement <= s.max_disagreement

    def why_not(self, scored: TipScore) -> str:
        """Why a candidate is not recommended, in one phrase."""
        s = self.settings
        if scored.score <= 0:
            return f"first-order score {scored.score:.2f} <= 0: it gains nothing on the trainees' own decisions"
        if scored.support < s.min_support:
            return f"applies at {scored.support:.0%} of decision ticks, under the {s.min_support:.0%} required"
        if scored.disagreement > s.max_disagreement:
            return (f"pi* does otherwise at {scored.disagreement:.0%} of the ticks where it applies "
                    f"(more than {s.max_disagreement:.0%})")
        simulated = next((t for t in self.simulated if t.scored is scored), None)
        if simulated is None:  # passed the filters, yet not simulated: the per-family cap or the places
            return self.not_simulated.get(id(scored), "not simulated")
        low, high = simulated.ci
        if simulated.gain < 0:
            return f"following it lost ticks in simulation ({simulated.gain:.2f} [{low:.2f}, {high:.2f}])"
        return f"the simulated gain {simulated.gain:.2f} [{low:.2f}, {high:.2f}] does not exclude zero"

    def best_rejected(self) -> TipScore | None:
        chosen = {id(t.scored) for t in self.recommended}
        return next((c for c in self.candidates if id(c) not in chosen), None)


def candidate_tips(spec: KitchenSpec, settings: TipSettings, lists: list[RuleList] = ()) -> list[Tip]:
    """Count tips, then state tips (shorter conditions first), then rule tips: on equal effect the first is
    kept, so the simplest wording wins."""
    return (count_tips(spec, settings.max_times) + state_tips(spec, settings.max_predicates)
            + [tip for rule_list in lists for tip in rule_list.tips])


def to_simulate(report_candidates: list[TipScore], settings: TipSettings, eligible) -> list[TipScore]:
    """The top candidates by the chosen ranking, at most `per_family` per advice family."""
    return selection(report_candidates, settings, eligible)[0]


def selection(report_candidates: list[TipScore], settings: TipSettings, eligible
              ) -> tuple[list[TipScore], dict[int, str]]:
    """:func:`to_simulate`'s choice, and why each other candidate that passes the filters was not simulated
    (by ``id`` of its TipScore): its family was full (`per_family`) or the `simulate` places were taken."""
    ranked = [c for c in report_candidates if eligible(c)]
    order = "score"
    if settings.rank_by == "baseline":
        ranked = sorted(ranked, key=lambda c: (-c.agreement, -c.support))
        order = "agreement with pi*"
    chosen, per_family, left_out = [], {}, {}
    for rank, candidate in enumerate(ranked, start=1):
        family = (candidate.tip.advice, candidate.tip.worker, candidate.tip.task_type)
        if len(chosen) == settings.simulate:
            left_out[id(candidate)] = (f"the tips.simulate={settings.simulate} places were taken by candidates "
                                       f"ranked above it by {order} (it is #{rank} of the {len(ranked)} that "
                                       f"pass the filters)")
        elif per_family.get(family, 0) < settings.per_family:
            per_family[family] = per_family.get(family, 0) + 1
            chosen.append(candidate)
        else:
            left_out[id(candidate)] = (f"tips.per_family={settings.per_family}: that many tips of its family "
                                       f"(same worker, task type and advice) ranked above it by {order} "
                                       f"were simulated")
    return chosen, left_out


def mine_tips(traces: TraceSet, spec: KitchenSpec, env, env_params, optimum, trainee_policy,
              settings: TipSettings = TipSettings(), chooser_for=None, phase=None,
              costs: JointCosts | None = None) -> TipReport:
    """The whole tip stage on the trainees' traces; π_H (`trainee_policy`, fitted) is simulated unless
    `chooser_for` (see ``bpjax.tips.simulate.play_rounds``) supplies other simulated trainees. `phase(label)`,
    if given, is a context manager that times (and shows) each stage."""
    phase = phase or (lambda label: contextlib.nullcontext())
    probs = trainee_policy.probs(traces.obs, traces.mask)
    table = tick_table(traces, spec, probs)
    lists = []
    if settings.rule_lists:
        with phase("rule lists (Bayesian Rule Lists)"):
            q = optimum.q_values(traces)
            optimal = traces.mask & (q >= q.max(axis=1, keepdims=True) - optimum.tolerance)
            lists = rule_lists(traces.states, q, traces.action, spec, optimal=optimal, seed=settings.seed)
    with phase("scoring candidate tips per decision tick"):
        candidates = score_tips(table, candidate_tips(spec, settings, lists), optimum, settings.readings,
                                costs or JointCosts(optimum))
    complete = traces.rounds[traces.rounds["complete"]]
    report = TipReport(candidates, [], [], {}, float(complete["ticks"].mean()) if len(complete) else float("nan"),
                       len(table), table.n_rounds, lists, settings)
    chosen, report.not_simulated = selection(candidates, settings, report.eligible)
    chooser_for = chooser_for or (lambda trainee, round_number: PolicyChooser(trainee_policy))
    with phase(f"simulating {len(chosen)} tips ({settings.eval_trainees} trainees x {settings.eval_rounds} rounds, "
               f"{len(settings.compliance)} compliance level(s), paired with a control arm)"):
        control, evaluations = simulate_tips(env, env_params, spec, chooser_for, [c.tip for c in chosen], optimum,
                                             settings.compliance, settings.eval_trainees, settings.eval_rounds,
                                             settings.seed, settings.readings, settings.confidence)
    report.control = control
    report.simulated = [SimulatedTip(c, e) for c, e in zip(chosen, evaluations)]
    report.recommended = sorted((t for t in report.simulated if t.ci[0] > 0), key=lambda t: -t.gain)
    return report
