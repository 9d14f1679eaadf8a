"""What a tip is: "if [state], then [action]" in a few readable kinds, and the candidates the data is searched
over.

* **count** (the study's): "worker w should do task type k exactly j times" (j = 0 reads "never");
* **state**: "if ψ, assign w to a k subtask" / "if ψ, leave w idle", ψ a conjunction of at most
  `max_predicates` named predicates (:mod:`bpjax.tips.predicates`);
* **rule**: "assign" or "end the tick without assigning anyone" under a Bayesian rule list's condition
  (:mod:`bpjax.tips.rules`), where earlier rules of the list appear as "not (...)" clauses.

How each tip changes a tick's joint assignment, and where it applies, is :mod:`bpjax.tips.prescribe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from bpjax.env.config import KitchenSpec
from bpjax.tips.predicates import predicate_names

KINDS = ("count", "state", "rule")
ADVICE = ("times", "assign", "idle", "wait")


@dataclass(frozen=True)
class Clause:
    """All of `predicates` (column indices) hold — or, `negated`, not all of them."""

    predicates: tuple[int, ...]
    negated: bool = False

    def text(self, names: list[str]) -> str:
        body = " and ".join(names[p] for p in self.predicates)
        return f"not ({body})" if self.negated else body


@dataclass(frozen=True)
class Tip:
    kind: str                            # count | state | rule
    advice: str                          # times (count tips) | assign | idle | wait
    worker: int | None = None            # None for "wait"
    task_type: int | None = None         # times / assign
    times: int | None = None             # count tips: j
    condition: tuple[Clause, ...] = ()   # state / rule tips: every clause holds at the tick's start

    def text(self, spec: KitchenSpec) -> str:
        worker = f"the {spec.worker_label(self.worker)}" if self.worker is not None else ""
        kind = spec.task_types[self.task_type] if self.task_type is not None else ""
        if self.advice == "times":
            how = "never " + kind if self.times == 0 else \
                f"{kind} exactly {self.times} time{'s' if self.times > 1 else ''}"
            return f"{worker[0].upper()}{worker[1:]} should {how}."
        action = {"assign": f"assign {worker} to a {kind} subtask", "idle": f"leave {worker} idle",
                  "wait": "end the tick without assigning anyone"}[self.advice]
        if not self.condition:
            return f"{action[0].upper()}{action[1:]}{' whenever one is open' if self.advice == 'assign' else ''}."
        names = predicate_names(spec)
        return f"If {' and '.join(c.text(names) for c in self.condition)}, {action}."

    def condition_names(self, spec: KitchenSpec) -> list[str] | None:
        if self.kind == "count":
            return None
        names = predicate_names(spec)
        return [c.text(names) for c in self.condition]

    def rules_out(self, spec: KitchenSpec) -> list[tuple[int, int]]:
        """The (worker, task type) assignments following the tip can forbid — the habits it works against: its
        own pair for a count tip; for "assign w to k" w's other types; for "leave w idle" the types its
        condition names as open (all of w's otherwise); nothing for "wait" (it forbids everyone alike)."""
        if self.worker is None:
            return []
        types = range(len(spec.task_types))
        if self.advice == "assign":
            return [(self.worker, k) for k in types if k != self.task_type]
        if self.task_type is not None:
            return [(self.worker, self.task_type)]
        names = predicate_names(spec)
        named = [k for k in types if any(names.index(f"a {spec.task_types[k]} subtask is open") in c.predicates
                                         for c in self.condition if not c.negated)]
        return [(self.worker, k) for k in (named or types)]

    def implied(self, spec: KitchenSpec) -> set[int]:
        """Predicates that hold wherever the advice itself applies (the worker is idle; for an assignment,
        a subtask of its type is open): as conditions they add nothing."""
        n_workers = spec.n_workers
        out = set()
        if self.worker is not None:
            out.add(self.worker)  # "the w is idle"
        if self.advice in ("assign", "times"):
            out.add(n_workers + self.task_type)  # "a k subtask is open"
        return out


def count_tips(spec: KitchenSpec, max_times: int | None = None) -> list[Tip]:
    """Every (worker, type, j) the worker has the skill for, j = 0 .. `max_times` (default: the orders)."""
    max_times = len(spec.orders) if max_times is None else max_times
    types_present = set(spec.slot_types) - {-1}
    return [Tip("count", "times", w, k, j) for w, worker in enumerate(spec.workers)
            for k in range(len(spec.task_types)) if k in types_present and worker.ticks[k] is not None
            for j in range(max_times + 1)]


def state_tips(spec: KitchenSpec, max_predicates: int = 2) -> list[Tip]:
    """Every advice under every conjunction of up to `max_predicates` predicates (the empty one included),
    leaving out conditions that name a predicate the advice already implies."""
    n_predicates = len(predicate_names(spec))
    types_present = set(spec.slot_types) - {-1}
    advice = [Tip("state", "assign", w, k) for w, worker in enumerate(spec.workers)
              for k in range(len(spec.task_types)) if k in types_present and worker.ticks[k] is not None]
    advice += [Tip("state", "idle", w) for w in range(spec.n_workers)]
    out = []
    for size in range(max_predicates + 1):
        for columns in combinations(range(n_predicates), size):
            for tip in advice:
                if not set(columns) & tip.implied(spec):
                    out.append(Tip("state", tip.advice, tip.worker, tip.task_type,
                                   condition=(Clause(columns),) if columns else ()))
    return out


def tip_from_json(entry: dict, spec: KitchenSpec) -> Tip:
    """The tip a tips.json entry describes (its kind, advice, worker, task type, times and condition names),
    in this kitchen; ValueError naming what does not fit."""
    workers = [w.name for w in spec.workers]
    names = predicate_names(spec)

    def clause(text: str) -> Clause:
        negated = text.startswith("not (") and text.endswith(")")
        body = text[5:-1] if negated else text
        predicates = []
        for part in body.split(" and "):
            if part not in names:
                raise ValueError(f"condition: {part!r} is not a predicate of this kitchen")
            predicates.append(names.index(part))
        return Clause(tuple(predicates), negated)

    if entry.get("kind") not in KINDS or entry.get("advice") not in ADVICE:
        raise ValueError(f"kind/advice: {entry.get('kind')!r}/{entry.get('advice')!r} is not a tip of bpjax")
    worker = entry.get("worker")
    if worker is not None and worker not in workers:
        raise ValueError(f"worker: {worker!r} is not a worker of this kitchen ({', '.join(workers)})")
    task_type = entry.get("task_type")
    if task_type is not None and task_type not in spec.task_types:
        raise ValueError(f"task_type: {task_type!r} is not a task type of this kitchen")
    tip = Tip(entry["kind"], entry["advice"], None if worker is None else workers.index(worker),
              None if task_type is None else spec.task_types.index(task_type), entry.get("times"),
              tuple(clause(c) for c in entry.get("condition") or []))
    if "text" in entry and tip.text(spec) != entry["text"]:
        raise ValueError(f"text: {entry['text']!r} does not match the tip's fields ({tip.text(spec)!r})")
    return tip
