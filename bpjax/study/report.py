"""The simulated experiment's outputs: study.json (every number with its 95% interval), report.md with the
pilot-style table (suboptimal decisions % by arm x round), and study_ticks.png (ticks by round per arm)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bpjax.study.experiment import StudyResult


def _mean_ci(values: np.ndarray) -> tuple[float, list[float]]:
    values = np.asarray(values, float)
    mean = float(values.mean())
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, [round(float(mean - half), 4), round(float(mean + half), 4)]


def study_json(result: StudyResult) -> dict:
    arms: dict[str, dict] = {}
    for r in result.rounds:
        ticks, ticks_ci = _mean_ci(r.ticks)
        per_trainee = r.suboptimal[:, 0] / np.maximum(r.suboptimal[:, 1], 1)
        rate, rate_ci = _mean_ci(per_trainee)
        arms.setdefault(r.arm, {"by_round": []})["by_round"].append({
            "round": r.round, "dish": r.dish, "ticks": round(ticks, 4), "ticks_ci": ticks_ci,
            "suboptimal_rate": round(rate, 5), "suboptimal_ci": rate_ci,
            "tip_shown": round(float(np.mean([t is not None for t in r.tips])), 4),
            "tips": _counts(r.tips)})
    settings = asdict(result.settings)
    return {"arms": arms, "population_tips": result.population_tips, "trainees": result.trainees,
            "settings": settings, "seconds": round(result.seconds, 2)}


def _counts(tips: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for tip in tips:
        key = tip or "(none)"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def write_study(out: Path, result: StudyResult) -> dict:
    payload = study_json(result)
    (out / "study.json").write_text(json.dumps(payload, indent=2))
    arms = list(payload["arms"])
    rounds = payload["arms"][arms[0]]["by_round"]
    header = "| round | dish | " + " | ".join(arms) + " |"
    lines = ["# Simulated experiment", "",
             f"{result.settings.trainees} simulated trainees per arm, paired across arms (the same profiles and "
             f"random streams); {len(rounds)} rounds. Every number: mean [95% CI] over trainees.", "",
             "## Suboptimal decisions (% of decision ticks whose joint assignment loses ticks against Q*)", "",
             header, "|---|---|" + "---|" * len(arms)]
    for i, row in enumerate(rounds):
        cells = [payload["arms"][arm]["by_round"][i] for arm in arms]
        lines.append(f"| {row['round']} | {row['dish']} | " + " | ".join(
            f"{c['suboptimal_rate']:.2%} [{c['suboptimal_ci'][0]:.2%}, {c['suboptimal_ci'][1]:.2%}]" for c in cells) + " |")
    lines += ["", "## Ticks per round", "", header, "|---|---|" + "---|" * len(arms)]
    for i, row in enumerate(rounds):
        cells = [payload["arms"][arm]["by_round"][i] for arm in arms]
        lines.append(f"| {row['round']} | {row['dish']} | " + " | ".join(
            f"{c['ticks']:.2f} [{c['ticks_ci'][0]:.2f}, {c['ticks_ci'][1]:.2f}]" for c in cells) + " |")
    lines += ["", "## The population's tips (mined from a pilot sample, shown in the static arm)", ""]
    for dish, tips in payload["population_tips"].items():
        lines.append(f"- {dish}: " + ("; ".join(f"{t['text']} (simulated gain {t['simulated_gain']:.2f})" for t in tips)
                                     if tips else "no tip found that helps these trainees"))
    lines += ["", "## Tips shown, last round", ""]
    for arm in arms:
        last = payload["arms"][arm]["by_round"][-1]
        lines.append(f"- {arm}: " + ", ".join(f"{tip} x{n}" for tip, n in last["tips"].items()))
    lines += ["", "![ticks by round per arm](study_ticks.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(out / "study_ticks.png", payload)
    return payload


def _plot(path: Path, payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for arm, data in payload["arms"].items():
        rows = data["by_round"]
        x = [r["round"] for r in rows]
        ax.errorbar(x, [r["ticks"] for r in rows], yerr=[[r["ticks"] - r["ticks_ci"][0] for r in rows],
                                                          [r["ticks_ci"][1] - r["ticks"] for r in rows]],
                    marker="o", capsize=3, label=arm)
    ax.set_xlabel("round")
    ax.set_ylabel("mean ticks (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
