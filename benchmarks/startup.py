"""Time from typing a command to its answer: process wall of the command lines, with a fresh compilation cache.

    python benchmarks/startup.py --json startup.json
    python benchmarks/startup.py --compare /tmp/bpjax-base --json startup.json   # and another checkout, same run

With ``--compare DIR`` (another checkout of bpjax, e.g. ``git archive main | tar -x -C DIR``), every command runs
on both checkouts, one after the other, so both see the same load.

Measures, each as its own process (the load from `uptime` is recorded before and after):

- ``python -m bpjax.train algo.n_updates=25 chunk=25``, first and second run in one fresh cache folder
  (``BPJAX_CACHE_DIR``): the first compiles and solves, the second should find both cached; the greedy ticks
  of each run next to the exact optimum;
- ``python -m bpjax.solve`` (the paper's kitchen);
- ``--help`` of every command (``train``, ``solve``, ``data generate``, ``imitation``, ``pipeline``, ``study``,
  ``play``);
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


def play_first_answer(env: dict, root: Path, run_dir: Path) -> float:
    """Seconds from starting the game server to its first answered request."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bpjax.play", "port=0", f"hydra.run.dir={run_dir}"],
                               cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


def environment(root: Path, tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", "BPJAX_"))}
    env["BPJAX_CACHE_DIR"] = str(tmp / "cache")  # fresh: nothing compiled or solved before
    env["PYTHONPATH"] = str(root)  # that checkout's bpjax, whatever is installed
    return env


def step(name: str, root: Path, tmp: Path) -> dict:
    """One command on the checkout at `root` (cache folder and run folders under `tmp`)."""
    env = environment(root, tmp)
    if name in ("train_first", "train_second"):
        wall, proc = timed([sys.executable, "-m", "bpjax.train", "algo.n_updates=25", "chunk=25",
                            f"hydra.run.dir={tmp / name}"], env, root)
        metrics = last_json(proc)
        return {"wall_s": round(wall, 2), "train_wall_s": metrics["wall_s"], "greedy_ticks": metrics["greedy_ticks"],
                "optimal_ticks": metrics["optimal_ticks"], "load": load()[0]}
    if name == "play_first_answer":
        return {"wall_s": round(play_first_answer(env, root, tmp / "play"), 2), "load": load()[0]}
    command = {"solve": ["bpjax.solve", f"hydra.run.dir={tmp / 'solve'}"], **HELP}[name]
    wall, _ = timed([sys.executable, "-m", *command], env, root)
    return {"wall_s": round(wall, 2), "load": load()[0]}


HELP = {"train_help": ["bpjax.train", "--help"], "solve_help": ["bpjax.solve", "--help"],
        "data_help": ["bpjax.data", "generate", "--help"], "imitation_help": ["bpjax.imitation", "--help"],
        "pipeline_help": ["bpjax.pipeline", "--help"], "study_help": ["bpjax.study", "--help"],
        "play_help": ["bpjax.play", "--help"]}
STEPS = ("train_first", "train_second", "solve", *HELP, "play_first_answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, help="another checkout of bpjax, measured in the same run")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=STEPS, metavar="STEP",
                        help=f"measure only these (in this order): {' '.join(STEPS)}")
    parser.add_argument("--json")
    args = parser.parse_args()
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpus": os.cpu_count()}, "load_before": load(), "runs": {}}
    roots = {"this": REPO, **({"compare": args.compare.resolve()} if args.compare else {})}
    results["roots"] = {label: str(root) for label, root in roots.items()}
    with tempfile.TemporaryDirectory(prefix="bpjax-startup-") as tmp:
        for name in args.steps:  # each command on every checkout in turn: the same load for both
            for label, root in roots.items():
                result = step(name, root, Path(tmp) / label)
                results["runs"].setdefault(label, {})[name] = result
                extra = (f" (training {result['train_wall_s']:.2f} s; greedy {result['greedy_ticks']}, optimum "
                         f"{result['optimal_ticks']})" if "train_wall_s" in result else "")
                print(f"{name:<18} {label:<8} {result['wall_s']:6.2f} s{extra}  load {result['load']:.2f}", flush=True)
    results["load_after"] = load()
    print(f"load (1, 5, 15 min) before {results['load_before']}, after {results['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
