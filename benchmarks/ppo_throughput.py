"""PPO's training throughput and where its time goes, against the env alone, in one run.

For the default PPO (``conf/algo/ppo.yaml``) on the paper's full kitchen, each piece of one update is
compiled on its own and timed: the env alone (the rollout's ``n_envs`` × ``n_steps`` env steps with
uniformly random legal actions, observations built and consumed), the rollout's forward passes alone (the
actor-critic on the same batch, ``n_steps`` times), the whole rollout (forward passes, sampling, env steps,
the transitions), the learning step (GAE and ``n_epochs`` × ``n_minibatches`` clipped updates) and the
whole update (``run`` over a chunk of updates, divided by its length). The training loop
(``bpjax.train.loop.train``, no output folder) is timed per chunk through its callback: what it takes
beyond the compiled chunk is its host work between chunks.

With ``--before REV``, the same pieces of PPO as it was at git revision REV (``bpjax/agents/ppo.py`` of
that revision with its own defaults, on this tree's env and networks) are timed side by side: in each
round every program runs once, alternating, and the after/before ratio is the median over rounds of the
per-round ratios, so the shared machine's load drifts cancel.

    PYTHONPATH=. python benchmarks/ppo_throughput.py --before REV --json ppo_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from bpjax.agents import ppo as ppo_now
from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen, sample_legal_action
from bpjax.train.loop import algorithm_config, train

REPO = Path(__file__).resolve().parents[1]


def load_ppo_at(rev: str) -> types.ModuleType:
    """`bpjax/agents/ppo.py` as it was at git revision `rev`, importable beside the current one."""
    source = subprocess.run(["git", "show", f"{rev}:bpjax/agents/ppo.py"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout
    module = types.ModuleType("ppo_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:bpjax/agents/ppo.py", "exec"), module.__dict__)
    return module


def programs(module, config, env, env_params, chunk: int) -> dict:
    """Name -> (compiled function, args, env steps per call) for every piece of one PPO version."""
    parts = module.make_ppo_parts(env, env_params, config)
    state = parts.init(jax.random.key(0))
    collect, learn = jax.jit(parts.collect), jax.jit(parts.learn)
    collected, traj = collect(state)
    _, _, run = module.make_ppo(env, env_params, config)
    run_chunk = jax.jit(run, static_argnums=1)
    n_envs, n_steps = config.n_envs, config.n_steps
    network = parts.network

    def forward_only(params, features):
        def body(carry, _):  # the carry keeps XLA from hoisting the forward pass out of the loop
            logits, value = network.apply(params, features + carry)
            return carry + 1e-9 * (logits.mean() + value.mean()), None
        return jax.lax.scan(body, jnp.float32(0), None, n_steps)[0]

    step = jax.vmap(env.step, in_axes=(None, 0, 0, None))
    legal_slots = jax.vmap(env.legal_slots, in_axes=(0, None))
    pick = jax.vmap(lambda u, legal: sample_legal_action(env, u, legal))

    def env_alone(key, env_state):
        def body(carry, key):
            env_state, checksum = carry
            action = pick(jax.random.uniform(key, (n_envs,)), legal_slots(env_state, env_params))
            obs, env_state, reward, _, _, _ = step(None, env_state, action, env_params)
            return (env_state, checksum + reward + obs.features.sum(axis=1)), None
        return jax.lax.scan(body, (env_state, jnp.zeros(n_envs)), jax.random.split(key, n_steps))[0]

    batch = n_envs * n_steps
    return {"env alone": (jax.jit(env_alone), (jax.random.key(1), state.env_state), batch),
            "rollout forward passes": (jax.jit(forward_only), (state.params, state.last_obs.features), batch),
            "rollout": (collect, (state,), batch),
            "learning step": (learn, (collected, traj, traj.reward), batch),
            "update": (lambda s: run_chunk(s, chunk), (state,), batch * chunk)}


def time_rounds(table: dict[str, dict], rounds: int) -> dict[str, dict[str, list[float]]]:
    """version -> piece -> seconds per round; every program of every version once per round, the versions
    taking turns to go first."""
    for version in table.values():
        for fn, args, _ in version.values():
            jax.block_until_ready(fn(*args))  # compiled and warm
    times = {v: {p: [] for p in pieces} for v, pieces in table.items()}
    for round_ in range(rounds):
        for piece in next(iter(table.values())):
            order = list(table) if round_ % 2 == 0 else list(table)[::-1]  # neither version always goes first
            for version in order:
                fn, args, _ = table[version][piece]
                start = time.perf_counter()
                jax.block_until_ready(fn(*args))
                times[version][piece].append(time.perf_counter() - start)
    return times


def loop_overhead(env, env_params, algo: dict, chunk: int, n_chunks: int) -> dict:
    """The training loop's seconds per chunk (callback to callback, after the first chunk, which compiles)
    beside the compiled chunk alone: the difference is the loop's host work between chunks."""
    stamps = []
    algo = {**algo, "n_updates": chunk * (n_chunks + 1)}
    run = train(env, env_params, algo, seeds=[0], chunk=chunk, on_chunk=lambda *_: stamps.append(time.perf_counter()))
    per_chunk = float(np.median(np.diff(stamps)))
    _, config, _ = algorithm_config(algo)
    _, _, run_fn = ppo_now.make_ppo(env, env_params, config)
    run_all = jax.jit(jax.vmap(run_fn, in_axes=(0, None)), static_argnums=1)
    states = run.states
    jax.block_until_ready(run_all(states, chunk))
    alone = []
    for _ in range(n_chunks):
        start = time.perf_counter()
        states, _ = run_all(states, chunk)
        jax.block_until_ready(states)
        alone.append(time.perf_counter() - start)
    compiled = float(np.median(alone))
    return {"chunk": chunk, "loop_s_per_chunk": per_chunk, "compiled_chunk_s": compiled,
            "host_s_per_chunk": per_chunk - compiled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--before", help="git revision whose bpjax/agents/ppo.py (and defaults) to time beside")
    parser.add_argument("--chunk", type=int, default=5, help="updates per timed call of the whole update")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--loop-chunk", type=int, default=25)
    parser.add_argument("--loop-chunks", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()

    spec = KitchenSpec.from_dict(compose_config([f"kitchen/scenario={args.scenario}"]).kitchen)
    env, env_params = make_kitchen(spec)
    algo = OmegaConf.to_container(compose_config(["algo=ppo"], config_name="train").algo)
    _, config, _ = algorithm_config(algo)
    load_before = [round(x, 2) for x in os.getloadavg()]
    table = {"after": programs(ppo_now, config, env, env_params, args.chunk)}
    versions = {"after": {k: v for k, v in algo.items() if k not in ("name",)}}
    if args.before:
        before = load_ppo_at(args.before)
        table["before"] = programs(before, before.PPOConfig(), env, env_params, args.chunk)
        versions["before"] = {"rev": args.before, **vars(before.PPOConfig())}
    times = time_rounds(table, args.rounds)

    results = {"machine": {"platform": platform.platform(), "jax": jax.__version__, "devices": len(jax.devices()),
                           "load_before": load_before},
               "scenario": args.scenario, "rounds": args.rounds, "versions": versions, "pieces": {}}
    for version, pieces in table.items():
        out = results["pieces"][version] = {}
        update_s = statistics.median(times[version]["update"]) / args.chunk
        for piece, (_, _, steps) in pieces.items():
            seconds = statistics.median(times[version][piece])
            per_update = seconds / args.chunk if piece == "update" else seconds
            out[piece] = {"ms_per_update": per_update * 1e3, "env_steps_per_s": steps / seconds,
                          "share_of_update": per_update / update_s}
    if args.before:
        results["after_over_before_time"] = {
            piece: statistics.median(a / b for a, b in zip(times["after"][piece], times["before"][piece]))
            for piece in times["after"]}
    results["loop"] = loop_overhead(env, env_params, algo, args.loop_chunk, args.loop_chunks)
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]

    for version, pieces in results["pieces"].items():
        print(f"{version}: {versions[version]}")
        for piece, r in pieces.items():
            ratio = results.get("after_over_before_time", {}).get(piece)
            ratio = f"  after/before time {ratio:.2f}" if ratio is not None and version == "after" else ""
            print(f"  {piece:<24} {r['ms_per_update']:7.2f} ms per update ({r['share_of_update']:4.0%})  "
                  f"{r['env_steps_per_s'] / 1e3:9.1f} k env steps/s{ratio}")
    loop = results["loop"]
    print(f"training loop: {loop['loop_s_per_chunk']:.3f} s per chunk of {loop['chunk']} vs "
          f"{loop['compiled_chunk_s']:.3f} s compiled alone (host work {loop['host_s_per_chunk']:+.3f} s)")
    print(f"load average {results['machine']['load_before']} before, {results['machine']['load_after']} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
