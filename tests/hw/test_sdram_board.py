# amaranth: UnusedElaboratable=no
"""The SDRAM board's own blocks on Amaranth's simulator: the initialisation sequencer on a
Wishbone slave that answers late, the host link's byte port as AXI transactions on an AXI
memory, and the ULX3S top of the SDRAM variant (pins, PLL outputs, the controller's Verilog)."""

from __future__ import annotations

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from bitmill.hw.axi_sram import AxiSram
from bitmill.hw.byte_axi import ByteToAxi
from bitmill.hw.host_bridge import BytePortSignature
from bitmill.hw.litedram import InitOp
from bitmill.hw.sdram_memory import SdramInit

OPS = (InitOp(0x80C, 0), InitOp(0x800, 14), InitOp(None, 7), InitOp(0x804, 11), InitOp(0x808, 1),
       InitOp(None, 3), InitOp(0x800, 1), InitOp(0, 1))


def test_the_sequencer_writes_each_step_once_and_waits_its_cycles():
    dut = SdramInit(OPS)
    seen = []

    async def slave(ctx):
        cycle = 0
        while not ctx.get(dut.done):
            if ctx.get(dut.wb.cyc) and ctx.get(dut.wb.stb):
                assert ctx.get(dut.wb.we) and ctx.get(dut.wb.sel) == 0xF
                for _ in range(2):                      # answer two cycles late
                    await ctx.tick()
                    cycle += 1
                seen.append((cycle, ctx.get(dut.wb.adr) * 4, ctx.get(dut.wb.dat_w)))
                ctx.set(dut.wb.ack, 1)
                await ctx.tick()
                ctx.set(dut.wb.ack, 0)
            else:
                await ctx.tick()
            cycle += 1
        assert not ctx.get(dut.wb.cyc)
        for _ in range(5):                              # and stays done
            await ctx.tick()
            assert ctx.get(dut.done) and not ctx.get(dut.wb.cyc)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(slave)
    sim.run()
    assert [(a, v) for _, a, v in seen] == [(op.addr, op.value) for op in OPS if op.addr is not None]
    step = seen[3][0] - seen[2][0]                      # back-to-back writes
    assert seen[2][0] - seen[1][0] == step + 7 + 1      # a write, the 7-cycle wait, the next write
    assert seen[4][0] - seen[3][0] == step + 3 + 1


def test_the_sequencer_refuses_bad_steps():
    with pytest.raises(ValueError, match="non-empty tuple of InitOp"):
        SdramInit(())
    with pytest.raises(ValueError, match="multiples of 4"):
        SdramInit((InitOp(0x802, 1),))


class _ByteMemory(wiring.Component):
    def __init__(self):
        self.adapter = ByteToAxi(12, 4)
        self.sram = AxiSram(4, 5, 4096)
        super().__init__({"bytes": wiring.In(BytePortSignature(12)),
                          "hold": wiring.In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.adapter, m.submodules.sram = self.adapter, self.sram
        wiring.connect(m, self.adapter.axi, self.sram.bus)
        wiring.connect(m, wiring.flipped(self.bytes), self.adapter.bytes)
        m.d.comb += self.adapter.hold.eq(self.hold)
        return m


def test_byte_writes_and_reads_reach_every_lane_of_an_axi_memory():
    dut = _ByteMemory()
    data = {a: (37 * a + 5) & 0xFF for a in (0, 1, 2, 3, 4, 7, 13, 4095)}
    reads = {}

    async def access(ctx, addr, write, value=0):
        p = dut.bytes
        ctx.set(p.valid, 1), ctx.set(p.addr, addr), ctx.set(p.write, write), ctx.set(p.wdata, value)
        for _ in range(50):
            await ctx.tick()
            if ctx.get(p.ack):
                break
        else:
            raise AssertionError(f"no ack for address {addr}")
        got = ctx.get(p.rdata)
        ctx.set(p.valid, 0)
        await ctx.tick()
        return got

    async def host(ctx):
        ctx.set(dut.hold, 1)
        ctx.set(dut.bytes.valid, 1)
        for _ in range(20):                           # held: no AXI request leaves
            await ctx.tick()
            assert not ctx.get(dut.adapter.axi.awvalid) and not ctx.get(dut.adapter.axi.arvalid)
        ctx.set(dut.bytes.valid, 0)
        ctx.set(dut.hold, 0)
        for a, v in data.items():
            await access(ctx, a, 1, v)
        for a in data:
            reads[a] = await access(ctx, a, 0)
        reads[5] = await access(ctx, 5, 0)           # never written: the neighbours' writes left it 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.run()
    assert reads == data | {5: 0}


def test_the_sdram_top_has_the_chip_pins_both_pll_outputs_and_the_controller(tmp_path):
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    from bitmill.hw.board_top import Ulx3sTop, ecp5_pll_params
    from bitmill.hw.boards import board_variant
    from bitmill.hw.litedram import generate
    variant = board_variant("ulx3s-85f")
    assert variant.memory == "sdram" and board_variant("ulx3s-85f-bram").memory == "bram"
    assert variant.divisor == 15                       # 45 MHz / 3 Mbaud
    core = generate(variant.sdram, variant.clock_hz, 4, "board", tmp_path / "litedram")
    top = Ulx3sTop(variant, core)
    assert core.clock_ratio == 2 and top.pll == ecp5_pll_params(25_000_000, 45_000_000, 2)     # the chip at 90 MHz
    plan = ULX3S_85F_Platform().prepare(top, name="top")
    assert plan.files["litedram_core.v"] == core.verilog
    lpf = plan.files["top.lpf"]
    for pin in ("F19", "F20", "P20", "J16", "J17", "M20", "U19", "E20"):    # clk, cke, cs, dq 0/15, a0, dqm
        assert f'SITE "{pin}"' in lpf
    rtlil = plan.files["top.il"]
    assert "CLKOS_CPHASE" in rtlil and "CLKOS2_DIV" in rtlil and "litedram_core" in rtlil
    assert "clk2x" in rtlil                                        # the controller's I/O registers at 90 MHz
    with pytest.raises(ValueError, match="board ulx3s-85f needs an SDRAM controller"):
        Ulx3sTop(variant)
    with pytest.raises(ValueError, match="board ulx3s-85f-bram needs no SDRAM controller"):
        Ulx3sTop(board_variant("ulx3s-85f-bram"), core)
    sim_core = generate(variant.sdram, variant.clock_hz, 4, "sim", tmp_path / "sim")
    with pytest.raises(ValueError, match="needs the board flavour of the controller, not 'sim'"):
        Ulx3sTop(variant, sim_core)


def test_the_sdram_core_and_its_simulation_refuse_mismatched_parts(tmp_path):
    from dataclasses import replace

    from bitmill.config import AccelConfig
    from bitmill.hw.board_sdram import SdramBoardCore
    from bitmill.hw.litedram import IS42S16160, generate
    from bitmill.sim.cosim import board_sim
    cfg = AccelConfig.resolve("ulx3s-85f")
    board = generate(IS42S16160, 45_000_000, 4, "board", tmp_path / "board")
    with pytest.raises(ValueError, match="Verilator runs the sim flavour of the controller, not 'board'"):
        board_sim.build_sdram(cfg, 4, board, tmp_path / "sim")
    with pytest.raises(ValueError, match="carry 4 bytes per beat, the config's AXI port 8"):
        SdramBoardCore(replace(cfg, mem_bytes_per_cycle=8), 4, board)
    with pytest.raises(TypeError, match="cfg must be an AccelConfig"):
        SdramBoardCore("ulx3s-85f", 4, board)
    assert not (tmp_path / "sim").exists()
