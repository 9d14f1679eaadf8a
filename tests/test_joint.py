"""Per-tick joint assignments <-> flat actions, replayed exactly through the reference and the JAX env."""

from __future__ import annotations

import random

import jax
import pytest

from bpjax.env.convert import from_reference, to_reference
from bpjax.env.joint import action_pair, actions_to_joint, joint_to_actions, play_joint
from bpjax.env.kitchen import make_kitchen
from bpjax.env.reference import ReferenceKitchen
from tests.conftest import spec_for


def test_joint_to_actions_orders_pairs_and_ends_tick():
    assert joint_to_actions([(2, 1), (0, 5)], n_workers=3, n_slots=12) == [5, 25, 36]
    assert joint_to_actions([], n_workers=3, n_slots=12) == [36]
    assert action_pair(25, 3, 12) == (2, 1) and action_pair(36, 3, 12) is None
    with pytest.raises(ValueError, match="outside"):
        joint_to_actions([(3, 0)], n_workers=3, n_slots=12)


@pytest.mark.parametrize("orders", ["four_burgers", "pasta_mix", "arrivals"])
def test_random_play_round_trips_through_joint_assignments(orders):
    """Random legal play on the reference, grouped per tick, replays to the same states on both envs."""
    spec = spec_for(f"kitchen/orders={orders}")
    ref = ReferenceKitchen(spec.to_dict())
    env, params = make_kitchen(spec)
    jax_step = jax.jit(lambda s, a: env.step_env(None, s, a, params))
    rng = random.Random(7)
    for _ in range(20):
        state, ticks, actions, boundaries = ref.reset(), [], [], {}
        while not any(ref.is_over(state)):
            action = rng.choice(ref.legal_actions(state))
            ticks.append(state.tick)
            actions.append(action)
            state = ref.step(state, action)[0]
            boundaries.setdefault(state.tick, state)  # first state of each tick
        final = state
        joint = actions_to_joint(ticks, actions, ref.n_workers, ref.n_slots)
        assert [t for t, _ in joint] == sorted({*ticks})

        ref_state, jax_state = ref.reset(), env.reset_env(None, params)
        for tick, pairs in joint:
            assert ref_state.tick == tick == int(jax_state.tick)
            ref_state, *_ = play_joint(ref.step, lambda s: s.tick, ref_state, pairs, ref.n_workers, ref.n_slots)
            jax_state, *_ = play_joint(jax_step, lambda s: int(s.tick), jax_state, pairs, ref.n_workers,
                                       ref.n_slots)
            assert ref_state == boundaries[ref_state.tick]  # same state the original play reached then
            assert int(jax_state.tick) == ref_state.tick
        assert ref_state == final


def test_play_joint_rejects_an_illegal_assignment():
    spec = spec_for()
    ref = ReferenceKitchen(spec.to_dict())
    # slot 1 (cook burger #1) is not available before its chop is done
    with pytest.raises(ValueError, match="tick 0: assigning worker 0 to slot 1 is illegal"):
        play_joint(ref.step, lambda s: s.tick, ref.reset(), [(0, 1)], ref.n_workers, ref.n_slots)


def test_state_conversion_round_trips_along_random_play(paper_spec):
    """to_reference(from_reference(s)) == s and the JAX env steps a converted state as the reference does."""
    ref, (env, params) = ReferenceKitchen(paper_spec.to_dict()), make_kitchen(paper_spec)
    step = jax.jit(lambda s, a: env.step_env(None, s, a, params)[0])
    rng, state = random.Random(0), ref.reset()
    for _ in range(60):
        if any(ref.is_over(state)):
            state = ref.reset()
        assert to_reference(from_reference(state), ref.n_slots) == state
        action = rng.choice(ref.legal_actions(state))
        nxt = ref.step(state, action)[0]
        assert to_reference(step(from_reference(state), action), ref.n_slots) == nxt
        state = nxt
