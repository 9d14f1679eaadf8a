"""Training speed: bpjax vs a straightforward PyTorch (CPU) REINFORCE of the same recipe, same run.

The PyTorch side is what the study's appendix suggests: the pure-Python reference simulator stepped one
episode at a time, an MLP with masked logits, reward-to-go, the same normalisation, Adam, the same
hyper-parameters (``conf/algo/<recipe>.yaml``, default ``reinforce_fast``). bpjax runs the same recipe as
one compiled program per chunk of updates.

Protocol: each side trains seeds 0, 1, ... one after another from scratch; a seed evaluates the
deterministic greedy policy every ``--eval-every`` updates and stops at the exact optimum or after the
recipe's ``n_updates``. bpjax runs ``--seeds`` seeds; PyTorch runs seeds until ``--budget-s`` is spent. A
seed that stalls is given up for the next one, so the figure of merit is the **time per optimal policy
found**: all training time spent divided by the number of seeds that reached the optimum (the expected time
to an optimal policy with restarts). When no PyTorch seed reaches it, its whole time is a lower bound. bpjax's
compilation (once for all seeds) is reported separately and included in the "cold" figure. bpjax's PPO (its
default learner) is timed to the optimum for context.

    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu   # the ".[bench]" pin, CPU build
    python benchmarks/train_speed.py --json train_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

from bpjax.agents.common import make_greedy_evaluator
from bpjax.agents.ppo import make_ppo
from bpjax.agents.reinforce import make_reinforce
from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from bpjax.solve.solver import solve
from bpjax.train.loop import algorithm_config


def bpjax_runs(make, config, env, env_params, optimum, eval_every, max_updates, seeds):
    """(compile seconds, per seed {"reached", "updates", "seconds", "series"}): each seed trains until its greedy
    policy is optimal or `max_updates`; the programs are compiled once, before any seed's clock starts."""
    network, init, run = make(env, env_params, config)
    start = time.perf_counter()
    first = init(jax.random.key(seeds[0]))
    run_chunk = jax.jit(run, static_argnums=1).lower(first, eval_every).compile()
    evaluate = make_greedy_evaluator(env, env_params, network).lower(first.params).compile()
    compile_s = time.perf_counter() - start
    results = []
    for seed in seeds:
        start = time.perf_counter()
        state, series, updates, ticks = init(jax.random.key(seed)), [], 0, None
        while updates < max_updates and ticks != optimum:
            state, _ = run_chunk(state)
            updates += eval_every
            ticks = int(evaluate(state.params))
            series.append((time.perf_counter() - start, updates, ticks))
        results.append(_outcome(series, optimum))
    return compile_s, results


def _outcome(series, optimum) -> dict:
    seconds, updates, ticks = series[-1]
    return {"reached": ticks <= optimum, "updates": updates, "seconds": seconds,
            "best_greedy_ticks": min(g for _, _, g in series), "series": series}


def bpjax_seed_throughput(make, config, env, env_params, n_seeds: int, n_updates: int) -> float:
    """Seed-updates per second with `n_seeds` independent runs vmapped in one call (after compilation)."""
    _, init, run = make(env, env_params, config)
    run_all = jax.jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1)
    states = jax.vmap(init)(jax.random.split(jax.random.key(1), n_seeds))
    states, _ = run_all(states, n_updates)
    jax.block_until_ready(states)
    start = time.perf_counter()
    states, _ = run_all(states, n_updates)
    jax.block_until_ready(states)
    return n_seeds * n_updates / (time.perf_counter() - start)


def torch_run(ref: ReferenceKitchen, scale: np.ndarray, config, optimum, eval_every, max_updates, budget_s,
              seed: int) -> dict:
    """One seed of the PyTorch baseline until its greedy policy is optimal, `max_updates` or `budget_s`."""
    import torch

    torch.manual_seed(seed)
    layers, width = [], ref.obs_size
    for hidden in config.hidden:
        layers += [torch.nn.Linear(width, hidden), torch.nn.Tanh()]
        width = hidden
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, ref.n_actions))
    # the same initialisation as bpjax's MLP: orthogonal (gain √2; 0.01 for the logits), zero biases
    linear = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    for i, layer in enumerate(linear):
        torch.nn.init.orthogonal_(layer.weight, gain=0.01 if i == len(linear) - 1 else float(np.sqrt(2.0)))
        torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)

    def features(state):
        obs = torch.tensor(np.asarray(ref.observation(state), np.float32) / scale)
        return obs, torch.tensor(ref.action_mask(state))

    def greedy() -> int:
        state = ref.reset()
        with torch.no_grad():
            while not any(ref.is_over(state)):
                obs, mask = features(state)
                state = ref.step(state, int(torch.where(mask, net(obs), -1e9).argmax()))[0]
        return state.tick

    start, series, updates, steps = time.perf_counter(), [], 0, 0
    while updates < max_updates and time.perf_counter() - start < budget_s:
        log_probs, entropies, rewards = [], [], []
        for _ in range(config.n_rollouts):  # one episode at a time
            state, episode_log_p, episode_entropy, episode_rewards = ref.reset(), [], [], []
            while not any(ref.is_over(state)):
                obs, mask = features(state)
                dist = torch.distributions.Categorical(logits=torch.where(mask, net(obs), -1e9))
                action = dist.sample()
                state, reward, _, _, _ = ref.step(state, int(action))
                episode_log_p.append(dist.log_prob(action))
                episode_entropy.append(dist.entropy())
                episode_rewards.append(float(reward))
            steps += len(episode_rewards)
            log_probs.append(torch.stack(episode_log_p))
            entropies.append(torch.stack(episode_entropy))
            rewards.append(np.asarray(episode_rewards))
        weights = _weights(rewards, config)
        loss = -sum((torch.tensor(w, dtype=torch.float32) * lp).sum() for w, lp in zip(weights, log_probs))
        loss = loss / config.n_rollouts - config.entropy_coef * torch.cat(entropies).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        updates += 1
        if updates % eval_every == 0:
            ticks = greedy()
            series.append((time.perf_counter() - start, updates, ticks))
            if ticks <= optimum:
                break
    if not series or series[-1][1] != updates:  # stopped by the time budget between evaluations
        series.append((time.perf_counter() - start, updates, greedy()))
    return {**_outcome(series, optimum), "env_steps_per_s": steps / (time.perf_counter() - start)}


def _weights(rewards: list[np.ndarray], config) -> list[np.ndarray]:
    """Reward-to-go with the recipe's normalisation, per episode (γ = config.gamma)."""
    def to_go(r):
        out, carry = np.zeros_like(r), 0.0
        for t in range(len(r) - 1, -1, -1):
            carry = r[t] + config.gamma * carry
            out[t] = carry
        return out

    if config.normalise == "rewards":
        flat = np.concatenate(rewards)
        mean, std = flat.mean(), flat.std()
        return [to_go((r - mean) / (std + 1e-8)) for r in rewards]
    returns = [to_go(r) for r in rewards]
    flat = np.concatenate(returns)
    return [(g - flat.mean()) / (flat.std() + 1e-8) for g in returns]


def time_per_optimum(outcomes: list[dict], extra_s: float = 0.0) -> float | None:
    """All training seconds over the seeds (plus `extra_s`, e.g. compilation) per seed that reached the
    optimum; None when none did."""
    reached = sum(o["reached"] for o in outcomes)
    return (sum(o["seconds"] for o in outcomes) + extra_s) / reached if reached else None


def side_summary(outcomes: list[dict]) -> dict:
    updates, seconds = sum(o["updates"] for o in outcomes), sum(o["seconds"] for o in outcomes)
    return {"seeds": len(outcomes), "reached": sum(o["reached"] for o in outcomes),
            "updates_to_optimum": [o["updates"] if o["reached"] else None for o in outcomes],
            "seconds_to_optimum": [o["seconds"] if o["reached"] else None for o in outcomes],
            "best_greedy_ticks": [o["best_greedy_ticks"] for o in outcomes],
            "total_updates": updates, "total_seconds": seconds, "updates_per_s": updates / seconds,
            "time_per_optimum_s": time_per_optimum(outcomes), "per_seed": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--recipe", default="reinforce_fast", help="conf/algo/<recipe>.yaml (a REINFORCE config)")
    parser.add_argument("--seeds", type=int, default=16, help="bpjax seeds (run one after another)")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="PyTorch's total time: it runs seeds 0, 1, ... one after another until this is spent")
    parser.add_argument("--throughput-seeds", type=int, default=8, help="seeds vmapped for the throughput figure")
    parser.add_argument("--skip-ppo", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    cfg = compose_config([f"kitchen/scenario={args.scenario}", f"algo={args.recipe}"], config_name="train")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    env, env_params = make_kitchen(spec)
    optimum = solve(spec).optimal_ticks
    _, config, max_updates = algorithm_config(OmegaConf.to_container(cfg.algo))
    scale = np.asarray(env.obs_scale(env_params))
    seeds = list(range(args.seeds))

    compile_s, ours = bpjax_runs(make_reinforce, config, env, env_params, optimum, args.eval_every, max_updates,
                                 seeds)
    ref = ReferenceKitchen(spec.to_dict())
    theirs, spent = [], 0.0
    while spent < args.budget_s:  # the last seed may be cut short by the budget (counted as not reaching it)
        theirs.append(torch_run(ref, scale, config, optimum, args.eval_every, max_updates, args.budget_s - spent,
                                seed=len(theirs)))
        spent += theirs[-1]["seconds"]
    mine, other = side_summary(ours), side_summary(theirs)
    mine["compile_s"] = compile_s
    mine["time_per_optimum_cold_s"] = time_per_optimum(ours, compile_s)
    other["env_steps_per_s"] = float(np.mean([o["env_steps_per_s"] for o in theirs]))
    results = {"machine": {"platform": platform.platform(), "jax": jax.__version__},
               "scenario": args.scenario, "recipe": args.recipe, "recipe_settings": OmegaConf.to_container(cfg.algo),
               "optimal_ticks": optimum, "seeds": seeds, "eval_every": args.eval_every,
               "torch_budget_s": args.budget_s, "bpjax_reinforce": mine, "torch_reinforce": other}
    results["update_rate_ratio"] = mine["updates_per_s"] / other["updates_per_s"]
    warm, cold = mine["time_per_optimum_s"], mine["time_per_optimum_cold_s"]
    theirs_t = other["time_per_optimum_s"]
    # No optimum on the PyTorch side: its whole time is a lower bound on its time per optimum.
    results["torch_lower_bound"] = theirs_t is None
    theirs_t = theirs_t if theirs_t is not None else other["total_seconds"]
    results["speedup_vs_torch"] = theirs_t / cold if cold else None  # compilation included
    results["speedup_vs_torch_compiled"] = theirs_t / warm if warm else None  # compiled program reused

    seed_rate = bpjax_seed_throughput(make_reinforce, config, env, env_params, args.throughput_seeds, 50)
    mine[f"seed_updates_per_s_{args.throughput_seeds}_seeds"] = seed_rate
    results["seed_update_rate_ratio"] = seed_rate / other["updates_per_s"]
    if not args.skip_ppo:
        _, ppo_config, ppo_updates = algorithm_config(
            OmegaConf.to_container(compose_config(["algo=ppo"], config_name="train").algo))
        ppo_compile_s, ppo = bpjax_runs(make_ppo, ppo_config, env, env_params, optimum, 5, ppo_updates, [0])
        results["bpjax_ppo"] = {**side_summary(ppo), "compile_s": ppo_compile_s}

    bound = ">= " if results["torch_lower_bound"] else ""
    for name in ("bpjax_reinforce", "torch_reinforce"):
        r = results[name]
        print(f"{name:<16} optimum ({optimum}) reached by {r['reached']}/{r['seeds']} seeds; updates to it "
              f"{r['updates_to_optimum']}; {r['updates_per_s']:.1f} updates/s; time per optimum "
              f"{r['time_per_optimum_s']}")
    print(f"bpjax compile {compile_s:.1f} s; speedup (time per optimal policy, same recipe): {bound}"
          f"{results['speedup_vs_torch'] or float('nan'):.1f}x with compilation, {bound}"
          f"{results['speedup_vs_torch_compiled'] or float('nan'):.1f}x compiled; update rate "
          f"{results['update_rate_ratio']:.0f}x (1 seed), {results['seed_update_rate_ratio']:.0f}x "
          f"({args.throughput_seeds} seeds vmapped)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
