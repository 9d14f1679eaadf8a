"""Hydra configuration: where the configs live and how to compose them outside a CLI (tests, notebooks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
HYDRA_VERSION_BASE = "1.3"


def compose_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The composed config for `overrides`, exactly as the command line would build it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base=HYDRA_VERSION_BASE):
        return compose(config_name=config_name, overrides=list(overrides))


def quiet_library_logs() -> None:
    """Hydra's job logging is INFO for every logger; keep JAX's platform probing and matplotlib's font cache
    out of the run's output."""
    for name in ("jax", "matplotlib", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
