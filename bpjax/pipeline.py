"""``python -m bpjax.pipeline [overrides]`` — the whole study on a small default:

generate (or load) traces → keep the bottom quartile of players → learn π_H (shrunk toward everyone's) → π*
and Q (``qvalues``: exact Q* where the solver finishes within ``solver_max_states``, else PPO + Monte-Carlo
Q; ``bpjax.tips.optimum``) → the tip stage (``bpjax.tips.recommend``: candidates scored per decision tick, the
top ones checked by simulating π_H following them, the ones that help recommended) → ``tips.json``,
``report.md``, ``rule_lists.json``, ``tip_effect.png`` in the output folder. Prints the recommended tips, and
last one JSON line: the #1 recommended tip, or ``{"recommended": null, "message": ...}`` when no tip helps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command

log = logging.getLogger("bpjax.pipeline")


@dataclass
class PipelineSettings:
    tips: Any                # TipSettings
    algo: dict[str, Any]     # pi*'s learner for the Monte-Carlo fallback
    n_seeds: int
    monte_carlo: dict[str, Any]
    learner: dict[str, Any]  # pi_H's learner's own settings (algo.*)
    spec: Any                # KitchenSpec
    traces: Any              # TraceSet read from `traces`, or None (generated in the work)
    notes: list[str] = field(default_factory=list)  # settings given but not used, said before the work


def validate(cfg: DictConfig) -> PipelineSettings:
    from bpjax.data.overrides import check_with_traces, check_without_traces
    from bpjax.data.players import profiles_from_config
    from bpjax.data.traces import read_traces
    from bpjax.env.config import ConfigError, KitchenSpec
    from bpjax.env.kitchen import make_kitchen
    from bpjax.imitation import make_policy
    from bpjax.imitation.__main__ import learner_settings, learner_type
    from bpjax.imitation.methods import check_method
    from bpjax.tips.optimum import Q_METHODS, check_monte_carlo
    from bpjax.tips.recommend import TipSettings
    from bpjax.train.loop import algorithm_config

    check_method(cfg.imitation, "algo" if cfg.imitation == cfg.algo.name else "imitation")  # before any work
    if cfg.qvalues not in Q_METHODS:
        raise ConfigError(f"qvalues: expected one of {', '.join(Q_METHODS)}, got {cfg.qvalues!r}")
    tips = TipSettings.from_config(OmegaConf.to_container(cfg.tips, resolve=True), seed=cfg.seed)
    monte_carlo = OmegaConf.to_container(cfg.monte_carlo, resolve=True)
    algo, n_seeds = monte_carlo.pop("algo"), monte_carlo.pop("n_seeds")
    check_monte_carlo(**monte_carlo)
    try:
        algorithm_config(algo)
    except ValueError as error:
        raise ConfigError(f"monte_carlo.{error}") from None
    traces, notes = None, []
    if cfg.traces is None:
        spec = KitchenSpec.from_dict(cfg.kitchen)
        profiles_from_config(OmegaConf.to_container(cfg.population, resolve=True), spec, cfg.strict_population)
        notes = check_without_traces(("skip_invalid",))
    else:
        traces = read_traces(cfg.traces, skip_invalid=cfg.skip_invalid)
        spec = traces.kitchen("run")
        notes = check_with_traces(cfg, spec)
    if cfg.players is not None:
        known = (set(traces.frame["player_id"]) if traces is not None
                 else {f"p{i:04d}" for i in range(cfg.n_players)})  # the generated players' ids
        missing = [p for p in cfg.players if p not in known]
        sample = ", ".join(sorted(known)[:5]) + (", ..." if len(known) > 5 else "")
        if not cfg.players:
            raise ConfigError(f"players: an empty list; name at least one of the traces' players ({sample})")
        if missing:
            raise ConfigError(f"players: {', '.join(map(repr, missing))} {'is' if len(missing) == 1 else 'are'} "
                              f"not among the traces' players ({sample})")
    learner = learner_settings(cfg, learner_type(cfg.imitation), cfg.imitation)
    env, env_params = make_kitchen(spec)
    try:  # the learner's own checks, before any work
        make_policy(cfg.imitation, env, env_params, seed=cfg.seed, **learner)
    except TypeError as error:  # a setting the learner does not have
        raise ConfigError(f"algo: {error}") from None
    return PipelineSettings(tips, algo, n_seeds, monte_carlo, learner, spec, traces, notes)


@command("pipeline", validate)
def main(cfg: DictConfig, settings: PipelineSettings, run: Run) -> None:
    from bpjax.data.players import generate_population, profiles_from_config
    from bpjax.data.traces import TraceError, validate_traces, write_traces
    from bpjax.env.kitchen import make_kitchen
    from bpjax.imitation import make_policy
    from bpjax.imitation.shrinkage import ShrunkPolicy
    from bpjax.solve.bound import lower_bound_ticks
    from bpjax.tips.optimum import choose_optimum, learn_optimum
    from bpjax.tips.recommend import mine_tips
    from bpjax.tips.report import console_lines, tips_json, write_json, write_report

    out, spec = run.out, settings.spec
    run.note(settings.notes)
    if settings.traces is None:
        population = OmegaConf.to_container(cfg.population, resolve=True)
        for note in profiles_from_config(population, spec, cfg.strict_population)[1]:
            print(f"note: {note}")
        with run.progress.phase(f"generating {cfg.n_players} synthetic players x {cfg.rounds} rounds"):
            frame, truth = generate_population(spec, population, cfg.n_players, cfg.rounds, cfg.seed,
                                               cfg.strict_population)
        (out / "players.json").write_text(json.dumps(truth, indent=2))
        write_traces(frame, out / "traces.parquet")
        traces = validate_traces(frame, out / "traces.parquet")
    else:
        traces = settings.traces
        _say_what_was_left_out(traces)
    env, env_params = make_kitchen(spec)

    # 1. the bottom performers, ranked by their complete rounds (a round left mid-way has too few ticks)
    if not traces.rounds["complete"].any():
        raise TraceError("traces: no complete round to rank players by")
    bottom, per_player = traces.bottom_players(cfg.bottom_quantile)
    if cfg.players is not None:  # named players instead (their complete rounds may be none yet)
        bottom = set(cfg.players)
    subset = traces.of_players(bottom)
    n_decisions = len(subset.action)
    which = "named" if cfg.players is not None else f"in the bottom {cfg.bottom_quantile:.0%}"
    ranked = per_player[[p for p in bottom if p in per_player.index]]
    cut = "" if cfg.players is not None else f" {_cut_off(per_player, cfg.bottom_quantile)}"
    print(f"{len(bottom)} of {per_player.size} players {which}{cut}; "
          f"mean ticks {ranked.mean():.2f} vs {per_player.mean():.2f} overall; {n_decisions} decisions")
    # 2. pi_H (shrunk toward everyone's policy where the bottom's data is thin); pi* and Q
    def learner():
        return make_policy(cfg.imitation, env, env_params, seed=cfg.seed, **settings.learner)

    with run.progress.phase(f"fitting pi_H ({cfg.imitation}) on {n_decisions} decisions"):
        trainee_policy = learner()
        if cfg.shrinkage > 0 and n_decisions < len(traces.action):
            prior = learner().fit(traces.obs, traces.mask, traces.action)
            trainee_policy = ShrunkPolicy(trainee_policy, prior, cfg.shrinkage)
        trainee_policy.fit(subset.obs, subset.mask, subset.action)
    with run.progress.phase(f"pi* and Q (qvalues={cfg.qvalues})"):
        optimum = choose_optimum(spec, cfg.qvalues, cfg.solver_max_states, lambda reason: learn_optimum(
            env, env_params, settings.algo, [cfg.seed + i for i in range(settings.n_seeds)], reason,
            **settings.monte_carlo))
    q_source = optimum.describe()
    q_source["lower_bound_ticks"] = lower_bound_ticks(spec)  # how far a learned π* may be from optimal
    q_source["summary"] = _describe_q(q_source)
    print(q_source["summary"])
    # 3. the tip stage
    report = mine_tips(subset, spec, env, env_params, optimum, trainee_policy, settings.tips,
                       phase=run.progress.phase)
    shrunk = isinstance(trainee_policy, ShrunkPolicy)
    trainees = {"players": sorted(bottom), "n_players": len(per_player),
                "bottom_quantile": None if cfg.players is not None else cfg.bottom_quantile,
                "cut_off_ticks": None if cfg.players is not None else
                round(float(per_player.quantile(1 - cfg.bottom_quantile)), 3),
                "decisions": n_decisions, "decision_ticks": report.n_ticks, "rounds": report.n_rounds,
                "mean_ticks": round(report.trainee_ticks, 3), "policy": cfg.imitation,
                "shrinkage": cfg.shrinkage if shrunk else 0,
                "policy_simulated_ticks": round(report.control["ticks"], 3),
                "policy_simulated_suboptimal": round(report.control["suboptimal"], 4),
                "summary": f"{len(per_player)} players; the {which.removeprefix('in the ')} ({len(bottom)} players, "
                           f"mean {ranked.mean():.2f} ticks, {report.n_ticks} decision ticks) "
                           f"were fitted with `{cfg.imitation}`"
                           + (f", shrunk toward all {len(per_player)} players' policy (strength {cfg.shrinkage:g} "
                              "decisions per state)." if shrunk else ".")}
    source = _traces_entry(cfg, settings)
    payload = tips_json(report, spec, q_source, trainees, {**asdict(settings.tips), "qvalues": cfg.qvalues},
                        source)
    write_json(out / "tips.json", payload)
    write_json(out / "rule_lists.json", [{"family": r.family, "rules": [t.text(spec) for t in r.tips],
                                          "support": r.support, "confidence": r.confidence}
                                         for r in report.rule_lists])
    optimum_ticks = q_source["optimal_ticks"] if q_source["method"] == "exact" else q_source["greedy_ticks"]
    write_report(out, report, spec, q_source, trainees, optimum_ticks, source=source)
    for line in console_lines(report, spec):
        print(line)
    top = payload["recommended"][0] if payload["recommended"] else {"recommended": None, "message": payload["message"]}
    print(json.dumps({k: v for k, v in top.items() if k != "by_round"}))


def _say_what_was_left_out(traces) -> None:
    """Stdout and the job log: each rejected round (skip_invalid) and the folder's files that are not traces."""
    from bpjax.data.traces import skipped_note

    for reason in traces.rejected:
        print(f"rejected {reason}")
        log.info("rejected %s", reason)
    if traces.rejected:
        log.info("%d rejected (skip_invalid=true): every round or file above left out", len(traces.rejected))
    note = skipped_note(traces)
    if note:
        print(f"note: {note}")
        log.info("note: %s", note)


def _traces_entry(cfg: DictConfig, settings: PipelineSettings) -> dict:
    """tips.json's account of the input: where the traces came from, what was left out of them and why."""
    traces = settings.traces
    rejected = [] if traces is None else [  # a whole file left out was not read as rows: no count
        {"what": r.what, "episode_id": r.episode_id, "file": r.source,
         "rows": None if r.what == "file" else len(r.rows), "reason": r.reason}
        for r in traces.rejected]
    return {"source": None if cfg.traces is None else str(cfg.traces), "n_rejected": len(rejected),
            "rejected": rejected, "skipped_files": [] if traces is None else list(traces.skipped),
            "notes": list(settings.notes)}


def _cut_off(per_player, quantile: float) -> str:
    """How the bottom was chosen: every player at or above the quantile's mean ticks, so players tied at that
    value all count (none can be ranked below another), which can make the bottom more than `quantile`."""
    cut = per_player.quantile(1 - quantile)
    tied = int((per_player == cut).sum())
    ties = f"; {tied} players tie at it, all kept" if tied > 1 else ""
    return f"(mean ticks >= {cut:.2f}, the cut-off{ties})"


def _describe_q(q_source: dict) -> str:
    if q_source["method"] == "exact":
        return f"exact Q* (solver, {q_source['solver_states']:,} states); optimum {q_source['optimal_ticks']} ticks"
    return (f"Monte-Carlo ({q_source['estimate']} of {q_source['n_rollouts']} {q_source['rollout_policy']} "
            f"rollout(s) per action, tolerance {q_source['tolerance']:g} ticks) of pi* learned by "
            f"{q_source['algo']} ({q_source['n_updates']} updates, best of {len(q_source['seeds'])} seed(s): "
            f"greedy round {q_source['greedy_ticks']} ticks, {q_source['train_s']:.0f} s)")


if __name__ == "__main__":
    main()
