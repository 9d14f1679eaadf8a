"""``python -m bpjax.play [overrides]``: serve the kitchen game locally and record people's traces.

Prints the URL to open (``?participant=ID`` skips the id form), then serves until Ctrl-C or SIGTERM. Traces
and status files go to ``<output folder>/<out_dir>/``; rounds still in play when the server stops are marked
incomplete. What the server protects, and what not: ``docs/security.md``. The command-line machinery
(one-line errors, output folder, logging) is :mod:`bpjax.config.cli`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command
from bpjax.data.traces import shown
from bpjax.env.config import ConfigError, KitchenSpec
from bpjax.play.game import GameSetup
from bpjax.play.guard import Guard

MAX_ROUNDS = 100   # rounds (and practice rounds) per participant


def load_tip(path: str | Path, rank: int) -> dict:
    """The recommended tip with `rank` in a pipeline's ``tips.json`` (its entry: text, simulated gain, …);
    ConfigError naming the problem. Only recommended tips (checked by simulation) can be shown."""
    try:
        tips = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"tip.file: cannot read {path} ({error})") from None
    recommended = tips.get("recommended") if isinstance(tips, dict) else None
    if not isinstance(recommended, list) or not all(isinstance(t, dict) and "text" in t for t in recommended):
        raise ConfigError(f"tip.file: {path} is not a pipeline's tips.json (no 'recommended' list of tips)")
    if not recommended:
        raise ConfigError(f"tip.file: {path} recommends no tip ({tips.get('message') or 'none helped'})")
    ranks = [t.get("rank", i + 1) for i, t in enumerate(recommended)]
    if rank not in ranks:
        raise ConfigError(f"tip.rank: no recommended tip of rank {rank} in {path} (ranks {ranks})")
    return recommended[ranks.index(rank)]


def _integer(name: str, value, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{name}: expected an integer in {lo}..{hi}, got {shown(value)}")
    return value


def setup_from_config(cfg: DictConfig, out_dir: Path) -> GameSetup:
    """Validate the play config (kitchens, rounds, tip) into a :class:`GameSetup`."""
    _integer("rounds", cfg.rounds, 1, MAX_ROUNDS)
    _integer("practice_rounds", cfg.practice_rounds, 0, MAX_ROUNDS)
    study = KitchenSpec.from_dict(cfg.kitchen)
    try:
        practice = KitchenSpec.from_dict(cfg.practice_kitchen) if cfg.practice_rounds else None
    except ConfigError as error:
        raise ConfigError(f"practice_{error}") from None
    tip = None
    if cfg.tip.show:
        if cfg.tip.file is None:
            raise ConfigError("tip.file: tip.show=true needs a tips.json (tip.file=PATH)")
        tip = str(load_tip(cfg.tip.file, cfg.tip.rank)["text"])
    return GameSetup(study, cfg.rounds, out_dir, practice, cfg.practice_rounds, tip)


def guard_from_config(cfg: DictConfig) -> Guard:
    """Validate the server settings (host, port, allowed hosts and origins, join limit) into a :class:`Guard`."""
    if not isinstance(cfg.host, str) or not cfg.host:
        raise ConfigError(f"host: expected an address to bind (127.0.0.1, 0.0.0.0, ...), got {shown(cfg.host)}")
    _integer("port", cfg.port, 0, 65535)
    allowed_hosts = OmegaConf.to_container(cfg.allowed_hosts) if OmegaConf.is_config(cfg.allowed_hosts) \
        else cfg.allowed_hosts
    allowed_origins = OmegaConf.to_container(cfg.allowed_origins) if OmegaConf.is_config(cfg.allowed_origins) \
        else cfg.allowed_origins
    return Guard.from_config(allowed_hosts, allowed_origins, cfg.join_limit.joins, cfg.join_limit.seconds)


@contextlib.contextmanager
def launched(run_dir: str | Path, *overrides: str, timeout_s: float = 120) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m bpjax.play port=0 <overrides>`` in its own process (tests, benchmarks), Hydra run dir
    `run_dir`; yields (the URL it printed, the process) and stops it with Ctrl-C (SIGINT) on exit, unless
    it has stopped already."""
    command = [sys.executable, "-m", "bpjax.play", "port=0", f"hydra.run.dir={run_dir}", *overrides]
    # the child imports this very bpjax (a checkout's, not whichever is installed), whatever `run_dir` is
    source = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=run_dir,
                               env=env)
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


def validate(cfg: DictConfig) -> tuple[GameSetup, Guard]:
    return setup_from_config(cfg, Path(cfg.out_dir)), guard_from_config(cfg)  # placed under the output folder


@command("play", validate, errors=(OSError, OverflowError))
def main(cfg: DictConfig, settings: tuple[GameSetup, Guard], run: Run) -> None:
    import uvicorn

    from bpjax.play.server import bind, create_app, url_of

    setup, guard = settings
    setup = dataclasses.replace(setup, out_dir=run.out / cfg.out_dir)
    sock = bind(str(cfg.host), int(cfg.port))  # bound first: port=0 picks a free port, the URL names it
    setup.out_dir.mkdir(parents=True, exist_ok=True)
    (setup.out_dir / "session.json").write_text(json.dumps(
        {"config": OmegaConf.to_container(cfg, resolve=True), "tip_text": setup.tip}, indent=1))
    print(f"Kitchen game: {url_of(sock)}   traces: {setup.out_dir}   (Ctrl-C stops)", flush=True)
    # the bound address is served too (0.0.0.0 included: a browser on this machine may open the printed URL)
    address = urlsplit(url_of(sock)).netloc
    app = create_app(setup, dataclasses.replace(guard, allowed_hosts=(*guard.allowed_hosts, address)))
    # uvicorn stops on SIGINT and SIGTERM alike, and its shutdown marks the rounds in play incomplete; a
    # request still running gets a few seconds to finish. Idle connections stay open 75 s (nginx's default),
    # not uvicorn's 5: closing one as the page sends its next decision on it fails that decision.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5,
                                           timeout_keep_alive=75))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: stopped as asked, no traceback
        pass
    finally:  # a second Ctrl-C skips the app's shutdown: mark them here then
        app.state.participants.abandon_all()


if __name__ == "__main__":
    main()
