"""Training speed: bpjax vs what a user would otherwise reach for, same run.

Two peers. **PyTorch REINFORCE** of the same recipe, what the study's appendix suggests: the pure-Python
reference simulator stepped one episode at a time, an MLP with masked logits, reward-to-go, the same
normalisation, Adam, the same hyper-parameters (``conf/algo/<recipe>.yaml``, default ``reinforce_fast``);
bpjax runs the same recipe as one compiled program per chunk of updates. **Stable-Baselines3's
MaskablePPO** (sb3-contrib), the library a researcher would pick for a masked discrete task: the same
reference simulator as a gymnasium env with ``action_masks()`` (``benchmarks/kitchen_gym.py``, the same
scaled features), SB3's defaults (its 64-64 tanh actor and critic are bpjax's network) with γ = 1 and one
tuned setting, the entropy bonus (``--sb3-ent-coef``, default bpjax PPO's 0.03: SB3's default 0 lets the
policy turn deterministic before it finds the optimum); bpjax PPO (its defaults) beside it, and with
``--ppo-before REV`` also PPO as it was at git revision REV (its ``bpjax/agents/ppo.py`` and defaults).

Protocol: each learner trains seeds 0, 1, ... one after another from scratch; a seed evaluates the
deterministic greedy policy on a fixed cadence (bpjax and PyTorch: every ``--eval-every`` updates; SB3:
after every rollout of ``n_steps`` = 2,048 env steps) and stops at the exact optimum, after its update
limit, or when its learner's time runs out. Every learner runs seeds until its budget is spent (bpjax:
``--bpjax-budget-s`` for PPO and again for REINFORCE, the programs compiled once and reused by every seed;
PyTorch: ``--budget-s``; SB3: ``--sb3-budget-s`` with at most ``--sb3-seed-s`` per seed); the seed the budget
cuts short counts as not reaching the optimum. A seed that stalls is given up for the next one, so the figure
of merit is the **time per optimal policy found**: all training time spent divided by the number of seeds
that reached the optimum (the expected time to an optimal policy with restarts). When no seed of a peer
reaches it, its whole time is a lower bound. Start-up is reported separately and included in the "cold"
figures, charged over all the optima its learner found: for bpjax its imports and the compilation (once for
all seeds), for SB3 the import of torch and sb3-contrib. PyTorch runs with
``--torch-threads`` intra-op threads (default 1: on two busy cores its default of 2 was several times slower
for these small networks).

    pip install -e '.[bench]'   # torch 2.13.0 (CPU build), sb3-contrib, gymnasium
    PYTHONPATH=. python benchmarks/train_speed.py --json train_speed.json   # this tree's bpjax, not an installed one
"""

from __future__ import annotations

import time

_START = time.perf_counter()

import argparse  # noqa: E402  (everything after the clock, which times bpjax's imports)
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from bpjax.agents.common import initial_states, make_greedy_evaluator  # noqa: E402
from bpjax.agents.ppo import make_ppo  # noqa: E402
from bpjax.agents.reinforce import make_reinforce  # noqa: E402
from bpjax.config import compose_config  # noqa: E402
from bpjax.env.config import KitchenSpec  # noqa: E402
from bpjax.env.kitchen import make_kitchen  # noqa: E402
from bpjax.env.reference import ReferenceKitchen  # noqa: E402
from bpjax.solve.solver import solve  # noqa: E402
from bpjax.train.loop import algorithm_config  # noqa: E402

IMPORT_S = time.perf_counter() - _START


def bpjax_runs(make, config, env, env_params, optimum, eval_every, max_updates, budget_s):
    """(compile seconds, per seed {"reached", "updates", "seconds", "series"}): seeds 0, 1, ... one after another
    until `budget_s` is spent, each training until its greedy policy is optimal, `max_updates` or the budget's
    end; the programs are compiled once, side by side as `python -m bpjax.train` compiles them, before any
    seed's clock starts, and every seed reuses them."""
    network, init, run = make(env, env_params, config)
    start = time.perf_counter()
    key = jax.random.key(0)
    state = jax.eval_shape(init, key)
    with ThreadPoolExecutor(3) as pool:
        programs = [pool.submit(lambda: jax.jit(init).lower(key).compile()),
                    pool.submit(lambda: jax.jit(run, static_argnums=1).lower(state, eval_every).compile()),
                    pool.submit(lambda: make_greedy_evaluator(env, env_params, network).lower(state.params).compile())]
        init, run_chunk, evaluate = [program.result() for program in programs]
    compile_s = time.perf_counter() - start

    def run_seed(seed: int, left_s: float) -> dict:
        start = time.perf_counter()
        state, series, updates, ticks = init(jax.random.key(seed)), [], 0, None
        while updates < max_updates and ticks != optimum and time.perf_counter() - start < left_s:
            state, _ = run_chunk(state)
            updates += eval_every
            ticks = int(evaluate(state.params))
            series.append((time.perf_counter() - start, updates, ticks))
        return _outcome(series, optimum)

    return compile_s, peer_runs(run_seed, budget_s)


def _outcome(series, optimum) -> dict:
    seconds, updates, ticks = series[-1]
    return {"reached": ticks <= optimum, "updates": updates, "seconds": seconds,
            "best_greedy_ticks": min(g for _, _, g in series), "series": series}


def bpjax_seed_throughput(make, config, env, env_params, n_seeds: int, n_updates: int) -> float:
    """Seed-updates per second with `n_seeds` independent runs vmapped in one call (after compilation)."""
    _, init, run = make(env, env_params, config)
    run_all = jax.jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1)
    states = initial_states(jax.jit(jax.vmap(init)), jax.random.split(jax.random.key(1), n_seeds))
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


SB3_IMPORT_S: list[float] = []  # the first import of sb3-contrib (after torch's), timed once


def sb3_run(kitchen: dict, scale: np.ndarray, optimum: int, budget_s: float, seed: int, settings: dict) -> dict:
    """One seed of sb3-contrib's MaskablePPO until its greedy policy is optimal or `budget_s` is spent; the
    greedy round is played after every rollout (`n_steps` env steps), i.e. after every update."""
    start = time.perf_counter()
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback

    from kitchen_gym import ReferenceKitchenEnv
    if not SB3_IMPORT_S:
        SB3_IMPORT_S.append(time.perf_counter() - start)

    start = time.perf_counter()
    env, eval_env = ReferenceKitchenEnv(kitchen, scale), ReferenceKitchenEnv(kitchen, scale)
    model = MaskablePPO("MlpPolicy", env, seed=seed, device="cpu", **settings)
    series: list[tuple[float, int, int]] = []

    def greedy() -> int:
        obs, _ = eval_env.reset()
        over = False
        while not over:
            action, _ = model.predict(obs, deterministic=True, action_masks=eval_env.action_masks())
            obs, _, terminated, truncated, _ = eval_env.step(action)
            over = terminated or truncated
        return eval_env.state.tick

    class Cadence(BaseCallback):
        """Greedy round after every update (a rollout starts after each); stop at the optimum or the budget."""

        updates = 0
        reached = False

        def _on_rollout_start(self) -> None:
            if self.num_timesteps == 0:
                return
            self.updates += 1
            ticks = greedy()
            series.append((time.perf_counter() - start, self.updates, ticks))
            self.reached = ticks <= optimum

        def _on_step(self) -> bool:
            return not self.reached and time.perf_counter() - start < budget_s

    cadence = Cadence()
    model.learn(total_timesteps=10**9, callback=cadence)
    if not series or not cadence.reached:  # stopped by the budget after the last evaluation
        series.append((time.perf_counter() - start, cadence.updates, greedy()))
    seconds = time.perf_counter() - start
    return {**_outcome(series, optimum), "env_steps": int(model.num_timesteps),
            "env_steps_per_s": model.num_timesteps / seconds}


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


def peer_runs(run_seed, budget_s: float, seed_s: float | None = None) -> list[dict]:
    """Seeds 0, 1, ... of a peer one after another until `budget_s` is spent (each at most `seed_s`); the
    last seed may be cut short by the budget (then it counts as not reaching the optimum)."""
    outcomes, spent = [], 0.0
    while spent < budget_s:
        left = budget_s - spent
        outcomes.append(run_seed(len(outcomes), left if seed_s is None else min(seed_s, left)))
        spent += outcomes[-1]["seconds"]
    return outcomes


def first_optimum_s(outcomes: list[dict], startup_s: float) -> float | None:
    """Seconds from a cold start to the first optimal policy: start-up, then every seed up to the first that
    reached the optimum; None when none did."""
    spent = startup_s
    for outcome in outcomes:
        spent += outcome["seconds"]
        if outcome["reached"]:
            return spent
    return None


def speedups(ours: dict, theirs: dict, ours_startup_s: float, theirs_startup_s: float) -> dict:
    """Ratios (theirs / ours) of the time per optimal policy, with start-up (charged over all the optima found)
    and without, and of the time from a cold start to the first optimal policy; a peer that found no optimum
    counts its whole time, so the ratios are then lower bounds."""
    reached_ours = ours["reached"]
    theirs_t, lower_bound = theirs["time_per_optimum_s"], theirs["time_per_optimum_s"] is None
    if lower_bound:
        theirs_t = theirs["total_seconds"]
    theirs_cold = theirs_t + theirs_startup_s / max(theirs["reached"], 1)
    warm = ours["time_per_optimum_s"]
    cold = (ours["total_seconds"] + ours_startup_s) / reached_ours if reached_ours else None
    ours_first = first_optimum_s(ours["per_seed"], ours_startup_s)
    theirs_first = first_optimum_s(theirs["per_seed"], theirs_startup_s) or theirs["total_seconds"] + theirs_startup_s
    return {"lower_bound": lower_bound, "with_startup": theirs_cold / cold if cold else None,
            "without_startup": theirs_t / warm if warm else None,
            "first_optimum_s": {"ours": ours_first, "theirs": theirs_first},
            "first_optimum": theirs_first / ours_first if ours_first else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="full")
    parser.add_argument("--recipe", default="reinforce_fast", help="conf/algo/<recipe>.yaml (a REINFORCE config)")
    parser.add_argument("--bpjax-budget-s", type=float, default=120.0,
                        help="bpjax PPO's total training time (and again REINFORCE's, and PPO-before's): seeds 0, 1, "
                             "... one after another until this is spent")
    parser.add_argument("--ppo-before", metavar="REV",
                        help="also time PPO as it was at this git revision (its ppo.py and defaults), same budget")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="PyTorch's total time: it runs seeds 0, 1, ... one after another until this is spent")
    parser.add_argument("--sb3-budget-s", type=float, default=900.0, help="SB3 MaskablePPO's total time")
    parser.add_argument("--sb3-seed-s", type=float, default=300.0, help="SB3's time per seed at most")
    parser.add_argument("--sb3-ent-coef", type=float, default=0.03,
                        help="SB3's one tuned setting (its default is 0); the rest are SB3's defaults, γ = 1")
    parser.add_argument("--throughput-seeds", type=int, default=8, help="seeds vmapped for the throughput figure")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="PyTorch's intra-op threads for both peers (1: faster for these small networks)")
    parser.add_argument("--skip-torch", action="store_true", help="no PyTorch REINFORCE")
    parser.add_argument("--skip-sb3", action="store_true", help="no SB3 MaskablePPO")
    parser.add_argument("--json")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    cfg = compose_config([f"kitchen/scenario={args.scenario}", f"algo={args.recipe}"], config_name="train")
    spec = KitchenSpec.from_dict(cfg.kitchen)
    env, env_params = make_kitchen(spec)
    optimum = solve(spec).optimal_ticks
    _, config, max_updates = algorithm_config(OmegaConf.to_container(cfg.algo))
    scale = np.asarray(env.obs_scale(env_params))
    results = {"machine": {"platform": platform.platform(), "jax": jax.__version__, "load_before": _load()},
               "scenario": args.scenario, "optimal_ticks": optimum, "eval_every": args.eval_every,
               "bpjax_import_s": IMPORT_S, "bpjax_budget_s": args.bpjax_budget_s}

    torch_import_s = 0.0
    if not (args.skip_sb3 and args.skip_torch):
        start = time.perf_counter()
        import torch
        torch_import_s = time.perf_counter() - start
        torch.set_num_threads(args.torch_threads)
        results["machine"].update({"torch": torch.__version__, "torch_threads": args.torch_threads})

    # bpjax PPO, the default learner, against SB3's MaskablePPO
    ppo_algo = OmegaConf.to_container(compose_config(["algo=ppo"], config_name="train").algo)
    _, ppo_config, ppo_updates = algorithm_config(ppo_algo)
    ppo_compile_s, ppo = bpjax_runs(make_ppo, ppo_config, env, env_params, optimum, args.eval_every, ppo_updates,
                                    args.bpjax_budget_s)
    ours_ppo = {**side_summary(ppo), "settings": ppo_algo, "compile_s": ppo_compile_s,
                "env_steps_per_update": ppo_config.n_envs * ppo_config.n_steps}
    ours_ppo["env_steps_per_s"] = ours_ppo["updates_per_s"] * ours_ppo["env_steps_per_update"]
    ours_ppo["startup_s"] = IMPORT_S + ppo_compile_s
    ours_ppo["time_per_optimum_cold_s"] = time_per_optimum(ppo, ppo_compile_s + IMPORT_S)
    results["bpjax_ppo"] = ours_ppo
    if args.ppo_before:
        from ppo_throughput import load_ppo_at

        before = load_ppo_at(args.ppo_before)
        before_compile_s, ppo_before = bpjax_runs(before.make_ppo, before.PPOConfig(), env, env_params, optimum,
                                                  args.eval_every, ppo_updates, args.bpjax_budget_s)
        results["bpjax_ppo_before"] = {**side_summary(ppo_before), "rev": args.ppo_before,
                                       "settings": vars(before.PPOConfig()), "compile_s": before_compile_s,
                                       "time_per_optimum_cold_s": time_per_optimum(ppo_before,
                                                                                   before_compile_s + IMPORT_S)}
    if not args.skip_sb3:
        settings = {"gamma": 1.0, "ent_coef": args.sb3_ent_coef}
        sb3 = peer_runs(lambda seed, budget: sb3_run(spec.to_dict(), scale, optimum, budget, seed, settings),
                        args.sb3_budget_s, args.sb3_seed_s)
        theirs = {**side_summary(sb3), "settings": settings, "import_s": torch_import_s + SB3_IMPORT_S[0],
                  "budget_s": args.sb3_budget_s, "seed_budget_s": args.sb3_seed_s,
                  "env_steps_per_s": sum(o["env_steps"] for o in sb3) / sum(o["seconds"] for o in sb3)}
        results["sb3_maskable_ppo"] = theirs
        results["ppo_vs_sb3"] = speedups(ours_ppo, theirs, ppo_compile_s + IMPORT_S, theirs["import_s"])

    # bpjax REINFORCE against PyTorch REINFORCE, the same recipe
    compile_s, ours = bpjax_runs(make_reinforce, config, env, env_params, optimum, args.eval_every, max_updates,
                                 args.bpjax_budget_s)
    mine = side_summary(ours)
    mine["compile_s"] = compile_s
    mine["time_per_optimum_cold_s"] = time_per_optimum(ours, compile_s)
    mine[f"seed_updates_per_s_{args.throughput_seeds}_seeds"] = bpjax_seed_throughput(
        make_reinforce, config, env, env_params, args.throughput_seeds, 50)
    results.update({"recipe": args.recipe, "recipe_settings": OmegaConf.to_container(cfg.algo),
                    "bpjax_reinforce": mine})
    if not args.skip_torch:
        ref = ReferenceKitchen(spec.to_dict())
        theirs_r = peer_runs(lambda seed, budget: torch_run(ref, scale, config, optimum, args.eval_every,
                                                            max_updates, budget, seed), args.budget_s)
        other = side_summary(theirs_r)
        other["env_steps_per_s"] = float(np.mean([o["env_steps_per_s"] for o in theirs_r]))
        results.update({"torch_budget_s": args.budget_s, "torch_reinforce": other})
        results["update_rate_ratio"] = mine["updates_per_s"] / other["updates_per_s"]
        results["seed_update_rate_ratio"] = (mine[f"seed_updates_per_s_{args.throughput_seeds}_seeds"]
                                             / other["updates_per_s"])
        # compilation only, as before (the PyTorch import is not counted on its side either)
        vs_torch = speedups(mine, other, compile_s, 0.0)
        results["torch_lower_bound"] = vs_torch["lower_bound"]
        results["speedup_vs_torch"] = vs_torch["with_startup"]
        results["speedup_vs_torch_compiled"] = vs_torch["without_startup"]
    results["machine"]["load_after"] = _load()

    for name in ("bpjax_ppo", "bpjax_ppo_before", "sb3_maskable_ppo", "bpjax_reinforce", "torch_reinforce"):
        if name not in results:
            continue
        r = results[name]
        rate = f"; {r['env_steps_per_s']:,.0f} env steps/s" if "env_steps_per_s" in r else ""
        cold = f" ({_seconds(r['time_per_optimum_cold_s'])} with start-up)" if "time_per_optimum_cold_s" in r else ""
        print(f"{name:<17} optimum ({optimum}) reached by {r['reached']}/{r['seeds']} seeds in "
              f"{r['total_seconds']:.0f} s; updates to it {_listed(r['updates_to_optimum'])}; best greedy "
              f"{_listed(r['best_greedy_ticks'])}; {r['updates_per_s']:.1f} updates/s{rate}; time per optimum "
              f"{_seconds(r['time_per_optimum_s'])}{cold}")
    for key, label in (("ppo_vs_sb3", "bpjax PPO vs SB3 MaskablePPO"),):
        if key in results:
            r, bound = results[key], ">= " if results[key]["lower_bound"] else ""
            print(f"{label}: time per optimal policy {bound}{r['with_startup'] or float('nan'):.0f}x with start-up, "
                  f"{bound}{r['without_startup'] or float('nan'):.0f}x without; from a cold start to the first "
                  f"optimal policy {bound}{r['first_optimum'] or float('nan'):.0f}x "
                  f"({_seconds(r['first_optimum_s']['ours'])} vs {bound}{_seconds(r['first_optimum_s']['theirs'])})")
    if "torch_reinforce" in results:
        bound = ">= " if results["torch_lower_bound"] else ""
        print(f"bpjax REINFORCE vs PyTorch (compile {compile_s:.1f} s): time per optimal policy {bound}"
              f"{results['speedup_vs_torch'] or float('nan'):.1f}x with compilation, {bound}"
              f"{results['speedup_vs_torch_compiled'] or float('nan'):.1f}x compiled; update rate "
              f"{results['update_rate_ratio']:.0f}x (1 seed), {results['seed_update_rate_ratio']:.0f}x "
              f"({args.throughput_seeds} seeds vmapped)")
    print(f"load average {results['machine']['load_before']} before, {results['machine']['load_after']} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _listed(values: list) -> str:
    """A list as it is, or its count and spread when long."""
    if len(values) <= 16:
        return str(values)
    known = sorted(v for v in values if v is not None)
    spread = f"median {known[len(known) // 2]}, {known[0]}-{known[-1]}" if known else "none"
    return f"{len(values)} seeds ({len(values) - len(known)} none; {spread})"


def _seconds(value: float | None) -> str:
    return "none found" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    main()
