"""``python -m bpjax.solve kitchen/scenario=full``: the exact optimum of a kitchen, with baselines for context.

Prints a text Gantt chart, baseline scores, and, as its last line, one JSON object. Writes a Gantt PNG and
``solution.json`` into the output folder; the states explored show on stderr while the search runs.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig

from bpjax.config.cli import Run, command


def score_baselines(spec, episodes: int, seed: int) -> dict[str, dict[str, float]]:
    """Mean / best ticks of each baseline policy over `episodes` rollouts."""
    import jax

    from bpjax.agents.baselines import BASELINES
    from bpjax.env.kitchen import make_kitchen
    from bpjax.env.rollout import run_episodes

    env, params = make_kitchen(spec)
    scores = {}
    for index, (name, make_policy) in enumerate(BASELINES.items()):
        result = run_episodes(env, params, make_policy(env), jax.random.key(seed + index), episodes)
        scores[name] = {"mean_ticks": round(float(result.ticks.mean()), 3), "best_ticks": int(result.ticks.min()),
                        "finished": round(float(result.terminated.mean()), 3)}
    return scores


def validate(cfg: DictConfig):
    from bpjax.env.config import KitchenSpec

    return KitchenSpec.from_dict(cfg.kitchen)


@command("config", validate, name="solve")
def main(cfg: DictConfig, spec, run: Run) -> None:
    from bpjax.solve.gantt import gantt_png, gantt_text
    from bpjax.solve.solver import ExactSolver, SolverBudgetExceeded

    solver = ExactSolver(spec, cfg.max_states)
    with run.progress.phase("exact solve", lambda: len(solver._togo), "states"):
        try:
            solution = solver.solve()
        except SolverBudgetExceeded:
            raise SolverBudgetExceeded(f"max_states: the search passed {cfg.max_states:,} states without an "
                                       "answer; raise max_states (null: no limit)") from None
    workers = [w.name for w in spec.workers]
    print(f"Kitchen: scenario={spec.scenario or '-'}, orders={[o.dish for o in spec.orders]}, "
          f"handoff={spec.handoff}, max_ticks={spec.max_ticks}")
    print(f"Optimal: {solution.optimal_ticks} ticks (on-screen tick {solution.screen_tick})"
          + (" -- TRUNCATED: no schedule finishes within max_ticks" if solution.truncated else "")
          + f"; {solution.n_states} states, {solution.seconds:.2f} s")
    print(gantt_text(solution.schedule, workers, solution.optimal_ticks, spec.handoff, spec.task_types))
    if solution.truncated:  # the horizon does not change which schedule is best: it shows the whole of it
        print(f"  the best schedule runs past max_ticks={spec.max_ticks}, to tick "
              f"{max(task.finish for task in solution.schedule)}:")
    for task in solution.schedule:
        print(f"  tick {task.start:>2}: {task.worker:<10} {task.label} (until {task.finish})")
    with run.progress.phase("baselines"):
        baselines = score_baselines(spec, int(cfg.baselines.episodes), int(cfg.seed))
    for name, score in baselines.items():
        print(f"  baseline {name:<13} mean {score['mean_ticks']:6.2f} ticks, best {score['best_ticks']}")
    png = gantt_png(solution.schedule, workers, solution.optimal_ticks, spec.handoff, spec.task_types,
                    run.out / "gantt.png", title=f"{spec.scenario}: optimal {solution.optimal_ticks} ticks")
    summary = {**solution.to_json(), "scenario": spec.scenario, "baselines": baselines, "gantt_png": str(png)}
    (run.out / "solution.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
