"""Environment steps per second: the jitted, vmapped JAX kitchen under lax.scan vs the pure-Python reference.

Both play uniformly random legal actions with auto-reset on the same kitchen, measured in one run. Two modes:
``obs`` builds the observation every step and consumes it (as a learner would); ``state`` steps without it.

    python benchmarks/env_throughput.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

import jax
import jax.numpy as jnp

from bpjax.agents.baselines import sample_masked
from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen


def jax_steps_per_s(env, params, batch: int, n_steps: int, with_obs: bool, repeats: int) -> float:
    def one_step(carry, _):
        keys, states, checksum = carry
        keys, action_keys = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k))(keys), 1, 0)
        masks = jax.vmap(env.action_mask, in_axes=(0, None))(states, params)
        actions = jax.vmap(sample_masked)(action_keys, masks)
        obs, states, reward, _, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            action_keys, states, actions, params)
        checksum = checksum + reward.sum() + (obs.sum() if with_obs else 0.0)
        return (keys, states, checksum), None

    @jax.jit
    def run(keys, states):
        (keys, states, checksum), _ = jax.lax.scan(one_step, (keys, states, jnp.float32(0)), None, n_steps)
        return keys, states, checksum

    keys = jax.random.split(jax.random.key(0), batch)
    states = jax.vmap(lambda _: env.initial_state(params))(jnp.arange(batch))
    keys, states, checksum = run(keys, states)  # compile + warm up
    checksum.block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        keys, states, checksum = run(keys, states)
        checksum.block_until_ready()
        times.append(time.perf_counter() - start)
    return batch * n_steps / statistics.median(times)


def reference_steps_per_s(ref: ReferenceKitchen, with_obs: bool, seconds: float) -> float:
    rng = random.Random(0)
    state = ref.reset()
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            state, _, terminated, truncated, _ = ref.step(state, rng.choice(ref.legal_actions(state)))
            if terminated or truncated:
                state = ref.reset()
            if with_obs:
                ref.observation(state)
        steps += 1000
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,16,256,4096,16384,65536")
    parser.add_argument("--steps", type=int, default=200, help="scan length per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-seconds", type=float, default=3.0)
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()

    spec = KitchenSpec.from_dict(compose_config([f"kitchen/scenario={args.scenario}"]).kitchen)
    env, params = make_kitchen(spec)
    ref = ReferenceKitchen(spec.to_dict())
    batches = [int(b) for b in args.batches.split(",")]
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]},
               "scenario": args.scenario, "n_actions": env.n_actions, "modes": {}}
    print(f"{'mode':<6} {'batch':>7} {'steps/s':>14}")
    for mode in ("obs", "state"):
        reference = reference_steps_per_s(ref, mode == "obs", args.reference_seconds)
        print(f"{mode:<6} {'ref':>7} {reference:14,.0f}")
        per_batch = {}
        for batch in batches:
            steps = max(args.steps * min(batch, 4096) // max(batch, 1), 10) if batch > 4096 else args.steps
            per_batch[batch] = jax_steps_per_s(env, params, batch, steps, mode == "obs", args.repeats)
            print(f"{mode:<6} {batch:>7} {per_batch[batch]:14,.0f}")
        results["modes"][mode] = {
            "reference_steps_per_s": reference,
            "steps_per_s": per_batch,
            "ratio_vs_reference": {b: s / reference for b, s in per_batch.items()},
        }
    headline = results["modes"]["obs"]
    results["steps_per_s"] = headline["steps_per_s"]
    results["ratio_vs_reference"] = headline["ratio_vs_reference"].get(4096)
    print(f"ratio vs reference at batch 4096 (obs mode): {results['ratio_vs_reference']:.0f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
