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

from bpjax.env import bitset
from bpjax.env.bitset import Bits
from bpjax.env.config import KitchenSpec
from bpjax.env.types import EnvParams, EnvState, Observation


def make_params(spec: KitchenSpec) -> EnvParams:
    """Numeric tables of a validated kitchen (every number of it: kitchens of one shape differ only here)."""
    n_workers, n_slots, per_order = spec.n_workers, spec.n_slots, spec.slots_per_order
    duration = np.zeros((n_workers, n_slots), np.int32)
    can_do = [[] for _ in range(n_workers)]
    slot_type = np.full(n_slots, len(spec.task_types), np.int32)
    real = []
    for slot in range(n_slots):
        subtask = spec.slot_subtask(slot)
        if subtask is None:
            continue
        real.append(slot)
        slot_type[slot] = subtask.task_type
        for w, worker in enumerate(spec.workers):
            ticks = worker.ticks[subtask.task_type]
            if ticks is not None:
                duration[w, slot] = ticks
                can_do[w].append(slot)
    slots = lambda members: bitset.from_slots(members, n_slots)  # noqa: E731
    return EnvParams(
        duration=jnp.asarray(duration),
        can_do=jnp.asarray(np.stack([slots(c) for c in can_do])),
        slot_type=jnp.asarray(slot_type),
        order_arrival=jnp.asarray([o.arrival for o in spec.orders], jnp.int32),
        order_slots=jnp.asarray(np.stack([slots(s for s in range(o * per_order, (o + 1) * per_order)
                                                if spec.slot_subtask(s) is not None)
                                          for o in range(len(spec.orders))])),
        pred_by_shift=jnp.asarray(np.asarray([slots(_predecessor_slots(spec, shift))
                                              for shift in predecessor_shifts(per_order)], np.uint32
                                             ).reshape(-1, bitset.n_words(n_slots))),
        real=jnp.asarray(slots(real)),
        type_slots=jnp.asarray(np.stack([slots(s for s in range(n_slots) if slot_type[s] == k)
                                         for k in range(len(spec.task_types))])),
        handoff=jnp.int32(spec.handoff),
        max_ticks=jnp.int32(spec.max_ticks),
    )


def predecessor_shifts(slots_per_order: int) -> tuple[int, ...]:
    """Every slot distance (successor - predecessor) a precedence edge can have in orders of this many slots.

    Grouping edges by distance lets all slots test "predecessors done" at once with a few shifts of the done
    set, instead of one test per slot. The distances depend on the shape alone (a kitchen without edges of
    some distance has an empty mask for it), so kitchens of one shape share one program."""
    return tuple(d for d in range(1 - slots_per_order, slots_per_order) if d != 0)


def _predecessor_slots(spec: KitchenSpec, shift: int) -> list[int]:
    """The slots whose predecessor lies `shift` slots before them."""
    out = []
    for slot in range(spec.n_slots):
        subtask = spec.slot_subtask(slot)
        if subtask is not None and any(slot % spec.slots_per_order - p == shift for p in subtask.after):
            out.append(slot)
    return out


@dataclass(frozen=True)
class Kitchen:
    """The shape of a kitchen — workers, orders, slots per order, task types — and nothing else: every number
    lives in :class:`EnvParams`, so every kitchen of one shape runs the same compiled program and a
    population of them ``vmap``s over params.

    The dynamics are written per worker and per order with Python loops over these static sizes, on sets of
    slots packed into bits (:mod:`bpjax.env.bitset`): under ``vmap`` every intermediate is then one value per
    environment and word, so XLA fuses a whole step into a few wide elementwise loops instead of many small
    per-slot/per-worker arrays and reductions (which it fused poorly and recomputed in every consumer)."""

    n_workers: int
    n_orders: int
    slots_per_order: int
    n_types: int
    illegal_ends_tick: bool = False  # an illegal action on a running round ends the tick instead of a no-op

    @property
    def n_slots(self) -> int:
        return self.n_orders * self.slots_per_order

    @property
    def n_words(self) -> int:
        """uint32 words per set of slots (static structure derived from the slot count)."""
        return bitset.n_words(self.n_slots)

    @property
    def pred_shifts(self) -> tuple[int, ...]:
        return predecessor_shifts(self.slots_per_order)

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
    def _held(self, worker_slot) -> list[Bits]:
        """Per worker, the set of the slot it holds (empty when idle)."""
        return [bitset.bit(worker_slot[w], self.n_words) for w in range(self.n_workers)]

    def in_progress(self, state: EnvState) -> jax.Array:
        """uint32[words]: the slots held by a worker."""
        return bitset.or_all(self._held(state.worker_slot)).store()

    def available(self, state: EnvState, params: EnvParams) -> jax.Array:
        """uint32[words]: the slots that are real, arrived, not started, with all predecessors done."""
        return self._available(state, params).store()

    def _available(self, state: EnvState, params: EnvParams) -> Bits:
        return self._available_at(state.tick, Bits.load(state.done_slots), bitset.or_all(self._held(state.worker_slot)),
                                  params)

    def _arrived(self, tick, params: EnvParams) -> Bits:
        return bitset.or_all([bitset.keep_if(params.order_arrival[o] <= tick, Bits.load(params.order_slots[o]))
                              for o in range(self.n_orders)])

    def _waiting(self, done: Bits, params: EnvParams) -> Bits:
        """The slots with a predecessor not done yet."""
        waiting = Bits.empty(self.n_words)
        for index, distance in enumerate(self.pred_shifts):
            waiting = waiting | (Bits.load(params.pred_by_shift[index]) & ~bitset.shift(done, distance))
        return waiting

    def _available_at(self, tick, done: Bits, in_progress: Bits, params: EnvParams) -> Bits:
        return self._arrived(tick, params) & ~self._waiting(done, params) & ~(done | in_progress)

    def _legal_per_worker(self, state: EnvState, params: EnvParams) -> list[Bits]:
        available = self._available(state, params).materialise()  # once, not inside each worker's set
        return [bitset.keep_if(state.worker_slot[w] < 0, available & Bits.load(params.can_do[w]))
                for w in range(self.n_workers)]

    def legal_slots(self, state: EnvState, params: EnvParams) -> jax.Array:
        """uint32[W, words]: per worker, the set of slots it may be assigned to now."""
        return jnp.stack([legal.store() for legal in self._legal_per_worker(state, params)])

    def action_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """bool[A]: exactly the legal actions (end tick always legal)."""
        assign = bitset.unpack(self.legal_slots(state, params), self.n_slots).reshape(-1)
        return jnp.concatenate([assign, jnp.ones((1,), bool)])

    def _terminal(self, done: Bits, params: EnvParams) -> jax.Array:
        real = Bits.load(params.real)
        return (done & real).equals(real)

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return self._terminal(Bits.load(state.done_slots), params)

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
        tick. Built straight from the bits, without gathers."""
        busy = state.worker_slot >= 0
        held = self._held(state.worker_slot)
        in_progress = bitset.or_all(held)
        done = Bits.load(state.done_slots)
        available = self._available_at(state.tick, done, in_progress, params)
        slot_sets = jnp.stack([available.store(), in_progress.store(), (done & Bits.load(params.real)).store()])
        slot_sets = bitset.materialise(slot_sets)  # [3, words], once, not once per slot feature
        # slot-major shifts of each word ([S, 3] directly: no transpose of a [3, S] unpacking)
        slots = jnp.concatenate(
            [jnp.right_shift(slot_sets[None, :, i],
                             jnp.arange(min(bitset.WORD_BITS, self.n_slots - bitset.WORD_BITS * i),
                                        dtype=jnp.uint32)[:, None]) & 1
             for i in range(self.n_words)], axis=0)  # [S, 3]
        held_stored = jnp.stack([h.store() for h in held])  # [W, words]
        held_type = ((held_stored[:, None, :] & params.type_slots[None, :, :]) != 0).any(axis=-1)  # [W, K]
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
        return EnvState(tick=jnp.int32(0), done_slots=jnp.zeros((self.n_words,), jnp.uint32),
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
        """The next state as per-env scalars (tick, done set, per-worker slot and until lists), whether the
        step took effect, and whether the action was legal (the two differ under `illegal_ends_tick`)."""
        action = jnp.asarray(action, jnp.int32)
        action = bitset.materialise(action)  # computed once, not inside every consumer (see materialise)
        n_assign = self.n_workers * self.n_slots
        done_before = Bits.load(state.done_slots)
        over = self._terminal(done_before, params) | (state.tick >= params.max_ticks)
        # truncating division: no floor fix-ups for negative actions (illegal whatever worker or slot they give)
        worker = jax.lax.div(action, jnp.int32(self.n_slots))
        slot = jax.lax.rem(action, jnp.int32(self.n_slots))
        is_end = action == n_assign
        slot_bit = bitset.bit(slot, self.n_words)
        pick = [worker == w for w in range(self.n_workers)]  # read only with is_assign, which checks the range
        legal_of_worker = Bits.empty(self.n_words)
        for chosen, legal in zip(pick, self._legal_per_worker(state, params)):
            legal_of_worker = bitset.where(chosen, legal, legal_of_worker)
        is_assign = (action >= 0) & (action < n_assign) & (legal_of_worker & slot_bit).any()
        is_assign = bitset.materialise(is_assign.astype(jnp.int32)) != 0  # read by every per-worker update
        legal = (is_end | is_assign) & ~over
        if self.illegal_ends_tick:  # played as "end tick" (still flagged illegal in info)
            is_end = ~is_assign

        # the chosen worker's ticks for the slot's task type, by bit tests instead of a gather
        ticks = self._ticks_by_type(params)  # [W, K]
        duration = jnp.int32(0)
        for k in range(self.n_types):
            of_worker = _select(pick, [ticks[w, k] for w in range(self.n_workers)])
            duration = duration + jnp.where((Bits.load(params.type_slots[k]) & slot_bit).any(), of_worker, 0)
        until = bitset.materialise(state.tick + duration + params.handoff)
        worker_slot = [jnp.where(is_assign & pick[w], slot, state.worker_slot[w]) for w in range(self.n_workers)]
        worker_until = [jnp.where(is_assign & pick[w], until, state.worker_until[w]) for w in range(self.n_workers)]
        start = state.tick + is_end.astype(jnp.int32)
        tick, done, worker_slot, worker_until = self._advance(start, done_before, worker_slot, worker_until, params)
        acts = ~over if self.illegal_ends_tick else legal
        keep = lambda new, old: jnp.where(acts, new, old)  # noqa: E731  (a no-op keeps the state)
        return (keep(tick, state.tick), bitset.where(acts, done, done_before),
                [keep(s, state.worker_slot[w]) for w, s in enumerate(worker_slot)],
                [keep(u, state.worker_until[w]) for w, u in enumerate(worker_until)], acts, legal)

    def _finish_step(self, state: EnvState, tick, done: Bits, worker_slot, worker_until, acts, legal,
                     params: EnvParams, auto_reset: bool):
        terminal = self._terminal(done, params)
        terminated = terminal & acts
        truncated = ~terminal & (tick >= params.max_ticks) & acts
        reward = (state.tick - tick).astype(jnp.float32)
        elapsed = tick - state.tick
        if auto_reset:
            ended = bitset.materialise((terminated | truncated).astype(jnp.int32)) != 0  # read by every output
            restart = lambda new, old: jnp.where(ended, new, old)  # noqa: E731
            tick, done = restart(0, tick), bitset.where(ended, Bits.empty(self.n_words), done)
            worker_slot = [restart(-1, s) for s in worker_slot]
            worker_until = [restart(0, u) for u in worker_until]
        # Materialise every output as one value per env before anything is stacked per worker or read by the
        # observation: otherwise XLA fuses the whole step into each element of every consumer (recomputing it
        # W times per worker array and about obs_size times for the observation).
        tick, done = bitset.materialise(tick), done.materialise()
        worker_slot = [bitset.materialise(x) for x in worker_slot]
        worker_until = [bitset.materialise(x) for x in worker_until]
        next_state = EnvState(tick=tick, done_slots=done.store(), worker_slot=jnp.stack(worker_slot),
                              worker_until=jnp.stack(worker_until))
        return next_state, reward, terminated, truncated, {"illegal_action": ~legal, "ticks_elapsed": elapsed}

    def _ticks_by_type(self, params: EnvParams) -> jax.Array:
        """int32[W, K]: each worker's ticks per task type (0 where it lacks the skill); from params alone."""
        of_type = params.slot_type[None, :] == jnp.arange(self.n_types)[:, None]  # [K, S]
        return jnp.max(jnp.where(of_type[None], params.duration[:, None, :], 0), axis=-1)

    def _advance(self, start, done: Bits, worker_slot, worker_until, params: EnvParams):
        """Advance time from `start` to the first tick where an assignment is legal or the round ends.

        Without new assignments legality only grows with time (slots stay available, idle workers stay idle)
        and it changes only when a worker finishes or an order arrives. Between two finishes the done and
        idle sets are fixed, so from each worker's finish tick (at least `start`) the first decision is the
        earliest arrival among the orders holding a slot an idle worker could then start (that finish tick
        itself when such an order is already there), or that tick when everything is done; the next decision
        tick is the earliest of these, and beyond the horizon, the horizon. Each candidate is a handful of
        bit operations per environment, branch-free. Returns (tick, done, worker_slot list, worker_until
        list)."""
        held = self._held(worker_slot)
        real = Bits.load(params.real)
        todo = real & ~(done | bitset.or_all(held))
        can_do = [Bits.load(params.can_do[w]) for w in range(self.n_workers)]
        order_slots = [Bits.load(params.order_slots[o]) for o in range(self.n_orders)]
        tick = params.max_ticks
        for until in worker_until:
            candidate = jnp.maximum(until, start)  # an idle worker's (until 0) is start
            free = [u <= candidate for u in worker_until]
            done_then = done | bitset.or_all([bitset.keep_if(f, h) for f, h in zip(free, held)])
            skills = bitset.or_all([bitset.keep_if(f, c) for f, c in zip(free, can_do)])
            startable = todo & ~self._waiting(done_then, params) & skills  # once its order has arrived
            arrival = params.max_ticks
            for o in range(self.n_orders):
                arrival = jnp.minimum(arrival, jnp.where((order_slots[o] & startable).any(), params.order_arrival[o],
                                                         params.max_ticks))
            decides = jnp.where((done_then & real).equals(real), candidate, jnp.maximum(candidate, arrival))
            tick = jnp.minimum(tick, decides)

        tick = bitset.materialise(tick)
        finished = [until <= tick for until in worker_until]  # idle workers (until 0) stay idle
        return (tick, done | bitset.or_all([bitset.keep_if(f, h) for f, h in zip(finished, held)]),
                [jnp.where(f, -1, s) for f, s in zip(finished, worker_slot)],
                [jnp.where(f, 0, u) for f, u in zip(finished, worker_until)])


def _select(conditions: list[jax.Array], values: list[jax.Array]) -> jax.Array:
    """The value whose condition holds (at most one does; 0 when none)."""
    out = jnp.zeros_like(values[0])
    for condition, value in zip(conditions, values):
        out = jnp.where(condition, value, out)
    return out


def sample_legal_action(env: Kitchen, uniform: jax.Array, legal_slots: jax.Array,
                        allow_end_tick: jax.Array | bool = True) -> jax.Array:
    """Uniform legal action from one uniform in [0, 1) and the per-worker legal sets (uint32[W, words]).

    Picks the r-th legal action by prefix popcounts instead of a categorical over the full mask: random play
    then costs a few integer ops per step. Without `allow_end_tick`, ending the tick is drawn only when no
    assignment is legal."""
    legal = [Bits.load(legal_slots[w]) for w in range(env.n_workers)]
    counts = [bitset.popcount(bits) for bits in legal]
    n_assign = sum(counts[1:], counts[0])
    total = n_assign + jnp.where(allow_end_tick | (n_assign == 0), 1, 0)
    rank = jnp.minimum((uniform * total).astype(jnp.int32), total - 1)
    # walk the workers (a static loop: one value per env throughout, no small arrays to reduce)
    before, worker, bits, nth = jnp.int32(0), jnp.int32(0), Bits.empty(env.n_words), jnp.int32(0)
    for w, count in enumerate(counts):
        inside = (rank >= before) & (rank < before + count)
        worker = jnp.where(inside, w, worker)
        bits = bitset.where(inside, legal[w], bits)
        nth = jnp.where(inside, rank - before, nth)
        before = before + count
    slot = bitset.nth_set_bit(bits, nth)
    return jnp.where(rank < n_assign, worker * env.n_slots + slot, env.end_tick_action).astype(jnp.int32)


def kitchen_of(spec: KitchenSpec) -> Kitchen:
    """The env (its static shape) of a validated kitchen."""
    return Kitchen(spec.n_workers, len(spec.orders), spec.slots_per_order, len(spec.task_types))


def make_kitchen(spec: KitchenSpec) -> tuple[Kitchen, EnvParams]:
    """The environment and its default params for a validated kitchen."""
    return kitchen_of(spec), make_params(spec)
