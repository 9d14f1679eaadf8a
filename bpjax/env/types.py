"""Environment state, parameters and observation (gymnax style: pytrees, params separate from state; the
action mask inside the observation, as in Jumanji).

Sets of slots are packed into bits, uint32[..., words] with words = ceil(slots / 32) (bit s % 32 of word
s // 32 = slot s; ``bpjax.env.bitset``): per-slot boolean arrays were an order of magnitude slower to step on
CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from flax import struct


@struct.dataclass
class EnvState:
    tick: jax.Array          # int32 scalar; the on-screen counter is tick + 1
    done_slots: jax.Array    # uint32[words]: the finished slots
    worker_slot: jax.Array   # int32[W]: slot held, -1 when idle
    worker_until: jax.Array  # int32[W]: tick at which the worker is idle again (0 when idle)


@struct.dataclass
class EnvParams:
    """Every number of one kitchen. Kitchens of one shape (workers, orders, slots per order, task types)
    share one program and can be vmapped over (``bpjax.env.population``)."""

    duration: jax.Array      # int32[W, S]: skill ticks of worker w for slot s (0 where impossible)
    can_do: jax.Array        # uint32[W, words]: the real slots each worker has the skill for
    slot_type: jax.Array     # int32[S]: task type index (padding: K, one-hot of zeros)
    order_arrival: jax.Array  # int32[O]
    order_slots: jax.Array   # uint32[O, words]: each order's real slots
    pred_by_shift: jax.Array  # uint32[D, words]: slots whose predecessor is Kitchen.pred_shifts[d] slots before
    type_slots: jax.Array    # uint32[K, words]: the slots of each task type
    real: jax.Array          # uint32[words]: the real (non-padding) slots
    handoff: jax.Array       # int32
    max_ticks: jax.Array     # int32


class Observation(NamedTuple):
    """What an agent sees: the features a network takes, and which actions are legal."""

    features: jax.Array     # float32[obs_size], every feature in [0, 1] (see Kitchen.obs_scale)
    action_mask: jax.Array  # bool[n_actions]: exactly the legal actions ("end tick" always)
