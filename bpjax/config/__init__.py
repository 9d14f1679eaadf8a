"""Hydra configuration: where the configs live, how to compose them outside a CLI (tests, notebooks), and the
`random_skills` resolver behind ``kitchen/skills=random``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
HYDRA_VERSION_BASE = "1.3"
RANDOM_SKILL_TICKS = (1, 6)   # inclusive range of a random skill entry (keeps 4 burgers inside 50 ticks)
RANDOM_SKILL_CANNOT = 0.25    # chance that a worker cannot do a task type


def random_skill_matrix(seed: int, workers: Sequence[str], task_types: Sequence[str]) -> dict[str, list]:
    """A seeded random skill matrix for `workers`: ticks per task type, some entries null (cannot), yet every
    worker can do something and every task type has a worker who can do it."""
    import numpy as np

    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"skills_seed: must be in [0, {2**32 - 1}], got {seed}")
    rng = np.random.default_rng(int(seed))
    low, high = RANDOM_SKILL_TICKS
    ticks = rng.integers(low, high + 1, size=(len(workers), len(task_types)))
    can = rng.random(ticks.shape) >= RANDOM_SKILL_CANNOT
    for w in np.flatnonzero(~can.any(axis=1)):
        can[w, rng.integers(len(task_types))] = True
    for k in np.flatnonzero(~can.any(axis=0)):
        can[rng.integers(len(workers)), k] = True
    return {str(w): [int(t) if c else None for t, c in zip(row, ok)] for w, row, ok in zip(workers, ticks, can)}


def _random_skills(seed: Any, *, _root_: DictConfig) -> dict[str, list]:
    kitchen = _root_.kitchen
    return random_skill_matrix(int(seed), list(kitchen.scenario.workers), list(kitchen.task_types))


OmegaConf.register_new_resolver("random_skills", _random_skills, replace=True)


def compose_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The composed config for `overrides`, exactly as the command line would build it."""
    from hydra import compose, initialize_config_dir

    from bpjax.config.schema import register

    register(typed=True)
    with initialize_config_dir(config_dir=CONF_DIR, version_base=HYDRA_VERSION_BASE):
        return compose(config_name=config_name, overrides=list(overrides))


def quiet_library_logs() -> None:
    """Hydra's job logging is INFO for every logger; keep JAX's platform probing and matplotlib's font cache
    out of the run's output."""
    for name in ("jax", "matplotlib", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
