"""The bit-width ILP (HiGHS) finds the same optimum as exhaustive search, respects ties and
refuses budgets outside what the candidates reach."""

from __future__ import annotations

import numpy as np
import pytest

from bitmill.errors import BitmillError
from bitmill.models.ilp import Problem, brute_force


def _problem(seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    pairs = tuple((w, a) for w in (2, 4, 8) for a in (2, 4, 8))
    layers = ("a", "b", "c", "d")
    sens = {l: {p: float(rng.random() * 10 / (p[0] * p[1])) for p in pairs} for l in layers}
    cost = {l: {p: float(rng.integers(1, 5) * p[0] * p[1]) for p in pairs} for l in layers}
    return Problem(layers, pairs, sens, cost, (("b", "c"),))


@pytest.mark.parametrize("seed", range(3))
def test_ilp_equals_exhaustive_search(seed):
    pr = _problem(seed)
    lo, hi = (pr.total(p) for p in pr.extremes())
    assert lo < hi
    for budget in np.linspace(lo, hi, 6):
        policy = pr.solve(float(budget))
        best, _ = brute_force(pr, float(budget))
        assert pr.total(policy) <= budget + 1e-9
        assert policy["b"][1] == policy["c"][1]
        assert pr.total(policy, "sensitivity") == pytest.approx(best, abs=1e-9)


def test_budget_outside_the_reach_is_refused():
    pr = _problem(0)
    lo, hi = (pr.total(p) for p in pr.extremes())
    for budget in (lo - 1, hi + 1):
        with pytest.raises(BitmillError, match="is outside what the candidates reach: the fastest"):
            pr.solve(budget)


def test_missing_cost_is_named():
    with pytest.raises(BitmillError, match=r"^a: no sensitivity or cost for W2A2$"):
        Problem(("a",), ((2, 2),), {"a": {}}, {"a": {(2, 2): 1.0}})
