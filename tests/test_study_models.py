"""The next phase's models: trainees who learn, the habit model of a person's choices, the tip bandit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bpjax.data.players import PlayerProfile, SyntheticPlayer, TraineeState, learn_from_round
from bpjax.imitation.habits import HabitModel, action_families
from bpjax.solve.solver import ExactSolver
from bpjax.study.bandit import TipBandit
from bpjax.tips.candidates import Tip
from tests.conftest import spec_for


# ---- habits ------------------------------------------------------------------------------------------

def simulated_choices(model: HabitModel, phi: np.ndarray, q: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    p = model.probs(phi, q, mask)
    rng = np.random.default_rng(seed)
    return np.asarray([rng.choice(len(row), p=row) for row in p])


@pytest.fixture(scope="module")
def decision_q(paper_spec):
    """Q* at the states of random play of the paper kitchen: what the habit model reads."""
    from bpjax.env.reference import ReferenceKitchen

    solver, ref = ExactSolver(paper_spec), ReferenceKitchen(paper_spec.to_dict())
    rng, q, mask = random.Random(0), [], []
    state = ref.reset()
    while len(q) < 1500:
        if any(ref.is_over(state)):
            state = ref.reset()
        q.append(solver.q_values(state))
        mask.append(ref.action_mask(state))
        state = ref.step(state, rng.choice(ref.legal_actions(state)))[0]
    return np.asarray(q), np.asarray(mask)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_habit_model_recovers_the_parameters_it_was_simulated_with(paper_spec, decision_q, seed):
    q, mask = decision_q
    model = HabitModel.for_kitchen(paper_spec)
    truth = np.random.default_rng(seed).normal(0, 1, model.n_params)
    truth[0] = 1.5  # how sharply the simulated trainee prefers better actions
    chosen = simulated_choices(model, truth, q, mask, seed)
    fitted = model.fit(q, mask, chosen, penalty=1e-3)
    # every parameter within a tolerance that 1,500 choices allow (families seldom legal are loosest)
    assert abs(fitted[0] - truth[0]) < 0.35
    assert np.median(np.abs(fitted - truth)) < 0.35


def test_a_person_is_the_population_until_their_decisions_say_otherwise(paper_spec, decision_q):
    q, mask = decision_q
    model = HabitModel.for_kitchen(paper_spec, penalty=1.0)
    population = np.zeros(model.n_params)
    population[0] = 1.0
    model.fit_population(q, mask, simulated_choices(model, population, q, mask, 0))
    assert np.array_equal(model.of("nobody"), model.population)
    families = action_families(paper_spec)
    server_cook = 2 * len(paper_spec.task_types) + 1
    habit = population.copy()
    habit[1 + server_cook] = 4.0  # this person lets the server cook far more than the population
    few, many = (model.fit_person(name, q[:n], mask[:n], simulated_choices(model, habit, q[:n], mask[:n], 1))[1 + server_cook]
                 for name, n in (("few", 40), ("many", 1500)))
    base = model.population[1 + server_cook]
    assert base < few < many and abs(many - 4.0) < 1.0
    assert families[2 * paper_spec.n_slots + 1] == server_cook  # the server given a cook subtask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_habits_carry_across_kitchens_with_the_same_workers(paper_spec, decision_q, seed):
    """A person's decisions in one kitchen move their parameters in another kitchen with the same workers and
    task types (their deviation from that kitchen's population), and more decisions move them further; decisions
    of a kitchen with other workers are not mixed in."""
    from dataclasses import replace

    from bpjax.imitation.habits import family_names

    q, mask = decision_q
    here = HabitModel.for_kitchen(paper_spec, penalty=1.0)
    server_cook = 1 + 2 * len(paper_spec.task_types) + 1
    rng = np.random.default_rng(seed)
    here.population = np.r_[1.0, rng.normal(0, 0.5, here.n_params - 1)]
    other = replace(here, people={})    # the other kitchen: its population differs
    other.population = here.population + rng.normal(0, 0.5, here.n_params)
    habit = other.population.copy()
    habit[server_cook] += 4.0           # in the other kitchen, this person lets the server cook far more
    earlier = [other.decisions(q[:n], mask[:n], simulated_choices(other, habit, q[:n], mask[:n], seed))
               for n in (60, 1500)]
    few, many = (here.carry(name, [d])[server_cook] - here.population[server_cook]
                 for name, d in (("few", earlier[0]), ("many", earlier[1])))
    assert 0.3 < few < many and abs(many - 4.0) < 1.0
    assert np.array_equal(here.carry("nobody", []), here.population)
    elsewhere = replace(earlier[1], names=family_names(paper_spec)[::-1])  # another kitchen's workers
    assert np.array_equal(here.carry("stranger", [elsewhere]), here.population)
    # and this kitchen's own decisions count with the earlier ones
    mine = simulated_choices(here, here.population, q[:200], mask[:200], seed + 1)
    both = here.fit_person("both", q[:200], mask[:200], mine, earlier=[earlier[1]])
    alone = here.fit_person("alone", q[:200], mask[:200], mine)
    assert both[server_cook] - alone[server_cook] > 1.0


# ---- trainees who learn --------------------------------------------------------------------------------

def test_compliance_follows_the_pay_off_and_a_followed_tip_weakens_the_habit(paper_spec):
    profile = PlayerProfile("chef_plates", flaws=(("chef", "plate"),), compliance=0.5, compliance_step=0.1,
                            tip_learning=0.8)
    trainee = TraineeState.new("t", profile, seed=3)
    learn_from_round(trainee, "burger", 25, tip_shown=False)
    learn_from_round(trainee, "burger", 22, tip_shown=True, corrected=[("chef", "plate")])  # shorter: paid off
    assert trainee.compliance == pytest.approx(0.6) and trainee.habit[("chef", "plate")] == pytest.approx(0.2)
    learn_from_round(trainee, "burger", 24, tip_shown=True)  # longer: did not
    assert trainee.compliance == pytest.approx(0.5) and trainee.rounds == 3
    learn_from_round(trainee, "pasta", 30, tip_shown=True)  # a new kitchen has no previous round to beat
    assert trainee.compliance == pytest.approx(0.5)


def flaw_share(spec, profile, habit, round_number, seeds=range(6)) -> float:
    """Share of the chef's open plate chances it takes, over several rounds and seeds."""
    solver, taken, chances = ExactSolver(spec), 0, 0
    for seed in seeds:
        player = SyntheticPlayer(profile, solver, random.Random(seed), dict(habit))
        sim, state = solver.sim, solver.sim.reset()
        while not any(sim.is_over(state)) and state.tick < spec.max_ticks:
            legal = sim.legal_actions(state)
            plates = [a for a in legal if a < sim.end_tick_action and a // sim.n_slots == 0
                      and spec.slot_types[a % sim.n_slots] == 2]
            action = player.act(state, round_number)
            chances += bool(plates)
            taken += action in plates
            state = sim.step(state, action)[0]
    return taken / max(chances, 1)


def test_habits_fade_with_experience_and_with_a_followed_tip(paper_spec):
    profile = PlayerProfile("chef_plates", base="optimal", flaws=(("chef", "plate"),), flaw_rate=0.9, epsilon=0.0,
                            flaw_decay=0.5)
    first, later = flaw_share(paper_spec, profile, {}, 1), flaw_share(paper_spec, profile, {}, 4)
    taught = flaw_share(paper_spec, profile, {("chef", "plate"): 0.0}, 1)
    assert first > 0.6 and later < first / 2 and taught == 0.0


# ---- the bandit ------------------------------------------------------------------------------------

def test_the_bandit_shows_what_pays_learns_from_rounds_and_rests_what_mining_drops():
    good, bad = Tip("count", "times", 0, 2, 0), Tip("count", "times", 2, 1, 0)
    bandit = TipBandit(prior_inflation=1.0)
    bandit.offer(good, 3.0, (2.0, 4.0))
    bandit.offer(bad, -1.0, (-2.0, 0.0))
    rng = np.random.default_rng(0)
    assert sum(bandit.choose(rng) == good for _ in range(200)) > 190
    for _ in range(10):  # the good tip keeps losing ticks for this trainee
        bandit.observe(good, -3.0, 1.0)
    # normal-normal: (3 / 0.26 + 10 * -3 / 1) / (1 / 0.26 + 10) with the prior sd (4 - 2) / (2 * 1.96)
    prior_var = ((4.0 - 2.0) / (2 * 1.96)) ** 2
    assert bandit.arms[good].mean == pytest.approx((3 / prior_var - 30) / (1 / prior_var + 10))
    assert bandit.arms[good].mean < 0 and bandit.arms[good].shown == 10
    assert sum(bandit.choose(rng) is None for _ in range(200)) > 150  # no tip rather than a losing one
    bandit.offer(good, 10.0, (9.0, 11.0))  # offered again: its posterior is kept
    assert bandit.arms[good].mean < 0
    bandit.keep_active({bad})  # a mining that recommends only the other: the good arm rests, keeping its posterior
    assert not bandit.arms[good].active and bandit.arms[good].shown == 10
    bandit.keep_active(set())
    assert bandit.choose(rng) is None
