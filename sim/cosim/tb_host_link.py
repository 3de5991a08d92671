"""cocotb bench of the host link's board end (`bitmill.hw.host_link.HostLink` in front of the
accelerator's register slave), driven through its UART pins by cocotbext-uart's `UartSource`
and `UartSink` as a host would: every request type, a bad checksum, a request cut short, stray
bytes between requests and bytes arriving while a reply goes out. The board memory behind the
byte port is a model here with random latency. `run_bench` emits the Verilog and runs the
bench through ``cocotb_tools.runner``.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import cocotb
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from bitmill import hostlink
from bitmill.config import AccelConfig
from bitmill.fileio import atomic_write_text
from bitmill.hostlink import Command, Reply, Status, parse_reply, request
from bitmill.hw.host_link import HostLink
from bitmill.hw.host_regs import ADDR_WIDTH, HostRegisters
from bitmill.hw.regmap import ID_VALUE, register
from bitmill.sim.cosim.runner import build_and_test
from bitmill.sim.cosim.tb_host_regs import BenchResult, _results

TOP = "bitmill_host_link"
TB_MODULE = "bitmill.sim.cosim.tb_host_link"
DIVISOR = 16
CLOCK_NS = 10
BAUD = 1_000_000_000 // (CLOCK_NS * DIVISOR)
MEM_BYTES = 4096
TIMEOUT_CYCLES = hostlink.TIMEOUT_BYTES * 10 * DIVISOR


class HostLinkBench(wiring.Component):
    """The link in front of the register slave of ``tiny``; the memory port is a top port."""

    def __init__(self):
        self.link = HostLink(DIVISOR, MEM_BYTES, ADDR_WIDTH)
        self.regs = HostRegisters(AccelConfig.resolve("tiny"))
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "mem": Out(self.link.signature.members["mem"].signature)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.link, m.submodules.regs = self.link, self.regs
        wiring.connect(m, self.link.regs, self.regs.host)
        wiring.connect(m, self.link.mem, wiring.flipped(self.mem))
        m.d.comb += [self.link.rx.eq(self.rx), self.tx.eq(self.link.tx), self.busy.eq(self.link.busy)]
        return m


# ---- the bench (runs inside the simulator) ---------------------------------------------------

class Bench:
    """Clock, reset, the UART source and sink on the pins, and the byte memory model."""

    def __init__(self, dut):
        from cocotbext.uart import UartSink, UartSource
        self.dut = dut
        self.memory = bytearray(random.Random(7).randbytes(MEM_BYTES))
        self.source = UartSource(dut.rx, baud=BAUD, bits=8, stop_bits=1)
        self.sink = UartSink(dut.tx, baud=BAUD, bits=8, stop_bits=1)
        self.rng = random.Random(3)

    @classmethod
    async def start(cls, dut) -> "Bench":
        dut.rx.value = 1
        dut.mem__ack.value = 0
        dut.mem__rdata.value = 0
        dut.rst.value = 1
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        bench = cls(dut)
        cocotb.start_soon(bench._memory_model())
        return bench

    async def _memory_model(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if not int(dut.mem__valid.value):
                continue
            addr, write, wdata = int(dut.mem__addr.value), int(dut.mem__write.value), int(dut.mem__wdata.value)
            await RisingEdge(dut.clk)
            for _ in range(self.rng.randint(0, 3)):
                await RisingEdge(dut.clk)
            if write:
                self.memory[addr] = wdata
            dut.mem__rdata.value = self.memory[addr]
            dut.mem__ack.value = 1
            await RisingEdge(dut.clk)
            dut.mem__ack.value = 0

    async def send(self, data: bytes) -> None:
        await self.source.write(data)
        await self.source.wait()

    async def reply(self, max_cycles: int = 4 * TIMEOUT_CYCLES) -> Reply:
        buf = bytearray()
        for _ in range(max_cycles // 100):
            buf += self.sink.read_nowait(self.sink.count())
            try:
                r, n = parse_reply(bytes(buf))
                assert n == len(buf), f"bytes after the reply: {bytes(buf[n:]).hex()}"
                return r
            except hostlink.ReplyError:
                await ClockCycles(self.dut.clk, 100)
        raise AssertionError(f"no reply within {max_cycles} cycles; got {bytes(buf).hex()}")

    async def call(self, command, address=0, length=0, payload=b"") -> Reply:
        await self.send(request(command, address, length, payload))
        return await self.reply()


def _word(v: int) -> bytes:
    return struct.pack("<I", v)


PING_OK = Reply(Status.OK, bytes([hostlink.VERSION]))


@cocotb.test()
async def every_request(dut):
    b = await Bench.start(dut)
    prog = register("PROG_ADDR").offset
    assert await b.call(Command.PING) == PING_OK
    assert await b.call(Command.READ_REG, register("ID").offset, 4) == Reply(Status.OK, _word(ID_VALUE))
    assert await b.call(Command.WRITE_REG, prog, 4, _word(0x1234_5670)) == Reply(Status.OK, b"")
    assert await b.call(Command.READ_REG, prog, 4) == Reply(Status.OK, _word(0x1234_5670))
    block = random.Random(5).randbytes(hostlink.MAX_BLOCK)
    addr = MEM_BYTES - hostlink.MAX_BLOCK
    assert await b.call(Command.WRITE_MEM, addr, len(block), block) == Reply(Status.OK, b"")
    assert bytes(b.memory[addr:]) == block
    assert await b.call(Command.READ_MEM, addr - 7, 100) == Reply(Status.OK, bytes(b.memory[addr - 7:addr + 93]))
    r = await b.call(Command.WRITE_REG, register("ID").offset, 4, _word(0))
    assert r == Reply(Status.BUS_ERROR, b"")


@cocotb.test()
async def bad_requests(dut):
    b = await Bench.start(dut)
    before = bytes(b.memory)
    good = request(Command.WRITE_MEM, 0, 4, b"abcd")
    await b.send(good[:-1] + bytes([good[-1] ^ 0x40]))
    assert await b.reply() == Reply(Status.BAD_CRC, b"")
    assert (await b.call(Command.READ_MEM, MEM_BYTES - 1, 2)).status is Status.BAD_ADDRESS
    assert (await b.call(Command.READ_REG, 0, 8)).status is Status.BAD_LENGTH
    assert (await b.call(Command.WRITE_MEM, 0, hostlink.MAX_BLOCK + 1,
                         bytes(hostlink.MAX_BLOCK + 1))).status is Status.BAD_LENGTH
    assert bytes(b.memory) == before
    assert await b.call(Command.PING) == PING_OK


@cocotb.test()
async def cut_requests_and_stray_bytes(dut):
    b = await Bench.start(dut)
    await b.send(request(Command.WRITE_MEM, 0, 16, bytes(16))[:10])
    assert await b.reply() == Reply(Status.TIMEOUT, b"")
    await b.send(b"\x00\x5a\xff")
    assert await b.call(Command.PING) == PING_OK
    await b.send(request(Command.READ_MEM, 0, 200))
    await ClockCycles(dut.clk, 30 * 10 * DIVISOR)
    await b.send(b"\xa5\x01\x02")                       # while the reply goes out: dropped
    r = await b.reply()
    assert r == Reply(Status.OK, bytes(b.memory[:200]))
    await ClockCycles(dut.clk, 2 * TIMEOUT_CYCLES)
    assert b.sink.count() == 0 and not int(dut.busy.value)
    assert await b.call(Command.PING) == PING_OK
    await Timer(1, "ns")


# ---- running it from pytest ------------------------------------------------------------------

def run_bench(build_dir: str | Path, sim: str = "icarus") -> BenchResult:
    """Emit, build (in ``build_dir / sim``) and run the bench on ``sim``."""
    from amaranth.back import verilog
    build_dir = Path(build_dir).resolve()
    rtl = build_dir / "rtl" / f"{TOP}.v"
    rtl.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(rtl, verilog.convert(HostLinkBench(), name=TOP))
    xml = build_dir / f"results-{sim}.xml"
    xml.unlink(missing_ok=True)
    build_and_test(sim, [rtl], TOP, build_dir / sim, TB_MODULE, {}, results_xml=str(xml))
    if not xml.exists():
        raise RuntimeError(f"the bench wrote no results ({xml}); see the simulator log")
    return _results(xml)
