"""``python -m bpjax.imitate method=forest|boosting|bc|gail [traces=PATH players=PATH] [kind=KIND]``

Fits the trainee policy π^h on the players not held out and writes ``metrics.json`` (held-out action
accuracy next to a uniform-random policy's, the learned policy's mean ticks next to the trainees', and the
total-variation distance between their state-action occupancies) into the Hydra output directory. With
generated traces, ``occupancy_tv_floor`` is the same distance for fresh synthetic players of the same
population playing as many rounds: what a perfect imitator would score (empirical occupancies of a few
thousand decisions are far apart even when drawn from one distribution).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, quiet_library_logs
from bpjax.env.config import ConfigError, KitchenSpec


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name="imitate")
def main(cfg: DictConfig) -> None:
    quiet_library_logs()
    import pandas as pd

    from bpjax.data.players import generate_population
    from bpjax.data.traces import TraceError, read_traces, validate_traces, write_traces
    from bpjax.env.kitchen import make_kitchen
    from bpjax.env.reference import ReferenceKitchen
    from bpjax.imitation.evaluate import (held_out_accuracy, occupancy_distance, play_rounds,
                                          state_action_pairs)
    from bpjax.imitation import make_policy

    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.traces is None:
            spec = KitchenSpec.from_dict(cfg.kitchen)
            frame, truth = generate_population(spec, OmegaConf.to_container(cfg.population, resolve=True),
                                               cfg.n_players, cfg.rounds, cfg.seed)
            traces = read_traces(write_traces(frame, out / "traces.parquet"))
        else:
            traces = read_traces(cfg.traces, skip_invalid=cfg.skip_invalid)
            for reason in traces.rejected:
                print(f"rejected {reason}")
            truth = json.loads(Path(cfg.players).read_text()) if cfg.players else None
            if traces.spec is None:
                raise ConfigError("traces: rounds of several kitchens; imitate one kitchen at a time")
            spec = traces.spec
        if cfg.kind is not None:
            if truth is None:
                raise ConfigError("players: needed to select players by kind")
            chosen = {t["player_id"] for t in truth if t["kind"] == cfg.kind}
            if not chosen:
                raise ConfigError(f"kind: no player of kind {cfg.kind!r}")
        else:
            chosen = set(traces.frame["player_id"])
        if not 0 < cfg.held_out < 1:
            raise ConfigError(f"held_out: expected a share in (0, 1), got {cfg.held_out}")
        env, env_params = make_kitchen(spec)
        try:
            policy = make_policy(cfg.method, env, env_params, seed=cfg.seed,
                                 **OmegaConf.to_container(cfg.options, resolve=True))
        except TypeError as error:  # an unknown setting
            raise ConfigError(f"options: {error}") from None
    except (ConfigError, TraceError, ValueError, OSError) as error:
        sys.exit(f"{type(error).__name__}: {error}")

    players = sorted(chosen)
    rng = np.random.default_rng(cfg.seed)
    test_players = set(rng.choice(players, size=max(1, int(round(cfg.held_out * len(players)))), replace=False))
    player_of_row = traces.frame["player_id"].to_numpy()
    train_rows = np.isin(player_of_row, sorted(set(players) - test_players))
    test_rows = np.isin(player_of_row, sorted(test_players))
    start = time.perf_counter()
    policy.fit(traces.obs[train_rows], traces.mask[train_rows], traces.action[train_rows])
    fit_s = time.perf_counter() - start

    ref = ReferenceKitchen(spec.to_dict())
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
        frame, _ = generate_population(spec, OmegaConf.to_container(cfg.population, resolve=True),
                                       max(1, cfg.eval_rounds // cfg.rounds), cfg.rounds, cfg.seed + 1)
        fresh = validate_traces(frame, "fresh players")
        metrics["occupancy_tv_floor"] = occupancy_distance(
            state_action_pairs(fresh.obs, fresh.action), trainee_pairs)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(pd.Series(metrics).to_string())
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
