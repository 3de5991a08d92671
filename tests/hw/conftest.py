"""Fixtures of the hardware tests: the shipped accelerator configs."""

from __future__ import annotations

from tests.conftest import CONFIGS   # noqa: F401  (tests import it from here)
