"""The kitchen MDP as a pure, jittable, vmappable JAX environment.

Rules: ``shared`` kitchen spec (see README). Interface (gymnax style)::

    env, params = make_kitchen(spec)
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

Actions are flat: ``a < W*S`` assigns worker ``a // S`` to slot ``a % S``; ``W*S`` ends the tick. After every
step, if no assignment is legal, time advances inside that step to the next tick where one is (or the episode
ends), so every decision the agent sees is a real choice; the step's reward is minus the ticks elapsed.

Illegal actions (busy worker, unavailable slot, missing skill, out of range, or any action on an ended
episode in :meth:`Kitchen.step_env`) are a no-op: state unchanged, reward 0, ``info["illegal_action"]`` True.
:meth:`Kitchen.step` auto-resets ended episodes, like gymnax.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.types import EnvParams, EnvState

NEVER = np.int32(2**30)  # a tick beyond any horizon


def make_params(spec: KitchenSpec) -> EnvParams:
    """Numeric tables of a validated kitchen."""
    n_workers, n_slots, per_order = spec.n_workers, spec.n_slots, spec.slots_per_order
    duration = np.zeros((n_workers, n_slots), np.int32)
    can_do = np.zeros(n_workers, np.uint32)
    predecessors = np.zeros(n_slots, np.uint32)
    slot_arrival = np.full(n_slots, NEVER, np.int32)
    slot_type = np.full(n_slots, len(spec.task_types), np.int32)
    real = 0
    for slot in range(n_slots):
        subtask = spec.slot_subtask(slot)
        if subtask is None:
            continue
        order = slot // per_order
        real |= 1 << slot
        slot_arrival[slot] = spec.orders[order].arrival
        slot_type[slot] = subtask.task_type
        predecessors[slot] = sum(1 << (order * per_order + p) for p in subtask.after)
        for w, worker in enumerate(spec.workers):
            ticks = worker.ticks[subtask.task_type]
            if ticks is not None:
                duration[w, slot] = ticks
                can_do[w] |= np.uint32(1 << slot)
    return EnvParams(
        duration=jnp.asarray(duration),
        can_do=jnp.asarray(can_do),
        predecessors=jnp.asarray(predecessors),
        slot_arrival=jnp.asarray(slot_arrival),
        slot_type=jnp.asarray(slot_type),
        order_arrival=jnp.asarray([o.arrival for o in spec.orders], jnp.int32),
        order_slots=jnp.asarray([sum(1 << slot for slot in range(o * per_order, (o + 1) * per_order)
                                     if spec.slot_subtask(slot) is not None)
                                 for o in range(len(spec.orders))], jnp.uint32),
        pred_by_shift=jnp.asarray([_predecessor_mask(spec, shift) for shift in predecessor_shifts(spec)],
                                  jnp.uint32),
        real=jnp.uint32(real),
        type_slots=jnp.asarray([sum(1 << slot for slot in range(n_slots) if slot_type[slot] == k)
                                for k in range(len(spec.task_types))], jnp.uint32),
        handoff=jnp.int32(spec.handoff),
        max_ticks=jnp.int32(spec.max_ticks),
    )


def predecessor_shifts(spec: KitchenSpec) -> tuple[int, ...]:
    """Distinct slot distances (successor - predecessor) over all precedence edges, in slot order.

    Grouping edges by distance lets all slots test "predecessors done" at once with a few shifts of the
    done bitmask, instead of one test per slot."""
    shifts = set()
    for slot in range(spec.n_slots):
        subtask = spec.slot_subtask(slot)
        if subtask is not None:
            shifts.update(slot % spec.slots_per_order - p for p in subtask.after)
    return tuple(sorted(shifts))


def _predecessor_mask(spec: KitchenSpec, shift: int) -> int:
    """Bits of the slots whose predecessor lies `shift` slots before them."""
    mask = 0
    for slot in range(spec.n_slots):
        subtask = spec.slot_subtask(slot)
        if subtask is not None and any(slot % spec.slots_per_order - p == shift for p in subtask.after):
            mask |= 1 << slot
    return mask


def _shift(bits: jax.Array, shift: int) -> jax.Array:
    return jnp.left_shift(bits, shift) if shift >= 0 else jnp.right_shift(bits, -shift)


def _unbits(mask: jax.Array, n: int) -> jax.Array:
    """Unpack a uint32 bitmask into n booleans along a new last axis."""
    return (jnp.right_shift(mask[..., None], jnp.arange(n, dtype=jnp.uint32)) & 1).astype(bool)


@dataclass(frozen=True)
class Kitchen:
    """Static sizes of a kitchen; all numbers live in :class:`EnvParams`."""

    n_workers: int
    n_slots: int
    n_types: int
    pred_shifts: tuple[int, ...] = ()  # see predecessor_shifts

    @property
    def n_actions(self) -> int:
        return self.n_workers * self.n_slots + 1

    @property
    def end_tick_action(self) -> int:
        return self.n_workers * self.n_slots

    @property
    def obs_size(self) -> int:
        return 3 * self.n_slots + self.n_workers * (self.n_types + 2) + 1

    # ---- state queries (all pure, work on one environment) ----------------------------------------
    def in_progress(self, state: EnvState) -> jax.Array:
        """Bitmask of slots held by a worker."""
        held = jnp.left_shift(jnp.uint32(1), jnp.maximum(state.worker_slot, 0).astype(jnp.uint32))
        return jnp.bitwise_or.reduce(jnp.where(state.worker_slot >= 0, held, jnp.uint32(0)))

    def available(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Bitmask of slots that are real, arrived, not started, with all predecessors done."""
        return self._available_at(state.tick, state.done, self.in_progress(state), params)

    def _available_at(self, tick, done, in_progress, params: EnvParams) -> jax.Array:
        arrived = jnp.bitwise_or.reduce(
            jnp.where(params.order_arrival <= tick[..., None], params.order_slots, jnp.uint32(0)), axis=-1)
        waiting = jnp.uint32(0)
        for index, shift in enumerate(self.pred_shifts):
            waiting = waiting | (params.pred_by_shift[index] & ~_shift(done, shift))
        return arrived & ~waiting & ~(done | in_progress)

    def legal_slots(self, state: EnvState, params: EnvParams) -> jax.Array:
        """uint32[W]: per worker, the bitmask of slots it may be assigned to now."""
        idle = state.worker_slot < 0
        return jnp.where(idle, self.available(state, params) & params.can_do, jnp.uint32(0))

    def action_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """bool[A]: exactly the legal actions (end tick always legal)."""
        assign = _unbits(self.legal_slots(state, params), self.n_slots).reshape(-1)
        return jnp.concatenate([assign, jnp.ones((1,), bool)])

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return (state.done & params.real) == params.real

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return ~self.is_terminal(state, params) & (state.tick >= params.max_ticks)

    def get_obs(self, state: EnvState, params: EnvParams) -> jax.Array:
        """float32[obs_size]: per slot (available, in progress, done); per worker (idle, one-hot type of
        the held subtask, ticks left); the tick. Built straight from the bitmasks, without gathers."""
        busy = state.worker_slot >= 0
        held = jnp.where(busy, jnp.left_shift(jnp.uint32(1), jnp.maximum(state.worker_slot, 0).astype(jnp.uint32)),
                         jnp.uint32(0))  # [W]
        in_progress = jnp.bitwise_or.reduce(held)
        available = self._available_at(state.tick, state.done, in_progress, params)
        slot_sets = jnp.stack([available, in_progress, state.done & params.real])  # [3]
        slots = jnp.right_shift(slot_sets[None, :], jnp.arange(self.n_slots, dtype=jnp.uint32)[:, None]) & 1
        held_type = (held[:, None] & params.type_slots[None, :]) != 0  # [W, K]
        workers = jnp.concatenate([(~busy)[:, None], held_type], axis=1).astype(jnp.float32)
        ticks_left = jnp.where(busy, state.worker_until - state.tick, 0).astype(jnp.float32)[:, None]
        return jnp.concatenate([slots.reshape(-1).astype(jnp.float32),
                                jnp.concatenate([workers, ticks_left], axis=1).reshape(-1),
                                state.tick[None].astype(jnp.float32)])

    def obs_scale(self, params: EnvParams) -> jax.Array:
        """float32[obs_size]: divide an observation by this to bring every feature into [0, 1] (ticks left by
        the longest subtask, the tick by the horizon) before feeding a network."""
        longest = jnp.max(params.duration) + params.handoff
        worker = jnp.concatenate([jnp.ones(self.n_types + 1), longest[None].astype(jnp.float32)])
        return jnp.concatenate([jnp.ones(3 * self.n_slots), jnp.tile(worker, self.n_workers),
                                params.max_ticks[None].astype(jnp.float32)])

    # ---- dynamics ---------------------------------------------------------------------------------
    def initial_state(self, params: EnvParams) -> EnvState:
        return EnvState(tick=jnp.int32(0), done=jnp.uint32(0),
                        worker_slot=jnp.full((self.n_workers,), -1, jnp.int32),
                        worker_until=jnp.zeros((self.n_workers,), jnp.int32))

    def reset(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """The round's first state (deterministic; `key` kept for the gymnax signature). No auto-advance."""
        del key
        state = self.initial_state(params)
        return self.get_obs(state, params), state

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        """One decision without auto-reset. Returns (state, reward, terminated, truncated, info)."""
        del key
        action = jnp.asarray(action, jnp.int32)
        n_assign = self.n_workers * self.n_slots
        over = self.is_terminal(state, params) | (state.tick >= params.max_ticks)
        worker = jnp.clip(action // self.n_slots, 0, self.n_workers - 1)
        slot = jnp.clip(action % self.n_slots, 0, self.n_slots - 1)
        is_end = action == n_assign
        slot_bit = jnp.left_shift(jnp.uint32(1), slot.astype(jnp.uint32))
        is_assign = (action >= 0) & (action < n_assign) & ((self.legal_slots(state, params)[worker] & slot_bit) != 0)
        legal = (is_end | is_assign) & ~over

        assigned = is_assign & (jnp.arange(self.n_workers) == worker)
        worker_slot = jnp.where(assigned, slot, state.worker_slot)
        worker_until = jnp.where(assigned, state.tick + params.duration[worker, slot] + params.handoff,
                                 state.worker_until)
        start = state.tick + is_end.astype(jnp.int32)
        advanced = self._advance(start, state.done, worker_slot, worker_until, params)
        next_state = jax.tree.map(lambda new, old: jnp.where(legal, new, old), advanced, state)

        reward = (state.tick - next_state.tick).astype(jnp.float32)
        terminated = self.is_terminal(next_state, params) & legal
        truncated = self.is_truncated(next_state, params) & legal
        info = {"illegal_action": ~legal, "ticks_elapsed": next_state.tick - state.tick}
        return next_state, reward, terminated, truncated, info

    def step(self, key, state: EnvState, action, params: EnvParams):
        """gymnax-style step with auto-reset: (obs, state, reward, terminated, truncated, info)."""
        next_state, reward, terminated, truncated, info = self.step_env(key, state, action, params)
        ended = terminated | truncated
        next_state = jax.tree.map(lambda r, s: jnp.where(ended, r, s), self.initial_state(params), next_state)
        return self.get_obs(next_state, params), next_state, reward, terminated, truncated, info

    def _advance(self, start, done, worker_slot, worker_until, params: EnvParams) -> EnvState:
        """Advance time from `start` to the first tick where an assignment is legal or the round ends.

        Without new assignments, legality only grows with time (slots stay available, idle workers stay
        idle), so the first decision tick has a closed form instead of a tick-by-tick loop: each unstarted
        slot is ready once its order has arrived and its in-progress predecessors finish; each worker is free
        now or when its subtask finishes; the earliest (ready, free) pair the worker can do is the next
        decision. Branch-free and a few dozen integer ops per environment, which keeps vmap fast.
        """
        busy = worker_slot >= 0
        held = jnp.where(busy, jnp.left_shift(jnp.uint32(1), jnp.maximum(worker_slot, 0).astype(jnp.uint32)),
                         jnp.uint32(0))
        started = done | jnp.bitwise_or.reduce(held)
        blocked = (params.predecessors & ~started) != 0  # [S]: waits on a predecessor nobody works on yet
        waits_on = (params.predecessors[:, None] & held) != 0  # [S, W]
        ready = jnp.maximum(params.slot_arrival, jnp.max(jnp.where(waits_on, worker_until, 0), axis=1))
        ready = jnp.where(blocked, NEVER, ready)
        unstarted = _unbits(params.real & ~started, self.n_slots)  # [S]
        free = jnp.where(busy, worker_until, 0)  # [W]
        pairs = _unbits(params.can_do, self.n_slots) & unstarted  # [W, S]
        next_legal = jnp.min(jnp.where(pairs, jnp.maximum(ready, free[:, None]), NEVER))
        all_started = (params.real & ~started) == 0
        finish_all = jnp.where(all_started, jnp.max(jnp.where(busy, worker_until, 0)), NEVER)
        tick = jnp.minimum(jnp.maximum(start, jnp.minimum(next_legal, finish_all)), params.max_ticks)

        finished = busy & (worker_until <= tick)
        return EnvState(
            tick=tick,
            done=done | jnp.bitwise_or.reduce(jnp.where(finished, held, jnp.uint32(0))),
            worker_slot=jnp.where(finished, -1, worker_slot),
            worker_until=jnp.where(finished, 0, worker_until),
        )


def _popcount(bits: jax.Array) -> jax.Array:
    return jax.lax.population_count(bits).astype(jnp.int32)


def _nth_set_bit(bits: jax.Array, n: jax.Array) -> jax.Array:
    """Position of the n-th (0-based) set bit of a uint32, by binary search on popcounts of the low half."""
    position = jnp.zeros_like(n)
    for width in (16, 8, 4, 2, 1):
        low = _popcount(bits & jnp.uint32((1 << width) - 1))
        skip = n >= low
        n = jnp.where(skip, n - low, n)
        bits = jnp.where(skip, jnp.right_shift(bits, width), bits)
        position = jnp.where(skip, position + width, position)
    return position


def sample_legal_action(env: Kitchen, uniform: jax.Array, legal_slots: jax.Array,
                        allow_end_tick: jax.Array | bool = True) -> jax.Array:
    """Uniform legal action from one uniform in [0, 1) and the per-worker legal bitmasks.

    Picks the r-th legal action by prefix popcounts instead of a categorical over the full mask: random play
    then costs a few integer ops per step. Without `allow_end_tick`, ending the tick is drawn only when no
    assignment is legal."""
    counts = _popcount(legal_slots)  # [W]
    n_assign = jnp.sum(counts)
    total = n_assign + jnp.where(allow_end_tick | (n_assign == 0), 1, 0)
    rank = jnp.minimum((uniform * total).astype(jnp.int32), total - 1)
    before = jnp.cumsum(counts) - counts  # legal assignments of earlier workers
    in_worker = (rank >= before) & (rank < before + counts)
    worker = jnp.argmax(in_worker)
    slot = _nth_set_bit(jnp.sum(jnp.where(in_worker, legal_slots, jnp.uint32(0)), dtype=jnp.uint32),
                        rank - jnp.sum(jnp.where(in_worker, before, 0)))
    return jnp.where(rank < n_assign, worker * env.n_slots + slot, env.end_tick_action).astype(jnp.int32)


def make_kitchen(spec: KitchenSpec) -> tuple[Kitchen, EnvParams]:
    """The environment and its default params for a validated kitchen."""
    return Kitchen(spec.n_workers, spec.n_slots, len(spec.task_types), predecessor_shifts(spec)), make_params(spec)
