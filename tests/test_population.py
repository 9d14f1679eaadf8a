"""Populations of kitchens of one shape: one program for all, vmapped over their params; the training CLI's
``n_kitchens``; the sweep table's row per kitchen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from bpjax.config import compose_config
from bpjax.env.config import ConfigError
from bpjax.env.kitchen import make_kitchen, sample_legal_action
from bpjax.env.population import make_population
from bpjax.train.__main__ import validate
from bpjax.train.loop import train
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]


def random_specs(n: int, *overrides: str):
    return [spec_for("kitchen/skills=random", f"skills_seed={s}", *overrides) for s in range(n)]


def test_kitchens_of_one_shape_share_one_program_and_step_as_each_alone():
    """Random skill matrices and arrival times differ only in params: the stacked population steps every
    kitchen exactly as its own env does (same random legal actions)."""
    specs = random_specs(3) + [spec_for("kitchen/orders=arrivals")]
    env, params = make_population(specs)
    assert all(make_kitchen(spec)[0] == env for spec in specs)

    def play(kitchen_params, key):
        def body(state, key):
            action = sample_legal_action(env, jax.random.uniform(key), env.legal_slots(state, kitchen_params))
            state, reward, terminated, truncated, _ = env.step_env(None, state, action, kitchen_params)
            return state, (action, reward, terminated)
        return jax.lax.scan(body, env.reset_env(None, kitchen_params), jax.random.split(key, 40))[1]

    together = jax.jit(jax.vmap(play, in_axes=(0, None)))(params, jax.random.key(0))
    for index, spec in enumerate(specs):
        alone = jax.jit(play)(make_kitchen(spec)[1], jax.random.key(0))
        for a, b in zip(together, alone):
            np.testing.assert_array_equal(np.asarray(a[index]), np.asarray(b))
    assert len(set(np.asarray(together[1]).sum(axis=1).tolist())) > 1  # the kitchens really differ


def test_a_population_of_two_shapes_is_refused_naming_the_kitchen():
    with pytest.raises(ConfigError, match=r"^kitchens\[1\]: shape 3 workers, 3 orders x 4 slots"):
        make_population([spec_for(), spec_for("kitchen/orders=pasta_mix")])


@pytest.mark.slow
def test_population_training_equals_each_kitchen_trained_alone():
    """Kitchens x seeds in one call: every run follows its own kitchen, as if trained alone (up to float
    reduction order: the same mean ticks, parameters within 1e-4)."""
    specs = random_specs(2, "kitchen/orders=one_burger")
    env, params = make_population(specs)
    algo = {"name": "ppo", "n_updates": 3, "n_envs": 16, "n_steps": 16}
    together = train(env, params, algo, seeds=[0, 1], chunk=3, kitchens=[0, 1])
    assert together.runs == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for k, spec in enumerate(specs):
        alone_env, alone_params = make_kitchen(spec)
        alone = train(alone_env, alone_params, algo, seeds=[0, 1], chunk=3)
        for a, b in zip(jax.tree.leaves(alone.states.params), jax.tree.leaves(together.states.params)):
            np.testing.assert_allclose(np.asarray(b)[2 * k:2 * k + 2], np.asarray(a), atol=1e-4)
        np.testing.assert_allclose(together.history["mean_ticks"][2 * k:2 * k + 2], alone.history["mean_ticks"],
                                   rtol=1e-5)


def test_n_kitchens_needs_kitchens_that_differ():
    cfg = compose_config(["n_kitchens=2"], "train")
    with pytest.raises(ConfigError, match=r"^n_kitchens: 2 kitchens asked for, but the kitchen does not change"):
        validate(cfg)
    settings = validate(compose_config(["n_kitchens=3", "kitchen/skills=random", "skills_seed=5"], "train"))
    assert [s for s, _ in settings.kitchens] == [5, 6, 7]
    assert len({spec.workers for _, spec in settings.kitchens}) == 3


@pytest.mark.slow
def test_train_cli_trains_a_population_and_the_sweep_table_lists_each_kitchen(tmp_path):
    job = tmp_path / "sweep" / "0"
    result = subprocess.run([sys.executable, "-m", "bpjax.train", f"hydra.run.dir={job}", "kitchen/skills=random",
                             "kitchen/orders=one_burger", "n_kitchens=3", "n_seeds=2", "algo.n_updates=4",
                             "algo.n_envs=16", "algo.n_steps=16", "chunk=2", "progress=false", "cpu_devices=2"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((job / "metrics.json").read_text())
    assert [k["skills_seed"] for k in metrics["kitchens"]] == [0, 1, 2]
    for kitchen in metrics["kitchens"]:
        assert len(kitchen["greedy_ticks"]) == 2 and kitchen["optimal_ticks"] is not None
        assert kitchen["lower_bound_ticks"] <= kitchen["optimal_ticks"] <= min(kitchen["greedy_ticks"])
        assert set(kitchen["skills"]) == {"chef", "sous_chef", "server"}
    assert metrics["greedy_ticks"] == [t for k in metrics["kitchens"] for t in k["greedy_ticks"]]
    assert metrics["env_steps"] == 3 * 2 * 4 * 16 * 16  # kitchens x seeds x updates x envs x steps
    assert metrics["devices"] == 2  # cpu_devices=2: the 6 runs split over two CPU devices
    header = (job / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["update", "kitchen", "seed"]

    table = subprocess.run([sys.executable, str(REPO / "scripts" / "aggregate.py"), str(tmp_path / "sweep")],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
    assert table.returncode == 0, table.stderr
    import pandas as pd

    frame = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert frame["skills_seed"].tolist() == [0, 1, 2]
    assert frame["optimal_ticks"].tolist() == [k["optimal_ticks"] for k in metrics["kitchens"]]


def test_cpu_devices_must_be_set_before_jax_starts():
    """cpu_devices=1 leaves JAX alone; another count once this process has run JAX is one line naming it."""
    from bpjax.train.__main__ import split_cpu

    jax.numpy.zeros(1).block_until_ready()  # JAX has started in this process
    split_cpu(1)
    with pytest.raises(ConfigError, match=r"^cpu_devices: JAX has already started in this process"):
        split_cpu(2)
