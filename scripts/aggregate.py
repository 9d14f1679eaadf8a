"""``python scripts/aggregate.py MULTIRUN_DIR [--out DIR]`` — one table and plots over a Hydra sweep.

A run is a job folder holding ``metrics.json`` (``python -m bpjax.train``), ``tips.json``
(``python -m bpjax.pipeline``) or ``study.json`` (``python -m bpjax.study``) next to Hydra's
``.hydra/overrides.yaml``. Writes into MULTIRUN_DIR (or --out):

- ``sweep.csv`` and ``sweep.md``: one row per run, the swept overrides as columns, then the run's results
  (training: greedy / optimal ticks, the lower bound, gap, reached_optimum, wall_s, ...; pipeline: the #1
  recommended tip, its score and simulated gain; study: per arm, the last round's ticks and share of
  suboptimal decisions); a training job of several kitchens (``n_kitchens``) gives one row per kitchen (its
  ``skills_seed``, its optimum and its seeds' greedy ticks; the job's wall time on each);
- ``ticks.png`` (training runs): the exact optimum next to the learned greedy ticks (median over the job's
  vmapped seeds, whiskers to the best and worst seed) for every swept configuration;
- ``tip_ranks.png`` and ``tip_stability.csv`` (pipeline runs swept over ``seed``): the rank of each top tip
  across seeds, and per configuration the share of seeds agreeing on the top tip.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

TRAIN_COLUMNS = ["algorithm", "scenario", "skills_seed", "n_kitchens", "n_seeds", "n_updates", "optimal_ticks",
                 "lower_bound_ticks", "greedy_ticks_median", "greedy_ticks_best", "greedy_ticks_worst", "gap",
                 "reached_optimum", "wall_s", "env_steps_per_s", "devices", "resumed_from"]
PIPELINE_COLUMNS = ["top_tip", "top_score", "top_simulated_gain", "ranked_tips"]
STUDY_ARMS = ("control", "static", "personalised", "dynamic")
STUDY_COLUMNS = [f"{arm}_{what}" for arm in STUDY_ARMS for what in ("ticks", "suboptimal")]


class SweepError(ValueError):
    """A folder that is not a sweep with runs."""


def _overrides(job: Path) -> dict[str, str]:
    path = job / ".hydra" / "overrides.yaml"
    listed = OmegaConf.to_container(OmegaConf.load(path)) if path.exists() else []
    return dict(o.lstrip("+~").split("=", 1) for o in listed or [] if "=" in o)


def _train_rows(metrics: dict) -> list[dict]:
    """One row per kitchen of a training job (one for a single kitchen, as before ``n_kitchens``)."""
    greedy = metrics["greedy_ticks"]
    row = {k: metrics.get(k) for k in TRAIN_COLUMNS}
    row.update(algorithm=metrics["algo"], n_seeds=len(metrics["seeds"]), greedy_ticks_worst=max(greedy),
               kind="train", n_kitchens=metrics.get("n_kitchens", 1))
    kitchens = metrics.get("kitchens") or []
    if len(kitchens) <= 1:
        if kitchens and row["lower_bound_ticks"] is None:
            row["lower_bound_ticks"] = kitchens[0].get("lower_bound_ticks")
        return [row]
    rows = []
    for kitchen in kitchens:
        ticks, optimum = kitchen["greedy_ticks"], kitchen["optimal_ticks"]
        median = float(pd.Series(ticks).median())
        rows.append({**row, "skills_seed": kitchen["skills_seed"], "optimal_ticks": optimum,
                     "lower_bound_ticks": kitchen.get("lower_bound_ticks"), "greedy_ticks_median": median,
                     "greedy_ticks_best": min(ticks), "greedy_ticks_worst": max(ticks),
                     "gap": None if optimum is None else median - optimum,
                     "reached_optimum": kitchen.get("reached_optimum")})
    return rows


def _pipeline_row(tips: dict) -> dict:
    recommended = tips["recommended"]
    top = recommended[0] if recommended else {}
    return {"kind": "pipeline", "top_tip": top.get("text"), "top_score": top.get("score"),
            "top_simulated_gain": top.get("simulated_gain"),
            "ranked_tips": json.dumps([t["text"] for t in recommended])}


def _study_row(study: dict) -> dict:
    """The last round of every arm: mean ticks and share of suboptimal decision ticks."""
    row = {"kind": "study"}
    for arm, data in study["arms"].items():
        last = data["by_round"][-1]
        row[f"{arm}_ticks"], row[f"{arm}_suboptimal"] = last["ticks"], last["suboptimal_rate"]
    return row


def _rows(job: Path) -> list[dict]:
    """The job's rows: one per kitchen of a training job, else one."""
    if (job / "metrics.json").exists():
        return _train_rows(json.loads((job / "metrics.json").read_text()))
    if (job / "study.json").exists():
        return [_study_row(json.loads((job / "study.json").read_text()))]
    return [_pipeline_row(json.loads((job / "tips.json").read_text()))]


def collect_runs(sweep: Path) -> pd.DataFrame:
    """One row per job folder under `sweep` (any depth), overrides first, sorted by job folder."""
    if not sweep.is_dir():
        raise SweepError(f"{sweep}: no such folder; pass the sweep's folder, e.g. multirun/<date>/<time>")
    rows, override_keys = [], {}
    for marker in sorted({*sweep.rglob("metrics.json"), *sweep.rglob("tips.json"), *sweep.rglob("study.json")}):
        job = marker.parent
        if any(row["job"] == str(job.relative_to(sweep)) for row in rows):
            continue  # a job with both files is listed once
        try:
            results = _rows(job)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise SweepError(f"{marker}: not a finished run's output ({type(error).__name__}: {error})") from None
        overrides = _overrides(job)
        override_keys.update(dict.fromkeys(overrides))
        rows.extend({"job": str(job.relative_to(sweep)), **overrides, **result} for result in results)
    if not rows:
        raise SweepError(f"{sweep}: no runs (no job folder with metrics.json, tips.json or study.json); "
                         f"pass the sweep's folder, e.g. multirun/<date>/<time>")
    frame = pd.DataFrame(rows)
    swept = [c for c in override_keys if frame[c].nunique(dropna=False) > 1]
    fixed = [c for c in override_keys if c not in swept]
    result_columns = [c for c in ("kind", *TRAIN_COLUMNS, *PIPELINE_COLUMNS, *STUDY_COLUMNS)
                      if c in frame.columns and c not in override_keys]  # e.g. n_seeds: the override's column
    return frame[["job", *swept, *fixed, *result_columns]].dropna(axis=1, how="all")


def swept_columns(frame: pd.DataFrame) -> list[str]:
    """Override columns whose value differs between runs."""
    results = {"job", "kind", *TRAIN_COLUMNS, *PIPELINE_COLUMNS, *STUDY_COLUMNS}
    return [c for c in frame.columns if c not in results and frame[c].nunique(dropna=False) > 1]


def to_markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _label(row: pd.Series, columns: list[str]) -> str:
    return " ".join(f"{c}={row[c]}" for c in columns) or row["job"]


def plot_ticks(frame: pd.DataFrame, path: Path) -> None:
    """Optimal vs learned (median greedy over seeds, whiskers best..worst) per swept configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = frame[frame["kind"] == "train"].reset_index(drop=True)
    columns = swept_columns(train)
    labels = [_label(row, columns) for _, row in train.iterrows()]
    x = range(len(train))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(train) + 2), 4.5))
    median = train["greedy_ticks_median"].astype(float)
    # a column no run filled is dropped from the table: no optimum at all when every run skipped the solver
    optimum = train.get("optimal_ticks", pd.Series(float("nan"), index=train.index)).astype(float)
    ax.bar([i - 0.2 for i in x], optimum, width=0.4, label="exact optimum", color="0.75")
    if "lower_bound_ticks" in train:  # where the solver gave up, the lower bound stands in
        unsolved = optimum.isna()
        ax.bar([i - 0.2 for i in x], train["lower_bound_ticks"].astype(float).where(unsolved), width=0.4,
               label="lower bound (optimum unknown)", color="none", edgecolor="0.4", hatch="//")
    ax.bar([i + 0.2 for i in x], median, width=0.4, label="learned (greedy, median over seeds)", color="C0",
           yerr=[median - train["greedy_ticks_best"], train["greedy_ticks_worst"] - median], capsize=3)
    ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("ticks per round")
    ax.set_title("learned vs optimal ticks across the sweep")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tip_stability(frame: pd.DataFrame, out: Path) -> pd.DataFrame | None:
    """Per configuration (all swept overrides but `seed`): how often the seeds agree on the top tip; and a
    plot of each tip's rank across seeds. None when the sweep has no pipeline runs over several seeds."""
    runs = frame[frame["kind"] == "pipeline"] if "kind" in frame else frame.iloc[:0]
    if runs.empty or "seed" not in runs.columns or runs["seed"].nunique() < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group_columns = [c for c in swept_columns(runs) if c != "seed"]
    groups = list(runs.groupby(group_columns)) if group_columns else [((), runs)]
    summary = []
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (key, group) in zip(axes[0], groups):
        group = group.sort_values("seed", key=lambda s: s.astype(int))
        rankings = {seed: json.loads(tips) for seed, tips in zip(group["seed"], group["ranked_tips"])}
        modal = group["top_tip"].mode().iloc[0]
        summary.append({**dict(zip(group_columns, key if isinstance(key, tuple) else (key,))),
                        "seeds": len(group), "modal_top_tip": modal,
                        "top_tip_agreement": float((group["top_tip"] == modal).mean())})
        tips = sorted({t for ranked in rankings.values() for t in ranked})
        for tip in tips:
            ax.plot(list(rankings), [ranked.index(tip) + 1 if tip in ranked else None
                                     for ranked in rankings.values()], marker="o", label=tip)
        ax.invert_yaxis()
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("seed")
        ax.set_ylabel("rank")
        ax.set_title(" ".join(f"{c}={v}" for c, v in summary[-1].items() if c in group_columns) or "all runs",
                     fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "tip_ranks.png", dpi=120)
    plt.close(fig)
    table = pd.DataFrame(summary)
    table.to_csv(out / "tip_stability.csv", index=False)
    return table


def aggregate(sweep: Path, out: Path | None = None) -> pd.DataFrame:
    out = sweep if out is None else out
    frame = collect_runs(sweep)  # first: a mistyped folder is reported, not made
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(to_markdown(frame))
    if (frame["kind"] == "train").any():
        plot_ticks(frame, out / "ticks.png")
    tip_stability(frame, out)
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a multirun folder (multirun/<date>/<time>)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep folder)")
    args = parser.parse_args(argv)
    try:
        frame = aggregate(args.sweep, args.out)
    except SweepError as error:
        sys.exit(f"SweepError: {error}")
    print(to_markdown(frame), end="")


if __name__ == "__main__":
    main()
