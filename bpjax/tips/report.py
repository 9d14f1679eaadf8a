"""What the tip stage hands to people and to the next tools: tips.json, report.md, tip_effect.png, and the
console summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bpjax.env.config import KitchenSpec
from bpjax.tips.recommend import SimulatedTip, TipReport
from bpjax.tips.score import TipScore

NO_TIP = "no tip found that helps these trainees"


def tip_entry(scored: TipScore, report: TipReport, spec: KitchenSpec) -> dict[str, Any]:
    """One tip as JSON: what it says, its first-order score, support and agreement, and (where simulated)
    what following it did."""
    tip = scored.tip
    simulated = next((t for t in report.simulated if t.scored is scored), None)
    entry = {
        "text": scored.text, "kind": tip.kind, "advice": tip.advice,
        "worker": None if tip.worker is None else spec.workers[tip.worker].name,
        "task_type": None if tip.task_type is None else spec.task_types[tip.task_type],
        "times": tip.times, "condition": tip.condition_names(spec),
        "score": round(scored.score, 3), "support": round(scored.support, 3),
        "disagreement": round(scored.disagreement, 3), "changed": round(scored.changed, 3),
        "simulated_gain": None, "simulated_gain_ci": None, "by_compliance": None, "suboptimal_rate": None,
    }
    if simulated is not None:
        first = simulated.evaluations[0]
        entry.update({
            "simulated_gain": round(first.saved, 3), "simulated_gain_ci": [round(x, 3) for x in first.saved_ci],
            "by_compliance": {str(float(e.compliance)): {"gain": round(e.saved, 3), "ci": [round(x, 3) for x in e.saved_ci]}
                              for e in simulated.evaluations},
            "suboptimal_rate": {"control": round(first.control_suboptimal, 4), "tip": round(first.tip_suboptimal, 4)},
            "by_round": first.by_round,
        })
    return entry


def tips_json(report: TipReport, spec: KitchenSpec, q_source: dict, trainees: dict, settings: dict,
              traces: dict | None = None) -> dict:
    """`traces`: where the traces came from and what was left out of them (rejected rounds, skipped files)."""
    recommended = []
    for rank, simulated in enumerate(report.recommended, start=1):
        recommended.append({"rank": rank, **tip_entry(simulated.scored, report, spec)})
    return {"recommended": recommended,
            "candidates": [tip_entry(c, report, spec) for c in report.candidates],
            "message": None if recommended else NO_TIP,
            "kitchen": spec.to_dict(),  # what the tips are for (the game checks it)
            "q_values": q_source, "trainees": trainees, "traces": traces, "settings": settings}


def console_lines(report: TipReport, spec: KitchenSpec) -> list[str]:
    """The recommended tips first, then the best candidate left out and why (or that none helps)."""
    lines = []
    if report.recommended:
        lines.append(f"Recommended ({len(report.recommended)} of {len(report.simulated)} simulated; simulated gain "
                     f"per round [95% CI], first-order score):")
        for rank, t in enumerate(report.recommended, start=1):
            lines.append(f"  #{rank} {t.scored.text}  gain {t.gain:.2f} [{t.ci[0]:.2f}, {t.ci[1]:.2f}]  "
                         f"score {t.scored.score:.2f}  support {t.scored.support:.2f}")
    else:
        lines.append(f"No tip recommended: {NO_TIP} ({len(report.simulated)} candidates simulated).")
    best = report.best_rejected()
    if best is not None:
        lines.append(f"Best candidate not recommended: {best.text} — {report.why_not(best)}.")
    return lines


def write_report(out: Path, report: TipReport, spec: KitchenSpec, q_source: dict, trainees: dict,
                 optimum_ticks: float, top: int = 10, source: dict | None = None) -> None:
    """report.md (and tip_effect.png when a tip is recommended); `source` as tips.json's "traces"."""
    exact = q_source["method"] == "exact"
    lines = ["# bpjax tip report", "",
             f"Kitchen: scenario `{spec.scenario}`, orders {[o.dish for o in spec.orders]}; "
             + (f"exact optimum **{optimum_ticks:g} ticks**." if exact else
                f"learned π* (greedy) **{optimum_ticks:g} ticks** (no exact solution: {q_source.get('reason')})"
                + (f"; no schedule finishes in fewer than {q_source['lower_bound_ticks']} ticks (a lower bound), so "
                   f"π* is at most {optimum_ticks - q_source['lower_bound_ticks']:g} ticks from optimal."
                   if q_source.get("lower_bound_ticks") is not None else ".")), "",
             f"Q: {q_source['summary']}.", "",
             f"Trainees: {trainees['summary']}", "",
             *_traces_lines(source),
             "## What the simulation rests on", "",
             f"Each tip is checked by simulating π_H, the policy learned from these trainees' decisions "
             f"(`{trainees['policy']}`), following it (compliance \"replan\": the trainee keeps choosing its "
             f"usual way among the actions the tip allows). π_H's own simulated rounds take "
             f"**{report.control['ticks']:.2f} ticks**; the trainees' recorded rounds took "
             f"**{report.trainee_ticks:.2f}**: the closer these are, the more the simulated gains can be trusted.",
             ""]
    if report.recommended:
        lines += ["## Recommended tips", "",
                  "Simulated gain at full compliance (ticks per round, 95% CI of paired rounds) beside the study's "
                  "first-order score (per decision tick, π* acting after the tip).", ""]
        lines += _table(report.recommended, report)
    else:
        lines += ["## Recommended tips", "", f"None: {NO_TIP}.", ""]
    rejected = [t for t in report.simulated if t not in report.recommended]
    if rejected:
        lines += ["", "## Simulated but not recommended", ""]
        lines += _table(rejected, report, reason=True)
    lines += ["", f"## Top candidates by first-order score ({len(report.candidates)} scored on "
                  f"{report.n_ticks} decision ticks of {report.n_rounds} rounds)", "",
              "| # | tip | kind | score | support | π* disagreement | why not recommended |", "|---|---|---|---|---|---|---|"]
    recommended = {id(t.scored) for t in report.recommended}
    for i, c in enumerate(report.candidates[:top], start=1):
        why = "recommended" if id(c) in recommended else report.why_not(c)
        lines.append(f"| {i} | {c.text} | {c.tip.kind} | {c.score:.2f} | {c.support:.2f} | {c.disagreement:.2f} | "
                     f"{why} |")
    if report.rule_lists:
        lines += ["", "## Rule lists (Bayesian Rule Lists at the trainees' costly decisions)", ""]
        for rule_list in report.rule_lists:
            for tip, support, confidence in zip(rule_list.tips, rule_list.support, rule_list.confidence):
                lines.append(f"- {tip.text(spec)} (support {support:.2f}, confidence {confidence:.2f})")
    if report.recommended:
        lines += _by_round(report.recommended[0])
        _plot(out / "tip_effect.png", report.recommended[0], optimum_ticks, "optimum" if exact else "learned π*")
        lines += ["", "![ticks by round with and without the top tip](tip_effect.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def _traces_lines(source: dict | None, shown: int = 20) -> list[str]:
    """Where the traces came from, and each round or file left out of them and why (all of them in tips.json)."""
    if source is None or source["source"] is None:
        return []
    lines = [f"Traces: `{source['source']}`; " + (f"{source['n_rejected']} rejected (skip_invalid=true), each "
                                                  "round or file left out with its reason:"
                                                  if source["n_rejected"] else "nothing rejected."), ""]
    for entry in source["rejected"][:shown]:
        lines.append(f"- {entry['what']}: {entry['reason']}")
    if source["n_rejected"] > shown:
        lines.append(f"- ... and {source['n_rejected'] - shown} more (every one in tips.json, \"traces\")")
    if source["rejected"]:
        lines.append("")
    if source["skipped_files"]:
        lines += [f"Skipped as not traces (no decision column): "
                  f"{', '.join(Path(f).name for f in source['skipped_files'])}.", ""]
    return lines


def _table(tips: list[SimulatedTip], report: TipReport, reason: bool = False) -> list[str]:
    header = "| # | tip | simulated gain [95% CI] | first-order score | support | π* disagreement | " \
             "suboptimal decisions: control → tip |" + (" why not |" if reason else "")
    lines = [header, "|---" * (7 + reason) + "|"]
    for i, t in enumerate(tips, start=1):
        first = t.evaluations[0]
        lines.append(f"| {i} | {t.scored.text} | {t.gain:.2f} [{t.ci[0]:.2f}, {t.ci[1]:.2f}] | {t.scored.score:.2f} | "
                     f"{t.scored.support:.2f} | {t.scored.disagreement:.2f} | {first.control_suboptimal:.1%} → "
                     f"{first.tip_suboptimal:.1%} |" + (f" {report.why_not(t.scored)} |" if reason else ""))
    return lines


def _by_round(top: SimulatedTip) -> list[str]:
    evaluations = top.evaluations
    lines = ["", f"## By round: {top.scored.text}", "",
             "| round | ticks, control | " + " | ".join(f"ticks, tip p={e.compliance:g}" for e in evaluations)
             + " | suboptimal, control | " + " | ".join(f"suboptimal, tip p={e.compliance:g}" for e in evaluations)
             + " |",
             "|---" * (3 + 2 * len(evaluations)) + "|"]
    for index, row in enumerate(evaluations[0].by_round):
        lines.append(f"| {row['round']} | {row['control_ticks']:.2f} | "
                     + " | ".join(f"{e.by_round[index]['tip_ticks']:.2f}" for e in evaluations)
                     + f" | {row['control_suboptimal']:.1%} | "
                     + " | ".join(f"{e.by_round[index]['tip_suboptimal']:.1%}" for e in evaluations) + " |")
    return lines


def _plot(path: Path, top: SimulatedTip, optimum_ticks: float, optimum_label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = top.evaluations[0]
    rounds = [row["round"] for row in first.by_round]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(rounds, [row["control_ticks"] for row in first.by_round], "o-", color="grey", label="control")
    for e in top.evaluations:
        ax.plot(rounds, [row["tip_ticks"] for row in e.by_round], "o-", label=f"tip, compliance {e.compliance:g}")
    ax.axhline(optimum_ticks, color="black", ls="--", lw=1, label=f"{optimum_label} {optimum_ticks:g}")
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel("mean ticks (simulated π_H)")
    ax.set_title(top.scored.text, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2))
