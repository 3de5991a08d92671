"""The one checker of every tile bench (Amaranth simulator, cocotb, Verilator harness): a
tile's results must equal the golden GEMM exactly and its cycle count must equal
`bitmill.timing.tile_cycles`."""

from __future__ import annotations

import numpy as np

from bitmill.hw.engine import TileEngine
from bitmill.sim.cosim.tiles import Tile, expected

MAX_FAILURES = 20          # failure messages kept


class TileChecker:
    """Checks tiles one by one; keeps the counts and the first `MAX_FAILURES` messages."""

    def __init__(self, engine: TileEngine):
        self.engine = engine
        self.tiles = self.value_mismatches = self.cycle_mismatches = self.sim_cycles = 0
        self.failures: list[str] = []

    def check(self, tile: Tile, got: np.ndarray, cycles: int) -> bool:
        """Record tile number `tiles` with results ``got`` (rows x cols) after ``cycles``
        cycles; whether both match."""
        want = expected(tile)
        want_cycles = self.engine.tile_cycles(tile.k_total, tile.w_bits, tile.a_bits)
        name = f"tile {self.tiles} {tile.name}"
        self.tiles += 1
        self.sim_cycles += cycles
        ok = True
        if not np.array_equal(got, want):
            self.value_mismatches += 1
            idx = tuple(np.argwhere(got != want)[0].tolist())
            self._fail(f"{name}: first difference at {idx}: expected {want[idx]}, got {got[idx]}")
            ok = False
        if cycles != want_cycles:
            self.cycle_mismatches += 1
            self._fail(f"{name}: expected {want_cycles} cycles, measured {cycles}")
            ok = False
        return ok

    def _fail(self, message: str) -> None:
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(message)

    def summary(self) -> dict:
        """The counts and failures as plain data (the cocotb bench's summary file)."""
        return {"tiles": self.tiles, "value_mismatches": self.value_mismatches,
                "cycle_mismatches": self.cycle_mismatches, "tile_cycles": self.sim_cycles,
                "failures": list(self.failures)}
