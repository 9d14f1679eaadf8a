"""The Monte-Carlo fallback for π* and Q (PPO + rollouts) against the exact solver, on a two-burger kitchen
where both are cheap: replayed decision states, Q close to Q*, the same tips, the same suboptimal decisions,
and the pipeline falling back by itself when the solver's state budget is too small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bpjax.data import read_traces, write_traces
from bpjax.data.players import generate_population
from bpjax.env.config import ConfigError
from bpjax.env.kitchen import make_kitchen
from bpjax.solve.solver import ExactSolver
from bpjax.tips.candidates import count_tips
from bpjax.tips.optimum import ExactOptimum, choose_optimum, learn_optimum, trace_rounds
from bpjax.tips.score import score_tips
from bpjax.tips.ticks import tick_table
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]
TWO_BURGERS = "kitchen.orders=[{dish:burger,arrival:0},{dish:burger,arrival:0}]"
# a PPO budget that reaches the two-burger optimum (13 ticks) with most seeds: 30 updates of 32 envs x 32 steps
SMALL_PPO = {"name": "ppo", "n_updates": 30, "n_envs": 32, "n_steps": 32, "n_minibatches": 2}
SEEDS = [0, 1, 2]   # trained side by side (vmapped); the fallback keeps the seed whose greedy round is shortest
CHEF_PLATES = [{"kind": "chef_plates", "base": "optimal", "flaws": [["chef", "plate"]], "flaw_rate": 0.9,
                "epsilon": 0.0}]


@pytest.fixture(scope="module")
def two_burgers(tmp_path_factory):
    spec = spec_for(TWO_BURGERS)
    frame, _ = generate_population(spec, CHEF_PLATES, n_players=8, rounds=3, seed=0)
    path = write_traces(frame, tmp_path_factory.mktemp("traces") / "chef_plates.parquet")
    traces = read_traces(path)
    env, env_params = make_kitchen(spec)
    exact = ExactOptimum(ExactSolver(spec))
    learned = learn_optimum(env, env_params, SMALL_PPO, SEEDS, n_rollouts=16)
    return spec, path, traces, exact, learned


@pytest.mark.slow
def test_replayed_decision_states_are_the_trace_states(two_burgers):
    """Replaying every round's recorded actions through the JAX env (one vmapped scan) gives, at each
    decision, the state the trace reader saw: same observation and legal actions."""
    import jax

    spec, _, traces, _, learned = two_burgers
    states = learned.decision_states(trace_rounds(traces))
    env, env_params = learned.env, learned.env_params
    obs = jax.vmap(env.raw_features, in_axes=(0, None))(states, env_params)
    mask = jax.vmap(env.action_mask, in_axes=(0, None))(states, env_params)
    np.testing.assert_array_equal(np.asarray(obs), traces.obs)
    np.testing.assert_array_equal(np.asarray(mask), traces.mask)


@pytest.mark.slow
def test_monte_carlo_q_is_close_to_exact_q_star(two_burgers):
    """Most seeds' greedy π* play the optimum and the kept one does; the best of 16 rollouts per (s, a) never exceeds Q* (each rollout is
    a schedule that can be played) and is within 0.25 tick of it on average over every legal (s, a) at the
    trace decisions, exact for at least 85 % of them; its argmax is an optimal action at 95 % of decisions.
    (Measured: mean error 0.04-0.08, 92-96 % exact, argmax optimal at 99 %.)"""
    spec, _, traces, exact, learned = two_burgers
    optimum = exact.solver.solve().optimal_ticks
    per_seed = learned.info["greedy_ticks_per_seed"]
    assert min(per_seed) >= optimum and sum(t == optimum for t in per_seed) >= 2, per_seed
    assert learned.info["greedy_ticks"] == optimum
    q_star, q = exact.q_values(traces), learned.q_values(traces)
    legal = traces.mask
    np.testing.assert_array_equal(np.isfinite(q), legal)
    assert np.all(q[legal] <= q_star[legal])
    error = q_star[legal] - q[legal]
    assert error.mean() <= 0.25 and (error == 0).mean() >= 0.85, (error.mean(), (error == 0).mean())
    rows = np.arange(len(q))
    argmax_optimal = q_star[rows, q.argmax(axis=1)] == q_star.max(axis=1)
    assert argmax_optimal.mean() >= 0.95


@pytest.mark.slow
def test_monte_carlo_tips_and_suboptimal_decisions_match_exact(two_burgers):
    """On chef-plates trainees both Q sources give the same top count tip by per-tick score (within half a
    tick), close joint costs, and judge the same decision ticks suboptimal at 90 % of them."""
    spec, _, traces, exact, learned = two_burgers
    table = tick_table(traces, spec)
    top = {}
    for name, optimum in (("exact", exact), ("monte_carlo", learned)):
        top[name] = score_tips(table, count_tips(spec), optimum)[0]
    assert top["exact"].text == top["monte_carlo"].text
    assert abs(top["exact"].score - top["monte_carlo"].score) < 0.5
    exact_cost, learned_cost = exact.joint_costs(table.states, table.joint), learned.joint_costs(table.states,
                                                                                                 table.joint)
    assert np.all(learned_cost >= exact_cost) and (learned_cost - exact_cost).mean() <= 0.25
    exact_bad = exact.suboptimal_joints(table.states, table.joint)
    learned_bad = learned.suboptimal_joints(table.states, table.joint)
    assert exact_bad.sum() > 0 and (exact_bad == learned_bad).mean() >= 0.9


def test_choose_optimum_exact_when_feasible_else_learned():
    """auto: exact within the state budget, the learner beyond it; exact: a one-line error beyond it;
    monte_carlo: learns without solving; an unknown method is rejected before any work."""
    spec = spec_for(TWO_BURGERS)
    learned = object()
    assert isinstance(choose_optimum(spec, "auto", None, lambda reason: learned), ExactOptimum)
    assert choose_optimum(spec, "auto", 50, lambda reason: learned) is learned  # the kitchen has 154 states
    assert choose_optimum(spec, "auto", 50, lambda reason: reason) == "more than solver_max_states=50 states"
    assert choose_optimum(spec, "monte_carlo", None, lambda reason: learned) is learned
    with pytest.raises(ConfigError, match="qvalues=exact: the kitchen has more than solver_max_states=50"):
        choose_optimum(spec, "exact", 50, lambda reason: learned)
    with pytest.raises(ConfigError, match="qvalues: expected one of auto, exact, monte_carlo, got 'mc'"):
        choose_optimum(spec, "mc", None, lambda reason: learned)


@pytest.mark.slow
def test_pipeline_falls_back_to_monte_carlo_and_finds_the_exact_top_tip(two_burgers, tmp_path):
    """The pipeline on the same traces twice: exact Q*, and `auto` with a solver budget too small for the
    kitchen (so it trains PPO and uses Monte-Carlo Q). Same top tip; tips.json and report.md say which Q."""
    _, path, _, _, _ = two_burgers
    common = [f"traces={path}", "bottom_quantile=0.5", "tips=algorithm", "tips.simulate=3", "tips.eval_trainees=8",
              "tips.compliance=[1.0]", "tips.eval_rounds=1", f"monte_carlo.n_seeds={len(SEEDS)}",
              *(f"monte_carlo.algo.{k}={v}" for k, v in SMALL_PPO.items() if k != "name")]
    tops = {}
    for name, overrides in (("exact", ["qvalues=exact"]), ("fallback", ["qvalues=auto", "solver_max_states=50"])):
        out = tmp_path / name
        result = subprocess.run([sys.executable, "-m", "bpjax.pipeline", f"hydra.run.dir={out}", *common, *overrides],
                                capture_output=True, text=True, timeout=600, cwd=REPO)
        assert result.returncode == 0, result.stderr[-3000:]
        tips = json.loads((out / "tips.json").read_text())
        tops[name] = {**tips["recommended"][0], "q_values": tips["q_values"], "report": (out / "report.md").read_text()}
    assert tops["exact"]["q_values"]["method"] == "exact"
    fallback = tops["fallback"]["q_values"]
    assert fallback["method"] == "monte_carlo" and fallback["n_rollouts"] == 16
    per_seed, optimum = fallback["greedy_ticks_per_seed"], tops["exact"]["q_values"]["optimal_ticks"]
    assert fallback["greedy_ticks"] == optimum and sum(t == optimum for t in per_seed) >= 2, per_seed
    assert tops["fallback"]["text"] == tops["exact"]["text"]
    assert tops["fallback"]["simulated_gain"] > 0
    assert fallback["reason"] == "more than solver_max_states=50 states"
    assert "Monte-Carlo" in tops["fallback"]["report"] and "exact Q*" in tops["exact"]["report"]
