"""``python -m bpjax.pipeline [overrides]`` — the whole study on a small default that runs in about a minute:

generate (or load) traces → keep the bottom quartile of players → learn π_H → π* and Q at their decisions
(``qvalues``: exact Q* where the solver finishes within ``solver_max_states``, else PPO + Monte-Carlo Q; see
``bpjax.tips.optimum``) → mine and rank the study's tips (Q score and the state–action-count baseline) →
simulate π_H ⊕ ρ for the top tips and Bayesian rule lists → ``report.md`` (tables, plot of ticks with and
without the top tip), ``tips.json``, ``rule_lists.json``, in the Hydra output directory. Prints tips.json's
top entry as its last line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, quiet_library_logs
from bpjax.config.schema import register as register_schemas
from bpjax.env.config import ConfigError, KitchenSpec

register_schemas()  # before Hydra composes: monte_carlo.algo (the algo group) names its typed schema


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name="pipeline")
def main(cfg: DictConfig) -> None:
    quiet_library_logs()
    from bpjax.data.players import generate_population
    from bpjax.data.traces import TraceError, read_traces, write_traces
    from bpjax.env.kitchen import make_kitchen
    from bpjax.imitation import make_policy
    from bpjax.solve.solver import ExactSolver
    from bpjax.tips import decision_table, score_count_tips
    from bpjax.tips.evaluate import LearnedTrainee, evaluate_tip
    from bpjax.tips.conditional import score_conditional_tips
    from bpjax.tips.optimum import Q_METHODS, check_monte_carlo, choose_optimum, learn_optimum
    from bpjax.tips.rules import brl_tips
    from bpjax.train.loop import algorithm_config

    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        if not 0 < cfg.bottom_quantile <= 1:
            raise ConfigError(f"bottom_quantile: expected a share in (0, 1], got {cfg.bottom_quantile}")
        if cfg.tips.rank_by not in ("algorithm", "baseline"):
            raise ConfigError(f"tips.rank_by: expected 'algorithm' or 'baseline', got {cfg.tips.rank_by!r}")
        if cfg.qvalues not in Q_METHODS:
            raise ConfigError(f"qvalues: expected one of {', '.join(Q_METHODS)}, got {cfg.qvalues!r}")
        monte_carlo = OmegaConf.to_container(cfg.monte_carlo, resolve=True)
        algo, n_seeds = monte_carlo.pop("algo"), monte_carlo.pop("n_seeds")
        check_monte_carlo(**monte_carlo)
        try:
            algorithm_config(algo)
        except ValueError as error:
            raise ConfigError(f"monte_carlo.{error}") from None
        if not isinstance(n_seeds, int) or n_seeds < 1:
            raise ConfigError(f"monte_carlo.n_seeds: expected a positive integer, got {n_seeds!r}")
        if cfg.traces is None:
            spec = KitchenSpec.from_dict(cfg.kitchen)
            frame, truth = generate_population(spec, OmegaConf.to_container(cfg.population, resolve=True),
                                               cfg.n_players, cfg.rounds, cfg.seed)
            (out / "players.json").write_text(json.dumps(truth, indent=2))
            traces = read_traces(write_traces(frame, out / "traces.parquet"))
        else:
            traces = read_traces(cfg.traces, skip_invalid=cfg.skip_invalid)
            for reason in traces.rejected:
                print(f"rejected {reason}")
            if traces.spec is None:
                raise ConfigError("traces: rounds of several kitchens; run one kitchen at a time")
            spec = traces.spec
        env, env_params = make_kitchen(spec)
        trainee_policy = make_policy(cfg.imitation, env, env_params, seed=cfg.seed)
    except (ConfigError, TraceError, ValueError, OSError) as error:
        sys.exit(f"{type(error).__name__}: {error}")

    # 1. the bottom performers and their decisions
    # rank players by their complete rounds (a round left mid-way has too few ticks); all decisions count
    complete = traces.rounds[traces.rounds["complete"]]
    if complete.empty:
        sys.exit("TraceError: traces: no complete round to rank players by")
    per_player = complete.groupby("player_id")["ticks"].mean()
    bottom = set(per_player[per_player >= per_player.quantile(1 - cfg.bottom_quantile)].index)
    rows = traces.frame["player_id"].isin(bottom).to_numpy()
    subset = _subset(traces, rows)
    print(f"{len(bottom)} of {len(per_player)} players in the bottom {cfg.bottom_quantile:.0%} "
          f"(mean ticks {per_player[list(bottom)].mean():.2f} vs {per_player.mean():.2f} overall); "
          f"{rows.sum()} decisions")
    # 2. pi_H; pi* and Q (exact where the solver is feasible, else PPO + Monte-Carlo); tips
    trainee_policy.fit(subset.obs, subset.mask, subset.action)
    try:
        optimum = choose_optimum(spec, cfg.qvalues, cfg.solver_max_states, lambda reason: learn_optimum(
            env, env_params, algo, [cfg.seed + i for i in range(n_seeds)], reason, **monte_carlo))
    except ConfigError as error:
        sys.exit(f"ConfigError: {error}")
    q_source = optimum.describe()
    solver = getattr(optimum, "solver", None) or ExactSolver(spec)  # the simulator for the tip simulation
    print(_describe_q(q_source))
    table = decision_table(subset, spec, optimum)
    trainee_probs = trainee_policy.probs(subset.obs, subset.mask)
    scores = score_count_tips(table, spec, trainee_probs=trainee_probs,
                              min_applicability=cfg.tips.min_applicability,
                              max_disagreement=cfg.tips.max_disagreement)
    kept = [s for s in scores if s.kept]
    rule_lists = (brl_tips(subset.states, table["q"], table["action"], spec, seed=cfg.seed,
                           optimal=table["optimal"]) if cfg.tips.rule_lists else [])
    conditional = [c for c in score_conditional_tips(
        table, subset.states, spec, trainee_probs=trainee_probs,
        min_applicability=cfg.tips.min_applicability, max_disagreement=cfg.tips.max_disagreement) if c.kept]
    by_baseline = sorted(kept, key=lambda s: (-s.baseline_score, -s.applicability, s.tip.times))
    # 3. simulate pi_H (+) tip
    top = (kept if cfg.tips.rank_by == "algorithm" else by_baseline)[: cfg.tips.top]
    evaluations = {}
    for entry in top:
        evaluations[entry.text] = evaluate_tip(
            solver, lambda i, rng: LearnedTrainee(trainee_policy, solver, rng), cfg.tips.eval_trainees, entry.tip,
            tuple(cfg.tips.compliance), cfg.tips.eval_rounds, cfg.seed, optimum)
    tips = [{"rank": i + 1, "text": s.text, "score": round(s.score, 3), "support": round(s.applicability, 3),
             "disagreement": round(s.disagreement, 3), "baseline_score": round(s.baseline_score, 3),
             "baseline_rank": by_baseline.index(s) + 1, "algorithm_rank": kept.index(s) + 1,
             "simulated_gain": round(evaluations[s.text][0].saved, 3),
             "simulated_gain_ci": [round(x, 3) for x in evaluations[s.text][0].saved_ci],
             "by_compliance": {str(e.compliance): round(e.saved, 3) for e in evaluations[s.text]},
             "suboptimal_rate": {"control": round(evaluations[s.text][0].control_suboptimal, 3),
                                 "tip": round(evaluations[s.text][0].tip_suboptimal, 3)},
             "warning": "following this tip lost ticks in simulation" if evaluations[s.text][0].saved < 0 else None,
             "q_values": q_source}
            for i, s in enumerate(top)]
    (out / "tips.json").write_text(json.dumps(tips, indent=2))
    (out / "rule_lists.json").write_text(json.dumps([r.__dict__ for r in rule_lists], indent=2))
    (out / "conditional_tips.json").write_text(json.dumps(
        [{"text": c.text, "score": round(c.score, 3), "support": round(c.applicability, 3),
          "disagreement": round(c.disagreement, 3)} for c in conditional[: cfg.tips.top]], indent=2))
    _report(out, spec, q_source, per_player, bottom, tips, evaluations, kept, by_baseline, rule_lists, cfg,
            conditional)
    for tip in tips:
        print(f"  #{tip['rank']} {tip['text']:<42} score {tip['score']:6.2f}  simulated {tip['simulated_gain']:6.2f} "
              f"{tip['simulated_gain_ci']}  support {tip['support']:.2f}  baseline rank {tip['baseline_rank']}")
    print(json.dumps(tips[0] if tips else {}))


def _subset(traces, rows: np.ndarray):
    from dataclasses import replace

    return replace(traces, frame=traces.frame[rows].reset_index(drop=True), obs=traces.obs[rows],
                   mask=traces.mask[rows], action=traces.action[rows],
                   states=[s for s, keep in zip(traces.states, rows) if keep],
                   rounds=traces.rounds[traces.rounds["player_id"].isin(set(traces.frame["player_id"][rows]))])


def _describe_q(q_source: dict) -> str:
    if q_source["method"] == "exact":
        return f"Q: exact Q* (solver, {q_source['solver_states']:,} states); optimum {q_source['optimal_ticks']} ticks"
    return (f"Q: Monte-Carlo ({q_source['estimate']} of {q_source['n_rollouts']} {q_source['rollout_policy']} "
            f"rollout(s) per action, tolerance {q_source['tolerance']:g} ticks) of pi* learned by "
            f"{q_source['algo']} ({q_source['n_updates']} updates, best of {len(q_source['seeds'])} seed(s): "
            f"greedy round {q_source['greedy_ticks']} ticks, {q_source['train_s']:.0f} s)")


def _report(out: Path, spec, q_source, per_player, bottom, tips, evaluations, kept, by_baseline, rule_lists,
            cfg, conditional) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact = q_source["method"] == "exact"
    optimum = q_source["optimal_ticks"] if exact else q_source["greedy_ticks"]
    lines = ["# bpjax tip report", "",
             f"Kitchen: scenario `{spec.scenario}`, orders {[o.dish for o in spec.orders]}; "
             + (f"exact optimum **{optimum} ticks**." if exact else
                f"learned π* (greedy) **{optimum} ticks** (no exact solution: {q_source['reason']})."), "",
             _describe_q(q_source).replace("pi*", "π*") + ".", "",
             f"Trainees: {len(per_player)} players; the bottom {cfg.bottom_quantile:.0%} ({len(bottom)} players, "
             f"mean {per_player[list(bottom)].mean():.2f} ticks) were fitted with `{cfg.imitation}`.", "",
             "## Top tips (" + ("the study's algorithm: Q-based first-order score" if cfg.tips.rank_by == "algorithm"
                                else "picked by the baseline: how often π* does what the tip says") + ")", "",
             "| # | tip | score (ticks/round) | simulated gain [95% CI], full compliance | support | π* disagreement "
             "| baseline rank | suboptimal decisions: control → tip |",
             "|---|---|---|---|---|---|---|---|"]
    for t in tips:
        lines.append(f"| {t['rank']} | {t['text']} | {t['score']:.2f} | {t['simulated_gain']:.2f} "
                     f"[{t['simulated_gain_ci'][0]:.2f}, {t['simulated_gain_ci'][1]:.2f}] | {t['support']:.2f} | "
                     f"{t['disagreement']:.2f} | {t['baseline_rank']} | {t['suboptimal_rate']['control']:.1%} → "
                     f"{t['suboptimal_rate']['tip']:.1%} |")
    negative = [t["text"] for t in tips if t["warning"]]
    if negative:
        lines += ["", "**Warning:** following " + "; ".join(negative) + " lost ticks in simulation."]
    lines += ["", "## Baseline ranking (how often π* does what the tip says)", ""]
    lines += [f"{i + 1}. {s.text} (agreement {s.baseline_score:.2f}, support {s.applicability:.2f})"
              for i, s in enumerate(by_baseline[: cfg.tips.top])]
    lines += ["", "## State-conditioned tips (if ψ(s) then a; same score and filters)", ""]
    lines += [f"{i + 1}. {c.text} (score {c.score:.2f}, support {c.applicability:.2f}, "
              f"π* disagreement {c.disagreement:.2f})" for i, c in enumerate(conditional[: cfg.tips.top])]
    lines += ["", "## Rule-list tips (Bayesian Rule Lists, at the trainees' costly decisions)", ""]
    for rule_list in rule_lists:
        lines += [f"- {rule} (support {s:.2f}, confidence {c:.2f})"
                  for rule, s, c in zip(rule_list.rules, rule_list.support, rule_list.confidence)]
    if tips:
        first = evaluations[tips[0]["text"]]
        lines += ["", f"## By round: {tips[0]['text']}", "",
                  "| round | ticks, control | " + " | ".join(f"ticks, tip p={e.compliance:g}" for e in first)
                  + " | suboptimal decisions, control | " + " | ".join(f"suboptimal, tip p={e.compliance:g}"
                                                                       for e in first) + " |",
                  "|---" * (2 + 2 * len(first)) + "|"]
        for index, row in enumerate(first[0].by_round):
            lines.append(f"| {row['round']} | {row['control_ticks']:.2f} | "
                         + " | ".join(f"{e.by_round[index]['tip_ticks']:.2f}" for e in first)
                         + f" | {row['control_suboptimal']:.1%} | "
                         + " | ".join(f"{e.by_round[index]['tip_suboptimal']:.1%}" for e in first) + " |")
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        rounds = [row["round"] for row in first[0].by_round]
        ax.plot(rounds, [row["control_ticks"] for row in first[0].by_round], "o-", color="grey", label="control")
        for e in first:
            ax.plot(rounds, [row["tip_ticks"] for row in e.by_round], "o-", label=f"tip, compliance {e.compliance:g}")
        ax.axhline(optimum, color="black", ls="--", lw=1, label=f"{'optimum' if exact else 'learned π*'} {optimum}")
        ax.set_xticks(rounds)
        ax.set_xlabel("round")
        ax.set_ylabel("mean ticks (simulated π_H)")
        ax.set_title(tips[0]["text"], fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "tip_effect.png", dpi=120)
        plt.close(fig)
        lines += ["", "![ticks by round with and without the top tip](tip_effect.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
