"""The kitchen MDP as a pure, jittable, vmappable JAX environment.

Rules: ``shared`` kitchen spec (see ``docs/env.md``). Interface (gymnax style, the action mask inside the
observation as in Jumanji)::

    env, params = make_kitchen(spec)
    obs, state = env.reset(key, params)                 # obs: Observation(features, action_mask)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)  # auto-resets
    state = env.reset_env(key, params)                  # the state-only pair: no observation built,
    state, reward, terminated, truncated, info = env.step_env(key, state, action, params)  # no auto-reset

Actions are flat: ``a < W*S`` assigns worker ``a // S`` to slot ``a % S``; ``W*S`` ends the tick. After every
step, if no assignment is legal, time advances inside that step to the next tick where one is (or the episode
ends), so every decision the agent sees is a real choice; the step's reward is minus the ticks elapsed.

Illegal actions (busy worker, unavailable slot, missing skill, out of range, or any action on an ended
episode in :meth:`Kitchen.step_env`) are a no-op: state unchanged, reward 0, ``info["illegal_action"]`` True
— unless the kitchen is built with ``illegal_ends_tick`` (the gymnax adapter's rule, for agents that ignore
the mask): then an illegal action on a running episode ends the tick, so time passes and costs at least -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from bpjax.env.config import KitchenSpec
from bpjax.env.types import EnvParams, EnvState, Observation

def make_params(spec: KitchenSpec) -> EnvParams:
    """Numeric tables of a validated kitchen."""
    n_workers, n_slots, per_order = spec.n_workers, spec.n_slots, spec.slots_per_order
    duration = np.zeros((n_workers, n_slots), np.int32)
    can_do = np.zeros(n_workers, np.uint32)
    slot_type = np.full(n_slots, len(spec.task_types), np.int32)
    real = 0
    for slot in range(n_slots):
        subtask = spec.slot_subtask(slot)
        if subtask is None:
            continue
        real |= 1 << slot
        slot_type[slot] = subtask.task_type
        for w, worker in enumerate(spec.workers):
            ticks = worker.ticks[subtask.task_type]
            if ticks is not None:
                duration[w, slot] = ticks
                can_do[w] |= np.uint32(1 << slot)
    return EnvParams(
        duration=jnp.asarray(duration),
        can_do=jnp.asarray(can_do),
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
    """Static sizes of a kitchen; all numbers live in :class:`EnvParams`.

    The dynamics are written per worker and per order with Python loops over these static sizes, on scalar
    bitmasks: under ``vmap`` every intermediate is then one value per environment, so XLA fuses a whole step
    into a few wide elementwise loops instead of many small per-slot/per-worker arrays and reductions (which
    it fused poorly and recomputed in every consumer)."""

    n_workers: int
    n_slots: int
    n_types: int
    pred_shifts: tuple[int, ...] = ()  # see predecessor_shifts
    staggered_arrivals: bool = True  # False when every order is there at tick 0 (skips arrival bookkeeping)
    illegal_ends_tick: bool = False  # an illegal action on a running round ends the tick instead of a no-op

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
    def _held(self, worker_slot) -> list[jax.Array]:
        """Per worker, the bit of the slot it holds (0 when idle: a shift by 2**32 - 1 gives 0 in XLA)."""
        return [jnp.left_shift(jnp.uint32(1), worker_slot[w].astype(jnp.uint32)) for w in range(self.n_workers)]

    def in_progress(self, state: EnvState) -> jax.Array:
        """Bitmask of slots held by a worker."""
        return _or_all(self._held(state.worker_slot))

    def available(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Bitmask of slots that are real, arrived, not started, with all predecessors done."""
        return self._available_at(state.tick, state.done_slots, self.in_progress(state), params)

    def _arrived(self, tick, params: EnvParams) -> jax.Array:
        if not self.staggered_arrivals:
            return params.real
        return _or_all([jnp.where(params.order_arrival[o] <= tick, params.order_slots[o], jnp.uint32(0))
                        for o in range(params.order_arrival.shape[-1])])

    def _waiting(self, done, params: EnvParams) -> jax.Array:
        """Bitmask of slots with a predecessor not done yet."""
        waiting = jnp.uint32(0)
        for index, shift in enumerate(self.pred_shifts):
            waiting = waiting | (params.pred_by_shift[index] & ~_shift(done, shift))
        return waiting

    def _available_at(self, tick, done, in_progress, params: EnvParams) -> jax.Array:
        return self._arrived(tick, params) & ~self._waiting(done, params) & ~(done | in_progress)

    def _legal_per_worker(self, state: EnvState, params: EnvParams) -> list[jax.Array]:
        available = self.available(state, params)
        return [jnp.where(state.worker_slot[w] < 0, available & params.can_do[w], jnp.uint32(0))
                for w in range(self.n_workers)]

    def legal_slots(self, state: EnvState, params: EnvParams) -> jax.Array:
        """uint32[W]: per worker, the bitmask of slots it may be assigned to now."""
        return jnp.stack(self._legal_per_worker(state, params))

    def action_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """bool[A]: exactly the legal actions (end tick always legal)."""
        assign = _unbits(self.legal_slots(state, params), self.n_slots).reshape(-1)
        return jnp.concatenate([assign, jnp.ones((1,), bool)])

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return (state.done_slots & params.real) == params.real

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return ~self.is_terminal(state, params) & (state.tick >= params.max_ticks)

    def get_obs(self, state: EnvState, params: EnvParams) -> Observation:
        """The observation of `state`: scaled features (:meth:`raw_features` / :meth:`obs_scale`, all in
        [0, 1]) and the action mask."""
        features = self.raw_features(state, params) / self.obs_scale(params)
        return Observation(features, self.action_mask(state, params))

    def raw_features(self, state: EnvState, params: EnvParams) -> jax.Array:
        """float32[obs_size], unscaled (the reference simulator's and the traces' observation): per slot
        (available, in progress, done); per worker (idle, one-hot type of the held subtask, ticks left); the
        tick. Built straight from the bitmasks, without gathers."""
        busy = state.worker_slot >= 0
        held = jnp.stack(self._held(state.worker_slot))  # [W]
        in_progress = jnp.bitwise_or.reduce(held)
        available = self._available_at(state.tick, state.done_slots, in_progress, params)
        slot_sets = jnp.stack([available, in_progress, state.done_slots & params.real])  # [3]
        slot_sets = _materialise(slot_sets)  # once, not once per slot feature
        slots = jnp.right_shift(slot_sets[None, :], jnp.arange(self.n_slots, dtype=jnp.uint32)[:, None]) & 1
        held_type = (held[:, None] & params.type_slots[None, :]) != 0  # [W, K]
        workers = jnp.concatenate([(~busy)[:, None], held_type], axis=1).astype(jnp.float32)
        ticks_left = jnp.where(busy, state.worker_until - state.tick, 0).astype(jnp.float32)[:, None]
        return jnp.concatenate([slots.reshape(-1).astype(jnp.float32),
                                jnp.concatenate([workers, ticks_left], axis=1).reshape(-1),
                                state.tick[None].astype(jnp.float32)])

    def obs_scale(self, params: EnvParams) -> jax.Array:
        """float32[obs_size]: :meth:`raw_features` divided by this lie in [0, 1] (ticks left by the longest
        subtask plus hand-off, the tick by the horizon); traces store raw features, so learners on traces
        divide by it too."""
        longest = jnp.max(params.duration) + params.handoff
        worker = jnp.concatenate([jnp.ones(self.n_types + 1), longest[None].astype(jnp.float32)])
        return jnp.concatenate([jnp.ones(3 * self.n_slots), jnp.tile(worker, self.n_workers),
                                params.max_ticks[None].astype(jnp.float32)])

    # ---- dynamics ---------------------------------------------------------------------------------
    def reset_env(self, key: jax.Array | None, params: EnvParams) -> EnvState:
        """The round's first state, without an observation (deterministic: `key` is kept for the gymnax
        signature and may be None). No auto-advance."""
        del key
        return EnvState(tick=jnp.int32(0), done_slots=jnp.uint32(0),
                        worker_slot=jnp.full((self.n_workers,), -1, jnp.int32),
                        worker_until=jnp.zeros((self.n_workers,), jnp.int32))

    def reset(self, key: jax.Array | None, params: EnvParams) -> tuple[Observation, EnvState]:
        """(observation, state) of the round's first state."""
        state = self.reset_env(key, params)
        return self.get_obs(state, params), state

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        """One decision without auto-reset and without building an observation (the fast path for rollouts
        that act on the state). Returns (state, reward, terminated, truncated, info)."""
        del key
        return self._finish_step(state, *self._transition(state, action, params), params, auto_reset=False)

    def step(self, key, state: EnvState, action, params: EnvParams):
        """One decision with auto-reset: (observation, state, reward, terminated, truncated, info). When the
        round ended, the state and observation are the next round's first."""
        del key
        next_state, reward, terminated, truncated, info = self._finish_step(
            state, *self._transition(state, action, params), params, auto_reset=True)
        return self.get_obs(next_state, params), next_state, reward, terminated, truncated, info

    def _transition(self, state: EnvState, action, params: EnvParams):
        """The next state as per-env scalars (tick, done slots, per-worker slot and until lists), whether the
        step took effect, and whether the action was legal (the two differ under `illegal_ends_tick`)."""
        action = jnp.asarray(action, jnp.int32)
        action = _materialise(action)  # computed once, not inside every consumer (see _materialise)
        n_assign = self.n_workers * self.n_slots
        over = self.is_terminal(state, params) | (state.tick >= params.max_ticks)
        worker = action // self.n_slots
        slot = action % self.n_slots
        is_end = action == n_assign
        slot_bit = jnp.left_shift(jnp.uint32(1), slot.astype(jnp.uint32))
        pick = [worker == w for w in range(self.n_workers)]  # all False for an out-of-range action
        legal_of_worker = _select(pick, self._legal_per_worker(state, params))
        is_assign = (action >= 0) & (action < n_assign) & ((legal_of_worker & slot_bit) != 0)
        is_assign = _materialise(is_assign.astype(jnp.int32)) != 0  # read by every per-worker update
        legal = (is_end | is_assign) & ~over
        if self.illegal_ends_tick:  # played as "end tick" (still flagged illegal in info)
            is_end = ~is_assign

        # the chosen worker's ticks for the slot's task type, by bit tests instead of a gather
        ticks = self._ticks_by_type(params)  # [W, K]
        duration = jnp.int32(0)
        for k in range(self.n_types):
            of_worker = _select(pick, [ticks[w, k] for w in range(self.n_workers)])
            duration = duration + jnp.where((params.type_slots[k] & slot_bit) != 0, of_worker, 0)
        until = _materialise(state.tick + duration + params.handoff)
        worker_slot = [jnp.where(is_assign & pick[w], slot, state.worker_slot[w]) for w in range(self.n_workers)]
        worker_until = [jnp.where(is_assign & pick[w], until, state.worker_until[w]) for w in range(self.n_workers)]
        start = state.tick + is_end.astype(jnp.int32)
        tick, done, worker_slot, worker_until = self._advance(start, state.done_slots, worker_slot, worker_until,
                                                              params)
        acts = ~over if self.illegal_ends_tick else legal
        keep = lambda new, old: jnp.where(acts, new, old)  # noqa: E731  (a no-op keeps the state)
        return (keep(tick, state.tick), keep(done, state.done_slots),
                [keep(s, state.worker_slot[w]) for w, s in enumerate(worker_slot)],
                [keep(u, state.worker_until[w]) for w, u in enumerate(worker_until)], acts, legal)

    def _finish_step(self, state: EnvState, tick, done, worker_slot, worker_until, acts, legal,
                     params: EnvParams, auto_reset: bool):
        terminal = (done & params.real) == params.real
        terminated = terminal & acts
        truncated = ~terminal & (tick >= params.max_ticks) & acts
        reward = (state.tick - tick).astype(jnp.float32)
        elapsed = tick - state.tick
        if auto_reset:
            first = self.reset_env(None, params)
            restart = lambda new, old: jnp.where(terminated | truncated, new, old)  # noqa: E731
            tick, done = restart(first.tick, tick), restart(first.done_slots, done)
            worker_slot = [restart(first.worker_slot[w], s) for w, s in enumerate(worker_slot)]
            worker_until = [restart(first.worker_until[w], u) for w, u in enumerate(worker_until)]
        # Materialise every output as one value per env before anything is stacked per worker or read by the
        # observation: otherwise XLA fuses the whole step into each element of every consumer (recomputing it
        # W times per worker array and about obs_size times for the observation).
        tick, done = _materialise(tick), _materialise(done)
        worker_slot = [_materialise(x) for x in worker_slot]
        worker_until = [_materialise(x) for x in worker_until]
        next_state = EnvState(tick=tick, done_slots=done, worker_slot=jnp.stack(worker_slot),
                              worker_until=jnp.stack(worker_until))
        return next_state, reward, terminated, truncated, {"illegal_action": ~legal, "ticks_elapsed": elapsed}

    def _ticks_by_type(self, params: EnvParams) -> jax.Array:
        """int32[W, K]: each worker's ticks per task type (0 where it lacks the skill); from params alone."""
        of_type = params.slot_type[None, :] == jnp.arange(self.n_types)[:, None]  # [K, S]
        return jnp.max(jnp.where(of_type[None], params.duration[:, None, :], 0), axis=-1)

    def _advance(self, start, done, worker_slot, worker_until, params: EnvParams):
        """Advance time from `start` to the first tick where an assignment is legal or the round ends.

        Without new assignments legality only grows with time (slots stay available, idle workers stay idle)
        and it changes only when a worker finishes or an order arrives. So the next decision tick is the
        earliest of those few candidate ticks (each at least `start`) at which an idle worker can do an
        available slot, or everything is done; beyond the horizon, the horizon. Each candidate is tested with
        a handful of bitmask ops per environment, branch-free. Returns (tick, done, worker_slot list,
        worker_until list).
        """
        held = self._held(worker_slot)
        todo = params.real & ~(done | _or_all(held))
        candidates = [jnp.maximum(until, start) for until in worker_until]  # an idle worker's (until 0) is start
        if self.staggered_arrivals:
            candidates += [jnp.maximum(params.order_arrival[o], start) for o in range(params.order_arrival.shape[-1])]
        decision_ticks = []
        for candidate in candidates:
            free = [until <= candidate for until in worker_until]
            done_then = done | _or_all([jnp.where(f, h, jnp.uint32(0)) for f, h in zip(free, held)])
            skills = _or_all([jnp.where(f, params.can_do[w], jnp.uint32(0)) for w, f in enumerate(free)])
            available = self._arrived(candidate, params) & todo & ~self._waiting(done_then, params)
            decides = ((available & skills) != 0) | ((done_then & params.real) == params.real)
            decision_ticks.append(jnp.where(decides, candidate, params.max_ticks))
        tick = params.max_ticks
        for decision_tick in decision_ticks:
            tick = jnp.minimum(tick, decision_tick)

        tick = _materialise(tick)
        finished = [until <= tick for until in worker_until]  # idle workers (until 0) stay idle
        return (tick, done | _or_all([jnp.where(f, h, jnp.uint32(0)) for f, h in zip(finished, held)]),
                [jnp.where(f, -1, s) for f, s in zip(finished, worker_slot)],
                [jnp.where(f, 0, u) for f, u in zip(finished, worker_until)])


def _materialise(x: jax.Array) -> jax.Array:
    """`x`, computed once and stored rather than recomputed inside each of its consumers.

    XLA on CPU has no fusion barrier (``optimization_barrier`` is dropped before fusion) and duplicates cheap
    elementwise producers into every consumer: a step's long integer chain would be recomputed once per
    output. An integer division by a non-constant counts as expensive, so XLA keeps it (with everything fused
    into it) as one stored result. The divisor ``1 | (bits >> 31)`` is always 1, which LLVM's known-bits
    analysis sees after fusion, so the division itself is dropped from the machine code."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    one = jax.lax.bitcast_convert_type(jnp.uint32(1) | jnp.right_shift(bits, 31), x.dtype)
    return jax.lax.div(x, one)


def _or_all(values: list[jax.Array]) -> jax.Array:
    out = values[0]
    for value in values[1:]:
        out = out | value
    return out


def _select(conditions: list[jax.Array], values: list[jax.Array]) -> jax.Array:
    """The value whose condition holds (at most one does; 0 when none)."""
    out = jnp.zeros_like(values[0])
    for condition, value in zip(conditions, values):
        out = jnp.where(condition, value, out)
    return out


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
    counts = [_popcount(legal_slots[w]) for w in range(env.n_workers)]
    n_assign = sum(counts[1:], counts[0])
    total = n_assign + jnp.where(allow_end_tick | (n_assign == 0), 1, 0)
    rank = jnp.minimum((uniform * total).astype(jnp.int32), total - 1)
    # walk the workers (a static loop: one value per env throughout, no small arrays to reduce)
    before, worker, bits, nth = jnp.int32(0), jnp.int32(0), jnp.uint32(0), jnp.int32(0)
    for w, count in enumerate(counts):
        inside = (rank >= before) & (rank < before + count)
        worker = jnp.where(inside, w, worker)
        bits = jnp.where(inside, legal_slots[w], bits)
        nth = jnp.where(inside, rank - before, nth)
        before = before + count
    slot = _nth_set_bit(bits, nth)
    return jnp.where(rank < n_assign, worker * env.n_slots + slot, env.end_tick_action).astype(jnp.int32)


def make_kitchen(spec: KitchenSpec) -> tuple[Kitchen, EnvParams]:
    """The environment and its default params for a validated kitchen."""
    staggered = any(order.arrival > 0 for order in spec.orders)
    return (Kitchen(spec.n_workers, spec.n_slots, len(spec.task_types), predecessor_shifts(spec), staggered),
            make_params(spec))
