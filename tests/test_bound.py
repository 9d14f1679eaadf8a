"""The lower bound for kitchens the exact solver cannot finish: valid (never above the exact optimum) and not
vacuous (tight where one subtask chain or the total work decides)."""

from __future__ import annotations

from hypothesis import given, settings

from bpjax.solve.bound import chain_bound, lower_bound_ticks, work_bound
from bpjax.solve.solver import solve
from tests.conftest import spec_for
from tests.kitchens import BURGER, kitchen, spec_of, tiny_kitchens


@settings(max_examples=60, deadline=None)
@given(tiny_kitchens())
def test_bound_never_exceeds_the_exact_optimum(k):
    spec = spec_of(k)
    assert 0 < lower_bound_ticks(spec) <= solve(spec).optimal_ticks


def test_bound_is_tight_for_one_chain_and_for_pure_work():
    # one burger, one worker: the chain is the whole schedule (chop 2, cook 3, plate 1, hand-off 1 each)
    one = spec_of(kitchen(["w"], {"w": [2, 3, 1]}, [("burger", 2)], dishes={"burger": BURGER}))
    assert chain_bound(one) == 2 + 3 + 4 + 2 == solve(one).optimal_ticks
    # two workers, four one-tick salads: the work (4 x 2 ticks over 2 workers) decides
    salad = [{"name": "toss salad", "type": "chop", "after": []}]
    four = spec_of(kitchen(["a", "b"], {"a": [1, None, None], "b": [1, None, None]}, [("salad", 0)] * 4,
                           dishes={"salad": salad}))
    assert work_bound(four) == 4 == solve(four).optimal_ticks


def test_bound_of_the_shipped_kitchens_is_below_their_optimum():
    for scenario in ("full", "understaffed"):
        spec = spec_for(f"kitchen/scenario={scenario}")
        assert lower_bound_ticks(spec) <= solve(spec).optimal_ticks
