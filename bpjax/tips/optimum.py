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
import numpy as np

from bpjax.agents.common import greedy_policy, make_greedy_evaluator, sampling_policy
from bpjax.agents.qvalues import make_q_evaluator, monte_carlo_q_table
from bpjax.data.traces import TraceSet
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.env.kitchen import Kitchen
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

    def q_values(self, traces: TraceSet) -> np.ndarray:
        return np.stack([self.solver.q_values(state) for state in traces.states])

    def suboptimal(self, rounds: Sequence[Sequence[int]]) -> np.ndarray:
        sim, flags = self.solver.sim, []
        for actions in rounds:
            state = sim.reset()
            for action in actions:
                q = self.solver.q_values(state)
                flags.append(bool(q[action] < q.max()))
                state = sim.step(state, int(action))[0]
        return np.asarray(flags, bool)

    def describe(self) -> dict[str, Any]:
        solution = self.solver.solve()
        return {"method": "exact", "optimal_ticks": solution.optimal_ticks, "solver_states": solution.n_states}


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
