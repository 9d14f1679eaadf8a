"""Conversions between the JAX env's state (bitmasks, one kitchen) and the reference simulator's state."""

from __future__ import annotations

import jax.numpy as jnp

from bpjax.env.reference import RefState
from bpjax.env.types import EnvState


def to_reference(env_state: EnvState, n_slots: int) -> RefState:
    """The reference simulator's view of one (unbatched) JAX env state."""
    done = int(env_state.done_slots)
    slots = [int(s) for s in env_state.worker_slot]
    until = [int(u) for u in env_state.worker_until]
    return RefState(tick=int(env_state.tick),
                    done=tuple(bool((done >> s) & 1) for s in range(n_slots)),
                    worker_slot=tuple(None if s < 0 else s for s in slots),
                    worker_finish=tuple(None if s < 0 else u for s, u in zip(slots, until)))


def from_reference(state: RefState) -> EnvState:
    """The JAX env state (unbatched) of one reference state."""
    done = sum(1 << s for s, d in enumerate(state.done) if d)
    return EnvState(tick=jnp.int32(state.tick), done_slots=jnp.uint32(done),
                    worker_slot=jnp.asarray([-1 if s is None else s for s in state.worker_slot], jnp.int32),
                    worker_until=jnp.asarray([0 if f is None else f for f in state.worker_finish], jnp.int32))


def from_reference_batch(states) -> EnvState:
    """A batched JAX env state (leading axis N) of N reference states."""
    done = [sum(1 << s for s, d in enumerate(state.done) if d) for state in states]
    return EnvState(tick=jnp.asarray([s.tick for s in states], jnp.int32),
                    done_slots=jnp.asarray(done, jnp.uint32),
                    worker_slot=jnp.asarray([[-1 if x is None else x for x in s.worker_slot] for s in states],
                                            jnp.int32),
                    worker_until=jnp.asarray([[0 if f is None else f for f in s.worker_finish] for s in states],
                                             jnp.int32))


def reference_from_arrays(tick, done_bits, worker_slot, worker_until, n_slots: int) -> list[RefState]:
    """Reference states of a batch given as host arrays (int[N], uint32[N], int[N, W], int[N, W])."""
    out = []
    for t, bits, slots, until in zip(tick.tolist(), done_bits.tolist(), worker_slot.tolist(), worker_until.tolist()):
        out.append(RefState(t, tuple(bool((bits >> s) & 1) for s in range(n_slots)),
                            tuple(None if s < 0 else s for s in slots),
                            tuple(None if s < 0 else u for s, u in zip(slots, until))))
    return out
