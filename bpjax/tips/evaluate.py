"""What a tip is worth when followed: play synthetic trainees with and without it on the reference
simulator and compare ticks (mean saved, 95% confidence interval) and the rate of suboptimal decisions
(decisions with Q*-loss > 0), per round — beside the first-order estimate.

A trainee follows the tip with compliance p: wherever the tip applies (see ``bpjax.tips.study``), it takes
the tip's action with probability p, else its own; a forbidden assignment is replaced by "end tick"."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from bpjax.data.players import PlayerProfile, SyntheticPlayer
from bpjax.env.reference import RefState
from bpjax.solve.solver import ExactSolver
from bpjax.tips.study import Tip


@dataclass
class TipEvaluation:
    compliance: float
    control_ticks: float
    tip_ticks: float
    saved: float               # control - tip, ticks per round
    saved_ci: tuple[float, float]
    control_suboptimal: float  # share of decisions with Q*-loss > 0
    tip_suboptimal: float


def _of_type(solver: ExactSolver, tip: Tip, state: RefState) -> list[int]:
    """Legal assignments of the tip's worker to a subtask of the tip's type."""
    sim, spec = solver.sim, solver.spec
    return [a for a in sim.legal_actions(state)[:-1] if a // sim.n_slots == tip.worker
            and spec.slot_subtask(a % sim.n_slots).task_type == tip.task_type]


def play_with_tip(solver: ExactSolver, profile: PlayerProfile, tip: Tip | None, compliance: float,
                  round_number: int, rng: random.Random) -> tuple[int, int, int]:
    """One round; returns (ticks, decisions, suboptimal decisions)."""
    player = SyntheticPlayer(profile, solver, rng)
    sim, spec = solver.sim, solver.spec
    state, count, decisions, suboptimal = sim.reset(), 0, 0, 0
    while not any(sim.is_over(state)) and state.tick < solver.max_ticks:  # the solver's sim has no horizon
        action = player.act(state, round_number)
        if tip is not None:
            of_type = _of_type(solver, tip, state)
            if count < tip.times and of_type and rng.random() < compliance:
                action = of_type[0]
            elif count >= tip.times and action in of_type and rng.random() < compliance:
                action = player.act(state, round_number, forbidden=frozenset(of_type))
        q = solver.q_values(state)
        suboptimal += bool(q[action] < q.max())
        decisions += 1
        if tip is not None and action < sim.end_tick_action and action // sim.n_slots == tip.worker and \
                spec.slot_subtask(action % sim.n_slots).task_type == tip.task_type:
            count += 1
        state = sim.step(state, action)[0]
    return min(state.tick, solver.max_ticks), decisions, suboptimal


def evaluate_tip(solver: ExactSolver, profiles: list[PlayerProfile], tip: Tip, compliances=(1.0,),
                 rounds: int = 3, seed: int = 0) -> list[TipEvaluation]:
    """Control vs tip for every profile × round, with common random numbers (same seeds both arms)."""
    out = []
    for compliance in compliances:
        control, treated = [], []
        for index, profile in enumerate(profiles):
            for round_number in range(1, rounds + 1):
                seed_here = seed * 1_000_003 + index * 101 + round_number
                control.append(play_with_tip(solver, profile, None, compliance, round_number, random.Random(seed_here)))
                treated.append(play_with_tip(solver, profile, tip, compliance, round_number, random.Random(seed_here)))
        control, treated = np.asarray(control, float), np.asarray(treated, float)
        saved = control[:, 0] - treated[:, 0]
        half = 1.96 * saved.std(ddof=1) / np.sqrt(len(saved)) if len(saved) > 1 else float("nan")
        out.append(TipEvaluation(compliance, control[:, 0].mean(), treated[:, 0].mean(), saved.mean(),
                                 (saved.mean() - half, saved.mean() + half),
                                 control[:, 2].sum() / control[:, 1].sum(), treated[:, 2].sum() / treated[:, 1].sum()))
    return out
