"""The tip stage against independent computations.

The score, support and agreement of tips are recomputed here from the rules alone — ⊕ written again tick by
tick on reference states, predicates parsed from their names, costs by stepping the reference simulator and an
independent brute-force optimum, optimal joints by enumerating every joint assignment — on random traces of
random tiny kitchens (hypothesis). Simulated trainees told a tip are checked to follow it at every tick."""

from __future__ import annotations

import itertools
import random
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpjax.data.traces import record_episode, validate_traces
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen, RefState
from bpjax.solve.solver import ExactSolver
from bpjax.tips.candidates import Tip, count_tips, state_tips
from bpjax.tips.optimum import ExactOptimum
from bpjax.tips.predicates import predicate_names
from bpjax.tips.prescribe import Readings
from bpjax.tips.score import TipScore, score_tips
from bpjax.tips.simulate import PolicyChooser, play_rounds, random_streams, simulate_tips
from bpjax.tips.ticks import tick_table
from tests.kitchens import BRUTE_FORCE_HORIZON, brute_force_finish, spec_of, tiny_kitchens

READINGS = [Readings(never, exactly) for never in ("idle", "next") for exactly in ("fill", "eager")]


# ---- independent re-implementation ----------------------------------------------------------------

def random_rounds(k: dict, n_rounds: int, seed: int):
    """Traces of random legal play (a player who ends the tick about as often as it assigns)."""
    spec, ref, rng = spec_of(k), ReferenceKitchen(k), random.Random(seed)
    frames = []
    for r in range(n_rounds):
        state, actions = ref.reset(), []
        while not any(ref.is_over(state)):
            legal = ref.legal_actions(state)
            actions.append(legal[-1] if rng.random() < 0.4 else rng.choice(legal))
            state = ref.step(state, actions[-1])[0]
        frames.append(record_episode(spec, actions, "p0", r + 1, f"round-{r}"))
    return validate_traces(pd.concat(frames, ignore_index=True))


def predicate_value(name: str, state: RefState, spec, ref: ReferenceKitchen) -> bool:
    """A predicate's value, read from its name."""
    kinds = list(spec.task_types)
    if m := re.fullmatch(r"the (.+) is idle", name):
        labels = [spec.worker_label(w) for w in range(spec.n_workers)]
        return state.worker_slot[labels.index(m.group(1))] is None
    if m := re.fullmatch(r"a (\w+) subtask is open", name):
        return any(ref.slot_type[s] == kinds.index(m.group(1)) for s in ref.available_slots(state))
    if name == "everyone is idle":
        return all(s is None for s in state.worker_slot)
    m = re.fullmatch(r"at least (\d+) (\w+) subtasks? done", name)
    k = kinds.index(m.group(2))
    return sum(state.done[s] for s in range(ref.n_slots) if ref.slot_type[s] == k) >= int(m.group(1))


def expected_prescription(tip: Tip, spec, ref, state: RefState, joint: dict, count: dict, probs, readings):
    """(applies, J ⊕ ρ) for one tick, from the rules in bpjax.tips.prescribe's docstring."""
    names = predicate_names(spec)
    holds = all(all(predicate_value(names[p], state, spec, ref) for p in c.predicates) != c.negated
                for c in tip.condition)
    legal, n_slots, end = set(ref.legal_actions(state)), ref.n_slots, ref.end_tick_action
    new = dict(joint)
    if tip.advice == "wait":
        applies = holds and len(legal) > 1
        return applies, ({} if applies else new)
    w = tip.worker
    open_to_w = [s for s in range(n_slots) if w * n_slots + s in legal]
    if tip.advice == "idle":
        applies = holds and bool(open_to_w)
        if applies:
            new.pop(w, None)
        return applies, new
    k = tip.task_type
    of_type = [s for s in open_to_w if ref.slot_type[s] == k]
    applies = holds and bool(of_type)
    if not applies:
        return False, new
    taken = {slot for v, slot in joint.items() if v != w}
    free = [s for s in of_type if s not in taken]

    def pick(options):
        if probs is None:
            return min(options)
        return max(options, key=lambda s: (probs[w * n_slots + s], -s))

    has_type = w in joint and ref.slot_type[joint[w]] == k
    if tip.advice == "times" and count.get((w, k), 0) >= tip.times:
        if has_type:
            others = [s for s in open_to_w if ref.slot_type[s] != k and s not in taken]
            choice = pick(others) if others and readings.never == "next" and probs is not None else None
            if choice is not None and probs[w * n_slots + choice] > probs[end]:
                new[w] = choice
            else:
                new.pop(w)
        return True, new
    eager = tip.advice == "assign" or readings.exactly == "eager"
    if free and not has_type and (eager or w not in joint):
        new[w] = pick(free)
    return True, new


def joint_cost(k: dict, state: RefState, joint: dict, memo: dict) -> int:
    """Ticks from the tick's start until all done: the joint's assignments, "end tick" unless time moved on
    by itself, then the brute-force optimum."""
    sim = ReferenceKitchen({**k, "max_ticks": BRUTE_FORCE_HORIZON})
    current = state
    for w, slot in sorted(joint.items()):
        current = sim.step(current, w * sim.n_slots + slot)[0]
    if current.tick == state.tick and not sim.is_over(current)[0]:
        current = sim.step(current, sim.end_tick_action)[0]
    if current not in memo:
        memo[current] = brute_force_finish(k, current)
    return memo[current] - state.tick


def all_joints(ref: ReferenceKitchen, state: RefState):
    """Every joint assignment possible at the tick's start: distinct slots for distinct idle workers."""
    options = []
    for w in range(ref.n_workers):
        mine = [a % ref.n_slots for a in ref.legal_actions(state) if a < ref.end_tick_action and a // ref.n_slots == w]
        options.append([None] + mine)
    for choice in itertools.product(*options):
        slots = [s for s in choice if s is not None]
        if len(slots) == len(set(slots)):
            yield {w: s for w, s in enumerate(choice) if s is not None}


# ---- the score, support and agreement --------------------------------------------------------------

@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_kitchens(), st.integers(0, 10**6), st.sampled_from(READINGS), st.booleans())
def test_score_support_and_agreement_match_an_independent_computation(k, seed, readings, with_probs):
    spec, ref = spec_of(k), ReferenceKitchen(k)
    traces = random_rounds(k, 3, seed)
    rng = np.random.default_rng(seed)
    probs = None
    if with_probs:  # a trainee policy's probabilities, for "never: next" and the choice of slot
        probs = np.where(traces.mask, rng.random(traces.mask.shape), 0.0)
        probs /= probs.sum(axis=1, keepdims=True)
    table = tick_table(traces, spec, probs)
    optimum = ExactOptimum(ExactSolver(spec))
    states = state_tips(spec, max_predicates=1)
    tips = count_tips(spec) + random.Random(seed).sample(states, min(8, len(states)))

    # the ticks, from the trace rows: start state, joint, counts before, π_H at the first row
    frame, memo = traces.frame, {}
    ticks, counts = [], {}
    for row, (episode, tick) in enumerate(zip(frame["episode_id"], frame["tick"])):
        if not ticks or ticks[-1]["key"] != (episode, tick):
            if ticks and ticks[-1]["key"][0] != episode:
                counts = {}
            ticks.append({"key": (episode, tick), "state": traces.states[row], "joint": {}, "count": dict(counts),
                          "probs": None if probs is None else probs[row]})
        action = int(traces.action[row])
        if action < ref.end_tick_action:
            w, slot = divmod(action, ref.n_slots)
            ticks[-1]["joint"][w] = slot
            counts[(w, ref.slot_type[slot])] = counts.get((w, ref.slot_type[slot]), 0) + 1
    assert len(ticks) == len(table)
    n_rounds = len(set(frame["episode_id"]))

    for tip in tips:
        scores = score_tips(table, [tip], optimum, readings)
        applies, gain, agree = [], 0.0, []
        for t in ticks:
            ok, new = expected_prescription(tip, spec, ref, t["state"], t["joint"], t["count"], t["probs"], readings)
            applies.append(ok)
            if not ok:
                continue
            gain += joint_cost(k, t["state"], t["joint"], memo) - joint_cost(k, t["state"], new, memo)
            candidates = list(all_joints(ref, t["state"]))
            costs = [joint_cost(k, t["state"], j, memo) for j in candidates]
            optimal = [j for j, c in zip(candidates, costs) if c == min(costs)]
            agree.append(any(expected_prescription(tip, spec, ref, t["state"], j, t["count"], t["probs"],
                                                   readings)[1] == j for j in optimal))
        if not any(applies):
            assert scores == [], tip
            continue
        [scored] = scores
        assert scored.applies.tolist() == applies, tip
        assert scored.support == pytest.approx(np.mean(applies)), tip
        assert scored.score == pytest.approx(gain / n_rounds), tip
        assert scored.agreement == pytest.approx(np.mean(agree)), tip


def test_a_tick_counts_once_whatever_its_assignments(paper_spec):
    """The score is per decision tick: on traces whose every tick holds several assignments, the number of
    ticks where a tip applies never exceeds the ticks, and the table has one row per (round, tick)."""
    traces = random_rounds(paper_spec.to_dict(), 4, seed=3)
    table = tick_table(traces, paper_spec)
    keys = traces.frame[["episode_id", "tick"]].drop_duplicates()
    assert len(table) == len(keys) < len(traces.frame)
    [scored] = score_tips(table, [Tip("count", "times", 0, 2, 0)], ExactOptimum(ExactSolver(paper_spec)))
    assert scored.applies.sum() <= len(table)


def test_a_joint_is_suboptimal_exactly_when_one_of_its_actions_is(paper_spec):
    traces = random_rounds(paper_spec.to_dict(), 4, seed=5)
    table = tick_table(traces, paper_spec)
    optimum = ExactOptimum(ExactSolver(paper_spec))
    by_tick = optimum.suboptimal_joints(table.states, table.joint)
    q = optimum.q_values(traces)
    action_bad = q[np.arange(len(q)), traces.action] < q.max(axis=1)
    tick_of_row = np.cumsum(np.isin(np.arange(len(q)), table.first_row)) - 1
    assert np.array_equal(by_tick, np.bincount(tick_of_row, weights=action_bad, minlength=len(table)) > 0)


# ---- simulation -------------------------------------------------------------------------------------

class UniformPolicy:
    """A trainee policy that picks uniformly among the allowed actions."""

    def probs(self, obs, mask):
        return mask / mask.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("readings", READINGS[:2], ids=["fill", "eager"])
def test_simulated_trainees_follow_the_tip_at_every_tick(paper_spec, readings):
    """With compliance 1, every simulated decision tick's joint already satisfies the tip (J ⊕ ρ = J, with the
    counts of that simulated round) — count, state and idle tips alike."""
    spec, ref = paper_spec, ReferenceKitchen(paper_spec.to_dict())
    env, params = make_kitchen(spec)
    names = predicate_names(spec)
    tips = [Tip("count", "times", 0, 2, 0), Tip("count", "times", 2, 1, 2), Tip("count", "times", 1, 0, 3),
            Tip("state", "assign", 1, 1, condition=(state_clause(names, "a plate subtask is open"),)),
            Tip("state", "idle", 0)]
    per_tip = 12
    u_decision, u_tick = random_streams(spec, per_tip * len(tips), seed=1)
    envs = np.arange(per_tip * len(tips))
    played = play_rounds(env, params, spec, PolicyChooser(UniformPolicy()), [tips[i // per_tip] for i in envs],
                         np.ones(len(envs)), u_decision, u_tick, envs, np.ones(len(envs), int), readings)
    order = np.argsort(played.tick_round, kind="stable")  # each round's ticks, in the order they were played
    counts: dict = {}
    for index, position in enumerate(order):
        round_index = played.tick_round[position]
        tip, state, joint = tips[round_index // per_tip], played.tick_states[position], played.tick_joints[position]
        if index == 0 or played.tick_round[order[index - 1]] != round_index:
            counts = {}
        joint = {w: int(s) for w, s in enumerate(joint) if s >= 0}
        _, new = expected_prescription(tip, spec, ref, state, joint, counts, None, readings)
        assert new == joint, (tip, state, joint)
        for w, slot in joint.items():
            counts[(w, ref.slot_type[slot])] = counts.get((w, ref.slot_type[slot]), 0) + 1


def state_clause(names, *predicates):
    from bpjax.tips.candidates import Clause

    return Clause(tuple(names.index(p) for p in predicates))


def test_no_compliance_changes_nothing_and_runs_repeat(paper_spec):
    env, params = make_kitchen(paper_spec)
    optimum = ExactOptimum(ExactSolver(paper_spec))
    chooser = lambda t, r: PolicyChooser(UniformPolicy())  # noqa: E731
    tip = Tip("count", "times", 0, 2, 0)
    control, [[none, full]] = simulate_tips(env, params, paper_spec, chooser, [tip], optimum, (0.0, 1.0), 8, 2, seed=4)
    assert none.saved == 0.0 and none.saved_ci == (0.0, 0.0) and none.tip_ticks == control["ticks"]
    again = simulate_tips(env, params, paper_spec, chooser, [tip], optimum, (0.0, 1.0), 8, 2, seed=4)[1][0][1]
    assert (again.saved, again.saved_ci, again.tip_suboptimal) == (full.saved, full.saved_ci, full.tip_suboptimal)


def test_each_candidate_left_out_of_the_simulation_gets_its_own_reason():
    """Three tips of one family tie for the top score: per_family=2 keeps the third out (not the simulate
    places, which one more family's tip fills); a candidate past the places is told so; report.md's and the
    console's reason are these."""
    from bpjax.tips.recommend import TipReport, TipSettings, selection

    def scored(worker, score, support=0.5):
        return TipScore(Tip("state", "assign", worker, 0), f"tip {worker} {score}", score, support, 1.0, 0.1,
                        np.zeros(0, bool))

    candidates = [scored(1, 3.5), scored(1, 3.5), scored(1, 3.5), scored(2, 3.0), scored(3, 2.0), scored(4, -1.0)]
    settings = TipSettings(simulate=3, per_family=2)
    report = TipReport(candidates, [], [], {}, 0.0, 10, 2, settings=settings)
    chosen, report.not_simulated = selection(candidates, settings, report.eligible)
    assert chosen == [candidates[0], candidates[1], candidates[3]]
    assert report.why_not(candidates[2]) == ("tips.per_family=2: that many tips of its family (same worker, task "
                                             "type and advice) ranked above it by score were simulated")
    assert report.why_not(candidates[4]) == ("the tips.simulate=3 places were taken by candidates ranked above it "
                                             "by score (it is #5 of the 5 that pass the filters)")
    assert report.why_not(candidates[5]).startswith("first-order score -1.00 <= 0")
    baseline = TipSettings(simulate=1, per_family=2, rank_by="baseline")
    left_out = selection(candidates, baseline, report.eligible)[1]
    assert "ranked above it by agreement with pi*" in left_out[id(candidates[1])]
