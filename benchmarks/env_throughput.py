"""Environment steps per second: the jitted, vmapped JAX kitchen under lax.scan vs the pure-Python reference.

Both play uniformly random legal actions with auto-reset on the same kitchen, measured in one run. Modes:
``obs`` builds the observation every step and consumes its (scaled) features, as a learner would; ``state``
steps without building it (the step itself). The random numbers come from threefry (``jax.random``) or, to
time the env rather than the sampler, a per-env xorshift carried in the scan; both are reported. The headline
``ratio_vs_reference`` compares like with like: the state-only step with threefry against the reference's
state-only rate (``ratio_vs_reference_at_4096`` has every mode).

With ``--before REV`` the env of git revision REV (its ``bpjax/env`` modules, imported beside this tree's;
``benchmarks/revision.py``) plays the same kitchen in the same process: for every mode and batch, each round
runs one call of each version, alternating which goes first, and ``after_over_before_time`` is the median
over rounds of the per-round time ratios (below 1: this tree is faster), so the shared machine's load drifts
cancel. ``--hlo`` adds each version's compiled step size (instructions of the optimised HLO), with the
kitchen's numbers as constants and as an argument.

    python benchmarks/env_throughput.py --json env_throughput.json [--host-devices 2]
    python benchmarks/env_throughput.py --before REV --batches 4096 --repeats 31 --hlo
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,16,256,4096,16384,65536")
    parser.add_argument("--steps", type=int, default=200, help="scan length per timed call")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per point (median reported); with --before, paired rounds per point")
    parser.add_argument("--reference-seconds", type=float, default=3.0)
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--host-devices", type=int, default=1,
                        help="split the batch over this many XLA CPU devices (shard_map)")
    parser.add_argument("--before", metavar="REV",
                        help="also time the env of git revision REV, alternating with this tree's in each round")
    parser.add_argument("--hlo", action="store_true",
                        help="also count the instructions of each version's compiled step (batch 4,096)")
    parser.add_argument("--json", help="write results here")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.host_devices > 1:  # must be set before JAX initialises its backend
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={ARGS.host_devices}")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from bpjax.config import compose_config  # noqa: E402
from bpjax.env import config as config_now  # noqa: E402
from bpjax.env import kitchen as kitchen_now  # noqa: E402
from bpjax.env.config import KitchenSpec  # noqa: E402
from bpjax.env.reference import ReferenceKitchen  # noqa: E402
from revision import commit_of, import_at  # noqa: E402  (benchmarks/ is on the path: this script's folder)


HEADLINE = {"mode": "state", "rng": "threefry", "batch": 4096}


def _xorshift(x: jax.Array) -> jax.Array:
    x = x ^ (x << 13)
    x = x ^ (x >> 17)
    return x ^ (x << 5)


@dataclass(frozen=True)
class EnvVersion:
    """One version of the env: its kitchen, params and random-legal-action sampler."""

    name: str
    env: Any
    params: Any
    sample: Callable  # (env, uniform, legal slots) -> action


def env_version(name: str, kitchen_module, config_module, kitchen: dict) -> EnvVersion:
    """The env of a `bpjax.env.kitchen` module (this tree's or a revision's) on the kitchen mapping."""
    spec = config_module.KitchenSpec.from_dict(kitchen)
    env, params = kitchen_module.make_kitchen(spec)
    return EnvVersion(name, env, params, kitchen_module.sample_legal_action)


def _features(obs) -> jax.Array:
    """The observation's features (revisions before Observation(features, action_mask) returned them bare)."""
    return obs.features if hasattr(obs, "features") else obs


def compile_run(version: EnvVersion, batch: int, n_steps: int, with_obs: bool, rng: str, devices: int):
    """(jitted call of `n_steps` steps of the batch, its first carry), compiled and warmed up."""
    env, params = version.env, version.params
    step = jax.vmap(env.step, in_axes=(None, 0, 0, None))
    legal_slots = jax.vmap(env.legal_slots, in_axes=(0, None))
    sample = jax.vmap(lambda u, legal: version.sample(env, u, legal))

    def one_step(carry, _):
        key, seeds, states, checksum = carry
        if rng == "xorshift":
            seeds = _xorshift(seeds)
            uniform = (seeds >> 8).astype(jnp.float32) * (1.0 / (1 << 24))
        else:
            key, draw = jax.random.split(key)
            uniform = jax.random.uniform(draw, seeds.shape)
        actions = sample(uniform, legal_slots(states, params))
        obs, states, reward, _, _, _ = step(None, states, actions, params)
        checksum = checksum + reward + (_features(obs).sum(axis=1) if with_obs else 0.0)
        return (key, seeds, states, checksum), None

    def run(carry):
        carry, _ = jax.lax.scan(one_step, carry, None, n_steps)
        return carry

    seeds = jnp.arange(1, batch + 1, dtype=jnp.uint32) * jnp.uint32(2654435761)
    states = jax.vmap(lambda _: env.reset_env(None, params))(jnp.arange(batch))
    keys = jax.random.split(jax.random.key(0), devices)
    carry = (keys, seeds, states, jnp.zeros(batch, jnp.float32))
    if devices > 1:
        mesh = Mesh(jax.devices()[:devices], ("envs",))
        spec = PartitionSpec("envs")
        run_all = jax.jit(jax.shard_map(lambda c: _with_key(run((c[0][0],) + c[1:])), mesh=mesh,
                                        in_specs=spec, out_specs=spec))
        carry = jax.device_put(carry, NamedSharding(mesh, spec))
    else:
        run_all = jax.jit(lambda c: _with_key(run((c[0][0],) + c[1:])))
    carry = run_all(carry)  # compile + warm up
    jax.block_until_ready(carry)
    return run_all, carry


def time_rounds(versions: list[EnvVersion], batch: int, n_steps: int, with_obs: bool, rng: str, rounds: int,
                devices: int) -> dict[str, list[float]]:
    """Version name -> seconds of each round's call. Every version's program runs once per round, the
    versions taking turns to go first, so the shared machine's load drifts hit them alike."""
    programs = {v.name: list(compile_run(v, batch, n_steps, with_obs, rng, devices)) for v in versions}
    times = {v.name: [] for v in versions}
    for round_ in range(rounds):
        order = versions if round_ % 2 == 0 else versions[::-1]
        for version in order:
            run_all, carry = programs[version.name]
            start = time.perf_counter()
            carry = run_all(carry)
            jax.block_until_ready(carry)
            times[version.name].append(time.perf_counter() - start)
            programs[version.name][1] = carry
    return times


def jax_steps_per_s(env, params, batch: int, n_steps: int, with_obs: bool, rng: str, repeats: int,
                    devices: int) -> float:
    """This tree's env alone: steps/s of the median of `repeats` calls."""
    version = EnvVersion("after", env, params, kitchen_now.sample_legal_action)
    times = time_rounds([version], batch, n_steps, with_obs, rng, repeats, devices)
    return batch * n_steps / statistics.median(times["after"])


def step_instructions(version: EnvVersion, with_obs: bool, batch: int, params_as_argument: bool) -> int:
    """Instructions of the optimised HLO (fusion bodies included) of one vmapped step with its random legal
    action, with the kitchen's numbers folded in as constants (as this benchmark and single-kitchen training
    compile them) or passed as an argument (as a population of kitchens does)."""
    env = version.env
    step = jax.vmap(env.step, in_axes=(None, 0, 0, None))
    legal_slots = jax.vmap(env.legal_slots, in_axes=(0, None))
    sample = jax.vmap(lambda u, legal: version.sample(env, u, legal))

    def one_step(states, uniform, params):
        obs, states, reward, _, _, _ = step(None, states, sample(uniform, legal_slots(states, params)), params)
        return states, reward + (_features(obs).sum(axis=1) if with_obs else 0.0)

    states = jax.vmap(lambda _: env.reset_env(None, version.params))(jnp.arange(batch))
    uniform = jnp.zeros(batch, jnp.float32)
    if params_as_argument:
        lowered = jax.jit(one_step).lower(states, uniform, version.params)
    else:
        lowered = jax.jit(lambda s, u: one_step(s, u, version.params)).lower(states, uniform)
    text = lowered.compile().as_text()
    return sum(1 for line in text.splitlines() if re.match(r"\s+(ROOT\s+)?%\S+ = ", line))


def _with_key(carry):
    """Give the scan's key back its leading device axis."""
    return (carry[0][None],) + carry[1:]


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


def main(args: argparse.Namespace) -> None:
    load_before = [round(x, 2) for x in os.getloadavg()]
    kitchen = compose_config([f"kitchen/scenario={args.scenario}"]).kitchen
    spec = KitchenSpec.from_dict(kitchen)
    after = env_version("after", kitchen_now, config_now, spec.to_dict())
    versions = [after]
    if args.before:
        before_kitchen = import_at(args.before, "bpjax.env.kitchen")
        before_config = import_at(args.before, "bpjax.env.config")
        versions.append(env_version("before", before_kitchen, before_config, spec.to_dict()))
    env = after.env
    ref = ReferenceKitchen(spec.to_dict())
    batches = [int(b) for b in args.batches.split(",")]
    devices = args.host_devices
    results = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "jax": jax.__version__,
                    "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                    "load_before": load_before},
        "scenario": args.scenario, "n_actions": env.n_actions, "obs_size": env.obs_size,
        "host_devices": devices, "steps_per_call": args.steps, "modes": {},
    }
    if args.before:
        results["before"] = {"rev": args.before, "commit": commit_of(args.before), "rounds": args.repeats}
    if args.hlo:
        results["hlo_instructions"] = {
            v.name: {f"{mode}, params {kind}": step_instructions(v, mode == "obs", 4096, kind == "argument")
                     for mode in ("obs", "state") for kind in ("constant", "argument")}
            for v in versions}
        for name, counts in results["hlo_instructions"].items():
            print(f"compiled step ({name}), HLO instructions: "
                  + "; ".join(f"{k}: {n:,}" for k, n in counts.items()))
    print(f"{'mode':<6} {'rng':<9} {'batch':>7} {'steps/s':>14} {'x ref':>7}"
          + (f" {'before steps/s':>15} {'after/before time':>18}" if args.before else ""))
    for mode in ("obs", "state"):
        reference_before = reference_steps_per_s(ref, mode == "obs", args.reference_seconds)
        print(f"{mode:<6} {'python':<9} {'ref':>7} {reference_before:14,.0f}")
        jax_rates, before_rates, ratios, rounds = {}, {}, {}, {}
        for rng in ("threefry", "xorshift"):
            jax_rates[rng], before_rates[rng], ratios[rng], rounds[rng] = {}, {}, {}, {}
            for batch in batches:
                if batch % devices:
                    continue
                # keep each timed call around the same number of env steps
                steps = max(10, args.steps * 4096 // batch) if batch > 4096 else args.steps
                times = time_rounds(versions, batch, steps, mode == "obs", rng, args.repeats, devices)
                rate = jax_rates[rng][batch] = batch * steps / statistics.median(times["after"])
                line = f"{mode:<6} {rng:<9} {batch:>7} {rate:14,.0f} {rate / reference_before:7.0f}"
                if args.before:
                    before_rates[rng][batch] = batch * steps / statistics.median(times["before"])
                    # the median of per-round ratios: each round's pair ran back to back
                    rounds[rng][batch] = [a / b for a, b in zip(times["after"], times["before"])]
                    ratios[rng][batch] = statistics.median(rounds[rng][batch])
                    line += f" {before_rates[rng][batch]:15,.0f} {ratios[rng][batch]:18.3f}"
                print(line)
        # The machine is shared: measure the reference again after the JAX runs and divide by the faster of
        # the two reference figures (the ratio is then conservative).
        reference_after = reference_steps_per_s(ref, mode == "obs", args.reference_seconds)
        reference = max(reference_before, reference_after)
        print(f"{mode:<6} {'python':<9} {'ref':>7} {reference_after:14,.0f} (after; ratios use {reference:,.0f})")
        results["modes"][mode] = {"reference_steps_per_s": reference,
                                  "reference_before_after": [reference_before, reference_after]}
        for rng, per_batch in jax_rates.items():
            results["modes"][mode][rng] = {
                "steps_per_s": per_batch,
                "ratio_vs_reference": {b: s / reference for b, s in per_batch.items()},
            }
            if args.before:
                results["modes"][mode][rng]["before_steps_per_s"] = before_rates[rng]
                results["modes"][mode][rng]["after_over_before_time"] = ratios[rng]
                results["modes"][mode][rng]["after_over_before_time_per_round"] = rounds[rng]
    # Headline: like with like. The reference's state-only rate against the JAX step without the observation,
    # with the standard RNG (threefry); every other mode is in results["modes"] and printed below.
    headline = results["modes"][HEADLINE["mode"]][HEADLINE["rng"]]
    results["headline"] = HEADLINE
    results["steps_per_s"] = headline["steps_per_s"]
    results["ratio_vs_reference"] = headline["ratio_vs_reference"].get(4096)
    results["ratio_vs_reference_at_4096"] = {
        f"{mode}/{rng}": results["modes"][mode][rng]["ratio_vs_reference"].get(4096)
        for mode in ("obs", "state") for rng in ("threefry", "xorshift")}
    print("ratio vs reference at batch 4096: "
          + ", ".join(f"{mode}/{rng} {results['modes'][mode][rng]['ratio_vs_reference'].get(4096, float('nan')):.0f}x"
                      for mode in ("obs", "state") for rng in ("threefry", "xorshift")))
    if args.before:
        results["after_over_before_time"] = {
            f"{mode}/{rng}": results["modes"][mode][rng]["after_over_before_time"]
            for mode in ("obs", "state") for rng in ("threefry", "xorshift")}
        print(f"after/before time (median of {args.repeats} paired rounds) vs {args.before}: "
              + "; ".join(f"{name} " + ", ".join(f"{r:.3f} @{b}" for b, r in per_batch.items())
                          for name, per_batch in results["after_over_before_time"].items()))
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {results['machine']['load_before']} before, {results['machine']['load_after']} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main(ARGS)
