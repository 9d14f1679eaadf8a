"""Resuming a training run: a process killed (SIGKILL) while it writes metrics.csv or commits a checkpoint
resumes to exactly the parameters and metrics of an uninterrupted run; resuming with other settings is refused
in one line naming them; n_updates may grow (training continues to it) but not shrink."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from bpjax.env.config import ConfigError
from bpjax.env.kitchen import make_kitchen
from bpjax.train.loop import METRICS_FILE, RUN_FILE, check_resume, train
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]
ALGO = {"name": "ppo", "n_updates": 6, "n_envs": 16, "n_steps": 16}
SEEDS = [3]

# Trains ALGO in the folder argv[1] and kills itself with SIGKILL inside the second write of argv[2]:
# "metrics" (half-way through the rows of metrics.csv's new version) or "checkpoint" (with the checkpoint's
# data written, just before Orbax commits it by renaming its temporary folder).
DRIVER = textwrap.dedent("""
    import csv, json, os, signal, sys
    from pathlib import Path

    out, where = Path(sys.argv[1]), sys.argv[2]
    calls = {"n": 0}

    def die_on_second_call():
        calls["n"] += 1
        return calls["n"] == 2

    if where == "metrics":
        original = csv.DictWriter.writerows

        def writerows(self, rows):
            rows = list(rows)
            if die_on_second_call():
                original(self, rows[: len(rows) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, rows)

        csv.DictWriter.writerows = writerows
    else:
        from orbax.checkpoint._src.path import async_path

        original = async_path.rename

        async def rename(src, dst):
            if Path(str(dst)).name == "4":  # the second checkpoint (chunks of 2 updates)
                os.kill(os.getpid(), signal.SIGKILL)
            return await original(src, dst)

        async_path.rename = rename

    from bpjax.config import compose_config
    from bpjax.env.config import KitchenSpec
    from bpjax.env.kitchen import make_kitchen
    from bpjax.train.loop import train

    spec = KitchenSpec.from_dict(compose_config([]).kitchen)
    env, params = make_kitchen(spec)
    train(env, params, json.loads(sys.argv[3]), json.loads(sys.argv[4]), chunk=2, out_dir=out,
          kitchen=spec.to_dict())
    print("not killed")
""")


@pytest.fixture(scope="module")
def kitchen():
    spec = spec_for()
    return spec, *make_kitchen(spec)


@pytest.fixture(scope="module")
def whole(kitchen, tmp_path_factory):
    """The uninterrupted run, for comparison."""
    spec, env, params = kitchen
    out = tmp_path_factory.mktemp("whole")
    return out, train(env, params, ALGO, SEEDS, chunk=2, out_dir=out, kitchen=spec.to_dict())


def assert_same_run(a, b) -> None:
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a.states.params,
                 b.states.params)
    np.testing.assert_array_equal(jax.random.key_data(a.states.key), jax.random.key_data(b.states.key))


def metric_updates(path: Path) -> list[int]:
    with path.open(newline="") as f:
        return [int(row["update"]) for row in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["metrics", "checkpoint"])
def test_a_run_killed_while_writing_resumes_to_the_uninterrupted_result(kitchen, whole, tmp_path, where):
    spec, env, params = kitchen
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", DRIVER, str(out), where, json.dumps(ALGO), json.dumps(SEEDS)],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert killed.returncode == -9, killed.stderr[-2000:]
    # what the kill left: a whole metrics.csv of the chunks before, never half a file
    assert metric_updates(out / METRICS_FILE) == ([1, 2] if where == "metrics" else [1, 2, 3, 4])
    committed = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert committed == [2]  # the checkpoint being committed at the kill is not one
    resumed = train(env, params, ALGO, SEEDS, chunk=2, out_dir=out, resume=True, kitchen=spec.to_dict())
    assert resumed.resumed_from == 2 and resumed.updates_done == ALGO["n_updates"]
    whole_dir, whole_run = whole
    assert_same_run(resumed, whole_run)
    assert (out / METRICS_FILE).read_text() == (whole_dir / METRICS_FILE).read_text()


def test_check_resume_names_what_differs_and_lets_n_updates_grow_only(tmp_path):
    """The resume check alone (no training): one line naming each differing key, at most four of them;
    n_updates may grow but not shrink."""
    saved = {"algo": {"name": "ppo", "learning_rate": 0.001, "hidden": [64, 64]}, "seeds": [3],
             "kitchen": {"handoff": 1}, "n_updates": 6}
    check_resume(saved, {**saved, "n_updates": 9}, tmp_path)
    changed = {**saved, "seeds": [4], "kitchen": {"handoff": 2},
               "algo": {**saved["algo"], "learning_rate": 0.01, "hidden": [32]}}
    with pytest.raises(ConfigError) as error:
        check_resume(saved, changed, tmp_path)
    assert str(error.value) == (f"resume: {tmp_path} was trained with other settings (algo.hidden [64, 64] -> [32]; "
                                "algo.learning_rate 0.001 -> 0.01; kitchen.handoff 1 -> 2; seeds [3] -> [4]); "
                                "resume with its settings or train in a new folder")
    with pytest.raises(ConfigError, match=r"\(algo\.name \"ppo\" -> \"reinforce\"\)"):
        check_resume(saved, {**saved, "algo": {"name": "reinforce"}}, tmp_path)
    with pytest.raises(ConfigError, match=r"^algo\.n_updates: 5 is fewer than the 6 this run was set to train"):
        check_resume(saved, {**saved, "n_updates": 5}, tmp_path)


@pytest.mark.slow
def test_resume_with_other_settings_is_refused_naming_them(kitchen, whole, tmp_path):
    spec, env, params = kitchen
    out = tmp_path / "run"
    train(env, params, {**ALGO, "n_updates": 2}, SEEDS, chunk=2, out_dir=out, kitchen=spec.to_dict())
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    changes = {
        "seeds": dict(algo=ALGO, seeds=[4], kitchen=spec.to_dict()),
        "algo.learning_rate": dict(algo={**ALGO, "learning_rate": 0.01}, seeds=SEEDS, kitchen=spec.to_dict()),
        "algo.hidden": dict(algo={**ALGO, "hidden": [32]}, seeds=SEEDS, kitchen=spec.to_dict()),
        "algo.name": dict(algo={"name": "reinforce", "n_updates": 6}, seeds=SEEDS, kitchen=spec.to_dict()),
        "kitchen.handoff": dict(algo=ALGO, seeds=SEEDS, kitchen={**spec.to_dict(), "handoff": 2}),
    }
    for key, change in changes.items():
        with pytest.raises(ConfigError, match=rf"^resume: {out} was trained with other settings \({key} ") as error:
            train(env, params, change["algo"], change["seeds"], chunk=2, out_dir=out, resume=True,
                  kitchen=change["kitchen"])
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"^algo\.n_updates: 1 is fewer than the 2 this run was set to train"):
        train(env, params, {**ALGO, "n_updates": 1}, SEEDS, chunk=2, out_dir=out, resume=True,
              kitchen=spec.to_dict())
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # refusals change nothing


@pytest.mark.slow
def test_a_damaged_run_folder_is_one_line_and_resumes_once_mended(kitchen, whole, tmp_path):
    """An unreadable run.json, or a checkpoint with files missing: one ConfigError naming the file or the
    checkpoint (Orbax's own error was a traceback); without the damaged checkpoint the run resumes from the
    one before and ends as the uninterrupted run."""
    import shutil

    spec, env, params = kitchen
    out = tmp_path / "run"
    train(env, params, {**ALGO, "n_updates": 4}, SEEDS, chunk=2, out_dir=out, kitchen=spec.to_dict())
    record = (out / RUN_FILE).read_text()
    (out / RUN_FILE).write_text("{broken")
    with pytest.raises(ConfigError, match=rf"^resume: {out / RUN_FILE} cannot be read \(Expecting"):
        train(env, params, ALGO, SEEDS, chunk=2, out_dir=out, resume=True, kitchen=spec.to_dict())
    (out / RUN_FILE).write_text(record)
    for part in (out / "checkpoints" / "4").iterdir():   # the newest checkpoint loses its contents
        if part.is_dir():
            shutil.rmtree(part)
    with pytest.raises(ConfigError, match=rf"^resume: checkpoint {out / 'checkpoints' / '4'} cannot be restored "
                                          r"\(.+\); without that folder the run resumes from its checkpoint before$"):
        train(env, params, ALGO, SEEDS, chunk=2, out_dir=out, resume=True, kitchen=spec.to_dict())
    shutil.rmtree(out / "checkpoints" / "4")
    assert_same_run(train(env, params, ALGO, SEEDS, chunk=2, out_dir=out, resume=True, kitchen=spec.to_dict()),
                    whole[1])


@pytest.mark.slow
def test_n_updates_may_grow_on_resume(kitchen, whole, tmp_path):
    """A finished 2-update run resumed with n_updates=6 continues to 6: the same result as 6 in one go, and
    run.json now says 6."""
    spec, env, params = kitchen
    out = tmp_path / "run"
    train(env, params, {**ALGO, "n_updates": 2}, SEEDS, chunk=2, out_dir=out, kitchen=spec.to_dict())
    grown = train(env, params, ALGO, SEEDS, chunk=2, out_dir=out, resume=True, kitchen=spec.to_dict())
    assert grown.resumed_from == 2 and grown.updates_done == 6
    assert_same_run(grown, whole[1])
    assert json.loads((out / RUN_FILE).read_text())["n_updates"] == 6


@pytest.mark.slow
def test_the_train_command_refuses_a_changed_resume_in_one_line(tmp_path):
    common = [sys.executable, "-m", "bpjax.train", f"hydra.run.dir={tmp_path}", "algo.n_envs=16",
              "algo.n_steps=16", "chunk=2", "progress=false"]
    first = subprocess.run([*common, "algo.n_updates=2"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run([*common, "algo.n_updates=4", "resume=true", "seed=1"], capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert again.returncode == 2 and "Traceback" not in again.stderr   # refused with the settings, before any work
    assert again.stderr.splitlines() == [f"ConfigError: resume: {tmp_path} was trained with other settings (seeds "
                                         "[0] -> [1]); resume with its settings or train in a new folder"], again.stderr
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "checkpoints" / "2").is_dir()  # all kept
    assert os.path.getsize(tmp_path / METRICS_FILE) > 0
