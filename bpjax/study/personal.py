"""Tips for each person, from that person's own decisions.

Each person is a noisy optimiser with habits (:class:`bpjax.imitation.habits.HabitModel`), their parameters
shrunk toward the population's: with few decisions a person *is* the population, and the tips mined for them
are the population's. Candidates are scored on the person's decision ticks exactly like
population tips (:mod:`bpjax.tips.score`), and the best few are simulated with the person's own policy
following them — every person's control and tips in one batch (:func:`bpjax.tips.simulate.simulate_groups`).
A person is recommended the tips whose simulated gain has its interval above zero, ranked by the person's own
first-order score (their decisions say where they lose ticks; the simulation says the tip helps someone
like them); a person with no costly habit gets none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpjax.data.traces import TraceSet
from bpjax.imitation.habits import HabitModel
from bpjax.tips.candidates import Tip
from bpjax.tips.recommend import SimulatedTip, TipSettings, to_simulate
from bpjax.tips.score import JointCosts, TipScore, score_tips
from bpjax.tips.simulate import simulate_groups
from bpjax.tips.ticks import tick_table


@dataclass
class PersonalTips:
    person: str
    recommended: list[SimulatedTip]           # simulated gain above zero; the person's own score ranks them
    candidates: list[TipScore] = field(default_factory=list)
    control_ticks: float = float("nan")       # the person's simulated rounds without a tip
    control_sd: float = float("nan")


@dataclass
class PersonalChooser:
    """The simulated copies of several people, each env choosing with its person's habit parameters from the
    exact Q* of the state it is in (looked up once per distinct state)."""

    model: HabitModel
    phi_of_env: np.ndarray   # float[B, D]
    q_values: object         # RefState -> float[A] (cached)
    n_slots: int

    def choose(self, rows, view, allowed, uniform):
        q = np.stack([self.q_values(state) for state in view.reference_states(rows, self.n_slots)])
        p = self.model.probs(self.phi_of_env[rows], q, allowed[rows])
        cumulative = np.cumsum(p, axis=1)
        pick = (cumulative < uniform[rows, None] * cumulative[:, -1:]).sum(axis=1)
        return np.minimum(pick, p.shape[1] - 1)


def personal_tips(traces: TraceSet, spec, env, params, optimum, model: HabitModel, candidates: list[Tip],
                  settings: TipSettings, costs: JointCosts | None = None, always: list[Tip] = ()
                  ) -> dict[str, PersonalTips]:
    """Per person of `traces` (whose parameters `model` already holds): candidates scored on their own
    decision ticks, the top `settings.simulate` simulated with their own policy — together with the `always`
    tips (the population's: a person who followed one shows no trace of the habit it corrects, so its score on
    their own decisions says nothing) — and the ones that help."""
    costs = costs or JointCosts(optimum)
    people = list(dict.fromkeys(traces.frame["player_id"]))
    scored, chosen = {}, {}
    for person in people:
        own = traces.of_players([person])
        table = tick_table(own, spec, model.probs(model.of(person), optimum.q_values(own), own.mask))
        scored[person] = score_tips(table, candidates, optimum, settings.readings, costs)
        eligible = lambda s: (s.score > 0 and s.support >= settings.min_support  # noqa: E731
                              and s.disagreement <= settings.max_disagreement)
        chosen[person] = to_simulate(scored[person], settings, eligible)
        own_tips = {c.tip for c in chosen[person]}
        chosen[person] += [_unscored(tip, spec) for tip in always if tip not in own_tips]
    person_array = np.asarray(people)

    def chooser_for(group, trainee, round_number):
        return PersonalChooser(model, np.stack([model.of(person) for person in person_array[group]]),
                               optimum.state_q, spec.n_slots)

    results = simulate_groups(env, params, spec, chooser_for, [[c.tip for c in chosen[p]] for p in people], optimum,
                              settings.compliance[:1], settings.eval_trainees, settings.eval_rounds, settings.seed,
                              settings.readings, settings.confidence)
    out = {}
    for person, (control, evaluations) in zip(people, results):
        simulated = [SimulatedTip(c, e) for c, e in zip(chosen[person], evaluations)]
        helps = [t for t in simulated if t.ci[0] > 0]
        # the person's own decisions say where they lose ticks: their score ranks what the simulation passed
        helps.sort(key=lambda t: (-np.nan_to_num(t.scored.score, nan=0.0), -t.gain))
        out[person] = PersonalTips(person, helps, scored[person], control["ticks"], control["ticks_sd"])
    return out


def _unscored(tip: Tip, spec) -> TipScore:
    return TipScore(tip, tip.text(spec), float("nan"), float("nan"), float("nan"), float("nan"), np.zeros(0, bool))
