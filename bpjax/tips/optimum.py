"""π* and its Q for tips: exact where the solver is feasible, else a learned π* with Monte-Carlo Q.

Both sources answer the two questions tips ask:

* ``q_values(traces)`` — Q(s, a) for every legal action at every trace decision (float32[N, A], −inf where
  illegal), with ``tolerance``: an action counts as optimal where Q(s, a) ≥ max_a' Q(s, a') − tolerance;
* ``suboptimal(rounds)`` — which decisions of played rounds (flat actions from the start; bool[decisions],
  round by round) lose ticks against π*.

:class:`ExactOptimum` uses the exact solver (Q*, tolerance 0). :class:`LearnedOptimum` trains PPO (the
``bpjax.train`` loop; several seeds vmapped, the one whose greedy round is shortest is kept) and estimates
Q^π(s, a) by vectorised Monte-Carlo rollouts (``bpjax.agents.qvalues``) at the decision states. Those states
come from replaying each round's recorded actions through the JAX env (``bpjax.env.rollout.replay_states``:
all rounds in one jitted vmap + scan), so no conversion between reference and env states is needed. A
decision is suboptimal when π*'s greedy action beats the action taken by more than ``tolerance``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bpjax.agents.common import greedy_policy, make_greedy_evaluator, sampling_policy
from bpjax.agents.qvalues import make_q_evaluator, monte_carlo_q_table
from bpjax.data.traces import TraceSet
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.convert import from_reference_batch, reference_from_arrays
from bpjax.env.joint import play_joint
from bpjax.env.kitchen import Kitchen
from bpjax.env.reference import RefState
from bpjax.env.rollout import replay_states
from bpjax.env.types import EnvParams, EnvState
from bpjax.solve.solver import ExactSolver, SolverBudgetExceeded

Q_METHODS = ("auto", "exact", "monte_carlo")
ROLLOUT_POLICIES = ("sample", "greedy")
ESTIMATES = ("best", "mean")


def trace_rounds(traces: TraceSet) -> list[np.ndarray]:
    """Each round's flat actions, in the traces' order (a round's rows are contiguous)."""
    episode = traces.frame["episode_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    return np.split(traces.action.astype(np.int32), starts[1:])


@dataclass
class ExactOptimum:
    solver: ExactSolver
    tolerance: float = 0.0
    max_optimal_joints: int = 256  # per tick; kitchens with more optimal joints keep the first ones found
    _optimal: dict = field(default_factory=dict, repr=False)  # state -> its optimal joints
    _costs: dict = field(default_factory=dict, repr=False)    # (state, joint) -> its cost
    _q: dict = field(default_factory=dict, repr=False)        # state -> Q*(s, ·)
    _values: dict = field(default_factory=dict, repr=False)   # state -> optimal ticks to go (clipped)
    _packed: Any = field(default=None, repr=False)             # PackedQ of this optimum

    def q_values(self, traces: TraceSet) -> np.ndarray:
        return np.stack([self.state_q(state) for state in traces.states]) if traces.states else \
            np.zeros((0, self.solver.sim.n_actions), np.float32)

    def state_q(self, state: RefState) -> np.ndarray:
        """Q*(s, ·) of one state (cached: simulated trainees revisit states)."""
        if state not in self._q:
            self._q[state] = self.solver.q_values(state)
        return self._q[state]

    def q_of_arrays(self, tick, done_bits, worker_slot, worker_until) -> np.ndarray:
        """float32[N, A]: Q* of states given as host arrays (one :class:`PackedQ`, shared by every call)."""
        if self._packed is None:
            self._packed = PackedQ(self, self.solver.spec.n_slots)
        return self._packed(tick, done_bits, worker_slot, worker_until)

    def suboptimal(self, rounds: Sequence[Sequence[int]]) -> np.ndarray:
        sim, flags = self.solver.sim, []
        for actions in rounds:
            state = sim.reset()
            for action in actions:
                q = self.solver.q_values(state)
                flags.append(bool(q[action] < q.max()))
                state = sim.step(state, int(action))[0]
        return np.asarray(flags, bool)

    def joint_costs(self, states: Sequence[RefState], joints: np.ndarray) -> np.ndarray:
        """float[M]: ticks from the start of each tick until every order is done when the tick's joint
        assignment (slot per worker, -1 = none) is played, then the optimum; clipped at the horizon."""
        sim, n_workers = self.solver.sim, self.solver.spec.n_workers
        out = np.empty(len(states))
        for i, (state, joint) in enumerate(zip(states, np.asarray(joints).tolist())):
            key = (state, *joint)
            if key not in self._costs:
                pairs = [(w, s) for w, s in enumerate(joint) if s >= 0]
                after, _, reward, _, _ = play_joint(sim.step, _tick, state, pairs, n_workers, sim.n_slots)
                self._costs[key] = min(-reward + self.solver.ticks_to_go(after), self.max_ticks - state.tick)
            out[i] = self._costs[key]
        return out

    def values(self, states: Sequence[RefState]) -> np.ndarray:
        """float[M]: the optimal ticks to go from each state, clipped at the horizon."""
        for state in states:
            if state not in self._values:
                self._values[state] = -self.solver.value(state)
        return np.asarray([self._values[state] for state in states], float)

    def optimal_joints(self, states: Sequence[RefState]) -> list[np.ndarray]:
        """Per state (a tick's start), every optimal joint assignment of that tick: int[n, W]."""
        for state in states:
            if state not in self._optimal:
                self._optimal[state] = self._optimal_joints(state)
        return [self._optimal[state] for state in states]

    def _optimal_joints(self, state: RefState) -> np.ndarray:
        sim, n_workers, n_slots = self.solver.sim, self.solver.spec.n_workers, self.solver.sim.n_slots
        found: set[frozenset] = set()
        seen: set[frozenset] = set()

        def walk(current: RefState, pairs: frozenset) -> None:
            if pairs in seen or len(found) >= self.max_optimal_joints:
                return
            seen.add(pairs)
            q = self.solver.q_values(current, horizon=False)
            for action in np.flatnonzero(q == q.max()):
                if action == sim.end_tick_action:
                    found.add(pairs)
                    continue
                pair = divmod(int(action), n_slots)
                after = sim.step(current, int(action))[0]
                if after.tick != current.tick or sim.is_over(after)[0]:
                    found.add(pairs | {pair})
                else:
                    walk(after, pairs | {pair})

        if not sim.is_over(state)[0]:
            walk(state, frozenset())
        out = np.full((max(len(found), 1), n_workers), -1, np.int64)
        for row, pairs in enumerate(sorted(found, key=sorted)):
            for w, slot in pairs:
                out[row, w] = slot
        return out

    def suboptimal_joints(self, states: Sequence[RefState], joints: np.ndarray) -> np.ndarray:
        """bool[M]: the tick's joint assignment loses ticks against the optimum."""
        return self.joint_costs(states, joints) > self.values(states) + self.tolerance

    @property
    def max_ticks(self) -> int:
        return self.solver.max_ticks

    def describe(self) -> dict[str, Any]:
        solution = self.solver.solve()
        return {"method": "exact", "optimal_ticks": solution.optimal_ticks, "solver_states": solution.n_states}


def _tick(state: RefState) -> int:
    return state.tick


class PackedQ:
    """Q*(s, ·) of env states given as host arrays (a batch's tick, done_bits, worker_slot, worker_until),
    looked up by the bytes of each row: a simulated batch revisits few distinct states, so only those are
    turned into reference states and asked of the optimum, once."""

    def __init__(self, optimum, n_slots: int):
        self.optimum, self.n_slots = optimum, n_slots
        self._index: dict[bytes, int] = {}
        self._table = np.zeros((1024, optimum.solver.sim.n_actions), np.float32)  # rows 0 .. len(_index)-1

    def __call__(self, tick, done_bits, worker_slot, worker_until) -> np.ndarray:
        """float32[N, A]: Q* of each row (−inf where illegal)."""
        until = np.where(worker_slot >= 0, worker_until, 0)  # a free worker's stale finish tick is no part of s
        packed = np.ascontiguousarray(np.concatenate(
            [np.asarray(tick, np.int64)[:, None], np.asarray(done_bits, np.int64), np.asarray(worker_slot, np.int64),
             until.astype(np.int64)], axis=1))
        rows = packed.view(np.dtype((np.void, packed.shape[1] * 8))).reshape(-1)
        unique, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        ids = np.fromiter((self._index.get(key.tobytes(), -1) for key in unique), np.int64, len(unique))
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            at = first[missing]
            states = reference_from_arrays(np.asarray(tick)[at], np.asarray(done_bits)[at],
                                           np.asarray(worker_slot)[at], np.asarray(worker_until)[at], self.n_slots)
            ids[missing] = len(self._index) + np.arange(len(missing))
            while len(self._table) <= ids.max():  # doubled, so that growing costs O(states) in all
                self._table = np.concatenate([self._table, np.zeros_like(self._table)])
            self._table[ids[missing]] = np.stack([self.optimum.state_q(s) for s in states])
            self._index.update(zip((unique[m].tobytes() for m in missing), ids[missing].tolist()))
        return self._table[ids[inverse.reshape(-1)]]


def check_monte_carlo(n_rollouts: int = 16, rollout_policy: str = "sample", estimate: str = "best",
                      tolerance: float = 0.0) -> None:
    """One-line ConfigError for bad Monte-Carlo settings (checked before any training)."""
    if rollout_policy not in ROLLOUT_POLICIES:
        raise ConfigError(f"monte_carlo.rollout_policy: expected one of {', '.join(ROLLOUT_POLICIES)}, "
                          f"got {rollout_policy!r}")
    if estimate not in ESTIMATES:
        raise ConfigError(f"monte_carlo.estimate: expected one of {', '.join(ESTIMATES)}, got {estimate!r}")
    if not isinstance(n_rollouts, int) or n_rollouts < 1:
        raise ConfigError(f"monte_carlo.n_rollouts: expected a positive integer, got {n_rollouts!r}")
    if not tolerance >= 0:
        raise ConfigError(f"monte_carlo.tolerance: expected ticks >= 0, got {tolerance!r}")


@dataclass
class LearnedOptimum:
    env: Kitchen
    env_params: EnvParams
    network: Any
    params: Any
    n_rollouts: int = 16
    rollout_policy: str = "sample"  # roll out the sampled policy, or its greedy (deterministic) version
    estimate: str = "best"          # per (s, a): the best rollout's return, or the mean (Q^π)
    tolerance: float = 0.0
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # how π* was learned, for the report

    def __post_init__(self):
        check_monte_carlo(self.n_rollouts, self.rollout_policy, self.estimate, self.tolerance)
        if self.rollout_policy == "greedy":
            self.n_rollouts = 1  # a deterministic policy in a deterministic kitchen: every rollout is the same
        make = sampling_policy if self.rollout_policy == "sample" else greedy_policy
        self._q = make_q_evaluator(self.env, self.env_params, make(self.env, self.network, self.params),
                                   self.n_rollouts, self.estimate)
        self._last_step = jax.jit(jax.vmap(lambda state, joint: joint_last_step(self.env, self.env_params, state,
                                                                               joint)))
        policy = greedy_policy(self.env, self.network, self.params)
        # judging many simulated decisions: one deterministic rollout of greedy π* per joint (exact Q of it)
        self._q_greedy = make_q_evaluator(self.env, self.env_params, policy, 1, "mean")
        self._greedy_joint = jax.jit(jax.vmap(lambda state: greedy_joint(self.env, self.env_params, policy, state)))

    def decision_states(self, rounds: Sequence[Sequence[int]]) -> EnvState:
        """Batched env states before every decision of `rounds`, in order (round by round)."""
        lengths = np.asarray([len(r) for r in rounds])
        recorded = np.arange(lengths.max()) < lengths[:, None]
        padded = np.full(recorded.shape, self.env.end_tick_action, np.int32)
        padded[recorded] = np.concatenate([np.asarray(r, np.int32) for r in rounds])
        states = replay_states(self.env, self.env_params, padded)
        round_of, position = np.nonzero(recorded)
        return jax.tree.map(lambda x: x[round_of, position], states)

    def greedy_actions(self, states: EnvState) -> np.ndarray:
        policy = greedy_policy(self.env, self.network, self.params)
        return np.asarray(jax.jit(jax.vmap(lambda state: policy(None, state, self.env_params)))(states))

    def q_values(self, traces: TraceSet) -> np.ndarray:
        states = self.decision_states(trace_rounds(traces))
        return monte_carlo_q_table(self._q, states, traces.mask, jax.random.key(self.seed))

    def suboptimal(self, rounds: Sequence[Sequence[int]]) -> np.ndarray:
        states = self.decision_states(rounds)
        taken = np.concatenate([np.asarray(r, np.int32) for r in rounds])
        best = self.greedy_actions(states)
        both = jax.tree.map(lambda x: np.concatenate([x, x]), states)
        q = self._q(both, np.r_[taken, best], jax.random.key(self.seed + 1))
        return (taken != best) & (q[: len(taken)] < q[len(taken):] - self.tolerance)

    def joint_costs(self, states: Sequence[RefState], joints: np.ndarray, greedy: bool = False) -> np.ndarray:
        """float[M]: ticks from each tick's start until done when its joint assignment is played, then π*
        (Monte-Carlo, as ``q_values``; with `greedy`, one rollout of greedy π*): the joint's last played
        action is valued where it is taken."""
        before, last = _padded(self._last_step, len(states), from_reference_batch(states),
                               jnp.asarray(joints, jnp.int32))
        q = self._q_greedy if greedy else self._q
        return -q(before, np.asarray(last), jax.random.key(self.seed + 2))

    def optimal_joints(self, states: Sequence[RefState]) -> list[np.ndarray]:
        """Per state, π*'s greedy joint assignment of that tick (one): int[1, W]."""
        joints = np.asarray(_padded(self._greedy_joint, len(states), from_reference_batch(states)))
        return [row[None] for row in joints]

    def suboptimal_joints(self, states: Sequence[RefState], joints: np.ndarray) -> np.ndarray:
        """bool[M]: the joint loses more than `tolerance` ticks against π*'s greedy joint, greedy π* acting
        after both (one deterministic rollout each: cheap enough for every simulated decision)."""
        greedy = np.concatenate(self.optimal_joints(states))
        both = self.joint_costs(list(states) * 2, np.concatenate([np.asarray(joints), greedy]), greedy=True)
        cost, best = both[: len(states)], both[len(states):]
        return ((np.asarray(joints) != greedy).any(axis=1)) & (cost > best + self.tolerance)

    def describe(self) -> dict[str, Any]:
        return {"method": "monte_carlo", "n_rollouts": self.n_rollouts, "rollout_policy": self.rollout_policy,
                "estimate": self.estimate, "tolerance": self.tolerance, **self.info}


def learn_optimum(env: Kitchen, env_params: EnvParams, algo: Mapping[str, Any], seeds: Sequence[int],
                  reason: str = "", **monte_carlo: Any) -> LearnedOptimum:
    """Train `algo` (the ``bpjax.train`` loop, seeds vmapped in one call) and keep the seed whose greedy round
    is shortest; `monte_carlo` are :class:`LearnedOptimum`'s settings (n_rollouts, rollout_policy, ...);
    `reason` (why not exact) is kept for the report."""
    from bpjax.train.loop import algorithm_config, train

    check_monte_carlo(**monte_carlo)
    name, _, n_updates = algorithm_config(algo)
    start = time.perf_counter()
    run = train(env, env_params, algo, list(seeds), n_updates)
    ticks = np.asarray(jax.vmap(make_greedy_evaluator(env, env_params, run.network))(run.states.params))
    best = int(np.argmin(ticks))
    info = {"reason": reason, "algo": name, "n_updates": n_updates, "seeds": list(seeds),
            "greedy_ticks": int(ticks[best]),
            "greedy_ticks_per_seed": ticks.tolist(), "train_s": round(time.perf_counter() - start, 2)}
    return LearnedOptimum(env, env_params, run.network, jax.tree.map(lambda x: x[best], run.states.params),
                          seed=int(seeds[best]), info=info, **monte_carlo)


def choose_optimum(spec: KitchenSpec, method: str, max_states: int | None,
                   learn: Callable[[str], LearnedOptimum]) -> ExactOptimum | LearnedOptimum:
    """`exact` (the solver within `max_states`, else a one-line error), `monte_carlo` (always learn), or
    `auto` (exact when the solver finishes within `max_states`, else learn). `learn(reason)` is told why."""
    if method not in Q_METHODS:
        raise ConfigError(f"qvalues: expected one of {', '.join(Q_METHODS)}, got {method!r}")
    if method == "monte_carlo":
        return learn("qvalues=monte_carlo")
    solver = ExactSolver(spec, max_states)
    try:
        solver.solve()
    except SolverBudgetExceeded:
        if method == "exact":
            raise ConfigError(f"qvalues=exact: the kitchen has more than solver_max_states={max_states} states; "
                              "raise it or use qvalues=auto|monte_carlo") from None
        return learn(f"more than solver_max_states={max_states} states")
    return ExactOptimum(solver)


def _padded(function, n: int, *batched):
    """`function(*batched)` on the leading axis padded to a power of two (one compiled program per size
    class instead of one per batch length), cut back to `n`."""
    size = max(64, 1 << max(n - 1, 0).bit_length())
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], size - n, axis=0)]), batched)
    return jax.tree.map(lambda x: x[:n], function(*padded))


def joint_last_step(env: Kitchen, params: EnvParams, state: EnvState, joint: jax.Array):
    """(state before the last action, that action) when one tick's joint assignment (int[W], -1 = none) is
    played from `state`: its assignments in worker order, then "end tick" unless time already moved on."""
    n_slots, end = env.n_slots, env.end_tick_action
    previous, current, last = state, state, jnp.int32(end)
    for w in range(env.n_workers):
        real = joint[w] >= 0
        action = jnp.where(real, w * n_slots + joint[w], end)
        after = env.step_env(None, current, action, params)[0]
        pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(real, a, b), new, old)  # noqa: E731
        previous, last, current = pick(current, previous), jnp.where(real, action, last), pick(after, current)
    moved = (current.tick != state.tick) | env.is_terminal(current, params) | (current.tick >= params.max_ticks)
    before = jax.tree.map(lambda a, b: jnp.where(moved, a, b), previous, current)
    return before, jnp.where(moved, last, end).astype(jnp.int32)


def greedy_joint(env: Kitchen, params: EnvParams, policy, state: EnvState) -> jax.Array:
    """int[W]: the joint assignment `policy` makes in the tick that starts at `state`."""
    n_slots, end = env.n_slots, env.end_tick_action
    joint, current, active = jnp.full((env.n_workers,), -1, jnp.int32), state, jnp.bool_(True)
    for _ in range(env.n_workers + 1):
        action = policy(None, current, params)
        assign = active & (action < end)
        joint = jnp.where(assign & (jnp.arange(env.n_workers) == action // n_slots), action % n_slots, joint)
        after = env.step_env(None, current, action, params)[0]
        current = jax.tree.map(lambda a, b: jnp.where(active, a, b), after, current)
        active = assign & (current.tick == state.tick) & ~env.is_terminal(current, params)
    return joint
