"""``python -m bpjax.pipeline [overrides]`` — the whole study on a small default:

generate (or load) traces → keep the bottom quartile of players → learn π_H → π* and Q (``qvalues``: exact Q*
where the solver finishes within ``solver_max_states``, else PPO + Monte-Carlo Q; ``bpjax.tips.optimum``) → the
tip stage (``bpjax.tips.recommend``: candidates scored per decision tick, the top ones checked by simulating π_H
following them, the ones that help recommended) → ``tips.json``, ``report.md``, ``rule_lists.json``,
``tip_effect.png`` in the Hydra output directory. Prints the recommended tips, and last one JSON line: the #1
recommended tip, or ``{"recommended": null, "message": ...}`` when no tip helps.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, quiet_library_logs
from bpjax.config.schema import register as register_schemas
from bpjax.env.config import ConfigError, KitchenSpec

register_schemas()  # before Hydra composes: monte_carlo.algo (the algo group) names its typed schema


def _progress(start: float):
    def say(message: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f} s] {message}", file=sys.stderr, flush=True)
    return say


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name="pipeline")
def main(cfg: DictConfig) -> None:
    quiet_library_logs()
    from bpjax.data.players import generate_population, profiles_from_config
    from bpjax.data.traces import TraceError, read_traces, validate_traces, write_traces
    from bpjax.env.kitchen import make_kitchen
    from bpjax.imitation import make_policy
    from bpjax.imitation.shrinkage import ShrunkPolicy
    from bpjax.tips.optimum import Q_METHODS, check_monte_carlo, choose_optimum, learn_optimum
    from bpjax.tips.recommend import TipSettings, mine_tips
    from bpjax.tips.report import console_lines, tips_json, write_json, write_report
    from bpjax.train.loop import algorithm_config

    say = _progress(time.perf_counter())
    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        if not cfg.shrinkage >= 0:
            raise ConfigError(f"shrinkage: expected decisions >= 0, got {cfg.shrinkage}")
        if not 0 < cfg.bottom_quantile <= 1:
            raise ConfigError(f"bottom_quantile: expected a share in (0, 1], got {cfg.bottom_quantile}")
        if cfg.qvalues not in Q_METHODS:
            raise ConfigError(f"qvalues: expected one of {', '.join(Q_METHODS)}, got {cfg.qvalues!r}")
        tips_config = OmegaConf.to_container(cfg.tips, resolve=True)
        settings = TipSettings.from_config(tips_config, seed=cfg.seed)
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
            for name in ("n_players", "rounds"):
                if not isinstance(cfg[name], int) or cfg[name] < 1:
                    raise ConfigError(f"{name}: expected a positive integer, got {cfg[name]!r}")
            spec = KitchenSpec.from_dict(cfg.kitchen)
            population = OmegaConf.to_container(cfg.population, resolve=True)
            for note in profiles_from_config(population, spec, cfg.strict_population)[1]:
                print(f"note: {note}")
            say(f"generating {cfg.n_players} synthetic players x {cfg.rounds} rounds")
            frame, truth = generate_population(spec, population, cfg.n_players, cfg.rounds, cfg.seed,
                                               cfg.strict_population)
            (out / "players.json").write_text(json.dumps(truth, indent=2))
            write_traces(frame, out / "traces.parquet")
            traces = validate_traces(frame, out / "traces.parquet")
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

    # 1. the bottom performers, ranked by their complete rounds (a round left mid-way has too few ticks)
    if not traces.rounds["complete"].any():
        sys.exit("TraceError: traces: no complete round to rank players by")
    bottom, per_player = traces.bottom_players(cfg.bottom_quantile)
    subset = traces.of_players(bottom)
    rows = traces.frame["player_id"].isin(bottom).to_numpy()
    print(f"{len(bottom)} of {len(per_player)} players in the bottom {cfg.bottom_quantile:.0%} "
          f"(mean ticks {per_player[list(bottom)].mean():.2f} vs {per_player.mean():.2f} overall); "
          f"{rows.sum()} decisions")
    # 2. pi_H; pi* and Q
    say(f"fitting pi_H ({cfg.imitation}) on {rows.sum()} decisions")
    if cfg.shrinkage > 0 and rows.sum() < len(rows):  # shrunk toward everyone's policy where the data is thin
        prior = make_policy(cfg.imitation, env, env_params, seed=cfg.seed).fit(traces.obs, traces.mask, traces.action)
        trainee_policy = ShrunkPolicy(trainee_policy, prior, cfg.shrinkage)
    trainee_policy.fit(subset.obs, subset.mask, subset.action)
    say(f"pi* and Q (qvalues={cfg.qvalues})")
    try:
        optimum = choose_optimum(spec, cfg.qvalues, cfg.solver_max_states, lambda reason: learn_optimum(
            env, env_params, algo, [cfg.seed + i for i in range(n_seeds)], reason, **monte_carlo))
    except ConfigError as error:
        sys.exit(f"ConfigError: {error}")
    q_source = optimum.describe()
    q_source["summary"] = _describe_q(q_source)
    print(q_source["summary"])
    # 3. the tip stage
    report = mine_tips(subset, spec, env, env_params, optimum, trainee_policy, settings, progress=say)
    trainees = {"players": sorted(bottom), "n_players": len(per_player), "bottom_quantile": cfg.bottom_quantile,
                "decisions": int(rows.sum()), "decision_ticks": report.n_ticks, "rounds": report.n_rounds,
                "mean_ticks": round(report.trainee_ticks, 3), "policy": cfg.imitation, "shrinkage": cfg.shrinkage,
                "policy_simulated_ticks": round(report.control["ticks"], 3),
                "policy_simulated_suboptimal": round(report.control["suboptimal"], 4),
                "summary": f"{len(per_player)} players; the bottom {cfg.bottom_quantile:.0%} ({len(bottom)} players, "
                           f"mean {per_player[list(bottom)].mean():.2f} ticks, {report.n_ticks} decision ticks) "
                           f"were fitted with `{cfg.imitation}`"
                           + (f", shrunk toward all {len(per_player)} players' policy (strength {cfg.shrinkage:g} "
                              "decisions per state)." if isinstance(trainee_policy, ShrunkPolicy) else ".")}
    payload = tips_json(report, spec, q_source, trainees, {**asdict(settings), "qvalues": cfg.qvalues})
    write_json(out / "tips.json", payload)
    write_json(out / "rule_lists.json", [{"family": r.family, "rules": [t.text(spec) for t in r.tips],
                                          "support": r.support, "confidence": r.confidence}
                                         for r in report.rule_lists])
    optimum_ticks = q_source["optimal_ticks"] if q_source["method"] == "exact" else q_source["greedy_ticks"]
    write_report(out, report, spec, q_source, trainees, optimum_ticks)
    say(f"wrote tips.json and report.md to {out}")
    for line in console_lines(report, spec):
        print(line)
    top = payload["recommended"][0] if payload["recommended"] else {"recommended": None, "message": payload["message"]}
    print(json.dumps({k: v for k, v in top.items() if k != "by_round"}))


def _describe_q(q_source: dict) -> str:
    if q_source["method"] == "exact":
        return f"exact Q* (solver, {q_source['solver_states']:,} states); optimum {q_source['optimal_ticks']} ticks"
    return (f"Monte-Carlo ({q_source['estimate']} of {q_source['n_rollouts']} {q_source['rollout_policy']} "
            f"rollout(s) per action, tolerance {q_source['tolerance']:g} ticks) of pi* learned by "
            f"{q_source['algo']} ({q_source['n_updates']} updates, best of {len(q_source['seeds'])} seed(s): "
            f"greedy round {q_source['greedy_ticks']} ticks, {q_source['train_s']:.0f} s)")


if __name__ == "__main__":
    main()
