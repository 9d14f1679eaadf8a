"""Unit tests of the pure-Python reference kitchen simulator (bpjax/env/reference.py)."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from bpjax.env.reference import RefState, ReferenceKitchen

BURGER = [
    {"name": "chop meat", "type": "chop", "after": []},
    {"name": "cook burger", "type": "cook", "after": ["chop meat"]},
    {"name": "plate burger", "type": "plate", "after": ["cook burger"]},
]
PASTA = [
    {"name": "chop vegetables", "type": "chop", "after": []},
    {"name": "cook sauce", "type": "cook", "after": ["chop vegetables"]},
    {"name": "boil pasta", "type": "cook", "after": []},
    {"name": "plate pasta", "type": "plate", "after": ["cook sauce", "boil pasta"]},
]
PAPER_SKILLS = {"chef": [1, 4, 6], "sous_chef": [2, 8, 2], "server": [3, 12, 1]}


def make_kitchen(
    workers: list[str] | None = None,
    orders: list[dict[str, Any]] | None = None,
    handoff: int = 1,
    max_ticks: int = 50,
    skills: dict[str, list[int | None]] | None = None,
) -> dict[str, Any]:
    """The paper kitchen by default; keyword arguments vary one aspect."""
    return {
        "task_types": ["chop", "cook", "plate"],
        "dishes": {"burger": copy.deepcopy(BURGER), "pasta": copy.deepcopy(PASTA)},
        "skills": copy.deepcopy(skills if skills is not None else PAPER_SKILLS),
        "scenario": {"name": "test", "workers": workers or ["chef", "sous_chef", "server"]},
        "orders": orders if orders is not None else [{"dish": "burger", "arrival": 0} for _ in range(4)],
        "handoff": handoff,
        "max_ticks": max_ticks,
    }


def play(env: ReferenceKitchen, state: RefState, actions: list[int]):
    """Step through actions, returning the final step's result and the summed reward."""
    total = 0
    result = None
    for action in actions:
        result = env.step(state, action)
        state, reward, _, _, info = result
        assert not info["illegal_action"]
        total += reward
    return result, total


# ----------------------------------------------------------------- paper kitchen


def test_paper_kitchen_sizes():
    env = ReferenceKitchen(make_kitchen())
    assert env.n_workers == 3
    assert env.slots_per_order == 3
    assert env.n_slots == 12
    assert env.n_actions == 37
    assert env.end_tick_action == 36
    assert env.obs_size == 52
    assert env.duration(0, 1) == 4  # chef cooks in 4
    assert env.duration(2, 2) == 1  # server plates in 1


def test_paper_kitchen_initial_mask():
    env = ReferenceKitchen(make_kitchen())
    state = env.reset()
    expected = sorted([w * 12 + s for w in range(3) for s in (0, 3, 6, 9)] + [36])
    assert env.legal_actions(state) == expected
    mask = env.action_mask(state)
    assert len(mask) == 37
    assert [a for a, legal in enumerate(mask) if legal] == expected


def test_paper_kitchen_initial_observation():
    env = ReferenceKitchen(make_kitchen())
    obs = env.observation(env.reset())
    expected = []
    for _order in range(4):
        expected += [1.0, 0.0, 0.0] + [0.0, 0.0, 0.0] + [0.0, 0.0, 0.0]
    for _worker in range(3):
        expected += [1.0, 0.0, 0.0, 0.0, 0.0]
    expected += [0.0]
    assert obs == expected
    assert len(obs) == env.obs_size
    assert all(isinstance(x, float) for x in obs)


def test_reset_state_fields_and_hashable():
    env = ReferenceKitchen(make_kitchen())
    state = env.reset()
    assert state == RefState(0, (False,) * 12, (None,) * 3, (None,) * 3)
    assert hash(state) == hash(env.reset())
    with pytest.raises(AttributeError):
        state.tick = 3  # type: ignore[misc]


def test_assignment_keeps_time_while_others_can_act():
    env = ReferenceKitchen(make_kitchen())
    state = env.reset()
    new_state, reward, terminated, truncated, info = env.step(state, 0)  # chef chops slot 0
    assert (reward, terminated, truncated) == (0, False, False)
    assert info == {"illegal_action": False, "ticks_elapsed": 0}
    assert new_state.tick == 0
    assert new_state.worker_slot == (0, None, None)
    assert new_state.worker_finish == (2, None, None)  # 0 + 1 + handoff 1
    assert state == env.reset()  # input untouched
    obs = env.observation(new_state)
    assert obs[0:3] == [0.0, 1.0, 0.0]
    assert obs[36:41] == [0.0, 1.0, 0.0, 0.0, 2.0]  # chef busy chopping, 2 ticks left


# ------------------------------------------------------------ single-chef burger


@pytest.mark.parametrize("handoff, expected_ticks", [(1, 14), (0, 11)])
def test_one_burger_chef_only(handoff, expected_ticks):
    env = ReferenceKitchen(make_kitchen(workers=["chef"], orders=[{"dish": "burger"}], handoff=handoff))
    state = env.reset()
    # One worker, three slots: actions 0, 1, 2 assign the chef to chop, cook, plate.
    (state, _, terminated, truncated, _), total = play(env, state, [0, 1, 2])
    assert terminated and not truncated
    assert state.tick == expected_ticks
    assert total == -expected_ticks
    assert state.done == (True, True, True)
    assert env.is_over(state) == (True, False)
    with pytest.raises(ValueError):
        env.step(state, env.end_tick_action)


def test_auto_advance_jumps_to_finish_tick():
    env = ReferenceKitchen(make_kitchen(workers=["chef"], orders=[{"dish": "burger"}]))
    state, reward, terminated, truncated, info = env.step(env.reset(), 0)
    assert state.tick == 2  # chop takes 1 tick + 1 hand-off tick
    assert reward == -2 and info["ticks_elapsed"] == 2
    assert not terminated and not truncated
    assert state.done == (True, False, False)
    assert state.worker_slot == (None,) and state.worker_finish == (None,)
    assert env.legal_actions(state) == [1, env.end_tick_action]


def test_end_tick_when_idle_advances_one_tick():
    env = ReferenceKitchen(make_kitchen())
    state, reward, _, _, info = env.step(env.reset(), env.end_tick_action)
    assert state.tick == 1 and reward == -1 and info["ticks_elapsed"] == 1


# -------------------------------------------------------------- illegal actions


def test_illegal_actions_leave_state_unchanged():
    env = ReferenceKitchen(make_kitchen())
    state, *_ = env.step(env.reset(), 0)  # chef busy on slot 0
    illegal = [
        0 * 12 + 3,  # busy worker (chef) on an available slot
        1 * 12 + 0,  # slot already in progress
        1 * 12 + 1,  # cook slot whose chop is not done
        -1,
        env.n_actions,
        1000,
        "0",
        None,
        1.0,
    ]
    for action in illegal:
        new_state, reward, terminated, truncated, info = env.step(state, action)
        assert new_state == state
        assert (reward, terminated, truncated) == (0, False, False)
        assert info == {"illegal_action": True, "ticks_elapsed": 0}


def test_worker_without_skill_cannot_take_task():
    skills = {"chef": [1, 4, 6], "server": [3, None, 1]}
    env = ReferenceKitchen(make_kitchen(workers=["chef", "server"], orders=[{"dish": "burger"}], skills=skills))
    assert env.duration(1, 1) is None
    # Server chops; the chef is idle but nothing else is available, so time runs to 0 + 3 + 1 = 4.
    state, reward, *_ = env.step(env.reset(), 1 * 3 + 0)
    assert state.tick == 4 and reward == -4
    assert 1 * 3 + 1 not in env.legal_actions(state)
    _, _, _, _, info = env.step(state, 1 * 3 + 1)
    assert info["illegal_action"]


# ------------------------------------------------------------------- truncation


def test_truncation_at_max_ticks():
    env = ReferenceKitchen(make_kitchen(workers=["chef"], orders=[{"dish": "burger"}], max_ticks=5))
    (state, reward, terminated, truncated, info), total = play(env, env.reset(), [0, 1])
    assert truncated and not terminated
    assert state.tick == 5 and total == -5
    assert reward == -3 and info["ticks_elapsed"] == 3
    assert state.worker_slot == (1,)  # the cook is unfinished, still reported in the state
    assert env.is_over(state) == (False, True)
    with pytest.raises(ValueError):
        env.step(state, env.end_tick_action)


def test_finishing_exactly_at_max_ticks_is_terminated():
    env = ReferenceKitchen(make_kitchen(workers=["chef"], orders=[{"dish": "burger"}], max_ticks=14))
    (state, _, terminated, truncated, _), total = play(env, env.reset(), [0, 1, 2])
    assert terminated and not truncated and state.tick == 14 and total == -14


def test_truncation_by_end_tick():
    env = ReferenceKitchen(make_kitchen(max_ticks=2))
    state, *_ = env.step(env.reset(), env.end_tick_action)
    state, reward, terminated, truncated, _ = env.step(state, env.end_tick_action)
    assert state.tick == 2 and reward == -1 and truncated and not terminated


# ------------------------------------------------------------- pasta + padding


def test_pasta_and_burger_padding():
    env = ReferenceKitchen(
        make_kitchen(workers=["chef", "sous_chef"], orders=[{"dish": "burger"}, {"dish": "pasta"}])
    )
    assert env.slots_per_order == 4
    assert env.n_slots == 8
    assert env.n_actions == 2 * 8 + 1
    assert env.obs_size == 3 * 8 + 2 * 5 + 1
    padding = 3  # burger has 3 subtasks, so slot 3 pads order 0
    assert env.duration(0, padding) is None
    state = env.reset()
    # Available at start: chop meat (0), chop vegetables (4), boil pasta (6).
    assert env.available_slots(state) == [0, 4, 6]

    rng = random.Random(0)
    for _episode in range(30):
        state = env.reset()
        terminated = truncated = False
        while not (terminated or truncated):
            obs = env.observation(state)
            assert obs[3 * padding : 3 * padding + 3] == [0.0, 0.0, 0.0]
            legal = env.legal_actions(state)
            assert all(a % env.n_slots != padding for a in legal if a != env.end_tick_action)
            # Plate pasta only once both cooks are done.
            if 7 in env.available_slots(state):
                assert state.done[5] and state.done[6]
            state, _, terminated, truncated, _ = env.step(state, rng.choice(legal))
        assert state.done[padding] is False
        assert env.observation(state)[3 * padding : 3 * padding + 3] == [0.0, 0.0, 0.0]
        if terminated:
            assert all(state.done[s] for s in range(8) if s != padding)


def test_pasta_plate_waits_for_both_cooks():
    env = ReferenceKitchen(make_kitchen(workers=["chef"], orders=[{"dish": "pasta"}], handoff=0))
    # chop veg (0) -> t1, cook sauce (1) -> t5, boil pasta (2) -> t9, plate (3) -> t15.
    state = env.reset()
    state, *_ = env.step(state, 0)
    assert state.tick == 1 and env.available_slots(state) == [1, 2]
    state, *_ = env.step(state, 1)
    assert state.tick == 5 and env.available_slots(state) == [2]
    state, *_ = env.step(state, 2)
    assert state.tick == 9 and env.available_slots(state) == [3]
    state, reward, terminated, _, _ = env.step(state, 3)
    assert terminated and state.tick == 15 and reward == -6


# ------------------------------------------------------------------- arrivals


def test_order_arriving_later():
    env = ReferenceKitchen(
        make_kitchen(workers=["chef"], orders=[{"dish": "burger", "arrival": 0}, {"dish": "burger", "arrival": 3}])
    )
    state = env.reset()
    assert env.available_slots(state) == [0]
    state, *_ = env.step(state, env.end_tick_action)  # tick 1: order 1 not yet there
    assert state.tick == 1
    assert 3 not in env.available_slots(state)
    assert env.observation(state)[9:12] == [0.0, 0.0, 0.0]
    state, *_ = env.step(state, env.end_tick_action)
    assert state.tick == 2 and 3 not in env.available_slots(state)
    state, *_ = env.step(state, env.end_tick_action)
    assert state.tick == 3 and env.available_slots(state) == [0, 3]
    assert env.observation(state)[9:12] == [1.0, 0.0, 0.0]


def test_reset_does_not_auto_advance_before_arrival():
    env = ReferenceKitchen(make_kitchen(workers=["chef"], orders=[{"dish": "burger", "arrival": 3}]))
    state = env.reset()
    assert state.tick == 0
    assert env.legal_actions(state) == [env.end_tick_action]
    state, reward, *_ = env.step(state, env.end_tick_action)
    assert state.tick == 3 and reward == -3  # auto-advanced until the order arrived
    assert env.legal_actions(state) == [0, env.end_tick_action]


# ------------------------------------------------------------------ invariants


def test_random_rollouts_keep_invariants():
    env = ReferenceKitchen(
        make_kitchen(orders=[{"dish": "burger"}, {"dish": "pasta", "arrival": 2}, {"dish": "burger", "arrival": 5}])
    )
    rng = random.Random(1)
    for _episode in range(50):
        state = env.reset()
        total = 0
        terminated = truncated = False
        while not (terminated or truncated):
            mask = env.action_mask(state)
            legal = env.legal_actions(state)
            assert legal == [a for a, ok in enumerate(mask) if ok] and mask[env.end_tick_action]
            action = rng.choice(legal)
            new_state, reward, terminated, truncated, info = env.step(state, action)
            assert reward == -info["ticks_elapsed"] == -(new_state.tick - state.tick)
            total += reward
            for slot, finish in zip(new_state.worker_slot, new_state.worker_finish):
                assert (slot is None) == (finish is None)
                if slot is not None:
                    assert finish > new_state.tick
            if not (terminated or truncated):
                # Every decision after auto-advance is a real choice.
                assert len(env.legal_actions(new_state)) > 1
            state = new_state
        assert total == -state.tick
        assert env.is_over(state) == (terminated, truncated)
