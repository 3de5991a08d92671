"""Board variants that `bitmill board` builds and runs: which accelerator config, where the
network lives (``bram``: on-chip memory of ``mem_bytes``; ``sdram``: the board's SDRAM chip
behind a LiteDRAM controller, `bitmill.hw.litedram`), and the host link's rate.

A variant's UART divisor is the config's clock over the baud rate (`bitmill.hw.uart.divisor_for`);
in simulation the link runs at `SIM_DIVISOR` cycles per bit, because the simulated time
is what costs there (the bridge and runtime do not depend on the rate).
"""

from __future__ import annotations

from dataclasses import dataclass

from bitmill.config import AccelConfig
from bitmill.hw.litedram import IS42S16160, SdramChip
from bitmill.hw.uart import BITS_PER_BYTE, divisor_for

SIM_DIVISOR = 4


@dataclass(frozen=True)
class BoardVariant:
    """One buildable board: name, accelerator config, memory bytes, UART baud, the
    amaranth-boards platform, the oscillator it runs from, and the SDRAM chip that holds the
    network (None: on-chip memory)."""

    name: str
    config: str
    mem_bytes: int
    baud: int
    platform: str
    oscillator_hz: int
    sdram: SdramChip | None = None

    @property
    def memory(self) -> str:
        """``sdram`` or ``bram``."""
        return "bram" if self.sdram is None else "sdram"

    def accel_config(self) -> AccelConfig:
        return AccelConfig.resolve(self.config)

    @property
    def clock_hz(self) -> int:
        return round(self.accel_config().clock_mhz * 1_000_000)

    @property
    def divisor(self) -> int:
        """Clock cycles per UART bit on the board."""
        return divisor_for(self.clock_hz, self.baud)

    def link_seconds(self, nbytes: int) -> float:
        """Seconds the link needs for ``nbytes`` bytes (8N1 frames back to back)."""
        return nbytes * BITS_PER_BYTE / self.baud


BOARDS = {
    "ulx3s-85f-bram": BoardVariant("ulx3s-85f-bram", "ulx3s-85f-bram", 256 * 1024, 3_000_000,
                                   "ULX3S_85F_Platform", 25_000_000),
    "ulx3s-85f": BoardVariant("ulx3s-85f", "ulx3s-85f", IS42S16160.bytes, 3_000_000,
                              "ULX3S_85F_Platform", 25_000_000, IS42S16160),
}


def board_variant(name: str) -> BoardVariant:
    """The variant called ``name``; ValueError listing the known ones."""
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}")
    return BOARDS[name]
