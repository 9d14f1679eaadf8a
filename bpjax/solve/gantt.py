"""Readable renderings of a schedule: a text Gantt chart (one row per worker) and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bpjax.solve.solver import ScheduledTask


def _order_number(task: ScheduledTask) -> str:
    return task.label.split("#", 1)[1].split(":", 1)[0]


def type_letters(task_types: Sequence[str]) -> dict[str, str]:
    """A distinct capital letter per task type, the first free one of its name (chop C, cook O, plate P)."""
    letters: dict[str, str] = {}
    for name in task_types:
        free = [c for c in name.upper() + "ABDEFGIJKLMNQRSTUVWXYZ" if c.isalpha() and c not in letters.values()
                and c != "H"]
        letters[name] = free[0]
    return letters


def gantt_text(schedule: Sequence[ScheduledTask], workers: Sequence[str], ticks: int, handoff: int,
               task_types: Sequence[str]) -> str:
    """Two characters per tick: task letter + order number while working (e.g. 'O2' = cooking order 2),
    'h2' during the hand-off tick(s), ' .' when idle; a legend line first."""
    letters = type_letters(task_types)
    width = max(len(w) for w in workers)
    header = " " * width + " |" + "".join(f"{t:<10d}" for t in range(0, ticks, 5))[: 2 * ticks]
    legend = ", ".join(f"{letter}={name}" for name, letter in letters.items())
    rows = [f"{'':>{width}}  ({legend}, h=hand-off, digit=order)", header]
    for worker in workers:
        cells = [" ."] * ticks
        for task in schedule:
            if task.worker != worker:
                continue
            number = _order_number(task)
            for tick in range(task.start, min(task.finish, ticks)):
                hand_off = tick >= task.finish - handoff
                cells[tick] = ("h" if hand_off else letters[task.task_type]) + number[-1]
        rows.append(f"{worker:>{width}} |" + "".join(cells))
    return "\n".join(rows)


def gantt_png(schedule: Sequence[ScheduledTask], workers: Sequence[str], ticks: int, handoff: int,
              task_types: Sequence[str], path: Path, title: str = "") -> Path:
    """Save a Gantt chart of the schedule (bars = working time, hatched = hand-off)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    letters = type_letters(task_types)
    types = list(task_types)
    colours = {t: plt.cm.tab10(i) for i, t in enumerate(types)}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * ticks), 0.7 * len(workers) + 1.2))
    for row, worker in enumerate(workers):
        for task in (t for t in schedule if t.worker == worker):
            work = task.finish - task.start - handoff
            ax.barh(row, work, left=task.start, color=colours[task.task_type], edgecolor="black")
            ax.barh(row, handoff, left=task.start + work, color=colours[task.task_type], alpha=0.35,
                    hatch="//", edgecolor="black")
            ax.text(task.start + work / 2, row, f"{letters[task.task_type]}{_order_number(task)}",
                    ha="center", va="center", fontsize=8)
    ax.set_yticks(range(len(workers)), workers)
    ax.invert_yaxis()
    ax.set_xlim(0, ticks)
    ax.set_xlabel("tick")
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[t]) for t in types]
    ax.legend(handles, [f"{letters[t]} = {t}" for t in types], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")   # grows to fit the outside legend and a long title
    plt.close(fig)
    return path
