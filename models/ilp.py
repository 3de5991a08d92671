"""Bit-width choice as an integer linear program (HAWQ-V3 style), solved exactly by HiGHS
(`scipy.optimize.milp`).

One binary ``x[l, p]`` per layer ``l`` and candidate pair ``p = (w, a)``; exactly one pair per
layer; minimise ``sum sensitivity[l][p] * x[l, p]`` subject to ``sum cost[l][p] * x[l, p] <=
budget`` (cycles from a latency table, or bytes, or BitOPs: any additive cost) and, for every
tie ``(l, m)``, equal activation widths (``sum a_p x[l, p] = sum a_p x[m, p]``: two layers that
read one tensor). Among equally sensitive policies the cheapest is chosen (a second solve), so
that a layer whose sensitivity does not change with a width gets the cheapest one.

The converse problem (`Problem.fastest`): the cheapest policy whose total sensitivity is at most
a bound, e.g. that of a uniform policy: the fastest policy "as accurate as W4A4" on a given
accelerator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from bitmill.errors import BitmillError

Pair = tuple[int, int]


@dataclass(frozen=True)
class Problem:
    """Layers, their candidate pairs, a sensitivity and a cost per (layer, pair), ties."""

    layers: tuple[str, ...]
    pairs: tuple[Pair, ...]
    sensitivity: Mapping[str, Mapping[Pair, float]]
    cost: Mapping[str, Mapping[Pair, float]]
    ties: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for l in self.layers:
            for p in self.pairs:
                if p not in self.sensitivity.get(l, {}) or p not in self.cost.get(l, {}):
                    raise BitmillError(f"{l}: no sensitivity or cost for W{p[0]}A{p[1]}")
        for x, y in self.ties:
            if x not in self.layers or y not in self.layers:
                raise BitmillError(f"tie {x}-{y} names a layer outside the problem")

    def total(self, policy: Mapping[str, Pair], of: str = "cost") -> float:
        table = self.cost if of == "cost" else self.sensitivity
        return float(sum(table[l][tuple(policy[l])] for l in self.layers))

    @cached_property
    def _matrices(self):
        """(one pair per layer, ties, cost vector, sensitivity vector), built once."""
        n, k = len(self.layers), len(self.pairs)
        idx = lambda i, j: i * k + j       # noqa: E731
        one = np.zeros((n, n * k))
        for i in range(n):
            one[i, i * k:(i + 1) * k] = 1
        rows = []
        pos = {l: i for i, l in enumerate(self.layers)}
        for x, y in self.ties:
            r = np.zeros(n * k)
            for j, (_, a) in enumerate(self.pairs):
                r[idx(pos[x], j)] += a
                r[idx(pos[y], j)] -= a
            rows.append(r)
        cost = np.array([self.cost[l][p] for l in self.layers for p in self.pairs], dtype=float)
        sens = np.array([self.sensitivity[l][p] for l in self.layers for p in self.pairs], dtype=float)
        return one, np.array(rows).reshape(len(rows), n * k), cost, sens

    def _solve(self, objective: np.ndarray, budget: float | None,
               bound: tuple[np.ndarray, float] | None = None) -> dict[str, Pair] | None:
        one, tie, cost, _ = self._matrices
        cons = [LinearConstraint(one, 1, 1)]
        if len(tie):
            cons.append(LinearConstraint(tie, 0, 0))
        if budget is not None:
            cons.append(LinearConstraint(cost[None, :], -np.inf, budget))
        if bound is not None:
            cons.append(LinearConstraint(bound[0][None, :], -np.inf, bound[1]))
        res = milp(objective, constraints=cons, integrality=np.ones_like(objective),
                   bounds=Bounds(0, 1))
        if res.x is None:
            return None
        x = np.rint(res.x).reshape(len(self.layers), len(self.pairs))
        return {l: self.pairs[int(np.argmax(x[i]))] for i, l in enumerate(self.layers)}

    def extremes(self) -> tuple[dict[str, Pair], dict[str, Pair]]:
        """The cheapest and the most expensive policy (ties respected)."""
        _, _, cost, _ = self._matrices
        return self._solve(cost, None), self._solve(-cost, None)

    def solve(self, budget: float) -> dict[str, Pair]:
        """The least sensitive policy whose cost is at most ``budget``; BitmillError when the
        budget lies outside [cheapest, most expensive]."""
        lo, hi = (self.total(p) for p in self.extremes())
        if not lo <= budget <= hi:
            raise BitmillError(f"budget {budget:,.0f} is outside what the candidates reach: the "
                               f"fastest policy costs {lo:,.0f}, the slowest {hi:,.0f}")
        _, _, cost, sens = self._matrices
        policy = self._solve(sens, budget)
        if policy is None:                          # not reached: the cheapest policy is feasible
            raise BitmillError(f"no policy meets the budget {budget:,.0f}")
        best = self.total(policy, "sensitivity")
        return self._solve(cost, budget, (sens, best + _slack(best))) or policy

    def fastest(self, max_sensitivity: float) -> dict[str, Pair]:
        """The cheapest policy whose total sensitivity is at most ``max_sensitivity`` (the least
        sensitive among equally cheap ones); BitmillError when even the least sensitive policy
        exceeds it."""
        _, _, cost, sens = self._matrices
        least = self._solve(sens, None)
        floor = self.total(least, "sensitivity")
        if floor > max_sensitivity + _slack(max_sensitivity):
            raise BitmillError(f"sensitivity bound {max_sensitivity:.4g} is below what the candidates reach: "
                               f"the least sensitive policy has {floor:.4g}")
        policy = self._solve(cost, None, (sens, max_sensitivity + _slack(max_sensitivity)))
        if policy is None:                          # not reached: ``least`` is feasible
            raise BitmillError(f"no policy meets the sensitivity bound {max_sensitivity:.4g}")
        spent = self.total(policy)
        return self._solve(sens, spent + _slack(spent)) or policy


def _slack(value: float) -> float:
    """Room for the solver's feasibility tolerance when a solve is bounded by an optimum."""
    return 1e-7 * abs(value) + 1e-12


def brute_force(problem: Problem, budget: float) -> tuple[float, dict[str, Pair]] | None:
    """Exhaustive search (small problems, tests): the least sensitivity within ``budget``."""
    from itertools import product
    best = None
    for choice in product(problem.pairs, repeat=len(problem.layers)):
        policy = dict(zip(problem.layers, choice))
        if any(policy[x][1] != policy[y][1] for x, y in problem.ties):
            continue
        if problem.total(policy) <= budget:
            s = problem.total(policy, "sensitivity")
            if best is None or s < best[0] - 1e-12:
                best = (s, policy)
    return best


def candidate_pairs(w_range: Sequence[int], a_range: Sequence[int]) -> tuple[Pair, ...]:
    """Every (w, a) of the two ranges."""
    return tuple((w, a) for w in w_range for a in a_range)
