"""``python -m bpjax.data generate population=study n_players=40 rounds=5 [kitchen/... overrides]``

Writes into the output folder: ``traces.parquet`` (or ``.csv`` with ``format=csv``), ``players.json`` (the
ground truth: each synthetic player's profile and planted flaws) and ``scores.csv`` (ticks per player and
round); prints mean ticks by kind of player and round, and, last, one JSON line summarising the files.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import EXIT_BAD_SETTINGS, Run, command

COMMANDS = ("generate",)
FORMATS = ("parquet", "csv")


@dataclass
class GenerateSettings:
    spec: Any                 # KitchenSpec
    population: list[dict]
    notes: list[str]          # flaws the kitchen makes impossible, dropped: said before the work


def validate(cfg: DictConfig) -> GenerateSettings:
    from bpjax.data.players import profiles_from_config
    from bpjax.env.config import ConfigError, KitchenSpec

    spec = KitchenSpec.from_dict(cfg.kitchen)
    if cfg.format not in FORMATS:
        raise ConfigError(f"format: expected parquet or csv, got {cfg.format!r}")
    population = OmegaConf.to_container(cfg.population, resolve=True)
    _, notes = profiles_from_config(population, spec)  # the population's own checks, before any player plays
    return GenerateSettings(spec, population, notes)


@command("traces", validate, name="data generate")
def generate(cfg: DictConfig, settings: GenerateSettings, run: Run) -> None:
    import pandas as pd

    from bpjax.data.players import generate_population
    from bpjax.data.traces import read_traces, write_traces

    out = run.out
    run.note(settings.notes)
    with run.progress.phase(f"{cfg.n_players} players x {cfg.rounds} rounds"):
        frame, truth = generate_population(settings.spec, settings.population, cfg.n_players, cfg.rounds, cfg.seed)
    path = write_traces(frame, out / f"traces.{cfg.format}")
    with run.progress.phase("reading the traces back"):
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


def main(program: str = "python -m bpjax.data") -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        given = f"unknown command {sys.argv[1]!r}; " if len(sys.argv) > 1 else ""
        sys.stderr.write(f"{given}usage: {program} {{{'|'.join(COMMANDS)}}} [overrides] (--help for each)\n")
        sys.exit(EXIT_BAD_SETTINGS)
    sys.argv.pop(1)
    generate()


if __name__ == "__main__":
    main()
