"""``python -m bpjax.play [overrides]``: serve the kitchen game locally and record people's traces.

Prints the URL to open (``?participant=ID`` skips the id form), then serves until Ctrl-C. Traces and
status files go to ``<output folder>/<out_dir>/``; rounds still in play when the server stops are marked
incomplete. The command-line machinery (one-line errors, output folder, logging) is
:mod:`bpjax.config.cli`'s.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.play.game import GameSetup


def load_tip(path: str | Path, rank: int) -> dict:
    """The tip with `rank` in a pipeline's ``tips.json`` (its entry: text, score, warning, …); ConfigError
    naming the problem."""
    try:
        tips = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"tip.file: cannot read {path} ({error})") from None
    if not isinstance(tips, list) or not all(isinstance(t, dict) and "text" in t for t in tips):
        raise ConfigError(f"tip.file: {path} is not a tips.json (a list of tips with a 'text')")
    ranks = [t.get("rank", i + 1) for i, t in enumerate(tips)]
    if rank not in ranks:
        raise ConfigError(f"tip.rank: no tip of rank {rank} in {path} (ranks {ranks})")
    return tips[ranks.index(rank)]


def setup_from_config(cfg: DictConfig, out_dir: Path) -> GameSetup:
    """Validate the play config (kitchens, rounds, tip) into a :class:`GameSetup`."""
    for field in ("rounds", "practice_rounds"):
        if not isinstance(cfg[field], int) or isinstance(cfg[field], bool) or cfg[field] < (field == "rounds"):
            raise ConfigError(f"{field}: expected an integer >= {int(field == 'rounds')}, got {cfg[field]!r}")
    study = KitchenSpec.from_dict(cfg.kitchen)
    try:
        practice = KitchenSpec.from_dict(cfg.practice_kitchen) if cfg.practice_rounds else None
    except ConfigError as error:
        raise ConfigError(f"practice_{error}") from None
    tip = None
    if cfg.tip.show:
        if cfg.tip.file is None:
            raise ConfigError("tip.file: tip.show=true needs a tips.json (tip.file=PATH)")
        entry = load_tip(cfg.tip.file, cfg.tip.rank)
        tip = str(entry["text"])
        if entry.get("warning"):  # the pipeline flags tips whose simulated gain was negative
            print(f"warning: tip {cfg.tip.rank} ({tip!r}): {entry['warning']}", file=sys.stderr)
    return GameSetup(study, cfg.rounds, out_dir, practice, cfg.practice_rounds, tip)


@contextlib.contextmanager
def launched(run_dir: str | Path, *overrides: str, timeout_s: float = 120) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m bpjax.play port=0 <overrides>`` in its own process (tests, benchmarks), Hydra run dir
    `run_dir`; yields (the URL it printed, the process) and stops it with Ctrl-C (SIGINT) on exit."""
    command = [sys.executable, "-m", "bpjax.play", "port=0", f"hydra.run.dir={run_dir}", *overrides]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=run_dir)
    watchdog = threading.Timer(timeout_s, process.kill)  # a server that never starts must not hang the caller
    watchdog.start()
    try:
        printed = []
        for line in process.stdout:  # the output folder (stderr) comes first, then the URL
            printed.append(line)
            match = re.search(r"(http://\S+/)", line)
            if match:
                break
        else:
            raise RuntimeError(f"python -m bpjax.play printed no URL: {''.join(printed)!r}")
        yield match.group(1), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        watchdog.cancel()


def validate(cfg: DictConfig) -> GameSetup:
    return setup_from_config(cfg, Path(cfg.out_dir))  # placed under the output folder by `main`


@command("play", validate, errors=(OSError,))
def main(cfg: DictConfig, setup: GameSetup, run: Run) -> None:
    import dataclasses

    import uvicorn

    from bpjax.play.server import bind, create_app, url_of

    setup = dataclasses.replace(setup, out_dir=run.out / cfg.out_dir)
    sock = bind(str(cfg.host), int(cfg.port))  # bound first: port=0 picks a free port, the URL names it
    setup.out_dir.mkdir(parents=True, exist_ok=True)
    (setup.out_dir / "session.json").write_text(json.dumps(
        {"config": OmegaConf.to_container(cfg, resolve=True), "tip_text": setup.tip}, indent=1))
    print(f"Kitchen game: {url_of(sock)}   traces: {setup.out_dir}   (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(setup), log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C is how the game stops: the server has shut down cleanly
        pass


if __name__ == "__main__":
    main()
