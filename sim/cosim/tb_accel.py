"""cocotb bench of the whole accelerator (`bitmill.hw.accel.Accelerator`) on an RTL simulator,
with cocotbext-axi's ``AxiRam`` as DRAM and ``AxiLiteMaster`` as the host: the host writes the
program's address and length, starts it and polls STATUS until DONE; the bench then writes
the final DRAM image and the registers to files for Python to check against the golden model
(function only: ``AxiRam`` has its own latency, so the cycle count is not the model's).

`run_accel_bench` emits the accelerator, builds it and runs this module's test through
``cocotb_tools.runner``. Environment of the bench:

* ``BITMILL_ACCEL_CONFIG``: the `AccelConfig` as JSON
* ``BITMILL_IMAGE``: the DRAM image (data, then the program at ``BITMILL_PROG_ADDR``)
* ``BITMILL_PROG_ADDR``, ``BITMILL_PROG_COUNT``: where the program is and its instructions
* ``BITMILL_RESULT``: folder to write ``image.bin`` and ``registers.json`` to
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cocotb
from amaranth.back import verilog
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from bitmill.isa import Program
from bitmill.hw.accel import Accelerator
from bitmill.hw.regmap import REGISTERS, register
from bitmill.program_file import program_image
from bitmill.sim.cosim.runner import build_and_test

TOP = "accel"
TB_MODULE = "bitmill.sim.cosim.tb_accel"
POLL_LIMIT = 200_000


@dataclass(frozen=True)
class AccelRun:
    """What the host read at the end: the final DRAM image and the registers by name."""
    image: bytes
    registers: dict


def run_accel_bench(program: Program, build_dir: str | Path, sim: str = "icarus") -> AccelRun:
    """Emit the accelerator of ``program.config``, build it for ``sim`` in ``build_dir`` and
    run ``program`` on it."""
    cfg = program.config
    build_dir = Path(build_dir).resolve() / sim
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{TOP}.v"
    source.write_text(verilog.convert(Accelerator(cfg), name=TOP))
    image, addr = program_image(program)
    (build_dir / "input.bin").write_bytes(image)
    result = build_dir / "result"
    result.mkdir(exist_ok=True)
    (result / "registers.json").unlink(missing_ok=True)
    env = {"BITMILL_ACCEL_CONFIG": json.dumps(cfg.to_dict()), "BITMILL_IMAGE": str(build_dir / "input.bin"),
           "BITMILL_PROG_ADDR": str(addr), "BITMILL_PROG_COUNT": str(program.fill_words()[0]),
           "BITMILL_RESULT": str(result)}
    build_and_test(sim, [source], TOP, build_dir, TB_MODULE, env)
    regs = result / "registers.json"
    if not regs.exists():
        raise RuntimeError(f"the bench wrote no result ({regs}); see the simulator log")
    return AccelRun((result / "image.bin").read_bytes(), json.loads(regs.read_text()))


# ---- the cocotb bench (runs inside the simulator) -------------------------------------------

@cocotb.test()
async def program_runs_to_done(dut):
    """Load the image into AxiRam, start the program through the registers, wait for DONE."""
    from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

    image = Path(os.environ["BITMILL_IMAGE"]).read_bytes()
    result = Path(os.environ["BITMILL_RESULT"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRam(AxiBus.from_prefix(dut, "mem_"), dut.clk, dut.rst, size=1 << (len(image) - 1).bit_length())
    ram.write(0, image)
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "host_"), dut.clk, dut.rst)

    async def write(name: str, value: int) -> None:
        await host.write(register(name).offset, value.to_bytes(4, "little"))

    async def read(name: str) -> int:
        return int.from_bytes((await host.read(register(name).offset, 4)).data, "little")

    await write("PROG_ADDR", int(os.environ["BITMILL_PROG_ADDR"]))
    await write("PROG_COUNT", int(os.environ["BITMILL_PROG_COUNT"]))
    await write("MEM_BYTES", len(image))
    await write("CTRL", 1)
    for _ in range(POLL_LIMIT):
        if await read("STATUS") & 0b010:
            break
        for _ in range(50):
            await RisingEdge(dut.clk)
    regs = {r.name: await read(r.name) for r in REGISTERS if r.access.readable}
    (result / "image.bin").write_bytes(ram.read(0, len(image)))
    (result / "registers.json").write_text(json.dumps(regs))
    assert regs["STATUS"] & 0b010, "the program did not finish"
