"""The command lines' shared machinery (bpjax.config.cli): output folder first and last, records in the job
log, progress on stderr (and off), --help per app, the compilation cache folder and its switches, no output
folder left by a command that did nothing, the old module names."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bpjax.config import progress as progress_module
from bpjax.config.cli import ctrl_c_default, remove_if_empty
from bpjax.config.progress import Progress

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def clean_env(**extra: str) -> dict[str, str]:
    """This checkout's bpjax; no compilation-cache settings inherited from the test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT",
                                                                        "BPJAX_"))}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def run_python(script: str, **env: str) -> subprocess.CompletedProcess:
    """``python -c script`` with this checkout's bpjax (`env` added to `clean_env`); it must exit 0."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO,
                            env=clean_env(**env))
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow
def test_solve_prints_its_folder_first_and_last_logs_and_fills_the_cache(tmp_path):
    """stderr starts and ends with the output folder; the job log holds the command, its phases and its end;
    compiled programs land in the cache folder (BPJAX_CACHE_DIR), not the test session's."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = subprocess.run([sys.executable, "-m", "bpjax.solve", "baselines.episodes=4", f"hydra.run.dir={out}"],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=clean_env(BPJAX_CACHE_DIR=str(cache)))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[0] == lines[-1] == f"output folder: {out}", result.stderr
    log = (out / "solve.log").read_text()
    assert "[bpjax.cli][INFO] - python -m bpjax.solve baselines.episodes=4" in log
    assert "[bpjax.progress][INFO] - exact solve: " in log and "states" in log
    assert "[bpjax.cli][INFO] - done in " in log
    assert any((cache / "jax").iterdir())


@pytest.mark.parametrize("env, expected", [
    ({"BPJAX_CACHE_DIR": "/tmp/bpjax-cache-test"}, "/tmp/bpjax-cache-test/jax"),
    ({"XDG_CACHE_HOME": "/tmp/xdg"}, "/tmp/xdg/bpjax/jax"),
    ({"BPJAX_CACHE_DIR": "/tmp/a", "JAX_COMPILATION_CACHE_DIR": "/tmp/mine"}, "/tmp/mine"),  # the caller's wins
    ({"BPJAX_CACHE_DIR": "/tmp/a", "BPJAX_COMPILATION_CACHE": "0"}, "None"),
])
def test_where_compiled_programs_go(env, expected):
    script = ("from bpjax.config.cache import enable_compilation_cache; import os; folder = "
              "enable_compilation_cache(); import jax; "
              "print(folder, jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)")
    result = run_python(script, **env)
    folder, jax_folder, min_compile_s = result.stdout.split()
    assert folder == expected
    if expected != "None":
        assert jax_folder == expected and float(min_compile_s) == 0  # every program, however quick to compile
    else:
        assert jax_folder == "None"


def help_of(*module: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *module, "--help"], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=clean_env())


@pytest.mark.parametrize("module, overrides, options", [
    (["bpjax.train"], ["algo=reinforce"], ["algo=reinforce   one of ppo|reinforce|reinforce_fast|reinforce_paper"]),
    (["bpjax.solve"], ["kitchen/skills=random"], ["kitchen/scenario=full   one of", "kitchen/skills=random   one of",
                                                  "baselines.episodes=256"]),
    (["bpjax.data", "generate"], [], ["population=study   one of study|flawless", "n_players=40"]),
    (["bpjax.imitation"], [], ["algo=forest   one of forest|boosting|bc|gail", "held_out=0.25"]),
    (["bpjax.play"], ["kitchen/skills=uniform"], ["rounds=3", "port=8000", "kitchen/skills=uniform kitchen/orders=",
                                                 "kitchen/orders@practice_kitchen=tacos_practice"]),
])
@pytest.mark.slow
def test_help_says_what_the_command_does(module, overrides, options):
    """A purpose line, the main options with their current values (a group's choice among its options, overrides
    before --help applied), examples; no schema names."""
    result = help_of(*module, *overrides)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"python -m {' '.join(module)}: ")
    assert "Examples:" in text and all(o in text for o in options), text
    assert "_schema" not in text and "Powered by Hydra" not in text


def test_help_options_name_every_group_option():
    """The hand-written option lists in the help texts stay complete: each group line shows the current choice
    and then exactly the group's YAML options."""
    groups = {"train": ["algo"], "imitate": ["algo", "population"], "traces": ["population"],
              "pipeline": ["algo", "population", "tips"], "study": ["population"],
              "solve": ["kitchen/skills", "kitchen/orders", "kitchen/scenario"]}
    training = {"ppo", "reinforce", "reinforce_fast", "reinforce_paper"}
    for app, names in groups.items():
        text = (CONF / "hydra" / "help" / f"{app}.yaml").read_text()
        for group in names:
            options = {p.stem for p in (CONF / group).glob("*.yaml")}
            if group == "algo":   # one folder holds the trainers and the imitation learners
                options = options & training if app == "train" else options - training
            choice = re.search(rf"^    {re.escape(group)}=\$\{{hydra:'?runtime\.choices\.{re.escape(group)}'?\}}"
                               r"   one of ([\w|]+)", text, re.M)
            assert choice, (app, group)
            assert set(choice.group(1).split("|")) == options, (app, group, choice.group(1), options)


@pytest.mark.parametrize("module", [["bpjax.train"], ["bpjax.solve"], ["bpjax.data", "generate"], ["bpjax.imitation"],
                                    ["bpjax.play"], ["bpjax.pipeline"], ["bpjax.study"]])
def test_help_imports_no_jax(module):
    """--help answers from the configs alone: no JAX, pandas or the game's web server imported (the schemas
    derived from JAX code are stand-ins, the packages import their modules on first use)."""
    heavy = ["jax", "pandas", "sklearn", "starlette"]
    script = (f"import runpy, sys\nsys.argv = {[module[0], *module[1:], '--help']!r}\ntry:\n"
              f"    runpy.run_module({module[0]!r}, run_name='__main__')\n"
              f"finally:\n    print([m for m in {heavy!r} if m in sys.modules])")
    result = run_python(script)
    assert result.stdout.startswith(f"python -m {' '.join(module)}: "), result.stdout[:200]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("config_name, tips", [("train", False), ("pipeline", True)])
def test_a_command_derives_the_tips_schema_only_if_its_config_uses_it(config_name, tips):
    """Deriving the tips group's schema imports the tip stage (and pandas): `train` registers a stand-in."""
    script = (f"import sys\nfrom bpjax.config.schema import register\n"
              f"register(typed=True, config_name={config_name!r})\n"
              f"print('bpjax.tips.recommend' in sys.modules, 'pandas' in sys.modules)")
    result = run_python(script)
    assert result.stdout.split() == [str(tips), str(tips)]


def test_train_reaches_training_without_tensorboard_the_tip_stage_or_the_plot(tmp_path):
    """What `train` imports before its first chunk: not tensorboardX (boto3 comes with it where installed),
    the tip stage, pandas or matplotlib; the end-of-run imports load in a background thread (off here)."""
    script = textwrap.dedent(f"""
        import os, sys
        import bpjax.train.__main__ as command
        import bpjax.train.loop as loop

        command._preload = lambda: None

        def train(*args, **kwargs):
            print([m for m in ("tensorboardX", "bpjax.tips", "pandas", "matplotlib") if m in sys.modules], flush=True)
            os._exit(0)

        loop.train = train
        sys.argv = ["bpjax.train", "hydra.run.dir={tmp_path}", "progress=false"]
        command.main()
    """)
    result = run_python(script, BPJAX_CACHE_DIR=str(tmp_path / "cache"))
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_old_module_names_still_answer(tmp_path):
    usage = subprocess.run([sys.executable, "-m", "bpjax.traces"], capture_output=True, text=True, timeout=120,
                           cwd=REPO, env=clean_env())
    assert usage.returncode == 2
    assert usage.stderr == "usage: python -m bpjax.traces {generate} [overrides] (--help for each)\n"
    typo = subprocess.run([sys.executable, "-m", "bpjax.data", "generat"], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=clean_env())
    assert typo.returncode == 2
    assert typo.stderr == "unknown command 'generat'; usage: python -m bpjax.data {generate} [overrides] (--help for each)\n"
    old = help_of("bpjax.imitate")
    assert old.returncode == 0 and old.stdout.startswith("python -m bpjax.imitation: ")


def test_remove_if_empty_keeps_results_and_prunes_empty_parents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = tmp_path / "outputs" / "day" / "done"
    (done / ".hydra").mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    failed = tmp_path / "outputs" / "other-day" / "failed"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (failed / "train.log").write_text("")
    assert not remove_if_empty(done) and (done / "metrics.json").exists()
    assert remove_if_empty(failed)
    assert not (tmp_path / "outputs" / "other-day").exists() and (tmp_path / "outputs" / "day").exists()


def test_progress_shows_long_phases_only_and_can_be_off(monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "QUIET_S", 0.05)
    monkeypatch.setattr(progress_module, "PIPE_EVERY_S", 0.05)
    counted = iter(range(10**6))
    shown, quiet, off = io.StringIO(), io.StringIO(), io.StringIO()
    with caplog.at_level(logging.INFO, logger="bpjax.progress"):
        with Progress(True, shown).phase("solve", lambda: next(counted), "states"):
            time.sleep(0.3)
        with Progress(True, quiet).phase("quick"):
            pass
        with Progress(False, off).phase("silent"):
            time.sleep(0.3)
    lines = shown.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("solve: ") for line in lines)
    assert " states, " in lines[0] and lines[-1].startswith("solve: done in ")
    assert quiet.getvalue() == "" and off.getvalue() == ""
    timings = [r.getMessage() for r in caplog.records]
    assert [t.split(":")[0] for t in timings] == ["solve", "quick", "silent"]  # the job log has them all


@pytest.mark.parametrize("after_s", [0.0, 0.1, 1.0], ids=["at-once", "mid-import", "mid-search"])
def test_ctrl_c_is_one_line_and_leaves_no_empty_folder(tmp_path, after_s):
    """SIGINT while the work runs (at once, inside the work's first imports, or in a long exact search):
    `interrupted (Ctrl-C) after N s`, exit 130, no traceback, and the folder it had written nothing into is
    gone."""
    import signal

    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "bpjax.solve", "kitchen/orders=twelve_burgers",
                                f"hydra.run.dir={out}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, env=clean_env(), preexec_fn=ctrl_c_default)
    first = process.stderr.readline()  # printed once the settings passed, as the work starts
    assert first.startswith("output folder:"), first
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted (Ctrl-C) after ")
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_after_a_checkpoint_names_the_folder_that_keeps_it(tmp_path):
    """SIGINT once a training run has written its first checkpoint: the interrupted line, then the output folder
    (kept, with what was written), exit 130; a checkpoint every update, so the Ctrl-C often lands in a save,
    which is written whole before the interrupt is taken (orbax would log a traceback and drop it)."""
    import signal

    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "bpjax.train", "algo.n_updates=100000", "chunk=1",
                                "solver_max_states=0", f"hydra.run.dir={out}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO, env=clean_env(), preexec_fn=ctrl_c_default)
    deadline = time.monotonic() + 240
    while not any((out / "checkpoints").glob("*/")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-2:]
    assert last[0].startswith("interrupted (Ctrl-C) after ") and last[1] == f"output folder: {out}", last
    assert any((out / "checkpoints").glob("*/"))


@pytest.mark.parametrize("group, text, says", [
    ("scenario", "# @package kitchen\nscenario:\n  name: x\n  workers: [chef, server\n",
     r"^ConfigError: .*/kitchen/scenario/mine\.yaml, line 5: not YAML \(while parsing a flow sequence from line 4, "),
    ("scenario", "scenario:\n  name: x\n  workers: [chef, server]\n",
     r"^ConfigError: kitchen/scenario/mine\.yaml, kitchen\.scenario\.scenario: .*; a kitchen file starts with "
     r"`# @package kitchen`"),
    ("scenario", "# @package kitchen\nscenario:\n  name: x\n  workers: [chef, server]\n  handof: 2\n",
     r"^ConfigError: kitchen/scenario/mine\.yaml, (kitchen\.scenario\.)?handof: Key 'handof' not in \S+$"),
    ("scenario", "# @package kitchen\nscenario:\n  name: x\n  workers: [chef, server]\nmax_ticks: many\n",
     r"^ConfigError: kitchen/scenario/mine\.yaml, kitchen\.max_ticks: Value 'many' .*(int|Integer)$"),
    ("orders", "orders:\n  - {dish: burger, arrival: 0}\n",
     r"^ConfigError: kitchen/orders/mine\.yaml: kitchen\.orders is a list; a kitchen file starts with "
     r"`# @package kitchen` and writes each of its orders as `- \.\.\.`"),
    ("scenario", "# @package kitchen\nscenario:\n  name: x\n  workers: chef\n",
     r"^ConfigError: kitchen/scenario/mine\.yaml, kitchen\.scenario\.workers: expected a list \(\[a, b, \.\.\.\]\), "
     r"got a single value$"),
], ids=["not-yaml", "no-package-header", "misspelt-key", "wrong-type", "orders-not-a-list", "workers-not-a-list"])
def test_a_broken_kitchen_file_is_one_line(tmp_path, group, text, says):
    """A file of one's own kitchen (--config-dir) that is not YAML, lacks its package header, misspells a key or
    holds a value of the wrong type: one line naming the file (and the key), exit 2, no traceback, no output
    folder; the header hint only where the header is what is missing."""
    (tmp_path / "conf" / "kitchen" / group).mkdir(parents=True)
    (tmp_path / "conf" / "kitchen" / group / "mine.yaml").write_text(text)
    result = subprocess.run([sys.executable, "-m", "bpjax.solve", "--config-dir", str(tmp_path / "conf"),
                             f"kitchen/{group}=mine", f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True,
                            text=True, timeout=120, cwd=REPO, env=clean_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(says, lines[0]), lines
    assert not (tmp_path / "run").exists()


def test_a_group_given_settings_is_one_line(tmp_path):
    """`population=[{kind: a}]` gives the group settings, not an option's name: Hydra fails on it with a bare
    TypeError; the command says what the group takes, exit 2, no traceback, no output folder."""
    result = subprocess.run([sys.executable, "-m", "bpjax.data", "generate", "population=[{kind:a}]",
                             f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120,
                            cwd=REPO, env=clean_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    options = "|".join(sorted(p.stem for p in (CONF / "population").glob("*.yaml")))
    assert result.stderr.strip().splitlines() == [
        f"ConfigError: population: a config group takes an option's name (population={options}), not settings; "
        "set one entry's with population.0.<key>=..., or add your own option file with --config-dir"]
    assert not (tmp_path / "run").exists()
