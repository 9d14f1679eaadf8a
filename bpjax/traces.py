"""``python -m bpjax.traces generate population=study n_players=40 rounds=5 [kitchen/... overrides]``

Writes into the Hydra output directory: ``traces.parquet`` (or ``.csv`` with ``format=csv``), ``players.json``
(the ground truth: each synthetic player's profile and planted flaws) and ``scores.csv`` (ticks per player
and round); prints mean ticks by kind of player and round, and, last, one JSON line summarising the files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, quiet_library_logs
from bpjax.env.config import ConfigError, KitchenSpec

COMMANDS = ("generate",)


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name="traces")
def generate(cfg: DictConfig) -> None:
    quiet_library_logs()
    import pandas as pd

    from bpjax.data.players import generate_population
    from bpjax.data.traces import read_traces, write_traces

    try:
        spec = KitchenSpec.from_dict(cfg.kitchen)
        if cfg.format not in ("parquet", "csv"):
            raise ConfigError(f"format: expected parquet or csv, got {cfg.format!r}")
        for name in ("n_players", "rounds"):
            if not isinstance(cfg[name], int) or cfg[name] < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {cfg[name]!r}")
        frame, truth = generate_population(spec, OmegaConf.to_container(cfg.population, resolve=True),
                                           cfg.n_players, cfg.rounds, cfg.seed)
    except ConfigError as error:
        sys.exit(f"ConfigError: {error}")
    out = Path(HydraConfig.get().runtime.output_dir)
    path = write_traces(frame, out / f"traces.{cfg.format}")
    traces = read_traces(path)  # the file as a reader sees it: validated by replay
    (out / "players.json").write_text(json.dumps(truth, indent=2))
    kinds = pd.DataFrame(truth)[["player_id", "kind"]]
    scores = traces.rounds.merge(kinds, on="player_id")[["player_id", "kind", "round", "ticks", "finished"]]
    scores.to_csv(out / "scores.csv", index=False)
    table = scores.groupby(["kind", "round"])["ticks"].mean().unstack().round(2)
    print(f"Mean ticks by kind of player and round ({len(truth)} players, {cfg.rounds} rounds):")
    print(table.to_string())
    print(json.dumps({"traces": str(path), "players": str(out / "players.json"), "scores": str(out / "scores.csv"),
                      "decisions": len(traces.frame), "rounds": len(traces.rounds),
                      "mean_ticks": round(float(scores["ticks"].mean()), 3),
                      "quartiles": [float(q) for q in scores["ticks"].quantile([0.25, 0.5, 0.75])]}))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m bpjax.traces {{{'|'.join(COMMANDS)}}} [hydra overrides]")
    sys.argv.pop(1)
    generate()


if __name__ == "__main__":
    main()
