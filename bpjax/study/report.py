"""The simulated experiment's outputs: study.json (every number with its 95% interval), report.md with the
pilot-style table (suboptimal decisions % by arm x round), the paired differences between arms, the last
round by kind of trainee, and study_ticks.png (ticks by round per arm)."""

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


def _share(r) -> np.ndarray:
    """Each trainee's share of suboptimal decision ticks in round `r`."""
    return r.suboptimal[:, 0] / np.maximum(r.suboptimal[:, 1], 1)


def study_json(result: StudyResult) -> dict:
    arms: dict[str, dict] = {}
    kinds = np.asarray(result.kinds)
    for r in result.rounds:
        ticks, ticks_ci = _mean_ci(r.ticks)
        rate, rate_ci = _mean_ci(_share(r))
        arms.setdefault(r.arm, {"by_round": []})["by_round"].append({
            "round": r.round, "dish": r.dish, "ticks": round(ticks, 4), "ticks_ci": ticks_ci,
            "suboptimal_rate": round(rate, 5), "suboptimal_ci": rate_ci,
            "tip_shown": round(float(np.mean([t is not None for t in r.tips])), 4),
            "tips": _counts(r.tips),
            "by_kind": {kind: {"trainees": int((kinds == kind).sum()),
                               "suboptimal_rate": round(float(_share(r)[kinds == kind].mean()), 5),
                               "tips": _counts([t for t, k in zip(r.tips, kinds) if k == kind])}
                        for kind in dict.fromkeys(result.kinds)}})
    settings = asdict(result.settings)
    return {"arms": arms, "paired": paired_differences(result), "population_tips": result.population_tips,
            "trainees": result.trainees, "final_habits": _habits_by_kind(result), "settings": settings,
            "seconds": round(result.seconds, 2), "timing": {k: round(v, 2) for k, v in result.timing.items()}}


def paired_differences(result: StudyResult) -> dict[str, list[dict]]:
    """Per tip arm other than static, round by round: its suboptimal share and ticks minus the static arm's, per
    trainee (the arms see the same trainees and random streams), mean with its 95% interval. Negative: fewer."""
    by_arm = {}
    for r in result.rounds:
        by_arm.setdefault(r.arm, {})[r.round] = r
    if "static" not in by_arm:
        return {}
    out = {}
    for arm in by_arm:
        if arm in ("static", "control"):
            continue
        rows = []
        for number, r in by_arm[arm].items():
            base = by_arm["static"][number]
            rate, rate_ci = _mean_ci(_share(r) - _share(base))
            ticks, ticks_ci = _mean_ci(r.ticks.astype(float) - base.ticks)
            rows.append({"round": number, "dish": r.dish, "suboptimal_rate": round(rate, 5), "suboptimal_ci": rate_ci,
                         "ticks": round(ticks, 4), "ticks_ci": ticks_ci})
        out[f"{arm} - static"] = rows
    return out


def _habits_by_kind(result: StudyResult) -> dict[str, dict[str, dict[str, float]]]:
    """Per arm and kind of trainee, the mean strength left of each habit a followed tip weakened (1 = untouched;
    trainees whose habit no tip touched count as 1)."""
    out: dict[str, dict] = {}
    for arm, habits in result.final_habits.items():
        for kind in dict.fromkeys(result.kinds):
            mine = [h for h, k in zip(habits, result.kinds) if k == kind]
            pairs = sorted({pair for h in mine for pair in h})
            out.setdefault(arm, {})[kind] = {pair: round(float(np.mean([h.get(pair, 1.0) for h in mine])), 4)
                                             for pair in pairs}
    return out


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
    if payload["paired"]:
        lines += ["", "## Paired differences from the static arm (percentage points of suboptimal decisions; "
                      "ticks)", "",
                  "Per trainee, the same trainee's round in the two arms; mean [95% CI]. Negative: fewer than "
                  "static.", "",
                  "| round | dish | " + " | ".join(payload["paired"]) + " |",
                  "|---|---|" + "---|" * len(payload["paired"])]
        for i, row in enumerate(rounds):
            cells = [pairs[i] for pairs in payload["paired"].values()]
            lines.append(f"| {row['round']} | {row['dish']} | " + " | ".join(
                f"{100 * c['suboptimal_rate']:+.2f} [{100 * c['suboptimal_ci'][0]:+.2f}, "
                f"{100 * c['suboptimal_ci'][1]:+.2f}]; {c['ticks']:+.2f} [{c['ticks_ci'][0]:+.2f}, "
                f"{c['ticks_ci'][1]:+.2f}]" for c in cells) + " |")
    last = {arm: payload["arms"][arm]["by_round"][-1] for arm in arms}
    kinds = list(last[arms[0]]["by_kind"])
    if kinds:
        lines += ["", f"## The last round by kind of trainee (suboptimal decisions, mean over the kind)", "",
                  "| kind | trainees | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]
        for kind in kinds:
            lines.append(f"| {kind} | {last[arms[0]]['by_kind'][kind]['trainees']} | " + " | ".join(
                f"{last[arm]['by_kind'][kind]['suboptimal_rate']:.2%}" for arm in arms) + " |")
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
        lines.append(f"- {arm}: " + ", ".join(f"{tip} x{n}" for tip, n in last[arm]["tips"].items()))
        for kind in kinds:
            shown = last[arm]["by_kind"][kind]["tips"]
            lines.append(f"  - {kind}: " + ", ".join(f"{tip} x{n}" for tip, n in shown.items()))
    if payload["timing"]:
        lines += ["", f"Run time {payload['seconds']:.1f} s: " + ", ".join(
            f"{part} {seconds:.1f} s" for part, seconds in payload["timing"].items()) + "."]
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
