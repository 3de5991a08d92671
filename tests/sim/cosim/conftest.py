"""Fixtures of the co-simulation tests: the RTL simulators.

A test that needs an RTL simulator asks for it through `require_simulator`: when the simulator
is missing the test is skipped with the reason, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import os

import pytest

from bitmill.sim.cosim.runner import simulator_missing


def require_simulator(sim: str) -> None:
    """Skip (locally) or fail (``CI=true``) when ``sim`` cannot run."""
    reason = simulator_missing(sim)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{sim} is required under CI=true: {reason}")
    pytest.skip(f"{sim} unavailable: {reason}")


@pytest.fixture
def icarus():
    require_simulator("icarus")


@pytest.fixture
def verilator():
    require_simulator("verilator")
