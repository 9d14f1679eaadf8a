"""Trainee-policy learning: every method beats chance, reproduces a planted flaw and the trainee's score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpjax.agents.ppo import PPOConfig
from bpjax.data import read_traces, write_traces
from bpjax.data.players import generate_population
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from bpjax.imitation import make_policy
from bpjax.imitation.evaluate import held_out_accuracy, occupancy_distance, play_rounds, state_action_pairs
from tests.conftest import spec_for

REPO = Path(__file__).resolve().parents[1]
GAIL_SEEDS = (0, 1)   # GAIL against BC: a statement over seeds, not one draw
CHEF_PLATES = [{"kind": "chef_plates", "base": "greedy", "flaws": [["chef", "plate"]], "flaw_rate": 0.9,
                "epsilon": 0.05}]


@pytest.fixture(scope="module")
def trainee(tmp_path_factory):
    """20 players with one planted flaw (the chef plates), 4 rounds each; the last 5 players held out."""
    spec = spec_for()
    frame, _ = generate_population(spec, CHEF_PLATES, n_players=20, rounds=4, seed=1)
    traces = read_traces(write_traces(frame, tmp_path_factory.mktemp("t") / "t.parquet"))
    test = traces.frame["player_id"].isin([f"p{i:04d}" for i in range(15, 20)]).to_numpy()
    env, env_params = make_kitchen(spec)
    return spec, traces, test, np.asarray(env.obs_scale(env_params))


def chef_plate_share(spec, obs_rows_actions) -> float:
    """Share of plate assignments that go to the chef, from (observation, action) decisions."""
    n_slots = spec.n_slots
    plates = [a for a in obs_rows_actions if a < spec.end_tick_action
              and spec.task_types[spec.slot_subtask(a % n_slots).task_type] == "plate"]
    return float(np.mean([a // n_slots == 0 for a in plates]))


@pytest.mark.parametrize("method", ["forest", *(pytest.param(m, marks=pytest.mark.slow) for m in ("boosting", "bc"))])
def test_learned_trainee_reproduces_accuracy_flaw_and_score(trainee, method):
    spec, traces, test, scale = trainee
    env, env_params = make_kitchen(spec)
    policy = make_policy(method, env, env_params, seed=0).fit(traces.obs[~test], traces.mask[~test], traces.action[~test])
    accuracy = held_out_accuracy(policy, traces.obs[test], traces.mask[test], traces.action[test])
    uniform = float((1.0 / traces.mask[test].sum(axis=1)).mean())
    assert accuracy > uniform + 0.3, (accuracy, uniform)

    ticks, pairs = play_rounds(policy, ReferenceKitchen(spec.to_dict()), 200, seed=0)
    trainee_ticks = traces.rounds["ticks"].mean()
    assert abs(ticks.mean() - trainee_ticks) <= 1.0, (ticks.mean(), trainee_ticks)
    # the planted flaw: the share of platings done by the chef, learned vs trainee, within 0.1
    learned_share = chef_plate_share(spec, [a for _, a in pairs])
    trainee_share = chef_plate_share(spec, traces.action.tolist())
    assert abs(learned_share - trainee_share) <= 0.1, (learned_share, trainee_share)


def test_behaviour_cloning_loss_falls(trainee):
    spec, traces, test, scale = trainee
    env, env_params = make_kitchen(spec)
    policy = make_policy("bc", env, env_params, epochs=10).fit(traces.obs, traces.mask, traces.action)
    losses = np.asarray(policy.losses)
    assert losses[-1] < 0.7 * losses[0]


def test_probs_never_put_mass_on_illegal_actions(trainee):
    spec, traces, test, scale = trainee
    env, env_params = make_kitchen(spec)
    for method in ("forest", "bc"):
        policy = make_policy(method, env, env_params).fit(traces.obs[~test], traces.mask[~test], traces.action[~test])
        probs = policy.probs(traces.obs[test], traces.mask[test])
        assert np.all(probs[~traces.mask[test]] == 0) and np.allclose(probs.sum(axis=1), 1)


@pytest.mark.slow
def test_imitate_cli(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "bpjax.imitate", "method=forest", "n_players=8", "rounds=2",
                         "eval_rounds=20", "skip_invalid=true", f"hydra.run.dir={tmp_path}"], capture_output=True,
                        text=True, timeout=300, cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "note: without traces the rounds are generated (valid by construction); not used: skip_invalid=true" \
        in ok.stderr
    metrics = pd.read_json(tmp_path / "metrics.json", typ="series")
    assert metrics["held_out_accuracy"] > metrics["uniform_accuracy"]
    assert 0 < metrics["occupancy_tv_floor"] < 1
    bad = subprocess.run([sys.executable, "-m", "bpjax.imitate", "method=telepathy", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert bad.returncode != 0 and "method: 'telepathy' is not a trainee-policy learner" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "bpjax.imitation", "algo=gail", "algo.temperature=2",
                              f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip() == "ConfigError: algo.temperature: Key 'temperature' not in 'GailLearnerSchema'"


def test_gail_discriminator_loss_falls_on_a_fixed_batch(trainee):
    """Trainee decisions vs uniformly random legal decisions at the same states: the discriminator learns to
    tell them apart (its cross-entropy drops well below log 4 = chance)."""
    import jax
    import jax.numpy as jnp
    import optax

    from bpjax.agents.networks import MLP
    from bpjax.imitation.gail import discriminator_features, discriminator_loss

    _, traces, _, scale = trainee
    rng = np.random.default_rng(0)
    random_actions = np.array([rng.choice(np.flatnonzero(m)) for m in traces.mask])
    obs = jnp.asarray(traces.obs / scale)
    expert = discriminator_features(obs, jnp.asarray(traces.action), traces.mask.shape[1])
    generated = discriminator_features(obs, jnp.asarray(random_actions), traces.mask.shape[1])
    disc = MLP((64, 64), 1, out_scale=1.0)
    params = disc.init(jax.random.key(0), expert[:1])
    optimizer = optax.adam(1e-3)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(discriminator_loss)(params, disc, expert, generated)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state, losses = optimizer.init(params), []
    for _ in range(200):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    assert losses[0] > 1.2 and losses[-1] < 0.6 * losses[0]


@pytest.mark.slow
def test_gail_matches_the_trainees_round_length_and_is_no_further_than_bc(trainee):
    """The default GAIL (BC warm start and regulariser, absorbing state, logit reward) on the chef-plates
    trainees, for two seeds: legal, far better than chance, the trainees' mean ticks within 1, the planted
    flaw's frequency within 0.1, and a state-action occupancy about as close to the held-out trainees' as BC's
    of the same seed or closer (TV within 0.03 on each seed), and closer on average over the seeds."""
    spec, traces, test, _ = trainee
    env, env_params = make_kitchen(spec)
    train = traces.obs[~test], traces.mask[~test], traces.action[~test]
    ref = ReferenceKitchen(spec.to_dict())
    trainee_ticks = traces.rounds["ticks"].mean()  # one kind of player: every round estimates its ticks
    trainee_pairs = state_action_pairs(traces.obs[test], traces.action[test])
    distances = []
    for seed in GAIL_SEEDS:
        gail = make_policy("gail", env, env_params, seed=seed, n_iterations=60).fit(*train)
        bc = make_policy("bc", env, env_params, seed=seed).fit(*train)
        probs = gail.probs(traces.obs[test], traces.mask[test])
        assert np.all(probs[~traces.mask[test]] == 0)
        accuracy = held_out_accuracy(gail, traces.obs[test], traces.mask[test], traces.action[test])
        assert accuracy > float((1.0 / traces.mask[test].sum(axis=1)).mean()) + 0.3, (seed, accuracy)
        assert np.isfinite(gail.history["disc_loss"]).all() and gail.history["finite"].all()
        ticks, gail_pairs = play_rounds(gail, ref, 200, seed=seed)
        _, bc_pairs = play_rounds(bc, ref, 200, seed=seed)
        assert abs(ticks.mean() - trainee_ticks) <= 1.0, (seed, ticks.mean(), trainee_ticks)
        learned_share = chef_plate_share(spec, [a for _, a in gail_pairs])
        assert abs(learned_share - chef_plate_share(spec, traces.action.tolist())) <= 0.1, (seed, learned_share)
        distances.append((occupancy_distance(gail_pairs, trainee_pairs), occupancy_distance(bc_pairs, trainee_pairs)))
    gail_tv, bc_tv = np.asarray(distances).T
    assert np.all(gail_tv <= bc_tv + 0.03) and gail_tv.mean() < bc_tv.mean(), distances


def test_gail_rejects_an_absorbing_state_without_discounting(trainee):
    spec = trainee[0]
    env, env_params = make_kitchen(spec)
    with pytest.raises(ValueError, match="absorbing: needs ppo.gamma < 1"):
        make_policy("gail", env, env_params, ppo=PPOConfig(gamma=1.0))
    with pytest.raises(ValueError, match="reward: expected one of"):
        make_policy("gail", env, env_params, reward="wasserstein")


@pytest.mark.slow
def test_imitate_cli_on_a_bad_trace_file_stops_or_skips(tmp_path):
    """A corrupted round stops the run with one TraceError line; skip_invalid=true drops and reports it."""
    spec = spec_for()
    frame, truth = generate_population(spec, CHEF_PLATES, n_players=6, rounds=2, seed=2)
    row = int(frame.index[(frame["episode_id"] == "p0001-r1") & (frame["slot"] >= 0)][0])
    frame.loc[row, "worker"] = "pastry_chef"
    path = write_traces(frame, tmp_path / "bad.csv")
    (tmp_path / "players.json").write_text(pd.Series(truth).to_json(orient="values"))
    base = [sys.executable, "-m", "bpjax.imitate", f"traces={path}", "eval_rounds=10"]
    stopped = subprocess.run(base + [f"hydra.run.dir={tmp_path / 'a'}"], capture_output=True, text=True,
                             timeout=300, cwd=REPO)
    assert stopped.returncode != 0 and "Traceback" not in stopped.stderr
    line = row + 2   # a CSV's rows are numbered by file line (the header is line 1)
    assert f"TraceError: {path}, row {line}: unknown worker 'pastry_chef'" in stopped.stderr
    skipped = subprocess.run(base + ["skip_invalid=true", "n_players=3", f"hydra.run.dir={tmp_path / 'b'}"],
                             capture_output=True, text=True, timeout=300, cwd=REPO)
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert f"note: traces={path}: the players and rounds are the traces'; not used: n_players=3" in skipped.stderr
    other = subprocess.run(base + ["skip_invalid=true", "kitchen/scenario=understaffed",
                                   f"hydra.run.dir={tmp_path / 'c'}"],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
    assert other.returncode == 2 and other.stderr.strip().splitlines() == [
        "ConfigError: traces: their kitchen is not the one kitchen/scenario=understaffed describes; the traces' own "
        "kitchen is used, so drop the kitchen settings"]
    assert f"rejected episode p0001-r1: {path}, row {line}: unknown worker" in skipped.stdout


@pytest.mark.parametrize("players, says", [
    (None, "kind: 1 player(s) to imitate; held-out metrics need one player to fit on and another to hold out"),
    ({"players": []}, "players: {path} holds a dict, not a list of players"),
    ([{"player_id": "p0000"}], "players: {path}, entry 0: expected an object with a string 'kind', got "
                               '{{"player_id": "p0000"}}'),
    ([{"player_id": "p0000", "kind": 5}], "players: {path}, entry 0: expected an object with a string 'kind'"),
])
def test_players_to_imitate_are_checked_before_any_fit(tmp_path, players, says):
    """A players.json of the wrong shape, or a kind with one player (nothing left to hold out), is one line
    naming the setting before any fitting."""
    from bpjax.config import compose_config
    from bpjax.config.cli import BadSettings, settings_of
    from bpjax.imitation.__main__ import validate

    population = [{**CHEF_PLATES[0], "share": 1}, {"kind": "greedy", "base": "greedy", "share": 2}]
    frame, truth = generate_population(spec_for(), population, 3, 1, 0)   # one chef_plates, two greedy
    assert [t["kind"] for t in truth].count("chef_plates") == 1
    traces = write_traces(frame, tmp_path / "traces.csv")
    path = tmp_path / "players.json"
    path.write_text(json.dumps(truth if players is None else players))
    kind = "chef_plates" if players is None else "greedy"
    cfg = compose_config([f"traces={traces}", f"players={path}", f"kind={kind}"], config_name="imitate")
    with pytest.raises(BadSettings) as refused:
        settings_of(cfg, validate)
    assert str(refused.value).startswith(f"ConfigError: {says.format(path=path)}"), str(refused.value)


def test_one_generated_player_is_refused():
    from bpjax.config import compose_config
    from bpjax.config.cli import BadSettings, settings_of
    from bpjax.imitation.__main__ import validate

    with pytest.raises(BadSettings, match="^ConfigError: n_players: 1 player"):
        settings_of(compose_config(["n_players=1"], config_name="imitate"), validate)


def test_a_forest_fit_on_few_decisions_warns_nothing():
    """Actions are classes by design: scikit-learn's advice that many classes look like regression, once per
    fit (hundreds of lines in a small pipeline run), is not shown."""
    import warnings

    from bpjax.imitation.policies import ForestPolicy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ForestPolicy(n_estimators=2).fit(np.random.default_rng(0).random((4, 3)), np.ones((4, 5), bool),
                                         np.arange(4))
    assert [str(w.message) for w in caught] == []
