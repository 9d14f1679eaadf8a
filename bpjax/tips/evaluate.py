"""What a tip is worth when followed: play synthetic trainees with and without it on the reference
simulator and compare ticks (mean saved, 95% confidence interval) and the rate of suboptimal decisions
(decisions with Q*-loss > 0; with a learned π*, decisions where π*'s greedy action is worth more than the
tolerance more, by Monte-Carlo Q), per round — beside the first-order estimate.

A trainee follows the tip with compliance p: wherever the tip applies (see ``bpjax.tips.study``), it takes
the tip's action with probability p, else its own; a forbidden assignment is replaced by "end tick"."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from bpjax.env.legality import assignments_of
from bpjax.env.reference import RefState
from bpjax.solve.solver import ExactSolver
from bpjax.tips.optimum import ExactOptimum, LearnedOptimum
from bpjax.tips.study import Tip


class Actor(Protocol):
    """A trainee in simulation (a synthetic player, or the learned π_H): `forbidden` actions are excluded."""

    def act(self, state: RefState, round_number: int, forbidden: frozenset[int] = frozenset()) -> int: ...


@dataclass
class LearnedTrainee:
    """The learned trainee policy π_H as an actor: samples its distribution over the allowed actions."""

    policy: object  # a TraineePolicy
    solver: ExactSolver
    rng: random.Random

    def act(self, state: RefState, round_number: int, forbidden: frozenset[int] = frozenset()) -> int:
        sim = self.solver.sim
        mask = np.asarray(sim.action_mask(state))
        mask[list(forbidden)] = False
        probs = self.policy.probs(np.asarray([sim.observation(state)], np.float32), mask[None])[0]
        return int(np.searchsorted(np.cumsum(probs), self.rng.random() * probs.sum()).clip(0, len(probs) - 1))


@dataclass
class TipEvaluation:
    compliance: float
    control_ticks: float
    tip_ticks: float
    saved: float               # control - tip, ticks per round
    saved_ci: tuple[float, float]
    control_suboptimal: float  # share of decisions with Q*-loss > 0
    tip_suboptimal: float
    by_round: list[dict]       # per round number: mean ticks and suboptimal share, control and tip


def play_with_tip(solver: ExactSolver, player: Actor, tip: Tip | None, compliance: float,
                  round_number: int, rng: random.Random) -> tuple[int, list[int]]:
    """One round on the reference simulator (`solver.sim`; no solving happens here); returns (ticks, the flat
    actions taken)."""
    sim, spec = solver.sim, solver.spec
    state, count, actions = sim.reset(), 0, []
    while not any(sim.is_over(state)) and state.tick < solver.max_ticks:  # the solver's sim has no horizon
        action = player.act(state, round_number)
        if tip is not None:
            of_type = assignments_of(spec, sim.legal_actions(state), tip.worker, tip.task_type)
            if count < tip.times and of_type and rng.random() < compliance:
                action = of_type[0]
            elif count >= tip.times and action in of_type and rng.random() < compliance:
                action = player.act(state, round_number, forbidden=frozenset(of_type))
        actions.append(action)
        if tip is not None and action < sim.end_tick_action and action // sim.n_slots == tip.worker and \
                spec.slot_subtask(action % sim.n_slots).task_type == tip.task_type:
            count += 1
        state = sim.step(state, action)[0]
    return min(state.tick, solver.max_ticks), actions


def evaluate_tip(solver: ExactSolver, make_actor: Callable[[int, random.Random], Actor], n_trainees: int,
                 tip: Tip, compliances=(1.0,), rounds: int = 3, seed: int = 0,
                 optimum: ExactOptimum | LearnedOptimum | None = None) -> list[TipEvaluation]:
    """Control vs tip for `n_trainees` actors × `rounds`, with common random numbers (same seeds in both
    arms). `make_actor(index, rng)` builds trainee `index` drawing its randomness from `rng`. Suboptimal
    decisions are judged by `optimum` (default: exact Q*) over all played rounds at once."""
    optimum = optimum or ExactOptimum(solver)
    played = []  # per compliance, arm (control, tip), trainee × round: (ticks, actions)
    for compliance in compliances:
        arms = ([], [])
        for index in range(n_trainees):
            for round_number in range(1, rounds + 1):
                seed_here = seed * 1_000_003 + index * 101 + round_number
                for arm, results in zip((None, tip), arms):
                    rng = random.Random(seed_here)
                    results.append(play_with_tip(solver, make_actor(index, rng), arm, compliance, round_number, rng))
        played.append(arms)
    # one batch for every round played: a learned π*'s Monte-Carlo judgement runs vectorised
    all_rounds = [actions for arms in played for arm in arms for _, actions in arm]
    round_of = np.repeat(np.arange(len(all_rounds)), [len(actions) for actions in all_rounds])
    suboptimal = np.bincount(round_of, weights=optimum.suboptimal(all_rounds), minlength=len(all_rounds))
    suboptimal = suboptimal.reshape(len(compliances), 2, n_trainees * rounds)
    out = []
    for compliance, arms, counts in zip(compliances, played, suboptimal):
        control, treated = ([(ticks, len(actions), bad) for (ticks, actions), bad in zip(arm, arm_counts)]
                            for arm, arm_counts in zip(arms, counts))
        control, treated = np.asarray(control, float), np.asarray(treated, float)
        round_of = np.tile(np.arange(1, rounds + 1), n_trainees)
        by_round = [{"round": r,
                     "control_ticks": float(control[round_of == r, 0].mean()),
                     "tip_ticks": float(treated[round_of == r, 0].mean()),
                     "control_suboptimal": float(control[round_of == r, 2].sum() / control[round_of == r, 1].sum()),
                     "tip_suboptimal": float(treated[round_of == r, 2].sum() / treated[round_of == r, 1].sum())}
                    for r in range(1, rounds + 1)]
        saved = control[:, 0] - treated[:, 0]
        half = 1.96 * saved.std(ddof=1) / np.sqrt(len(saved)) if len(saved) > 1 else float("nan")
        out.append(TipEvaluation(compliance, float(control[:, 0].mean()), float(treated[:, 0].mean()),
                                 float(saved.mean()), (float(saved.mean() - half), float(saved.mean() + half)),
                                 float(control[:, 2].sum() / control[:, 1].sum()),
                                 float(treated[:, 2].sum() / treated[:, 1].sum()), by_round))
    return out
