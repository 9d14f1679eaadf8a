"""Sweeps and clusters: config groups compose under the typed schema, bad overrides fail clearly, a 2x2 sweep
runs through the submitit launcher (one job preempted and resumed from its checkpoint) and aggregates, and
training sharded over 4 host devices matches unsharded training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, compose_config, random_skill_matrix
from bpjax.config.schema import register
from bpjax.env.config import KitchenSpec
from bpjax.imitation.methods import check_method
from bpjax.train.loop import algorithm_config

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(CONF_DIR)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def env_with_root() -> dict[str, str]:
    """Subprocesses (and the launcher's jobs) import this checkout's bpjax and hydra_plugins."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


# ---- composition ---------------------------------------------------------------------------------

TRAIN_KITCHENS = [f"kitchen/{g}={o}" for g in ("skills", "orders", "scenario") for o in options(f"kitchen/{g}")]


@pytest.mark.parametrize("override", TRAIN_KITCHENS)
def test_every_kitchen_option_composes_into_the_typed_train_config(override):
    partner = {"kitchen/scenario=practice": ["kitchen/skills=uniform"]}.get(override, [])
    cfg = compose_config([override, *partner], config_name="train")
    assert OmegaConf.get_type(cfg).__name__ == "TrainSchema"
    KitchenSpec.from_dict(cfg.kitchen)


@pytest.mark.parametrize("option", [o for o in options("algo") if o in ("ppo", "reinforce", "reinforce_paper")])
def test_every_training_algorithm_composes_typed_and_builds(option):
    cfg = compose_config([f"algo={option}"], config_name="train")
    assert OmegaConf.get_type(cfg.algo).__name__.endswith("ConfigSchema")
    name, config, n_updates = algorithm_config(OmegaConf.to_container(cfg.algo))
    assert name == cfg.algo.name and n_updates == cfg.algo.n_updates and config.learning_rate > 0


def test_imitation_algorithms_are_rejected_by_train_and_drive_imitate_and_pipeline():
    for option in ("forest", "boosting", "bc", "gail"):
        cfg = compose_config([f"algo={option}"], config_name="train")
        with pytest.raises(ValueError, match=rf"^algo\.name: '{option}' is not a training algorithm \(known: ppo, "
                                             r"reinforce, .* python -m bpjax\.imitation\)$"):
            algorithm_config(OmegaConf.to_container(cfg.algo))
        assert compose_config([f"algo={option}"], config_name="imitate").method == option
        assert compose_config([f"algo={option}"], config_name="pipeline").imitation == option
    assert compose_config(["method=bc"], config_name="imitate").method == "bc"  # the older spelling still works
    for option in ("ppo", "reinforce_fast"):  # and the other way round, naming the setting the user gave
        for config_name in ("imitate", "pipeline"):
            with pytest.raises(ValueError, match=rf"^algo: '\w+' is not a trainee-policy learner \(known: forest, "
                                                 r"boosting, bc, gail; .*python -m bpjax\.train\)$"):
                check_method(compose_config([f"algo={option}"], config_name=config_name).algo.name)


def test_tips_group_sets_the_ranking_and_rule_lists():
    settings = {o: compose_config([f"tips={o}"], config_name="pipeline").tips for o in options("tips")}
    assert set(settings) == {"algorithm", "baseline", "brl"}
    assert {o: (s.rank_by, s.rule_lists) for o, s in settings.items()} == {
        "algorithm": ("algorithm", False), "baseline": ("baseline", False), "brl": ("algorithm", True)}
    assert compose_config([], config_name="pipeline").tips.rule_lists  # the default report is unchanged
    assert all(s.simulate == 10 for s in settings.values())  # the pipeline's shared tip settings still apply


@pytest.mark.parametrize("launcher", options("hydra/launcher"))
def test_launchers_take_their_resources_from_cluster(launcher):
    register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=HYDRA_VERSION_BASE):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}", "cluster.partition=gpu",
                                          "cluster.gpus_per_node=4", "cluster.timeout_min=30"],
                      return_hydra_config=True)
    node = cfg.hydra.launcher
    assert node._target_.startswith("hydra_plugins.bpjax_launcher.launcher.Resuming")
    assert node.timeout_min == 30
    if launcher == "slurm":
        assert (node.partition, node.gpus_per_node, node.max_num_timeout) == ("gpu", 4, cfg.cluster.max_requeues)


def test_random_skill_family_is_seeded_valid_and_varied():
    matrices = [OmegaConf.to_container(compose_config(["kitchen/skills=random", f"skills_seed={s}"],
                                                      config_name="train").kitchen, resolve=True)["skills"]
                for s in range(6)]
    assert len({json.dumps(m) for m in matrices}) == 6
    assert matrices[2] == random_skill_matrix(2, ["chef", "sous_chef", "server"], ["chop", "cook", "plate"])
    for scenario in ("full", "understaffed", "practice"):  # every task type has a worker, every worker a task
        kitchen = OmegaConf.to_container(compose_config(["kitchen/skills=random", f"kitchen/scenario={scenario}",
                                                         "skills_seed=7"]).kitchen, resolve=True)
        workers = kitchen["scenario"]["workers"]
        assert kitchen["skills"] == random_skill_matrix(7, workers, kitchen["task_types"])
        for seed in range(200):
            KitchenSpec.from_dict({**kitchen, "skills": random_skill_matrix(seed, workers, kitchen["task_types"])})


# ---- bad overrides -------------------------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("n_seeds=abc", r"Value 'abc' of type 'str' could not be converted to Integer\s+full_key: n_seeds"),
    ("algo.learning_rat=1", r"Key 'learning_rat' not in 'PPOConfigSchema'"),
    ("algo.learning_rate=fast", r"could not be converted to Float\s+full_key: algo.learning_rate"),
    ("kitchen.handoff=x", r"full_key: kitchen.handoff"),
    ("cluster.gpus=2", r"Key 'gpus' not in 'ClusterSchema'"),
    ("algo=reinforce algo.clip=0.1", r"Key 'clip' not in 'ReinforceConfigSchema'"),
])
def test_bad_override_is_an_error_naming_the_field(override, message):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(override.split(), config_name="train")
    import re

    text = f"{error.value}\n{error.value.__cause__}"
    assert re.search(message, text), text


def test_train_cli_reports_a_bad_override_before_compiling(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.train", "n_seeds=abc", f"hydra.run.dir={tmp_path}"],
                            capture_output=True, text=True, env=env_with_root(), timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip() == ("ConfigError: n_seeds: Value 'abc' of type 'str' could not be converted "
                                     "to Integer"), result.stderr  # one line, naming the key
    assert not (tmp_path / "checkpoints").exists()


def test_requeued_job_gets_resume_true():
    from hydra_plugins.bpjax_launcher.launcher import ResumingLocalLauncher, resume_overrides

    assert resume_overrides(["algo=ppo", "resume=false", "seed=1"]) == ["algo=ppo", "seed=1", "resume=true"]
    launcher = ResumingLocalLauncher(submitit_folder="x")
    launcher.config = OmegaConf.create({"resume": False})
    delayed = launcher.checkpoint(["algo=ppo"], "hydra.sweep.dir", 0, "job_id_for_0", {})
    assert delayed.function is launcher and delayed.args[0] == ["algo=ppo", "resume=true"]
    assert delayed.args[1:] == ("hydra.sweep.dir", 0, "job_id_for_0", {})


# ---- the 2x2 sweep through submitit, one job preempted --------------------------------------------

def _task_process(root_pid: int, job_id: str):
    import psutil

    for process in psutil.Process(root_pid).children(recursive=True):
        try:
            if process.environ().get("SUBMITIT_LOCAL_JOB_ID") == job_id and "_submit" in " ".join(process.cmdline()):
                return process
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
def test_local_submitit_sweep_resumes_a_preempted_job_and_aggregates(tmp_path):
    """2 skill matrices x 2 algorithms, 2 vmapped seeds per job, 12 updates each (seconds of training). Job 0
    gets submitit's preemption signal (USR2) after its first checkpoint: it is requeued with resume=true and
    continues from that checkpoint in its own folder. Then the sweep aggregates into one table."""
    sweep, n_updates = tmp_path / "sweep", 12
    command = [sys.executable, "-m", "bpjax.train", "-m", "hydra/launcher=local", f"hydra.sweep.dir={sweep}",
               "kitchen/skills=paper,uniform", "algo=ppo,reinforce", f"algo.n_updates={n_updates}", "chunk=1",
               "n_seeds=2"]
    sweep_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env_with_root(), cwd=tmp_path)
    job = sweep / "0"
    deadline = time.monotonic() + 400
    while not [p for p in (job / "checkpoints").glob("*") if p.name.isdigit()]:  # a finalised checkpoint
        assert sweep_process.poll() is None and time.monotonic() < deadline, sweep_process.communicate()[0]
        time.sleep(0.05)
    job_id = str(OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.job.id)
    task = _task_process(sweep_process.pid, job_id)
    assert task is not None, f"no running task of job {job_id}"
    task.send_signal(signal.SIGUSR2)
    output, _ = sweep_process.communicate(timeout=400)
    assert sweep_process.returncode == 0, output

    metrics = {int(d.name): json.loads((d / "metrics.json").read_text()) for d in sweep.iterdir() if d.name.isdigit()}
    assert sorted(metrics) == [0, 1, 2, 3]
    combos = {(m["config"]["algo"]["name"], tuple(o for o in m["overrides"] if o.startswith("kitchen/skills")))
              for m in metrics.values()}
    assert combos == {(a, (f"kitchen/skills={s}",)) for a in ("ppo", "reinforce") for s in ("paper", "uniform")}
    assert metrics[0]["resumed_from"] is not None and 1 <= metrics[0]["resumed_from"] <= n_updates
    history = (job / "metrics.csv").read_text().splitlines()[1:]
    assert sorted((int(r.split(",")[0]), int(r.split(",")[1])) for r in history) == [
        (u, s) for u in range(1, n_updates + 1) for s in (0, 1)]  # continued, not restarted or repeated

    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(sweep)],
                            capture_output=True, text=True, env=env_with_root(), timeout=120)
    assert result.returncode == 0, result.stderr
    import pandas as pd

    table = pd.read_csv(sweep / "sweep.csv")
    assert len(table) == 4 and {"kitchen/skills", "algo", "greedy_ticks_median", "optimal_ticks", "gap",
                                "reached_optimum", "wall_s"} <= set(table.columns)
    for _, row in table.iterrows():
        m = metrics[int(row["job"])]
        assert (row["algo"], row["optimal_ticks"], row["greedy_ticks_median"]) == (
            m["config"]["algo"]["name"], m["optimal_ticks"], m["greedy_ticks_median"])
    assert (sweep / "sweep.md").read_text().count("\n") == 6 and (sweep / "ticks.png").stat().st_size > 0


def test_aggregate_rejects_a_folder_without_runs(tmp_path):
    (tmp_path / "0").mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path)],
                            capture_output=True, text=True, env=env_with_root(), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"SweepError: {tmp_path}: no runs (no job folder with "
                                                  "metrics.json, tips.json or study.json); pass the sweep's folder, e.g. "
                                                  "multirun/<date>/<time>"]
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path / "nothing")],
                             capture_output=True, text=True, env=env_with_root(), timeout=60)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [f"SweepError: {tmp_path / 'nothing'}: no such folder; pass the "
                                                   "sweep's folder, e.g. multirun/<date>/<time>"]


# ---- multi-device ---------------------------------------------------------------------------------

SHARDED_SCRIPT = textwrap.dedent("""
    import json, jax, numpy as np
    from bpjax.config import compose_config
    from bpjax.env.config import KitchenSpec
    from bpjax.env.kitchen import make_kitchen
    from bpjax.train.loop import env_mesh, train

    env, params = make_kitchen(KitchenSpec.from_dict(compose_config([]).kitchen))
    report = {"devices": jax.device_count(), "mesh_for_6_envs": env_mesh(6).devices.size}
    for algo in [dict(name="ppo", n_updates=2, n_envs=8, n_steps=8, n_epochs=1, n_minibatches=2),
                 dict(name="reinforce", n_updates=2, n_rollouts=8)]:
        runs = {shard: train(env, params, algo, [0, 1], chunk=2, shard_envs=shard) for shard in (False, True)}
        leaves = {shard: jax.tree.leaves(run.states.params) for shard, run in runs.items()}
        report[algo["name"]] = {
            "max_abs_diff": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                                for a, b in zip(leaves[False], leaves[True])),
            "ticks": [runs[s].history["mean_ticks"].ravel().tolist() for s in (False, True)]}
        if algo["name"] == "ppo":
            report["ppo_env_devices"] = [len(runs[s].states.env_state.tick.sharding.device_set) for s in (False, True)]

    # a population: its 2 kitchens x 2 seeds = 4 runs split over the 4 devices, whole runs each
    from bpjax.env.population import make_population
    specs = [KitchenSpec.from_dict(compose_config(["kitchen/skills=random", f"skills_seed={k}",
                                                   "kitchen/orders=one_burger"]).kitchen) for k in (0, 1)]
    env, params = make_population(specs)
    algo = dict(name="ppo", n_updates=2, n_envs=8, n_steps=8, n_epochs=1, n_minibatches=2)
    runs = {shard: train(env, params, algo, [0, 1], chunk=2, shard_envs=shard, kitchens=[0, 1], greedy=True)
            for shard in (False, True)}
    leaves = {shard: jax.tree.leaves(run.states.params) for shard, run in runs.items()}
    report["population"] = {
        "max_abs_diff": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                            for a, b in zip(leaves[False], leaves[True])),
        "ticks": [runs[s].history["mean_ticks"].ravel().tolist() for s in (False, True)],
        "greedy": [runs[s].greedy_ticks for s in (False, True)],
        "run_devices": [len(runs[s].states.env_state.tick.sharding.device_set) for s in (False, True)]}
    print(json.dumps(report))
""")


@pytest.mark.slow
def test_sharded_training_matches_unsharded_on_4_host_devices():
    env = {**env_with_root(), "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip(), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4 and report["mesh_for_6_envs"] == 3  # the most devices dividing the batch
    assert report["ppo_env_devices"] == [1, 4]  # the envs really were split over the 4 devices
    assert report["population"]["run_devices"] == [1, 4]  # a population's runs were split, not its envs
    for name in ("ppo", "reinforce", "population"):
        assert report[name]["max_abs_diff"] < 1e-5, report[name]
        assert report[name]["ticks"][0] == pytest.approx(report[name]["ticks"][1], abs=1e-4)
    assert report["population"]["greedy"][0] == report["population"]["greedy"][1]


def test_aggregate_measures_tip_ranking_stability_across_seeds(tmp_path):
    """Pipeline job folders (tips.json + Hydra's overrides) over 3 seeds × 2 tip rankings: the table has a
    row per job and the stability table the share of seeds agreeing on the top tip, per ranking."""
    rankings = {("algorithm", 0): ["A", "B", "C"], ("algorithm", 1): ["A", "C", "B"], ("algorithm", 2): ["A", "B"],
                ("baseline", 0): ["B", "A"], ("baseline", 1): ["C", "A"], ("baseline", 2): ["B", "C"]}
    for number, ((tips, seed), ranked) in enumerate(rankings.items()):
        job = tmp_path / str(number)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n- tips={tips}\n")
        (job / "tips.json").write_text(json.dumps({"recommended": [
            {"rank": i + 1, "text": t, "score": 3.0 - i, "simulated_gain": 1.0} for i, t in enumerate(ranked)]}))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path)],
                            capture_output=True, text=True, env=env_with_root(), timeout=120)
    assert result.returncode == 0, result.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table.columns[:3]) == ["job", "seed", "tips"] and len(table) == 6
    assert list(table["top_tip"]) == [r[0] for r in rankings.values()]
    stability = pd.read_csv(tmp_path / "tip_stability.csv").set_index("tips")
    assert stability.loc["algorithm", "top_tip_agreement"] == 1.0
    assert stability.loc["baseline", "modal_top_tip"] == "B"
    assert stability.loc["baseline", "top_tip_agreement"] == pytest.approx(2 / 3)
    assert (tmp_path / "tip_ranks.png").stat().st_size > 0


def test_aggregate_reads_study_runs(tmp_path):
    """Study job folders (study.json): one row per job with each arm's last-round ticks and suboptimal share."""
    for number, seed in enumerate((0, 1)):
        job = tmp_path / str(number)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
        arms = {arm: {"by_round": [{"round": 1, "ticks": 20.0 + i, "suboptimal_rate": 0.1 * i},
                                   {"round": 2, "ticks": 19.0 + i + seed, "suboptimal_rate": 0.05 * i}]}
                for i, arm in enumerate(("control", "static", "personalised", "dynamic"))}
        (job / "study.json").write_text(json.dumps({"arms": arms}))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path)],
                            capture_output=True, text=True, env=env_with_root(), timeout=120)
    assert result.returncode == 0, result.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table["kind"]) == ["study", "study"] and list(table["seed"]) == [0, 1]
    assert list(table["static_ticks"]) == [20.0, 21.0] and list(table["dynamic_suboptimal"]) == pytest.approx([0.15] * 2)


def test_aggregate_plots_train_runs_that_skipped_the_solver(tmp_path):
    """solver_max_states=0 leaves optimal_ticks null in every run: the table drops that column, and the plot
    shows the lower bound in its place instead of failing on it."""
    for seed in (0, 1):
        job = tmp_path / str(seed)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n- solver_max_states=0\n")
        (job / "metrics.json").write_text(json.dumps({
            "algo": "ppo", "seeds": [seed], "greedy_ticks": [50 - seed], "greedy_ticks_median": 50.0 - seed,
            "greedy_ticks_best": 50 - seed, "optimal_ticks": None, "lower_bound_ticks": 12}))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path)],
                            capture_output=True, text=True, env=env_with_root(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "optimal_ticks" not in (tmp_path / "sweep.csv").read_text().splitlines()[0]
    assert (tmp_path / "ticks.png").stat().st_size > 0
