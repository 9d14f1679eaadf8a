"""``python -m bpjax.study [overrides]``: a simulated between-subjects experiment (``bpjax.study.experiment``).

Writes ``study.json``, ``report.md`` and ``study_ticks.png`` into the output folder and prints, last, one
JSON line: per arm, the last round's ticks and share of suboptimal decisions with their 95% intervals, the
paired differences from the static arm, and the seconds per part of the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command


@dataclass
class StudyPlan:
    blocks: list         # experiment.Block
    population: list
    settings: Any        # experiment.StudySettings
    notes: list[str]     # flaws a block's kitchen makes impossible, dropped: said before the work


def validate(cfg: DictConfig) -> StudyPlan:
    from bpjax.data.players import profiles_from_config
    from bpjax.env.config import ConfigError, KitchenSpec
    from bpjax.study.experiment import Block, StudySettings

    kitchen = OmegaConf.to_container(cfg.kitchen, resolve=True)
    blocks = []
    for i, block in enumerate(OmegaConf.to_container(cfg.blocks, resolve=True)):
        try:
            spec = KitchenSpec.from_dict({**kitchen, "orders": block["orders"]})
        except ConfigError as error:
            raise ConfigError(f"blocks[{i}].{str(error).removeprefix('kitchen.')}") from None
        dishes = sorted({order.dish for order in spec.orders})
        if block["dish"] not in dishes:  # the block's label in the report: one of the dishes it serves
            raise ConfigError(f"blocks[{i}].dish: {block['dish']!r} is not among the block's orders "
                              f"({', '.join(dishes)})")
        blocks.append(Block(str(block["dish"]), spec, int(block["rounds"])))
    if not blocks:
        raise ConfigError("blocks: expected at least one block of rounds")
    population = OmegaConf.to_container(cfg.population, resolve=True)
    notes = []
    for i, block in enumerate(blocks):
        notes += [f"blocks[{i}]: {note}" for note in profiles_from_config(population, block.spec)[1]]
    settings = StudySettings(trainees=cfg.trainees, arms=tuple(cfg.arms), pilot_players=cfg.pilot_players,
                             pilot_rounds=cfg.pilot_rounds, strength=float(cfg.strength), penalty=float(cfg.penalty),
                             prior_inflation=float(cfg.prior_inflation), seed=cfg.seed)
    return StudyPlan(blocks, population, settings, notes)


@command("study", validate)
def main(cfg: DictConfig, plan: StudyPlan, run: Run) -> None:
    from bpjax.study.experiment import run_study
    from bpjax.study.report import write_study

    run.note(plan.notes)
    log_phase = _phases(run)
    result = run_study(plan.blocks, plan.population, plan.settings, progress=log_phase)
    log_phase(None)
    payload = write_study(run.out, result)
    summary = {arm: {k: data["by_round"][-1][k] for k in ("round", "dish", "ticks", "ticks_ci", "suboptimal_rate",
                                                           "suboptimal_ci")}
               for arm, data in payload["arms"].items()}
    for arm, last in summary.items():
        (low, high), (bad_low, bad_high) = last["ticks_ci"], last["suboptimal_ci"]
        print(f"{arm:>13}: round {last['round']} ({last['dish']}) {last['ticks']:.2f} ticks [{low:.2f}, {high:.2f}], "
              f"suboptimal {last['suboptimal_rate']:.1%} [{bad_low:.1%}, {bad_high:.1%}]")
    paired = {name: {k: rows[-1][k] for k in ("round", "suboptimal_rate", "suboptimal_ci", "ticks", "ticks_ci")}
              for name, rows in payload["paired"].items()}
    for name, last in paired.items():
        (low, high), (tick_low, tick_high) = last["suboptimal_ci"], last["ticks_ci"]
        print(f"{name:>22}: round {last['round']} suboptimal {last['suboptimal_rate']:+.1%} [{low:+.1%}, {high:+.1%}], "
              f"ticks {last['ticks']:+.2f} [{tick_low:+.2f}, {tick_high:+.2f}]")
    print(json.dumps({"arms": summary, "paired": paired, "seconds": payload["seconds"], "timing": payload["timing"]}))


def _phases(run: Run):
    """run_study's progress messages as timed phases on stderr: each message closes the previous phase."""
    current = []

    def say(message: str | None) -> None:
        if current:
            current.pop().__exit__(None, None, None)
        if message is not None:
            phase = run.progress.phase(message)
            phase.__enter__()
            current.append(phase)
    return say


if __name__ == "__main__":
    main()
