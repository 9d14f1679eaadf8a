"""Named boolean predicates of a kitchen state — the vocabulary of state tips and rule lists — computed for
many states at once with numpy, from trace states (reference) or from a batch of simulated JAX env states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bpjax.env import bitset
from bpjax.env.config import KitchenSpec
from bpjax.env.reference import RefState


@dataclass
class StateBatch:
    """N kitchen states as arrays: the tick, each worker's slot (-1 idle) and which slots are done."""

    tick: np.ndarray         # int[N]
    worker_slot: np.ndarray  # int[N, W]
    done: np.ndarray         # bool[N, S]

    @classmethod
    def from_reference(cls, states: Sequence[RefState], n_slots: int) -> "StateBatch":
        n_workers = len(states[0].worker_slot) if states else 0
        return cls(np.asarray([s.tick for s in states], np.int64).reshape(len(states)),
                   np.asarray([[-1 if x is None else x for x in s.worker_slot] for s in states],
                              np.int64).reshape(len(states), n_workers),
                   np.asarray([s.done for s in states], bool).reshape(len(states), n_slots))

    @classmethod
    def from_bits(cls, tick: np.ndarray, worker_slot: np.ndarray, done_bits: np.ndarray, n_slots: int
                  ) -> "StateBatch":
        """From a JAX env state's arrays (the done slots packed, uint32[N, words] per state)."""
        return cls(np.asarray(tick, np.int64), np.asarray(worker_slot, np.int64),
                   bitset.unpack_host(done_bits, n_slots))

    def take(self, rows: np.ndarray) -> "StateBatch":
        return StateBatch(self.tick[rows], self.worker_slot[rows], self.done[rows])


def available(batch: StateBatch, spec: KitchenSpec) -> np.ndarray:
    """bool[N, S]: slots that are real, arrived, not started and whose predecessors are done."""
    n_slots, per_order = spec.n_slots, spec.slots_per_order
    real = np.asarray(spec.slot_types) >= 0
    arrival = np.asarray([spec.orders[s // per_order].arrival for s in range(n_slots)])
    # precedence edges (slot, predecessor slot): a list, not an S x S matrix, so large kitchens stay cheap
    edges = np.asarray([(s, (s // per_order) * per_order + p) for s in range(n_slots)
                        for p in (spec.slot_subtask(s).after if spec.slot_subtask(s) else ())], np.int64).reshape(-1, 2)
    held = np.zeros_like(batch.done)
    rows, workers = np.nonzero(batch.worker_slot >= 0)
    held[rows, batch.worker_slot[rows, workers]] = True
    waiting = np.zeros_like(batch.done)
    for s, p in edges:
        waiting[:, s] |= ~batch.done[:, p]
    return real & (arrival <= batch.tick[:, None]) & ~batch.done & ~held & ~waiting


def predicate_names(spec: KitchenSpec) -> list[str]:
    """The predicates' names, in column order (a tip's condition refers to them by index)."""
    names = [f"the {spec.worker_label(w)} is idle" for w in range(spec.n_workers)]
    names += [f"a {kind} subtask is open" for kind in spec.task_types]
    names.append("everyone is idle")
    names += [f"at least {n} {kind} subtask{'s' if n > 1 else ''} done"
              for kind in spec.task_types for n in range(1, len(spec.orders))]
    return names


def predicates(batch: StateBatch, spec: KitchenSpec) -> np.ndarray:
    """bool[N, F]: the value of every predicate of :func:`predicate_names` in every state."""
    slot_type = np.asarray(spec.slot_types)
    idle = batch.worker_slot < 0
    open_slots = available(batch, spec)
    columns = [idle[:, w] for w in range(spec.n_workers)]
    columns += [(open_slots & (slot_type == k)).any(axis=1) for k in range(len(spec.task_types))]
    columns.append(idle.all(axis=1))
    done_of_type = np.stack([(batch.done & (slot_type == k)).sum(axis=1) for k in range(len(spec.task_types))], 1)
    columns += [done_of_type[:, k] >= n for k in range(len(spec.task_types)) for n in range(1, len(spec.orders))]
    return np.stack(columns, axis=1).reshape(len(batch.tick), len(columns))
