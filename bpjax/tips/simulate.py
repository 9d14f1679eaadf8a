"""What tips are worth when followed: simulated trainees play with and without each tip, side by side.

Every round of every arm (control, and each tip at each compliance) is one environment of a batch of the JAX
env, stepped in lockstep: one jitted step and one batched choice of the trainees per decision, so the cost is
the longest round's decisions, not the number of rounds. Arms are paired: trainee i's round r draws the same
random numbers in every arm (common random numbers), so saved ticks are compared round by round.

**Compliance "replan".** A trainee told a tip keeps choosing its usual way (π_H, or a synthetic player's
habits), among the actions that satisfy the tip. At each decision tick it follows the tip with probability
`compliance` (one draw per tick, shared by the arms). Following means, for the tip's worker w and type k:

* never (a count tip with j already done, or j = 0): w is not given a type-k subtask;
* exactly j, while fewer are done: w may not be left idle while a type-k subtask is open to it (reading
  "fill": ending the tick is not allowed then) or must take one (reading "eager", and "assign" tips);
* idle: w is given nothing this tick; wait: nobody is, the tick just ends.

A state or rule tip's condition is read at the start of the tick. Suboptimal decisions are the decision ticks
whose joint assignment loses ticks against π* (``optimum.suboptimal_joints``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.convert import reference_from_arrays
from bpjax.env.kitchen import Kitchen
from bpjax.env.types import EnvParams
from bpjax.tips.candidates import Tip
from bpjax.tips.predicates import StateBatch, predicate_names, predicates
from bpjax.tips.prescribe import Readings, condition_holds
from bpjax.tips.ticks import IDLE, TickTable


class Chooser(Protocol):
    """The simulated trainees: an action per row from the allowed mask and one uniform draw per row."""

    def choose(self, rows: np.ndarray, view: "DecisionView", allowed: np.ndarray, uniform: np.ndarray
               ) -> np.ndarray: ...


@dataclass
class DecisionView:
    """The batch at one decision, as host arrays (all envs)."""

    obs: np.ndarray           # float32[B, O] (the reference observation)
    mask: np.ndarray          # bool[B, A]
    tick: np.ndarray          # int[B]
    done_bits: np.ndarray     # uint32[B, words]: the done slots, packed (bpjax.env.bitset)
    worker_slot: np.ndarray   # int[B, W]
    worker_until: np.ndarray  # int[B, W]
    trainee: np.ndarray       # int[B]: which simulated trainee each env's round belongs to
    round_number: np.ndarray  # int[B]: 1, 2, ...

    def reference_states(self, rows: np.ndarray, n_slots: int):
        return reference_from_arrays(*self.arrays(rows), n_slots)

    def arrays(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tick, done_bits, worker_slot, worker_until) of `rows`: the states as host arrays."""
        return self.tick[rows], self.done_bits[rows], self.worker_slot[rows], self.worker_until[rows]


@dataclass
class PolicyChooser:
    """π_H (any ``probs(obs, mask)`` trainee policy) sampled by inverse CDF; identical (observation, allowed)
    rows are predicted once."""

    policy: object

    def choose(self, rows, view, allowed, uniform):
        keys = np.concatenate([view.obs[rows].view(np.uint8).reshape(len(rows), -1),
                               allowed[rows].astype(np.uint8)], axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        probs = self.policy.probs(view.obs[rows][first], allowed[rows][first])[inverse.reshape(-1)]
        probs = np.where(allowed[rows], probs, 0.0)
        cumulative = np.cumsum(probs, axis=1)
        pick = (cumulative < uniform[rows, None] * cumulative[:, -1:]).sum(axis=1)
        return np.minimum(pick, probs.shape[1] - 1)


@dataclass
class PlayerChooser:
    """Synthetic players (``bpjax.data.players.SyntheticPlayer``), one per env, each told what is forbidden."""

    players: Sequence  # one per env of the batch
    n_slots: int

    def choose(self, rows, view, allowed, uniform):
        states = view.reference_states(rows, self.n_slots)
        out = np.empty(len(rows), np.int64)
        for i, (row, state) in enumerate(zip(rows, states)):
            forbidden = frozenset(np.flatnonzero(view.mask[row] & ~allowed[row]).tolist())
            out[i] = self.players[row].act(state, int(view.round_number[row]), forbidden)
        return out


@dataclass
class PlayedRounds:
    """Every simulated round: ticks, and per decision tick its start state, what it offered and its joint
    assignment (enough for a :class:`bpjax.tips.ticks.TickTable` without replaying the rounds)."""

    ticks: np.ndarray               # int[B]: ticks of each round
    tick_round: np.ndarray          # int[D]: the round of each decision tick
    tick_arrays: tuple              # the start states as host arrays: tick, done_bits, worker_slot, worker_until
    tick_joints: np.ndarray         # int[D, W]
    actions: list[list[int]]        # each round's flat actions, in order
    tick_mask: np.ndarray           # bool[D, A]: legal at the tick's start
    tick_count: np.ndarray          # int[D, W, K]: type-k subtasks worker w had been given earlier in the round
    tick_features: np.ndarray       # bool[D, F]: the predicates at the tick's start
    n_slots: int

    @functools.cached_property
    def tick_states(self) -> list:
        """RefState at the start of each decision tick (built on first use: most callers need only arrays)."""
        return reference_from_arrays(*self.tick_arrays, self.n_slots)

    def tick_table(self, spec: KitchenSpec, player: np.ndarray, probs: np.ndarray | None = None) -> TickTable:
        """The decision ticks as the tip stage reads a trace's (:func:`bpjax.tips.ticks.tick_table`), each
        round's ticks together in order: `player` names each round's player (one per env), `probs` are the
        player's choice probabilities at each tick's start (float[D, A], optional)."""
        order = np.argsort(self.tick_round, kind="stable")
        tick, done_bits, worker_slot, _ = (x[order] for x in self.tick_arrays)
        states = self.tick_states
        return TickTable(spec, [states[i] for i in order],
                         StateBatch.from_bits(tick, worker_slot, done_bits, spec.n_slots), self.tick_features[order],
                         self.tick_round[order], np.asarray(player)[self.tick_round[order]], self.tick_joints[order],
                         self.tick_count[order], self.tick_mask[order], None if probs is None else probs[order],
                         np.full(len(order), -1), len(self.ticks))


@functools.lru_cache(maxsize=None)
def _compiled(env: Kitchen):
    """Batched view and step of one env shape, compiled once per batch size (params are an argument, so
    every kitchen of this shape shares them)."""
    @jax.jit
    def view(states, params):
        # π_H was fitted on the traces' raw (reference) features
        obs = jax.vmap(env.raw_features, in_axes=(0, None))(states, params)
        mask = jax.vmap(env.action_mask, in_axes=(0, None))(states, params)
        return obs, mask, states.tick, states.done_slots, states.worker_slot, states.worker_until

    @jax.jit
    def step(states, actions, params):
        states, _, terminated, truncated, _ = jax.vmap(env.step_env, in_axes=(None, 0, 0, None))(
            None, states, actions, params)
        return states, terminated | truncated

    @functools.partial(jax.jit, static_argnums=1)
    def initial(params, n):
        return jax.vmap(lambda _: env.reset_env(None, params))(jnp.arange(n))

    return view, step, initial


def constrain(tip: Tip, allowed: np.ndarray, mask: np.ndarray, count: np.ndarray, features: np.ndarray,
              spec: KitchenSpec, readings: Readings) -> None:
    """Remove from `allowed` (in place, rows of one tip) what following the tip rules out now."""
    n_slots, end = spec.n_slots, spec.end_tick_action
    holds = condition_holds(tip, features)
    if tip.advice == "wait":
        allowed[holds, :end] = False
        return
    w = tip.worker
    own = slice(w * n_slots, (w + 1) * n_slots)
    if tip.advice == "idle":
        allowed[holds, own] = False
        return
    of_type = np.asarray(spec.slot_types) == tip.task_type
    open_to_w = (mask[:, own] & of_type).any(axis=1)
    if tip.advice == "times":
        done = count[:, w, tip.task_type]
        never = done >= tip.times
        allowed[np.ix_(never, np.flatnonzero(of_type) + w * n_slots)] = False
        force = ~never & open_to_w
        eager = readings.exactly == "eager"
    else:
        force, eager = holds & open_to_w, True
    allowed[force, end] = False
    if eager:
        allowed[np.ix_(force, np.flatnonzero(~of_type) + w * n_slots)] = False


def random_streams(spec: KitchenSpec, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n independent streams of uniforms: one per decision (the trainee's choice), one per tick (whether it
    complies); give the same stream to every arm's copy of a round to pair them."""
    rng = np.random.default_rng(seed)
    return rng.random((n, spec.n_slots + spec.max_ticks + 2)), rng.random((n, spec.max_ticks + 1))


def play_rounds(env: Kitchen, params: EnvParams, spec: KitchenSpec, chooser: Chooser, tips: Sequence[Tip | None],
                compliance: np.ndarray, u_decision: np.ndarray, u_tick: np.ndarray, trainee: np.ndarray,
                round_number: np.ndarray, readings: Readings = Readings()) -> PlayedRounds:
    """Play one round per env of a batch, env i with tip `tips[i]` (or none) followed at `compliance[i]`,
    drawing its choices from `u_decision[i]` and its compliance from `u_tick[i]`. The batch is padded to a
    size class so that one compiled program serves many calls."""
    n = len(tips)
    batch = max(64, 1 << max(n - 1, 0).bit_length())
    pad = batch - n
    trainee, round_number = np.r_[trainee, np.zeros(pad, int)], np.r_[round_number, np.ones(pad, int)]
    compliance = np.r_[compliance, np.zeros(pad)]
    u_decision = np.concatenate([u_decision, np.zeros((pad, u_decision.shape[1]))])
    u_tick = np.concatenate([u_tick, np.ones((pad, u_tick.shape[1]))])
    unique = list(dict.fromkeys(t for t in tips if t is not None))
    tip_of = np.asarray([-1 if t is None else unique.index(t) for t in tips] + [-1] * pad)
    max_steps = u_decision.shape[1]

    view_fn, step_fn, initial_fn = _compiled(env)
    states = initial_fn(params, batch)
    n_workers, n_types = spec.n_workers, len(spec.task_types)
    slot_type = np.asarray(spec.slot_types)
    count = np.zeros((batch, n_workers, n_types), np.int64)
    over = np.arange(batch) >= n  # padding never plays
    decisions = np.zeros(batch, np.int64)
    start_tick = np.full(batch, -1)
    features = np.zeros((batch, len(predicate_names(spec))), bool)
    comply = np.zeros(batch, bool)
    # the decision ticks, in the order they open: env, start state, what it offered, joint assignment
    log_joint = np.full((batch * (spec.max_ticks + 1), n_workers), IDLE, np.int64)
    logged: list[tuple] = []   # per step, the ticks it opened: (env, state arrays, mask, count, features)
    n_logged = 0
    current = np.zeros(batch, np.int64)  # each env's open decision tick in the log
    taken = np.zeros((batch, max_steps + spec.max_ticks + 2), np.int32)  # each env's actions, in order
    while not over.all():
        obs, mask, tick, done_bits, worker_slot, worker_until = (np.asarray(x) for x in view_fn(states, params))
        view = DecisionView(obs, mask, tick, done_bits, worker_slot, worker_until, trainee, round_number)
        live = np.flatnonzero(~over)
        opened = live[tick[live] != start_tick[live]]
        if len(opened):
            features[opened] = predicates(StateBatch.from_bits(tick, worker_slot, done_bits, spec.n_slots)
                                          .take(opened), spec)
            start_tick[opened] = tick[opened]
            comply[opened] = u_tick[opened, np.minimum(tick[opened], spec.max_ticks)] < compliance[opened]
            current[opened] = n_logged + np.arange(len(opened))
            n_logged += len(opened)
            logged.append((opened, view.arrays(opened), mask[opened], count[opened], features[opened]))
        allowed = mask.copy()
        for index, tip in enumerate(unique):
            rows = live[(tip_of[live] == index) & comply[live]]
            if len(rows):
                sub = allowed[rows]
                constrain(tip, sub, mask[rows], count[rows], features[rows], spec, readings)
                allowed[rows] = sub
        uniform = u_decision[np.arange(batch), np.minimum(decisions, max_steps - 1)]
        action = np.full(batch, spec.end_tick_action, np.int64)  # ended rounds: a no-op
        action[live] = chooser.choose(live, view, allowed, uniform)
        assign = live[action[live] < spec.end_tick_action]
        workers, slots = action[assign] // spec.n_slots, action[assign] % spec.n_slots
        count[assign, workers, slot_type[slots]] += 1
        log_joint[current[assign], workers] = slots
        taken[live, decisions[live]] = action[live]
        decisions[live] += 1
        states, ended = step_fn(states, jnp.asarray(action, jnp.int32), params)
        over |= np.asarray(ended)
    ticks = np.asarray(view_fn(states, params)[2])[:n]
    n_features = features.shape[1]
    if logged:
        parts = list(zip(*logged))
        log_env = np.concatenate(parts[0])
        arrays = tuple(np.concatenate(x) for x in zip(*parts[1]))
        log_mask, log_count, log_features = (np.concatenate(x) for x in parts[2:])
    else:
        log_env = np.zeros(0, np.int64)
        arrays = (np.zeros(0, np.int64), np.zeros((0, done_bits.shape[1]), done_bits.dtype),
                  np.zeros((0, n_workers), np.int64), np.zeros((0, n_workers), np.int64))
        log_mask = np.zeros((0, spec.n_actions), bool)
        log_count = np.zeros((0, n_workers, n_types), np.int64)
        log_features = np.zeros((0, n_features), bool)
    actions = [taken[i, :decisions[i]].tolist() for i in range(n)]
    return PlayedRounds(ticks, log_env, arrays, log_joint[:n_logged], actions, log_mask, log_count, log_features,
                        spec.n_slots)


@dataclass
class TipEvaluation:
    compliance: float
    control_ticks: float
    tip_ticks: float
    saved: float                    # control - tip, mean ticks per round
    saved_ci: tuple[float, float]   # normal interval of the paired mean (simultaneous over the tips simulated)
    control_suboptimal: float       # share of decision ticks whose joint loses ticks against π*
    tip_suboptimal: float
    by_round: list[dict]


def suboptimal_by_round(played: PlayedRounds, optimum) -> np.ndarray:
    """float[B, 2]: (suboptimal decision ticks, decision ticks) of every round."""
    bad = optimum.suboptimal_joints(played.tick_states, played.tick_joints)
    n = len(played.ticks)
    return np.stack([np.bincount(played.tick_round, weights=bad, minlength=n),
                     np.bincount(played.tick_round, minlength=n).astype(float)], axis=1)


def interval_z(confidence: float, comparisons: int = 1) -> float:
    """Normal quantile of a two-sided interval at `confidence`, simultaneous over `comparisons` (Bonferroni)."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / (2 * max(comparisons, 1)))


def paired_summary(control: np.ndarray, treated: np.ndarray, z: float = 1.96) -> tuple[float, tuple[float, float]]:
    """Mean ticks saved per paired round and its normal interval."""
    saved = control - treated
    half = z * saved.std(ddof=1) / np.sqrt(len(saved)) if len(saved) > 1 else float("nan")
    return float(saved.mean()), (float(saved.mean() - half), float(saved.mean() + half))


def simulate_tips(env: Kitchen, params: EnvParams, spec: KitchenSpec, chooser_for, tips: Sequence[Tip],
                  optimum, compliances: Sequence[float] = (1.0,), n_trainees: int = 20, rounds: int = 2,
                  seed: int = 0, readings: Readings = Readings(), confidence: float = 0.95
                  ) -> tuple[dict, list[list[TipEvaluation]]]:
    """Control and every tip × compliance in one batch. Returns (the control arm's summary, per tip its
    evaluations in the order of `compliances`). Intervals are at `confidence`, simultaneous over the tips
    (Bonferroni): the chance that any interval misses its tip's true gain under π_H is at most 1 - confidence.
    `chooser_for(trainee, round_number)` makes the simulated trainees (see :func:`play_arms`)."""
    [result] = simulate_groups(env, params, spec, lambda group, trainee, round_number: chooser_for(trainee, round_number),
                               [tips], optimum, compliances, n_trainees, rounds, seed, readings, confidence)
    return result


def simulate_groups(env: Kitchen, params: EnvParams, spec: KitchenSpec, chooser_for, groups: Sequence[Sequence[Tip]],
                    optimum, compliances: Sequence[float] = (1.0,), n_trainees: int = 20, rounds: int = 2,
                    seed: int = 0, readings: Readings = Readings(), confidence: float = 0.95,
                    suboptimal: bool = True) -> list[tuple[dict, list[list[TipEvaluation]]]]:
    """:func:`simulate_tips` for several groups of simulated trainees at once (one person each, say), each
    with its own tips and control arm, all in one batch. `chooser_for(group, trainee, round_number)` gets the
    per-env arrays. Returns, per group, what :func:`simulate_tips` returns; without `suboptimal` the shares of
    suboptimal decisions are not computed (NaN), which saves judging every simulated tick."""
    per_arm = n_trainees * rounds
    group_of, arm_of, pair_of, tips_of, compliance_of = [], [], [], [], []
    for g, tips in enumerate(groups):
        arms = [(None, 0.0)] + [(tip, c) for tip in tips for c in compliances]
        for a, (tip, c) in enumerate(arms):
            group_of += [g] * per_arm
            arm_of += [a] * per_arm
            pair_of += list(range(g * per_arm, (g + 1) * per_arm))
            tips_of += [tip] * per_arm
            compliance_of += [c] * per_arm
    group_of, arm_of, pair_of = np.asarray(group_of), np.asarray(arm_of), np.asarray(pair_of)
    trainee = pair_of % per_arm // rounds
    round_number = pair_of % rounds + 1
    u_decision, u_tick = random_streams(spec, len(groups) * per_arm, seed)
    played = play_rounds(env, params, spec, chooser_for(group_of, trainee, round_number), tips_of,
                         np.asarray(compliance_of), u_decision[pair_of], u_tick[pair_of], trainee, round_number,
                         readings)
    bad = suboptimal_by_round(played, optimum) if suboptimal else np.full((len(played.ticks), 2), np.nan)
    out = []
    for g, tips in enumerate(groups):
        z = interval_z(confidence, len(tips))
        in_group = group_of == g
        control = played.ticks[in_group & (arm_of == 0)].astype(float)
        control_bad = bad[in_group & (arm_of == 0)]
        rounds_of = round_number[in_group & (arm_of == 0)]
        evaluations = []
        for t in range(len(tips)):
            per_tip = []
            for c, compliance in enumerate(compliances):
                rows = in_group & (arm_of == 1 + t * len(compliances) + c)
                treated, treated_bad = played.ticks[rows].astype(float), bad[rows]
                saved, ci = paired_summary(control, treated, z)
                by_round = [{"round": r, "control_ticks": float(control[rounds_of == r].mean()),
                             "tip_ticks": float(treated[rounds_of == r].mean()),
                             "control_suboptimal": _rate(control_bad[rounds_of == r]),
                             "tip_suboptimal": _rate(treated_bad[rounds_of == r])} for r in range(1, rounds + 1)]
                per_tip.append(TipEvaluation(compliance, float(control.mean()), float(treated.mean()), saved, ci,
                                             _rate(control_bad), _rate(treated_bad), by_round))
            evaluations.append(per_tip)
        out.append(({"ticks": float(control.mean()), "ticks_sd": float(control.std(ddof=1)) if len(control) > 1
                     else 0.0, "suboptimal": _rate(control_bad)}, evaluations))
    return out


def _rate(counts: np.ndarray) -> float:
    total = counts[:, 1].sum()
    return float("nan") if np.isnan(total) else float(counts[:, 0].sum() / max(total, 1.0))
