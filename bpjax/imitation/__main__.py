"""``python -m bpjax.imitation algo=forest|boosting|bc|gail [traces=PATH players=PATH] [kind=KIND]``

Fits the trainee policy π^h on the players not held out and writes ``metrics.json`` (held-out action
accuracy next to a uniform-random policy's, the learned policy's mean ticks next to the trainees', and the
total-variation distance between their state-action occupancies) into the output folder. With generated
traces, ``occupancy_tv_floor`` is the same distance for fresh synthetic players of the same population
playing as many rounds: what a perfect imitator would score (empirical occupancies of a few thousand
decisions are far apart even when drawn from one distribution).

The learner's settings are ``algo.*`` (typed by its schema, derived from the learner's dataclass).
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command


@dataclass
class ImitateSettings:
    spec: Any                       # KitchenSpec
    traces: Any | None              # TraceSet read from `traces`, None when generating
    truth: list[dict] | None        # players.json
    chosen: set | None              # player ids of `kind`; None = everyone
    population: list[dict] | None
    policy: Any                     # the unfitted learner
    notes: list[str]                # settings given but not used, said before the work


def learner_settings(cfg: DictConfig, learner_type: type | None, method: str | None = None) -> dict[str, Any]:
    """The `algo.*` settings of the chosen learner (tuples where its dataclass wants them); none when
    `method=` (or the given `method`) picked a learner other than `algo`'s."""
    settings = OmegaConf.to_container(cfg.algo, resolve=True)
    if settings.pop("name", None) != (cfg.method if method is None else method):
        return {}
    if learner_type is not None:
        hints = typing.get_type_hints(learner_type)
        for key, value in settings.items():
            if isinstance(value, list) and typing.get_origin(hints.get(key)) is tuple:
                settings[key] = tuple(value)
    return settings


def learner_type(method: str) -> type | None:
    from bpjax.imitation.policies import BehaviourCloning, ForestPolicy

    if method == "gail":
        from bpjax.imitation.gail import GAILPolicy

        return GAILPolicy
    return {"forest": ForestPolicy, "boosting": ForestPolicy, "bc": BehaviourCloning}.get(method)


def validate(cfg: DictConfig) -> ImitateSettings:
    from bpjax.data.overrides import check_with_traces, check_without_traces
    from bpjax.data.players import profiles_from_config
    from bpjax.data.traces import read_traces
    from bpjax.env.config import ConfigError, KitchenSpec
    from bpjax.env.kitchen import make_kitchen
    from bpjax.imitation import make_policy
    from bpjax.imitation.methods import check_method

    check_method(cfg.method, "algo" if cfg.method == cfg.algo.name else "method")  # before traces are read
    traces = truth = population = None
    if cfg.traces is None:
        spec = KitchenSpec.from_dict(cfg.kitchen)
        population = OmegaConf.to_container(cfg.population, resolve=True)
        notes = [*profiles_from_config(population, spec)[1], *check_without_traces(("skip_invalid", "players"))]
    else:
        traces = read_traces(cfg.traces, skip_invalid=cfg.skip_invalid)
        spec = traces.kitchen("imitate")
        notes = check_with_traces(cfg, spec)
        truth = read_players(cfg.players) if cfg.players else None
    chosen = None
    if cfg.kind is not None:
        if truth is None and cfg.traces is not None:
            raise ConfigError("players: needed to select players by kind")
        kinds = {t["kind"] for t in truth} if truth is not None else {p["kind"] for p in population}
        if cfg.kind not in kinds:
            raise ConfigError(f"kind: no player of kind {cfg.kind!r} (kinds: {', '.join(sorted(kinds))})")
        if truth is not None:
            chosen = {t["player_id"] for t in truth if t["kind"] == cfg.kind}
    if traces is not None:
        check_split(len(chosen if chosen is not None else set(traces.frame["player_id"])),
                    "kind" if chosen is not None else "traces")
    elif cfg.kind is None:
        check_split(cfg.n_players, "n_players")
    env, env_params = make_kitchen(spec)
    try:
        policy = make_policy(cfg.method, env, env_params, seed=cfg.seed,
                             **learner_settings(cfg, learner_type(cfg.method)))
    except TypeError as error:  # a setting the learner does not have
        raise ConfigError(f"algo: {error}") from None
    return ImitateSettings(spec, traces, truth, chosen, population, policy, notes)


def read_players(path: str) -> list[dict]:
    """A players.json: a list of objects, each with a string `player_id` and `kind`; ConfigError naming the
    entry otherwise."""
    from bpjax.env.config import ConfigError

    try:
        truth = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"players: cannot read {path} ({error})") from None
    if not isinstance(truth, list):
        raise ConfigError(f"players: {path} holds a {type(truth).__name__}, not a list of players")
    for i, entry in enumerate(truth):
        bad = [k for k in ("player_id", "kind") if not isinstance(entry, dict) or not isinstance(entry.get(k), str)]
        if bad:
            raise ConfigError(f"players: {path}, entry {i}: expected an object with a string "
                              f"{' and '.join(repr(k) for k in bad)}, got {json.dumps(entry)[:80]}")
    return truth


def check_split(count: int, where: str) -> None:
    """Players are held out whole, so at least one must be left to fit on and one to hold out."""
    from bpjax.env.config import ConfigError

    if count < 2:
        raise ConfigError(f"{where}: {count} player(s) to imitate; held-out metrics need one player to fit on "
                          f"and another to hold out")


@command("imitate", validate, name="imitation")
def main(cfg: DictConfig, settings: ImitateSettings, run: Run) -> None:
    import pandas as pd

    from bpjax.data.players import generate_population
    from bpjax.data.traces import read_traces, skipped_note, validate_traces, write_traces
    from bpjax.env.reference import ReferenceKitchen
    from bpjax.imitation.evaluate import held_out_accuracy, occupancy_distance, play_rounds, state_action_pairs

    spec, traces, truth, chosen, policy = (settings.spec, settings.traces, settings.truth, settings.chosen,
                                           settings.policy)
    run.note(settings.notes)
    if traces is None:
        with run.progress.phase(f"{cfg.n_players} players x {cfg.rounds} rounds"):
            frame, truth = generate_population(spec, settings.population, cfg.n_players, cfg.rounds, cfg.seed)
            traces = read_traces(write_traces(frame, run.out / "traces.parquet"))
        if cfg.kind is not None:
            chosen = {t["player_id"] for t in truth if t["kind"] == cfg.kind}
            check_split(len(chosen), "kind")
    for reason in traces.rejected:
        print(f"rejected {reason}")
    if skipped_note(traces):  # a folder's other tables, such as the generator's scores.csv
        print(f"note: {skipped_note(traces)}")
    players = sorted(chosen if chosen is not None else set(traces.frame["player_id"]))
    rng = np.random.default_rng(cfg.seed)
    held_out = min(len(players) - 1, max(1, int(round(cfg.held_out * len(players)))))   # one left to fit on
    test_players = set(rng.choice(players, size=held_out, replace=False))
    player_of_row = traces.frame["player_id"].to_numpy()
    train_rows = np.isin(player_of_row, sorted(set(players) - test_players))
    test_rows = np.isin(player_of_row, sorted(test_players))
    start = time.perf_counter()
    with run.progress.phase(f"fitting {cfg.method} on {int(train_rows.sum()):,} decisions"):
        policy.fit(traces.obs[train_rows], traces.mask[train_rows], traces.action[train_rows])
    fit_s = time.perf_counter() - start

    ref = ReferenceKitchen(spec.to_dict())
    with run.progress.phase(f"{cfg.eval_rounds} rounds of the learned policy"):
        ticks, pairs = play_rounds(policy, ref, cfg.eval_rounds, cfg.seed)
    trainee_pairs = state_action_pairs(traces.obs[test_rows], traces.action[test_rows])
    trainee_rounds = traces.rounds[traces.rounds["player_id"].isin(test_players)]
    metrics = {
        "method": cfg.method, "kind": cfg.kind, "train_decisions": int(train_rows.sum()),
        "test_decisions": int(test_rows.sum()), "fit_s": round(fit_s, 3),
        "held_out_accuracy": held_out_accuracy(policy, traces.obs[test_rows], traces.mask[test_rows],
                                               traces.action[test_rows]),
        "uniform_accuracy": float((1.0 / traces.mask[test_rows].sum(axis=1)).mean()),
        "learned_mean_ticks": float(ticks.mean()), "trainee_mean_ticks": float(trainee_rounds["ticks"].mean()),
        "occupancy_tv": occupancy_distance(pairs, trainee_pairs),
    }
    metrics["ticks_gap"] = metrics["learned_mean_ticks"] - metrics["trainee_mean_ticks"]
    if cfg.traces is None:  # the TV a perfect imitator would get: fresh players of the population, as many rounds
        with run.progress.phase("fresh players for the occupancy floor"):
            frame, _ = generate_population(spec, settings.population, max(1, cfg.eval_rounds // cfg.rounds),
                                           cfg.rounds, cfg.seed + 1)
            fresh = validate_traces(frame, "fresh players")
        metrics["occupancy_tv_floor"] = occupancy_distance(
            state_action_pairs(fresh.obs, fresh.action), trainee_pairs)
    (run.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(pd.Series(metrics).to_string())
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
