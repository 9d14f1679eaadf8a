"""Conversions between the JAX env's state (packed slot sets, one kitchen) and the reference simulator's state."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bpjax.env import bitset
from bpjax.env.reference import RefState
from bpjax.env.types import EnvState


def to_reference(env_state: EnvState, n_slots: int) -> RefState:
    """The reference simulator's view of one (unbatched) JAX env state."""
    done = bitset.unpack_host(np.asarray(env_state.done_slots), n_slots)
    slots = [int(s) for s in env_state.worker_slot]
    until = [int(u) for u in env_state.worker_until]
    return RefState(tick=int(env_state.tick), done=tuple(bool(d) for d in done),
                    worker_slot=tuple(None if s < 0 else s for s in slots),
                    worker_finish=tuple(None if s < 0 else u for s, u in zip(slots, until)))


def from_reference(state: RefState) -> EnvState:
    """The JAX env state (unbatched) of one reference state."""
    return EnvState(tick=jnp.int32(state.tick), done_slots=jnp.asarray(bitset.pack(np.asarray(state.done, bool))),
                    worker_slot=jnp.asarray([-1 if s is None else s for s in state.worker_slot], jnp.int32),
                    worker_until=jnp.asarray([0 if f is None else f for f in state.worker_finish], jnp.int32))


def from_reference_batch(states) -> EnvState:
    """A batched JAX env state (leading axis N) of N reference states."""
    n_slots = len(states[0].done) if states else 0
    done = bitset.pack(np.asarray([s.done for s in states], bool).reshape(len(states), n_slots))
    return EnvState(tick=jnp.asarray([s.tick for s in states], jnp.int32),
                    done_slots=jnp.asarray(done),
                    worker_slot=jnp.asarray([[-1 if x is None else x for x in s.worker_slot] for s in states],
                                            jnp.int32),
                    worker_until=jnp.asarray([[0 if f is None else f for f in s.worker_finish] for s in states],
                                             jnp.int32))


def reference_from_arrays(tick, done_slots, worker_slot, worker_until, n_slots: int) -> list[RefState]:
    """Reference states of a batch given as host arrays (int[N], uint32[N, words], int[N, W], int[N, W])."""
    done = bitset.unpack_host(done_slots, n_slots)
    out = []
    for t, row, slots, until in zip(tick.tolist(), done.tolist(), worker_slot.tolist(), worker_until.tolist()):
        out.append(RefState(t, tuple(row), tuple(None if s < 0 else s for s in slots),
                            tuple(None if s < 0 else u for s, u in zip(slots, until))))
    return out
