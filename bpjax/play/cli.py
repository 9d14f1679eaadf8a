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
import math
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

from omegaconf import DictConfig, OmegaConf

from bpjax.config.cli import Run, command, ctrl_c_default
from bpjax.env.config import ConfigError, KitchenSpec

if TYPE_CHECKING:  # the game and its tips load pandas and JAX: imported when used, not for --help
    from bpjax.play.game import GameSetup
    from bpjax.play.guard import Guard

MAX_ROUNDS = 100   # rounds (and practice rounds) per participant


def read_tips_file(path: str | Path, spec: KitchenSpec | None = None) -> dict:
    """A pipeline's ``tips.json`` as read; ConfigError naming ``tip.file`` unless it has a list of
    recommended tips, each with its text, mined for the kitchen `spec` (when the file names its kitchen)."""
    try:
        tips = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"tip.file: cannot read {path} ({error})") from None
    recommended = tips.get("recommended") if isinstance(tips, dict) else None
    if not isinstance(recommended, list):
        raise ConfigError(f"tip.file: {path} is not a pipeline's tips.json (no 'recommended' list of tips)")
    for i, entry in enumerate(recommended):
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise ConfigError(f"tip.file: {path}, recommended tip {i + 1}: no 'text' to show")
    if spec is not None and isinstance(tips.get("kitchen"), dict):
        try:
            mined_for = KitchenSpec.from_dict(tips["kitchen"])
        except ConfigError as error:
            raise ConfigError(f"tip.file: {path}: its kitchen: {error}") from None
        if mined_for != spec:
            raise ConfigError(f"tip.file: {path} was mined in another kitchen (scenario {mined_for.scenario!r}, "
                              f"{len(mined_for.orders)} orders) than the game's (scenario {spec.scenario!r}, "
                              f"{len(spec.orders)} orders); mine tips from rounds of this kitchen")
    return tips


def load_tip(path: str | Path, rank: int, spec: KitchenSpec | None = None) -> dict:
    """The recommended tip with `rank` in a pipeline's ``tips.json`` (its entry: text, simulated gain, …) for
    the kitchen `spec`; ConfigError naming the problem. Only recommended tips (checked by simulation) can be
    shown."""
    tips = read_tips_file(path, spec)
    recommended = tips["recommended"]
    if not recommended:
        raise ConfigError(f"tip.file: {path} recommends no tip ({tips.get('message') or 'none helped'})")
    ranks = [t.get("rank", i + 1) for i, t in enumerate(recommended)]
    if rank not in ranks:
        raise ConfigError(f"tip.rank: no recommended tip of rank {rank} in {path} (ranks {ranks})")
    return recommended[ranks.index(rank)]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_chooser(mode: str, spec: KitchenSpec, path: str | Path, traces: str | Path, seed: int):
    """The tip chooser of `mode` (personalised, dynamic) for the study kitchen `spec`: the population's tips of
    ``tips.json`` at `path`, the population's habits from `traces` (what it was mined from). Every recommended
    tip is checked first, so a problem is one ConfigError naming ``tip.file`` or ``tip.traces``."""
    from bpjax.data.traces import TraceError
    from bpjax.study.chooser import chooser_from_files
    from bpjax.tips.candidates import tip_from_json

    for i, entry in enumerate(read_tips_file(path, spec)["recommended"]):
        where = f"tip.file: {path}, recommended tip {entry.get('rank', i + 1)}"
        try:
            tip_from_json(entry, spec)
        except ValueError as error:
            raise ConfigError(f"{where}: {error} (was it mined in another kitchen than the game's?)") from None
        ci = entry.get("simulated_gain_ci")
        if not _number(entry.get("simulated_gain")) or not (isinstance(ci, list) and len(ci) == 2
                                                            and all(map(_number, ci))):
            raise ConfigError(f"{where}: needs its simulated_gain and simulated_gain_ci (the chooser's prior)")
    if not Path(traces).exists():
        raise ConfigError(f"tip.traces: {traces} not found")
    try:
        return chooser_from_files(mode, spec, path, traces, seed)
    except TraceError as error:
        raise ConfigError(f"tip.traces: {error}") from None
    except ValueError as error:  # chooser_from_files names its setting
        message = str(error)
        raise ConfigError(message if message.startswith("tip.") else f"tip.traces: {message}") from None


def tip_from_config(cfg: DictConfig, study: KitchenSpec) -> tuple[str | None, object]:
    """The tip settings: (the static tip's text, the chooser of the personalised / dynamic mode); both None
    for no tip. ConfigError naming the setting."""
    from bpjax.data.traces import shown
    from bpjax.play.tips import MODES

    mode = cfg.tip.mode
    if mode not in MODES:
        raise ConfigError(f"tip.mode: expected one of {', '.join(MODES)}, got {shown(mode)}")
    if cfg.tip.show:  # the older spelling of tip.mode=static
        if mode not in ("none", "static"):
            raise ConfigError(f"tip.show: true means tip.mode=static; leave it out with tip.mode={mode}")
        mode = "static"
    if mode == "none":
        if cfg.tip.file is not None or cfg.tip.traces is not None:  # given for a reason: showing nothing would hide it
            given = "tip.file" if cfg.tip.file is not None else "tip.traces"
            raise ConfigError(f"{given}: given with tip.mode=none, which shows no tip; add tip.mode=static "
                              "(or personalised / dynamic)")
        return None, None
    if cfg.tip.file is None:
        raise ConfigError(f"tip.file: tip.mode={mode} needs a tips.json (tip.file=PATH)")
    if mode == "static":
        entry = load_tip(cfg.tip.file, cfg.tip.rank, study)
        if "kind" in entry:  # a mined tip (not a hand-written text): it must fit this kitchen, as in the other modes
            from bpjax.tips.candidates import tip_from_json

            try:
                tip_from_json(entry, study)
            except ValueError as error:
                raise ConfigError(f"tip.file: {cfg.tip.file}, recommended tip {cfg.tip.rank}: {error} (was it mined "
                                  f"in another kitchen than the game's?)") from None
        return str(entry["text"]), None
    if cfg.tip.traces is None:
        raise ConfigError(f"tip.traces: tip.mode={mode} needs the traces tip.file was mined from "
                          "(tip.traces=PATH: a trace file, or the game's traces folder of an earlier wave)")
    return None, load_chooser(mode, study, cfg.tip.file, cfg.tip.traces, cfg.tip.seed)


def _integer(name: str, value, lo: int, hi: int) -> int:
    from bpjax.data.traces import shown

    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{name}: expected an integer in {lo}..{hi}, got {shown(value)}")
    return value


def setup_from_config(cfg: DictConfig, out_dir: Path) -> GameSetup:
    """Validate the play config (kitchens, rounds, tip) into a :class:`GameSetup` (for the personalised and
    dynamic modes this builds the tip chooser: the study kitchen's exact solution, the population's habits)."""
    from bpjax.play.game import GameSetup

    _integer("rounds", cfg.rounds, 1, MAX_ROUNDS)
    _integer("practice_rounds", cfg.practice_rounds, 0, MAX_ROUNDS)
    study = KitchenSpec.from_dict(cfg.kitchen)
    try:
        practice = KitchenSpec.from_dict(cfg.practice_kitchen) if cfg.practice_rounds else None
    except ConfigError as error:
        raise ConfigError(f"practice_{error}") from None
    tip, chooser = tip_from_config(cfg, study)
    return GameSetup(study, cfg.rounds, out_dir, practice, cfg.practice_rounds, tip, chooser, float(cfg.tip.wait_s))


def guard_from_config(cfg: DictConfig) -> Guard:
    """Validate the server settings (host, port, allowed hosts and origins, join limit) into a :class:`Guard`."""
    from bpjax.data.traces import shown
    from bpjax.play.guard import Guard

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
                               env=env, preexec_fn=ctrl_c_default)  # stopped with Ctrl-C below
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
    guard = guard_from_config(cfg)   # first: quick, while a tip chooser takes seconds to build
    check_place(str(cfg.host), str(cfg.out_dir))
    return setup_from_config(cfg, Path(cfg.out_dir)), guard  # placed under the output folder


def check_place(host: str, out_dir: str) -> None:
    """`host` is an address this machine can listen on, and `out_dir` a folder inside the run's output folder
    (participants' traces must not land elsewhere, nor over other files); ConfigError naming the setting."""
    import socket

    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ConfigError(f"host: {host!r} is not an address ({getattr(error, 'strerror', None) or error})") from None
    path = Path(out_dir)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ConfigError(f"out_dir: a folder inside the run's output folder, got {out_dir!r} "
                          f"(hydra.run.dir moves the whole run)")


@command("play", validate, errors=(OSError, OverflowError))
def main(cfg: DictConfig, settings: tuple[GameSetup, Guard], run: Run) -> None:
    from bpjax.play.server import bind, create_app, server_for, url_of

    setup, guard = settings
    setup = dataclasses.replace(setup, out_dir=run.out / cfg.out_dir)
    try:  # bound first: port=0 picks a free port, the URL names it
        sock = bind(str(cfg.host), int(cfg.port))
    except OSError as error:  # the port taken, or an address that is not this machine's
        raise ConfigError(f"port: cannot listen on {cfg.host}:{cfg.port} ({error.strerror or error})") from None
    setup.out_dir.mkdir(parents=True, exist_ok=True)
    (setup.out_dir / "session.json").write_text(json.dumps(
        {"config": OmegaConf.to_container(cfg, resolve=True), "tip_mode": setup.tip_mode, "tip_text": setup.tip},
        indent=1))
    print(f"Kitchen game: {url_of(sock)}   traces: {setup.out_dir}   (Ctrl-C stops)", flush=True)
    # the bound address is served too (0.0.0.0 included: a browser on this machine may open the printed URL)
    address = urlsplit(url_of(sock)).netloc
    app = create_app(setup, dataclasses.replace(guard, allowed_hosts=(*guard.allowed_hosts, address)))
    # uvicorn stops on SIGINT and SIGTERM alike, and its shutdown marks the rounds in play incomplete
    server = server_for(app)
    # uvicorn re-raises the signal it stopped on once it is done: SIGTERM (a service manager's stop) then ends
    # the game as Ctrl-C does, with the closing line, instead of killing the process before it
    previous = signal.signal(signal.SIGTERM, _stop_as_asked)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # stopped as asked: no traceback
        pass
    finally:  # a second Ctrl-C skips the app's shutdown: mark them here then
        signal.signal(signal.SIGTERM, previous)
        app.state.participants.abandon_all()
    print("Kitchen game stopped.", flush=True)


def _stop_as_asked(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
