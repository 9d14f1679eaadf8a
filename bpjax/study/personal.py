"""Tips for each person, mined from that person's habit model.

Each person is a noisy optimiser with habits (:class:`bpjax.imitation.habits.HabitModel`): about ten parameters,
fitted on all their decisions so far — in this kitchen and in earlier kitchens with the same workers and task
types — and shrunk toward the population's, so a person with few decisions *is* the population. Their tips are
mined as the pipeline mines a population's, with the person's model in π_H's place:

1. the person's model plays `score_rounds` rounds of this kitchen without a tip;
2. every candidate is scored on those decision ticks (:mod:`bpjax.tips.score`), and the top
   `settings.simulate` that pass the study's filters (support, disagreement, a positive score) are simulated
   with the person's model following each, together with the best that pass them among the tips against each
   of the person's **own habits** — the (worker, task type) families whose θ exceeds the population's by more
   than `distinct` (e^2: seven times as likely); a tip against that habit alone ("the chef should never
   plate") before one that forbids more ("leave the chef idle") — and the `always` tips (the population's),
   paired with a control arm on other random streams (:func:`bpjax.tips.simulate.simulate_groups`);
3. the tips whose simulated gain has its interval above zero are recommended: those against the person's own
   habits first, then the others, each best simulated gain first; a person with no costly habit gets none.

Why own habits first: the model is a simple one (one β for every family), and a person's sharp, costly
habit (a sous-chef who cooks whatever it costs) reads partly as general carelessness, so in simulation the
population's tip can look as good for them as the tip against their own habit. What distinguishes a person
from the population is what their θ says best; the simulation then checks that a tip against it helps.

Everything rests on the model, not on the ticks the person happened to play: so a person can be mined for a
kitchen they have not played yet (their habits from the others), and one round's decisions move their tips
through their parameters. Everyone is mined at once: one batch of simulated rounds for the scores, one for
the tips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from bpjax.imitation.habits import HabitModel
from bpjax.tips.candidates import Tip
from bpjax.tips.recommend import SimulatedTip, TipSettings, to_simulate
from bpjax.tips.score import JointCosts, TipScore, score_tips_by_group
from bpjax.tips.simulate import play_rounds, random_streams, simulate_groups

SCORE_STREAMS = 104_729  # scoring rounds on other streams than the evaluation's: no tip picked and judged on one draw


@dataclass
class PersonalTips:
    person: str
    recommended: list[SimulatedTip]           # simulated gain above zero; against the person's habits first
    candidates: list[TipScore] = field(default_factory=list)
    control_ticks: float = float("nan")       # the person's simulated rounds without a tip
    control_sd: float = float("nan")
    habits: list[tuple[int, int]] = field(default_factory=list)  # the person's own: (worker, task type)
    against: set = field(default_factory=set)  # the recommended tips that work against one of those habits


@dataclass
class PersonalChooser:
    """The simulated copies of several people, each env choosing with its person's habit parameters from the
    exact Q* of the state it is in (looked up by state, once per distinct state)."""

    model: HabitModel
    phi_of_env: np.ndarray   # float[B, D]
    q_values: Callable       # (tick, done_bits, worker_slot, worker_until) -> float[N, A]

    def choose(self, rows, view, allowed, uniform):
        q = self.q_values(*view.arrays(rows))
        p = self.model.probs(self.phi_of_env[rows], q, allowed[rows])
        cumulative = np.cumsum(p, axis=1)
        pick = (cumulative < uniform[rows, None] * cumulative[:, -1:]).sum(axis=1)
        return np.minimum(pick, p.shape[1] - 1)


def personal_tips(people: Sequence[str], spec, env, params, optimum, model: HabitModel, candidates: list[Tip],
                  settings: TipSettings, costs: JointCosts | None = None, always: Sequence[Tip] = (),
                  score_rounds: int = 8, distinct: float = 2.0) -> dict[str, PersonalTips]:
    """Per person (whose parameters `model` holds, or the population's), their recommended tips in this kitchen:
    candidates scored on `score_rounds` simulated rounds of their model, the best few simulated with their
    model following each — together with the `always` tips (the population's: a person who follows one shows
    little trace of the habit it corrects, so the score alone would drop it) — and the ones that help."""
    costs = costs or JointCosts(optimum)
    people = list(people)
    if not people:
        return {}
    phi = np.stack([model.of(person) for person in people])

    # 1. each person's own rounds, no tip: the ticks their candidates are scored on
    person_of = np.repeat(np.arange(len(people)), score_rounds)
    u_decision, u_tick = random_streams(spec, len(person_of), settings.seed + SCORE_STREAMS)
    played = play_rounds(env, params, spec, PersonalChooser(model, phi[person_of], optimum.q_of_arrays),
                         [None] * len(person_of), np.zeros(len(person_of)), u_decision, u_tick, person_of,
                         np.ones(len(person_of), np.int64), settings.readings)
    q = optimum.q_of_arrays(*played.tick_arrays)
    probs = model.probs(phi[person_of[played.tick_round]], q, played.tick_mask)
    table = played.tick_table(spec, person_of, probs)
    scored = score_tips_by_group(table, candidates, optimum, table.player, len(people), settings.readings, costs)

    # 2. the best few of each, and the population's, simulated with the person following them
    def eligible(s: TipScore) -> bool:
        return s.score > 0 and s.support >= settings.min_support and s.disagreement <= settings.max_disagreement

    n_types = len(spec.task_types)
    excess = phi[:, 1:] - model.population[1:]                 # [people, W * K]: θ above the population's
    habits = [[divmod(int(f), n_types) for f in np.argsort(-row)[:2] if row[f] > distinct] for row in excess]
    chosen, against = [], []
    for own, mine in zip(scored, habits):
        picked = to_simulate(own, settings, eligible)
        tips = {c.tip for c in picked}
        for habit in mine:  # the best-scored tip against each own habit, the ones against it alone first
            against_it = [c for c in own if eligible(c) and habit in c.tip.rules_out(spec)]
            best = next((c for c in against_it if c.tip.rules_out(spec) == [habit]), None) or \
                next(iter(against_it), None)
            if best is not None and best.tip not in tips:
                picked.append(best)
                tips.add(best.tip)
        chosen.append(picked + [_unscored(tip, spec) for tip in always if tip not in tips])
        against.append({c.tip for c in picked if set(c.tip.rules_out(spec)) & set(mine)})
    results = simulate_groups(env, params, spec,
                              lambda group, trainee, round_number: PersonalChooser(model, phi[group],
                                                                                   optimum.q_of_arrays),
                              [[c.tip for c in tips] for tips in chosen], optimum, settings.compliance[:1],
                              settings.eval_trainees, settings.eval_rounds, settings.seed, settings.readings,
                              settings.confidence, suboptimal=False)
    out = {}
    for person, own, tips, targeted, mine, (control, evaluations) in zip(people, scored, chosen, against, habits,
                                                                         results):
        simulated = [SimulatedTip(c, e) for c, e in zip(tips, evaluations)]
        helps = sorted((t for t in simulated if t.ci[0] > 0), key=lambda t: (t.scored.tip not in targeted, -t.gain))
        out[person] = PersonalTips(person, helps, own, control["ticks"], control["ticks_sd"], mine,
                                   {t.scored.tip for t in helps} & targeted)
    return out


def _unscored(tip: Tip, spec) -> TipScore:
    return TipScore(tip, tip.text(spec), float("nan"), float("nan"), float("nan"), float("nan"), np.zeros(0, bool))
