"""Time from typing a command to its answer: process wall of the command lines, with a fresh compilation cache.

    python benchmarks/startup.py --json startup.json

Measures, each as its own process (the load from `uptime` is recorded before and after):

- ``python -m bpjax.train algo.n_updates=25 chunk=25``, first and second run in one fresh cache folder
  (``BPJAX_CACHE_DIR``): the first compiles and solves, the second should find both cached; the greedy ticks
  of each run next to the exact optimum;
- ``python -m bpjax.solve`` (the paper's kitchen);
- ``python -m bpjax.pipeline --help`` and ``python -m bpjax.train --help``;
- ``python -m bpjax.play port=0`` until its first HTTP answer (the game page).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load() -> list[float]:
    return [float(x) for x in os.getloadavg()]


def timed(command: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def play_first_answer(env: dict, run_dir: Path) -> float:
    """Seconds from starting the game server to its first answered request."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bpjax.play", "port=0", f"hydra.run.dir={run_dir}"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            match = re.search(r"(http://\S+/)", line)
            if match:
                break
        else:
            raise RuntimeError("python -m bpjax.play printed no URL")
        while True:  # the URL is printed once the port is bound, just before the server accepts
            try:
                with urllib.request.urlopen(match.group(1), timeout=60) as answer:
                    answer.read()
                return time.perf_counter() - start
            except ConnectionRefusedError:
                time.sleep(0.01)
            except urllib.error.URLError as error:
                if not isinstance(error.reason, ConnectionRefusedError):
                    raise
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    args = parser.parse_args()
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpus": os.cpu_count()}, "load_before": load(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bpjax-startup-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
        env["BPJAX_CACHE_DIR"] = str(tmp / "cache")  # fresh: nothing compiled or solved before
        env["PYTHONPATH"] = str(REPO)  # this checkout's bpjax, whatever is installed
        train = [sys.executable, "-m", "bpjax.train", "algo.n_updates=25", "chunk=25"]
        for run in ("train_first", "train_second"):
            wall, proc = timed([*train, f"hydra.run.dir={tmp / run}"], env, REPO)
            metrics = last_json(proc)
            results["runs"][run] = {"wall_s": round(wall, 2), "train_wall_s": metrics["wall_s"],
                                    "greedy_ticks": metrics["greedy_ticks"],
                                    "optimal_ticks": metrics["optimal_ticks"]}
            print(f"{run:<14} {wall:6.2f} s  (training {metrics['wall_s']:.2f} s; greedy {metrics['greedy_ticks']}, "
                  f"optimum {metrics['optimal_ticks']})", flush=True)
        commands = {"solve": [sys.executable, "-m", "bpjax.solve", f"hydra.run.dir={tmp / 'solve'}"],
                    "pipeline_help": [sys.executable, "-m", "bpjax.pipeline", "--help"],
                    "train_help": [sys.executable, "-m", "bpjax.train", "--help"]}
        for name, command in commands.items():
            wall, _ = timed(command, env, REPO)
            results["runs"][name] = {"wall_s": round(wall, 2)}
            print(f"{name:<14} {wall:6.2f} s", flush=True)
        wall = play_first_answer(env, tmp / "play")
        results["runs"]["play_first_answer"] = {"wall_s": round(wall, 2)}
        print(f"{'play':<14} {wall:6.2f} s to the first answer", flush=True)
    results["load_after"] = load()
    print(f"load (1, 5, 15 min) before {results['load_before']}, after {results['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
