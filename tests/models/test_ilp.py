"""The bit-width ILP (HiGHS) finds the same optimum as exhaustive search, respects ties,
refuses budgets outside what the candidates reach, breaks ties in sensitivity by cost, and its
converse (the cheapest policy under a sensitivity bound) equals exhaustive search too."""

from __future__ import annotations

import numpy as np
import pytest

from bitmill.errors import BitmillError
from bitmill.models.ilp import Problem, brute_force


def _fastest_brute(pr: Problem, bound: float) -> float:
    from itertools import product
    costs = [pr.total(dict(zip(pr.layers, c))) for c in product(pr.pairs, repeat=len(pr.layers))
             if all(dict(zip(pr.layers, c))[x][1] == dict(zip(pr.layers, c))[y][1] for x, y in pr.ties)
             and pr.total(dict(zip(pr.layers, c)), "sensitivity") <= bound]
    return min(costs)


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


@pytest.mark.parametrize("seed", range(3))
def test_fastest_under_a_sensitivity_bound_equals_exhaustive_search(seed):
    pr = _problem(seed)
    cheap, dear = pr.extremes()
    for bound in np.linspace(pr.total(dear, "sensitivity"), pr.total(cheap, "sensitivity"), 5):
        policy = pr.fastest(float(bound))
        assert pr.total(policy, "sensitivity") <= bound * (1 + 1e-6) + 1e-12
        assert policy["b"][1] == policy["c"][1]
        assert pr.total(policy) == pytest.approx(_fastest_brute(pr, float(bound) * (1 + 1e-6) + 1e-12), abs=1e-9)


def test_a_bound_below_the_least_sensitive_policy_is_refused():
    pr = _problem(1)
    least = min(pr.total(dict(zip(pr.layers, (p,) * 4)), "sensitivity") for p in pr.pairs)
    with pytest.raises(BitmillError, match="is below what the candidates reach"):
        pr.fastest(least / 100)


def test_equal_sensitivity_goes_to_the_cheaper_pair():
    """A layer whose sensitivity does not depend on the weight width gets the cheapest weight
    width that the budget allows, not whichever the solver meets first."""
    pairs = ((2, 4), (4, 4), (8, 4))
    sens = {"x": {p: 1.0 for p in pairs}, "y": {(2, 4): 3.0, (4, 4): 2.0, (8, 4): 1.0}}
    cost = {l: {p: float(p[0]) for p in pairs} for l in ("x", "y")}
    pr = Problem(("x", "y"), pairs, sens, cost)
    assert pr.solve(16.0) == {"x": (2, 4), "y": (8, 4)}
    assert pr.solve(12.0) == {"x": (2, 4), "y": (8, 4)}
    assert pr.solve(9.0) == {"x": (2, 4), "y": (4, 4)}
