"""Personal tips from a person's habit model: the simulated rounds they are mined on read like recorded ones,
Q* looked up by packed state is the solver's, a habit shown in one kitchen gives a tip against it in the next
before the person has played there, and the dynamic arm keeps a followed tip while mining still recommends it."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bpjax.data.players import PlayerProfile, SyntheticPlayer, generate_population
from bpjax.data.traces import record_episode, validate_traces
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.imitation.habits import HabitModel
from bpjax.solve.solver import ExactSolver
from bpjax.study import chooser as chooser_module
from bpjax.study.chooser import PopulationTip, TipChooser
from bpjax.study.personal import PersonalTips, _unscored
from bpjax.tips.candidates import Tip
from bpjax.tips.optimum import ExactOptimum
from bpjax.tips.recommend import SimulatedTip, TipSettings
from bpjax.tips.simulate import PolicyChooser, TipEvaluation, play_rounds, random_streams
from bpjax.tips.ticks import tick_table

SETTINGS = TipSettings(rule_lists=False, simulate=3, per_family=1, max_predicates=1, compliance=(1.0,),
                       eval_trainees=24, eval_rounds=1)


def with_orders(spec: KitchenSpec, orders: list[str]) -> KitchenSpec:
    return KitchenSpec.from_dict({**spec.to_dict(), "orders": orders})


class Uniform:
    def probs(self, obs, mask):
        return mask / mask.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def burgers(paper_spec):
    spec = with_orders(paper_spec, ["burger", "burger"])
    env, params = make_kitchen(spec)
    return spec, env, params, ExactOptimum(ExactSolver(spec))


@pytest.fixture(scope="module")
def random_play(burgers):
    spec, env, params, _ = burgers
    n = 24
    u_decision, u_tick = random_streams(spec, n, seed=3)
    return play_rounds(env, params, spec, PolicyChooser(Uniform()), [None] * n, np.zeros(n), u_decision, u_tick,
                       np.arange(n), np.ones(n, int))


def test_q_by_packed_state_is_the_solvers(burgers, random_play):
    *_, optimum = burgers
    q = optimum.q_of_arrays(*random_play.tick_arrays)
    again = optimum.q_of_arrays(*random_play.tick_arrays)  # the second time, from the cache
    expected = np.stack([optimum.solver.q_values(state) for state in random_play.tick_states])
    assert np.array_equal(q, expected) and np.array_equal(again, expected)


def test_simulated_rounds_read_like_the_same_rounds_recorded(burgers, random_play):
    """The tick table built from the simulation's own log equals the one read back from trace rows of the same
    actions: states, joints, counts, masks, predicates, rounds."""
    spec = burgers[0]
    played = random_play.tick_table(spec, np.asarray(["p"] * len(random_play.ticks)))
    frames = [record_episode(spec, actions, "p", 1, f"e{i:02d}") for i, actions in enumerate(random_play.actions)]
    recorded = tick_table(validate_traces(pd.concat(frames, ignore_index=True)), spec)
    assert played.states == recorded.states and played.n_rounds == recorded.n_rounds
    for name in ("joint", "count", "mask", "features", "round"):
        assert np.array_equal(getattr(played, name), getattr(recorded, name)), name


def decisions_of(spec, optimum, model, profile, rounds, seed):
    """A synthetic person's rounds in `spec`, as the habit model reads them."""
    player = SyntheticPlayer(profile, optimum.solver, random.Random(seed))
    frames = [record_episode(spec, player.play(r), "x", r, f"x{r}") for r in range(1, rounds + 1)]
    traces = validate_traces(pd.concat(frames, ignore_index=True))
    return model.decisions(optimum.q_values(traces), traces.mask, traces.action)


def first_tips_in_a_new_kitchen(paper_spec, burgers, seed: int) -> tuple[Tip | None, Tip | None, KitchenSpec]:
    """The personalised tips mined for a pasta kitchen, before it is played, for a person who let the chef plate
    in three burger rounds and for one who played them well: (plater's, good player's, the pasta kitchen)."""
    spec_b, _, _, optimum_b = burgers
    population = [{"kind": "good", "base": "optimal", "epsilon": 0.05, "share": 3},
                  {"kind": "greedy", "base": "greedy", "epsilon": 0.05, "share": 1},
                  {"kind": "chef_plates", "base": "optimal", "flaws": [["chef", "plate"]], "flaw_rate": 0.9,
                   "share": 1}]
    models = {}
    for name, spec, optimum in (("burgers", spec_b, optimum_b),
                                ("pasta", with_orders(paper_spec, ["pasta", "pasta"]), None)):
        optimum = optimum or ExactOptimum(ExactSolver(spec))
        frame, _ = generate_population(spec, population, 15, 2, seed)
        traces = validate_traces(frame)
        models[name] = (spec, optimum, HabitModel.for_kitchen(spec).fit_population(
            optimum.q_values(traces), traces.mask, traces.action, traces.frame["player_id"].to_numpy()))
    plater = PlayerProfile("chef_plates", base="optimal", flaws=(("chef", "plate"),), epsilon=0.0)
    good = PlayerProfile("good", base="optimal", epsilon=0.0)
    spec_b, _, model_b = models["burgers"]
    earlier = {name: [decisions_of(spec_b, optimum_b, model_b, profile, 3, seed)]
               for name, profile in (("plater", plater), ("good", good))}
    spec_p, optimum_p, model_p = models["pasta"]
    env, params = make_kitchen(spec_p)
    chooser = TipChooser("personalised", spec_p, env, params, optimum_p, [], model_p, (20.0, 2.0),
                         replace(SETTINGS, eval_trainees=48), seed=seed, earlier=earlier, score_rounds=16)
    chooser.remine(["plater", "good"])
    return chooser.shown["plater"], chooser.shown["good"], spec_p


@pytest.mark.slow
def test_a_habit_from_one_kitchen_gives_a_tip_against_it_in_the_next_before_it_is_played(paper_spec, burgers):
    """Mined for a kitchen they have not played (their habits from the burger kitchen carried over), the person
    who let the chef plate is told something against the chef plating in most of five draws (pilots, players,
    simulations), and the person who played well never is."""
    against, wrongly = 0, 0
    for seed in range(5):
        plater, good, spec = first_tips_in_a_new_kitchen(paper_spec, burgers, seed)
        chef_plate = (0, spec.task_types.index("plate"))
        against += plater is not None and chef_plate in plater.rules_out(spec)
        wrongly += good is not None and chef_plate in good.rules_out(spec)
    assert against >= 4 and wrongly == 0


def recommending(spec, *tips):
    """A stand-in for mining that recommends `tips` (gain 2 each) to everyone, as tips against their habits."""
    def mine(people, *args, **kwargs):
        evaluation = TipEvaluation(1.0, 20.0, 18.0, 2.0, (1.0, 3.0), float("nan"), float("nan"), [])
        chosen = [SimulatedTip(_unscored(tip, spec), [evaluation]) for tip in tips]
        return {p: PersonalTips(p, chosen, [], 20.0, 2.0, [], set(tips)) for p in people}
    return mine


def test_the_dynamic_arm_keeps_a_followed_tip_while_mining_recommends_it(burgers, monkeypatch):
    """A tip followed for a whole round is not retired for it; a mining that no longer recommends it rests it
    (and an arm recommended again comes back); with nothing recommended, no tip is shown."""
    spec, env, params, optimum = burgers
    never_cook = Tip("count", "times", 2, spec.task_types.index("cook"), 0)   # the server should never cook
    never_plate = Tip("count", "times", 0, spec.task_types.index("plate"), 0)  # the chef should never plate
    frame, _ = generate_population(spec, [{"kind": "good", "base": "optimal", "epsilon": 0.05}], 6, 1, 0)
    traces = validate_traces(frame)
    habits = HabitModel.for_kitchen(spec).fit_population(optimum.q_values(traces), traces.mask, traces.action)
    chooser = TipChooser("dynamic", spec, env, params, optimum,
                         [PopulationTip(never_cook, 3.0, (2.0, 4.0)), PopulationTip(never_plate, 1.0, (0.5, 1.5))],
                         habits, (20.0, 2.0), SETTINGS, seed=0)
    chooser.tip_for("p")
    chooser.shown["p"] = never_cook   # this round is played with it (as the game records what it showed)
    player = SyntheticPlayer(PlayerProfile("good", base="optimal", epsilon=0.0), optimum.solver, random.Random(0))
    actions = player.play(1)
    followed = chooser.record(record_episode(spec, actions, "p", 1, "p1"), {"p": 19})
    assert followed["p"]   # the optimum never lets the server cook: followed for the whole round
    assert chooser.bandits["p"].arms[never_cook].active
    monkeypatch.setattr(chooser_module, "personal_tips", recommending(spec, never_plate))
    chooser.remine(["p"])
    arms = chooser.bandits["p"].arms
    assert arms[never_plate].active and not arms[never_cook].active
    assert chooser.tip_for("p") == never_plate
    monkeypatch.setattr(chooser_module, "personal_tips", recommending(spec, never_cook))
    chooser.remine(["p"])
    assert arms[never_cook].active and not arms[never_plate].active and arms[never_cook].shown == 1
    monkeypatch.setattr(chooser_module, "personal_tips", recommending(spec))
    chooser.remine(["p"])
    chooser.drawn.clear()
    assert chooser.tip_for("p") is None
