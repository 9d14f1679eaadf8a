"""Ground-truth checks of the tip stage: synthetic trainees with one planted flaw (or none), the pipeline's
tip stage on their traces, and what the recommended tips really do for those same trainees.

Each population is bpjax's own synthetic players (:mod:`bpjax.data.players`): optimal play with slips plus a
planted flaw, greedy play, or flawless optimal play. :func:`recover` generates traces, keeps the bottom
quartile (as the pipeline does), fits π_H (a forest, shrunk toward all players' forest as the pipeline's is),
runs :func:`bpjax.tips.recommend.mine_tips` with exact
Q*, then lets the true synthetic players follow every recommended tip (compliance "replan", paired seeds):
the *true* gain, against which π_H's simulated gain can be judged.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace


from bpjax.config import compose_config
from bpjax.data.players import SyntheticPlayer, generate_population, profiles_from_config
from bpjax.data.traces import validate_traces
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.imitation import make_policy
from bpjax.imitation.shrinkage import ShrunkPolicy
from bpjax.solve.solver import ExactSolver
from bpjax.tips.optimum import ExactOptimum
from bpjax.tips.recommend import TipSettings, mine_tips
from bpjax.tips.report import tip_entry
from bpjax.tips.simulate import PlayerChooser, simulate_tips

POPULATIONS = {
    # name: (scenario, population, planted flaw (worker, type, direction) or None)
    "chef_plates": ("full", [{"kind": "chef_plates", "base": "optimal", "flaws": [["chef", "plate"]],
                              "flaw_rate": 0.9, "epsilon": 0.05}], ("chef", "plate", "does")),
    "server_cooks_sometimes": ("full", [{"kind": "server_cooks", "base": "optimal", "flaws": [["server", "cook"]],
                                         "flaw_rate": 0.4, "epsilon": 0.05}], ("server", "cook", "does")),
    "server_never_cooks": ("understaffed", [{"kind": "server_never_cooks", "base": "optimal",
                                             "avoid": [["server", "cook"]], "epsilon": 0.05}],
                           ("server", "cook", "avoids")),
    "greedy": ("full", [{"kind": "greedy", "base": "greedy", "epsilon": 0.05}], None),
    "flawless_full": ("full", [{"kind": "expert", "base": "optimal", "epsilon": 0.0}], None),
    "flawless_understaffed": ("understaffed", [{"kind": "expert", "base": "optimal", "epsilon": 0.0}], None),
}


def names_flaw(tip_json: dict, flaw: tuple[str, str, str], flawed_per_round: float = float("inf")) -> bool:
    """The tip is about the flaw's worker and task type, in the direction that corrects it: for a flaw the
    trainees do (`flawed_per_round` times a round, on average), fewer times, or idle where it would; for one
    they avoid, doing it."""
    worker, kind, direction = flaw
    if tip_json["worker"] != worker:
        return False
    if direction == "does":
        if tip_json["advice"] == "times":
            return tip_json["task_type"] == kind and tip_json["times"] < flawed_per_round
        return tip_json["advice"] == "idle" and any(f"a {kind} subtask" in c for c in tip_json["condition"] or [])
    return tip_json["task_type"] == kind and tip_json["advice"] in ("times", "assign") and tip_json["times"] != 0


def flaw_counts(traces, spec, worker: str, kind: str) -> tuple[float, float]:
    """(share of decision ticks at which `worker` was given a `kind` subtask, such assignments per round)."""
    frame = traces.frame
    assign = frame[(frame["worker"] == worker) & (frame["slot"] >= 0)]
    of_kind = assign["slot"].map(lambda s: spec.task_types[spec.slot_types[int(s)]] == kind).sum()
    ticks = frame.groupby(["episode_id", "tick"]).ngroups
    return float(of_kind / ticks), float(of_kind / frame["episode_id"].nunique())


def recover(name: str, seed: int, players: int = 40, rounds: int = 5, settings: TipSettings | None = None,
            true_trainees: int = 20, cache: dict | None = None, shrinkage: float = 5.0) -> dict:
    """One population and seed through the tip stage, with the truth check (see the module docstring)."""
    cache = {} if cache is None else cache
    scenario, population, flaw = POPULATIONS[name]
    spec = cache.setdefault(("spec", scenario), KitchenSpec.from_dict(
        compose_config([f"kitchen/scenario={scenario}"]).kitchen))
    solver = cache.setdefault(("solver", scenario), ExactSolver(spec))
    optimum = ExactOptimum(solver)
    env, params = make_kitchen(spec)
    start = time.perf_counter()
    frame, truth = generate_population(spec, population, players, rounds, seed)
    traces = validate_traces(frame)
    subset = traces.of_players(traces.bottom_players(0.25)[0])
    prior = make_policy("forest", env, params, seed=seed).fit(traces.obs, traces.mask, traces.action)
    policy = ShrunkPolicy(make_policy("forest", env, params, seed=seed), prior, shrinkage).fit(
        subset.obs, subset.mask, subset.action)
    settings = replace(settings or TipSettings(), seed=seed)
    report = mine_tips(subset, spec, env, params, optimum, policy, settings)
    recommended = [tip_entry(t.scored, report, spec) for t in report.recommended]

    # the truth: the same kind of synthetic players follow each recommended tip
    [(profile, _)], _ = profiles_from_config(population, spec)

    def true_players(trainee, round_number):
        return PlayerChooser([SyntheticPlayer(profile, solver, random.Random(seed * 7919 + 31 * int(t) + int(r)))
                              for t, r in zip(trainee, round_number)], spec.n_slots)

    true_gains = []
    if report.recommended:
        _, evaluations = simulate_tips(env, params, spec, true_players, [t.scored.tip for t in report.recommended],
                                       optimum, (1.0,), true_trainees, rounds, seed + 1000)
        true_gains = [(e[0].saved, e[0].saved_ci) for e in evaluations]
    top = recommended[0] if recommended else None
    return {
        "population": name, "seed": seed, "scenario": scenario, "planted": None if flaw is None else list(flaw),
        "flaw_fired_share": None if flaw is None or flaw[2] != "does" else flaw_counts(traces, spec, *flaw[:2])[0],
        "top": None if top is None else top["text"],
        "named": None if flaw is None else bool(top and names_flaw(top, flaw, flaw_counts(subset, spec, *flaw[:2])[1])),
        "top_simulated_gain": None if top is None else top["simulated_gain"],
        "top_true_gain": None if not true_gains else round(true_gains[0][0], 3),
        "recommended": [{"text": r["text"], "simulated_gain": r["simulated_gain"],
                         "true_gain": round(g, 3), "true_ci": [round(c, 3) for c in ci]}
                        for r, (g, ci) in zip(recommended, true_gains)],
        "true_negative": sum(g < 0 for g, _ in true_gains),
        "true_significantly_negative": sum(ci[1] < 0 for _, ci in true_gains),
        "pi_h_ticks": round(report.control["ticks"], 2), "trainee_ticks": round(report.trainee_ticks, 2),
        "seconds": round(time.perf_counter() - start, 1),
    }
