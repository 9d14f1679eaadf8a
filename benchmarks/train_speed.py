"""Training speed: bpjax vs a straightforward PyTorch (CPU) REINFORCE of the same recipe, same run.

The PyTorch side is what the study's appendix suggests: the pure-Python reference simulator stepped one
episode at a time, an MLP with masked logits, reward-to-go, the same normalisation, Adam, the same
hyper-parameters (``conf/algo/<recipe>.yaml``). bpjax runs the same recipe as one jitted scan per chunk.
Both evaluate the deterministic greedy policy every ``--eval-every`` updates and stop at the exact optimum or
at ``--budget-s`` seconds. bpjax's PPO (its default learner) is timed to the optimum for context.

    pip install torch==2.13.0      # benchmark-only (CPU build)
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


def bpjax_run(make, config, env, env_params, optimum, eval_every, budget_s, seed=0):
    """Time series [(seconds, updates, greedy ticks)] until the greedy policy is optimal or the budget ends."""
    network, init, run = make(env, env_params, config)
    run_chunk = jax.jit(run, static_argnums=1)
    evaluate = make_greedy_evaluator(env, env_params, network)
    start = time.perf_counter()
    state = init(jax.random.key(seed))
    series, updates = [], 0
    while time.perf_counter() - start < budget_s:
        state, _ = run_chunk(state, eval_every)
        updates += eval_every
        ticks = int(evaluate(state.params))
        series.append((time.perf_counter() - start, updates, ticks))
        if ticks <= optimum:
            break
    return series


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


def torch_run(ref: ReferenceKitchen, scale: np.ndarray, config, optimum, eval_every, budget_s, seed=0):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    layers, width = [], ref.obs_size
    for hidden in config.hidden:
        layers += [torch.nn.Linear(width, hidden), torch.nn.Tanh()]
        width = hidden
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, ref.n_actions))
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
    while time.perf_counter() - start < budget_s:
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
    del rng
    return series, steps / (time.perf_counter() - start)


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


def first_time_at_or_below(series, ticks):
    return next((t for t, _, g in series if g <= ticks), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--recipe", default="reinforce", help="conf/algo/<recipe>.yaml (a REINFORCE config)")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--budget-s", type=float, default=300.0, help="per learner")
    parser.add_argument("--seeds", type=int, default=16, help="seeds vmapped for the throughput figure")
    parser.add_argument("--json")
    args = parser.parse_args()

    cfg = compose_config([f"kitchen/scenario={args.scenario}", f"algo={args.recipe}"], config_name="train")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    env, env_params = make_kitchen(spec)
    optimum = solve(spec).optimal_ticks
    from omegaconf import OmegaConf

    _, config, _ = algorithm_config(OmegaConf.to_container(cfg.algo))
    _, ppo_config, _ = algorithm_config(OmegaConf.to_container(compose_config(["algo=ppo"], config_name="train").algo))
    scale = np.asarray(env.obs_scale(env_params))

    ours = bpjax_run(make_reinforce, config, env, env_params, optimum, args.eval_every, args.budget_s)
    ppo = bpjax_run(make_ppo, ppo_config, env, env_params, optimum, 5, args.budget_s)
    theirs, torch_steps_per_s = torch_run(ReferenceKitchen(spec.to_dict()), scale, config, optimum,
                                          args.eval_every, args.budget_s)

    def summary(series):
        best = min(g for _, _, g in series)
        last_t, last_u, _ = series[-1]
        first_t, first_u, _ = series[0]  # bpjax's first evaluation includes compilation
        steady = (last_u - first_u) / (last_t - first_t) if len(series) > 1 else last_u / last_t
        return {"best_greedy_ticks": best, "time_to_best_s": first_time_at_or_below(series, best),
                "time_to_optimum_s": first_time_at_or_below(series, optimum), "first_eval_s": first_t,
                "updates": last_u, "seconds": last_t, "updates_per_s": last_u / last_t,
                "updates_per_s_after_first_eval": steady, "series": series}

    results = {"machine": {"platform": platform.platform(), "jax": jax.__version__},
               "scenario": args.scenario, "recipe": args.recipe, "optimal_ticks": optimum,
               "budget_s": args.budget_s, "bpjax_reinforce": summary(ours), "bpjax_ppo": summary(ppo),
               "torch_reinforce": summary(theirs)}
    results["torch_reinforce"]["env_steps_per_s"] = torch_steps_per_s
    seed_rate = bpjax_seed_throughput(make_reinforce, config, env, env_params, args.seeds, 200)
    results["bpjax_reinforce"][f"seed_updates_per_s_{args.seeds}_seeds"] = seed_rate
    results["seed_update_rate_ratio"] = seed_rate / results["torch_reinforce"]["updates_per_s_after_first_eval"]
    mine, other = results["bpjax_reinforce"], results["torch_reinforce"]
    common = max(mine["best_greedy_ticks"], other["best_greedy_ticks"])  # a level both reached
    results["common_target_ticks"] = common
    t_mine, t_other = first_time_at_or_below(ours, common), first_time_at_or_below(theirs, common)
    results["speedup_vs_torch"] = t_other / t_mine
    results["update_rate_ratio"] = mine["updates_per_s_after_first_eval"] / other["updates_per_s_after_first_eval"]
    ppo_time = results["bpjax_ppo"]["time_to_optimum_s"]
    torch_time = other["time_to_optimum_s"]
    results["ppo_vs_torch_time_to_optimum"] = (
        None if ppo_time is None else (torch_time / ppo_time if torch_time else f">= {args.budget_s / ppo_time:.0f}"))
    for name in ("bpjax_reinforce", "bpjax_ppo", "torch_reinforce"):
        r = results[name]
        print(f"{name:<16} best greedy {r['best_greedy_ticks']} (optimum {optimum}) after {r['time_to_best_s']:.1f} s; "
              f"optimum {'at %.1f s' % r['time_to_optimum_s'] if r['time_to_optimum_s'] else 'not reached'}; "
              f"{r['updates_per_s']:.1f} updates/s")
    print(f"same recipe, time to {common} ticks: torch / bpjax = {results['speedup_vs_torch']:.0f}x; "
          f"update rate ratio {results['update_rate_ratio']:.0f}x (1 seed), "
          f"{results['seed_update_rate_ratio']:.0f}x ({args.seeds} seeds vmapped); PPO vs torch to optimum: "
          f"{results['ppo_vs_torch_time_to_optimum']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
