"""Every shell command in README.md and docs/*.md runs, on small budgets, so the documentation cannot rot.

What counts as a command: each line of a ```bash block that starts with `python` (after `VAR=value`
assignments; backslash-continued lines joined, `&&` chains split, comments dropped), and each `$ python ...`
line of a ```console block, whose following lines are its documented output: such an example shows bad
input, so it must fail with exactly that one line as the end of stderr. A page's commands run in order in
one scratch folder, so that a later command reads what an earlier one wrote; a ```yaml block whose first
line names a file (`# my_kitchen/kitchen/orders/x.yaml`) is written there first. Every bash command gets the
small-budget arguments of SMALL for its program appended; a program SMALL does not know fails the test,
unless SKIP names the command with the reason it cannot run here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bpjax.data.players import generate_population
from bpjax.data.traces import write_traces
from bpjax.play.cli import launched
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TIMEOUT_S = 600

# Small budgets, appended to every command of a program (later Hydra overrides win).
PIPELINE = ["n_players=16", "rounds=2", "tips.simulate=2", "tips.eval_rounds=1",
            "tips.compliance=[1.0]", "monte_carlo.n_seeds=1", "monte_carlo.n_rollouts=2",
            "monte_carlo.algo.n_updates=2", "monte_carlo.algo.n_envs=8", "monte_carlo.algo.n_steps=8",
            "monte_carlo.algo.n_minibatches=1"]
SMALL: dict[str, list[str]] = {
    "bpjax.solve": ["baselines.episodes=8"],
    "bpjax.train": ["algo.n_updates=2", "chunk=2"],
    "bpjax.data generate": ["n_players=16", "rounds=2"],
    "bpjax.imitation": ["n_players=8", "rounds=2", "eval_rounds=4"],
    "bpjax.pipeline": PIPELINE,
    "bpjax.study": ["trainees=4", "pilot_players=8", "pilot_rounds=1",
                    "blocks=[{dish:burger,rounds:2,orders:[burger,burger]},{dish:pasta,rounds:1,orders:[pasta]}]"],
    "bpjax.play": [],   # started, its URL answered, stopped (bpjax.play.cli.launched)
    "scripts/aggregate.py": [],
    "benchmarks/env_throughput.py": ["--batches", "16", "--steps", "8", "--repeats", "1", "--reference-seconds",
                                     "0.1"],
    "benchmarks/solver_time.py": ["--repeats", "1"],
    "benchmarks/imitation_speed.py": ["--players", "8", "--gail-iterations", "2", "--learners", "forest"],
    "benchmarks/tips_speed.py": ["--players", "8", "--baseline-rounds", "2"],
    "benchmarks/tip_recovery.py": ["--seeds", "1", "--players", "12", "--rounds", "2", "--true-trainees", "2",
                                   "--populations", "chef_plates", "--no-rule-lists"],
    "benchmarks/mc_q_accuracy.py": ["--players", "4", "--rounds", "1", "--rollouts", "2", "--overrides",
                                    "monte_carlo.algo.n_updates=2", "monte_carlo.n_seeds=1"],
    "benchmarks/play_load.py": ["--participants", "2"],
    "benchmarks/sweep_throughput.py": ["--configs", "kitchen/scenario=full", "--seeds", "2", "--updates", "2"],
}
# ... and for the learner a command picks (`algo=...`, else the program's default)
SMALL_ALGO: dict[tuple[str, str], list[str]] = {
    ("bpjax.imitation", "forest"): ["algo.n_estimators=10"],
    ("bpjax.imitation", "boosting"): ["algo.n_estimators=10"],
    ("bpjax.imitation", "bc"): ["algo.epochs=2"],
    ("bpjax.imitation", "gail"): ["algo.n_iterations=2", "algo.bc_epochs=2"],
}
SMALL_ALGO.update({("bpjax.pipeline", name): settings for (_, name), settings in list(SMALL_ALGO.items())})
DEFAULT_ALGO = {"bpjax.imitation": "forest", "bpjax.pipeline": "forest"}

# Commands that cannot run here, by the start of their line, with the reason.
SKIP: dict[str, str] = {
    "python -m pip install": "installs the package: .ci/run runs exactly this before the test suite",
    "python -m pytest": "the test suite itself, which runs this test",
    "python -m bpjax.train -m hydra/launcher=slurm": "needs a SLURM cluster; the requeue-and-resume path is "
                                                      "tested through submitit's local executor (test_sweeps.py)",
    "python benchmarks/train_speed.py": "needs PyTorch (the bench extra) and runs for many minutes",
    "python benchmarks/startup.py": "times every command twice over, minutes by design",
    "python benchmarks/ppo_throughput.py": "compares against another git revision of PPO, minutes by design",
}


# commands that read and write nothing of their page's scratch folder run once per session, whatever page
# shows them again (a README example repeated on a docs page)
ALREADY_RAN: set[tuple[str, ...]] = set()


@dataclass
class Command:
    line: str                                            # as documented
    expected: list[str] = field(default_factory=list)    # documented output of a bad-input example


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        if language is None:
            match = re.match(r"^```(\w*)\s*$", line)
            if match:
                language, lines = match.group(1), []
        elif line.startswith("```"):
            blocks.append((language, lines))
            language = None
        else:
            lines.append(line)
    assert language is None, "an unclosed code fence"
    return blocks


def bash_commands(lines: list[str]) -> list[Command]:
    joined, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    commands = []
    for line in joined:
        words = shlex.split(line, comments=True)
        parts, current = [], []
        for word in words:
            if word == "&&":
                parts.append(current)
                current = []
            else:
                current.append(word)
        parts.append(current)
        for part in parts:
            plain = [w for w in part if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]
            if plain and plain[0] == "python":
                commands.append(Command(shlex.join(part)))
    return commands


def console_commands(lines: list[str]) -> list[Command]:
    commands = []
    for line in lines:
        if line.startswith("$ "):
            commands.append(Command(line[2:].strip()))
        elif commands and line.strip():
            commands[-1].expected.append(line.strip())
    return [c for c in commands if shlex.split(c.line)[0] == "python"]


def contents(text: str) -> tuple[list[Command], dict[str, str]]:
    """The commands of a page, in order, and the files its YAML blocks name."""
    commands, files = [], {}
    for language, lines in fenced_blocks(text):
        if language == "bash":
            commands += bash_commands(lines)
        elif language == "console":
            commands += console_commands(lines)
        elif language == "yaml" and lines and re.match(r"^# [\w./-]+\.yaml$", lines[0]):
            files[lines[0][2:]] = "\n".join(lines[1:]) + "\n"
    return commands, files


def program_of(words: list[str]) -> str:
    """`bpjax.data generate`, `bpjax.train`, `benchmarks/x.py`, ... of `python ...` (env assignments first)."""
    words = [w for w in words if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]
    if words[1] == "-m":
        module = words[2]
        return f"{module} {words[3]}" if module == "bpjax.data" and len(words) > 3 else module
    return words[1]


def skip_reason(line: str) -> str | None:
    line = re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+", "", line)   # `PYTHONPATH=. python ...` is `python ...`
    return next((reason for start, reason in SKIP.items() if line.startswith(start)), None)


def page_contents(page: Path) -> tuple[list[Command], dict[str, str]]:
    return contents(page.read_text(encoding="utf-8"))


def all_commands() -> list[tuple[Path, Command]]:
    return [(page, command) for page in PAGES for command in page_contents(page)[0]]


def test_every_documented_command_is_known():
    """Each command's program has small budgets in SMALL, or the command is in SKIP; SKIP stays short and
    every entry of it is still documented somewhere."""
    unknown = [f"{page.name}: {c.line}" for page, c in all_commands()
               if skip_reason(c.line) is None and not c.expected and program_of(shlex.split(c.line)) not in SMALL]
    assert not unknown, "commands without small budgets in tests/test_docs.py:\n" + "\n".join(unknown)
    lines = [c.line for _, c in all_commands()]
    assert len(SKIP) <= 6
    for start in SKIP:
        assert any(skip_reason(line) == SKIP[start] for line in lines), f"SKIP entry no longer documented: {start}"


def test_the_extractor_reads_the_documented_forms():
    """Continued lines, && chains, comments, env assignments, console examples, named YAML files."""
    text = ("```bash\npython -m bpjax.train a=1 \\\n    b=2   # trailing comment\n"
            "pip install x && python -m bpjax.solve 'k=[1, 2]'\nX=1 python -m bpjax.solve\ncurl http://x\n```\n"
            "```console\n$ python -m bpjax.solve bad=1\nConfigError: bad\n$ ls\n```\n"
            "```yaml\n# d/f.yaml\nkey: 1\n```\n")
    commands, files = contents(text)
    assert [c.line for c in commands] == ["python -m bpjax.train a=1 b=2", "python -m bpjax.solve 'k=[1, 2]'",
                                          "X=1 python -m bpjax.solve", "python -m bpjax.solve bad=1"]
    assert commands[-1].expected == ["ConfigError: bad"] and files == {"d/f.yaml": "key: 1\n"}
    assert program_of(shlex.split("python -m bpjax.data generate n=1")) == "bpjax.data generate"
    assert program_of(shlex.split("X=1 python benchmarks/a.py --x")) == "benchmarks/a.py"


def test_ci_runs_exactly_the_readmes_test_command():
    """The README's quick start is two commands, install-and-run then the tests; .ci/run ends with the second."""
    quick_start = [c.line for c in bash_commands(fenced_blocks(PAGES[0].read_text(encoding="utf-8"))[0][1])]
    assert len(quick_start) == 3 and quick_start[0].startswith("python -m pip install")  # pip && pipeline; pytest
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == quick_start[-1] and quick_start[-1].startswith("python -m pytest")


LINK = re.compile(r"\]\(([^)\s]+)\)")                 # [text](target)
NAMED_PAGE = re.compile(r"`((?:docs|benchmarks)/[\w./-]+\.md)`")   # a page named in backticks, from the root


def links(page: Path) -> list[tuple[str, Path]]:
    """The local files a page points to: Markdown links (relative to the page) and backticked page names."""
    text = page.read_text(encoding="utf-8")
    found = [(target, (page.parent / target.split("#")[0]).resolve()) for target in LINK.findall(text)
             if not re.match(r"^(\w+:|#)", target)]
    return found + [(name, (REPO / name).resolve()) for name in NAMED_PAGE.findall(text)]


def test_every_link_of_the_docs_resolves_and_every_page_is_linked():
    """No link of README.md or docs/*.md points to a missing file, and every docs page can be reached from the
    README (linked from it, or from a page it links to)."""
    broken = [f"{page.relative_to(REPO)}: {target}" for page in PAGES for target, path in links(page)
              if not path.exists()]
    assert not broken, "broken links:\n" + "\n".join(broken)
    reached, frontier = {PAGES[0].resolve()}, [PAGES[0]]
    while frontier:
        for _, path in links(frontier.pop()):
            if path.suffix == ".md" and path not in reached:
                reached.add(path)
                frontier.append(path)
    unlinked = [str(p.relative_to(REPO)) for p in PAGES if p.resolve() not in reached]
    assert not unlinked, "pages no link leads to from README.md (add them to its Documentation table):\n" + (
        "\n".join(unlinked))


def game_traces(folder: Path) -> None:
    """Stand-ins for the people of a documented play session: synthetic players' rounds, one CSV per
    participant, as the game writes them (only where the folder holds no trace yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("*.csv")):
        return
    frame, _ = generate_population(spec_for(), [{"kind": "chef_plates", "base": "optimal",
                                                 "flaws": [["chef", "plate"]], "flaw_rate": 0.9, "share": 1},
                                                {"kind": "expert", "base": "optimal", "epsilon": 0.0, "share": 1}],
                                   n_players=12, rounds=2, seed=0)
    for player, rows in frame.groupby("player_id"):
        write_traces(rows, folder / f"{player}.csv")


def environment() -> dict[str, str]:
    # the scratch folder is the working directory: import this checkout's bpjax, not an installed one
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def arguments(words: list[str], program: str) -> tuple[dict[str, str], list[str]]:
    env = {}
    while re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    words = [sys.executable, *words[1:]]
    if not words[1].startswith("-"):          # a script of the repository
        words[1] = str(REPO / words[1])
    chosen = next((w.split("=", 1)[1] for w in words if w.startswith("algo=")), DEFAULT_ALGO.get(program))
    return env, words + SMALL[program] + SMALL_ALGO.get((program, chosen), [])


def run_play(line: str, argv: list[str], scratch: Path) -> None:
    """Start the game as documented (on a free port), fetch its page, stop it with Ctrl-C."""
    with launched(scratch, *argv[3:], timeout_s=180) as (url, process):
        assert httpx.get(url, timeout=30).status_code == 200, line
    assert process.returncode == 0, f"{line}\n" + process.stdout.read()[-2000:]


def run_page(page: Path, scratch: Path) -> None:
    commands, files = page_contents(page)
    for name, text in files.items():
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text(text)
    for command in commands:
        if skip_reason(command.line):
            continue
        words = shlex.split(command.line)
        program = program_of(words)
        if command.expected:    # a bad-input example: as documented, no budget needed (it stops first)
            result = subprocess.run([sys.executable, *words[1:]], cwd=scratch, env=environment(),
                                    capture_output=True, text=True, timeout=TIMEOUT_S)
            lines = result.stderr.strip().splitlines()
            assert result.returncode != 0 and lines[-len(command.expected):] == command.expected, (
                f"{page.name}: {command.line}\nexit {result.returncode}, stderr ends:\n" + "\n".join(lines[-5:]))
            continue
        for path in re.findall(r"traces=(runs/wave\d+/traces)\b", command.line):
            game_traces(scratch / path)
        env, argv = arguments(list(words), program)
        standalone = program.startswith("bpjax.") and not any(
            "runs/" in w or w.startswith(("--config-dir", "hydra.run.dir", "hydra.sweep.dir")) for w in words)
        key = (*env.items(), *argv)
        if standalone and key in ALREADY_RAN:
            continue
        if program == "bpjax.play":
            run_play(command.line, argv, scratch)
            if standalone:
                ALREADY_RAN.add(key)
            continue
        result = subprocess.run(argv, cwd=scratch, env={**environment(), **env}, capture_output=True,
                                text=True, timeout=TIMEOUT_S)
        assert result.returncode == 0, (f"{page.name}: {command.line}\nran: {shlex.join(argv)}\n"
                                        + result.stderr[-3000:])
        if standalone:
            ALREADY_RAN.add(key)


@pytest.fixture(scope="session")
def docs_cache(tmp_path_factory):
    """One cache folder for the documented commands of this test process, new for it: no result of an earlier
    run is reused, and commands of one page share what an earlier one compiled."""
    patch = pytest.MonkeyPatch()
    patch.setenv("BPJAX_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_commands_of_a_page_run(page, docs_cache, tmp_path):
    """A page's commands in order in one scratch folder (pages run side by side under pytest -n)."""
    if not page_contents(page)[0]:
        pytest.skip(f"{page.name} shows no command")
    run_page(page, tmp_path)
