# amaranth: UnusedElaboratable=no
"""The AXI4-Lite register slave on Amaranth's simulator: every register's value, RW round
trips with byte strobes, the START/CLEAR pulses, SLVERR answers, the AW/W orderings, held
responses under back-pressure, and the response latencies."""

import pytest
from amaranth.sim import Simulator

from bitmill.hw.axi_lite import Resp
from bitmill.hw.host_regs import READ_LATENCY, WRITE_LATENCY, HostRegisters
from bitmill.hw.regmap import ID_VALUE, REGISTERS, Access, ErrorFlag, register

RW = [r for r in REGISTERS if r.access is Access.RW]
RO = [r for r in REGISTERS if r.access is Access.RO]
MAPPED = {r.offset for r in REGISTERS}
UNMAPPED = [a for a in range(0, 0x100, 4) if a not in MAPPED]
CTRL = register("CTRL").offset

INPUTS = {"busy": 0, "done": 1, "error_flags": int(ErrorFlag.DEADLOCK | ErrorFlag.OPERAND),
          "error_instr": 0x0000_1234, "cycles": 0x0123_4567_89AB_CDEF,
          "load_busy": 0x1111_0001, "compute_busy": 0x2222_0002, "store_busy": 0x3333_0003,
          "retired": 0x4444_0004}


def expected_reads(inputs, shape, rw):
    """The value of each readable register, from the spec's table."""
    status = inputs["busy"] | inputs["done"] << 1 | int(inputs["error_flags"] != 0) << 2
    return {"ID": ID_VALUE, "SHAPE": shape, "STATUS": status, "ERROR": inputs["error_flags"],
            "ERROR_INSTR": inputs["error_instr"], "CYCLES_LO": inputs["cycles"] & 0xFFFF_FFFF,
            "CYCLES_HI": inputs["cycles"] >> 32, "LOAD_BUSY": inputs["load_busy"],
            "COMPUTE_BUSY": inputs["compute_busy"], "STORE_BUSY": inputs["store_busy"],
            "RETIRED": inputs["retired"], **rw}


class Host:
    """An AXI4-Lite master driving ``dut.host`` cycle by cycle; records the cycles in which
    ``start`` and ``clear`` are high."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut, self.h = ctx, dut, dut.host
        self.cycle = 0
        self.starts, self.clears = [], []

    async def tick(self):
        await self.ctx.tick()
        self.cycle += 1
        if self.ctx.get(self.dut.start):
            self.starts.append(self.cycle)
        if self.ctx.get(self.dut.clear):
            self.clears.append(self.cycle)

    def set_inputs(self, inputs):
        for name, value in inputs.items():
            self.ctx.set(getattr(self.dut, name), value)

    async def write(self, addr, data, strb=0xF, aw_delay=0, w_delay=0, b_delay=0):
        """One write; returns (bresp, latency from the later handshake to bvalid, the cycle
        in which bvalid rose)."""
        ctx, h = self.ctx, self.h
        ctx.set(h.bready, 0)
        ctx.set(h.awaddr, addr)
        ctx.set(h.wdata, data)
        ctx.set(h.wstrb, strb)
        aw_done = w_done = False
        n = 0
        while not (aw_done and w_done):
            assert n < 20, "write address/data never accepted"
            ctx.set(h.awvalid, n >= aw_delay and not aw_done)
            ctx.set(h.wvalid, n >= w_delay and not w_done)
            if aw_done:
                assert not ctx.get(h.awready), "a second write address accepted"
            if w_done:
                assert not ctx.get(h.wready), "a second write data accepted"
            aw_hs = ctx.get(h.awvalid) and ctx.get(h.awready)
            w_hs = ctx.get(h.wvalid) and ctx.get(h.wready)
            assert not ctx.get(h.bvalid)
            await self.tick()
            n += 1
            aw_done, w_done = aw_done or aw_hs, w_done or w_hs
        ctx.set(h.awvalid, 0)
        ctx.set(h.wvalid, 0)
        latency = 1
        while not ctx.get(h.bvalid):
            assert latency < 20, "no write response"
            await self.tick()
            latency += 1
        rose, resp = self.cycle, ctx.get(h.bresp)
        for _ in range(b_delay):
            await self.tick()
            assert ctx.get(h.bvalid) and ctx.get(h.bresp) == resp
            assert not ctx.get(h.awready) and not ctx.get(h.wready)
        ctx.set(h.bready, 1)
        await self.tick()
        ctx.set(h.bready, 0)
        assert not ctx.get(h.bvalid)
        return resp, latency, rose

    async def read(self, addr, r_delay=0, after_handshake=None):
        """One read; returns (rdata, rresp, latency from the AR handshake to rvalid).
        ``after_handshake`` is called in the cycle after the AR handshake."""
        ctx, h = self.ctx, self.h
        ctx.set(h.rready, 0)
        ctx.set(h.araddr, addr)
        ctx.set(h.arvalid, 1)
        while not ctx.get(h.arready):
            await self.tick()
        await self.tick()
        ctx.set(h.arvalid, 0)
        if after_handshake is not None:
            after_handshake()
        latency = 1
        while not ctx.get(h.rvalid):
            assert latency < 20, "no read response"
            await self.tick()
            latency += 1
        data, resp = ctx.get(h.rdata), ctx.get(h.rresp)
        for _ in range(r_delay):
            await self.tick()
            assert ctx.get(h.rvalid) and ctx.get(h.rdata) == data and ctx.get(h.rresp) == resp
            assert not ctx.get(h.arready)
        ctx.set(h.rready, 1)
        await self.tick()
        ctx.set(h.rready, 0)
        assert not ctx.get(h.rvalid)
        return data, resp, latency


def simulate(cfg, bench):
    dut = HostRegisters(cfg)

    async def testbench(ctx):
        await bench(Host(ctx, dut))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return dut


def test_latencies_are_properties(tiny):
    dut = HostRegisters(tiny)
    assert (dut.write_latency, dut.read_latency) == (WRITE_LATENCY, READ_LATENCY) == (1, 1)


def test_rejects_a_non_config():
    with pytest.raises(ValueError, match="cfg must be an AccelConfig"):
        HostRegisters("tiny")


@pytest.mark.parametrize("config", ["tiny", "tiny_bitparallel"])
def test_every_readable_register(config, request):
    cfg = request.getfixturevalue(config)
    shape = (cfg.rows - 1) | (cfg.cols - 1) << 8 | (cfg.lanes - 1) << 16 \
        | int(cfg.pe_family == "bitparallel") << 26
    want = expected_reads(INPUTS, shape, {r.name: 0 for r in RW})

    async def bench(host):
        host.set_inputs(INPUTS)
        for reg in REGISTERS:
            if reg.access.readable:
                data, resp, latency = await host.read(reg.offset)
                assert (reg.name, data, resp) == (reg.name, want[reg.name], Resp.OKAY)
                assert latency == READ_LATENCY
    simulate(cfg, bench)


def test_status_follows_its_inputs(tiny):
    async def bench(host):
        for busy in (0, 1):
            for done in (0, 1):
                for flags in (0, int(ErrorFlag.ILLEGAL_OPCODE), int(ErrorFlag.OPERAND)):
                    host.set_inputs({"busy": busy, "done": done, "error_flags": flags})
                    data, resp, _ = await host.read(register("STATUS").offset)
                    assert data == busy | done << 1 | int(flags != 0) << 2
                    assert resp == Resp.OKAY
    simulate(tiny, bench)


def test_read_samples_at_the_address_handshake(tiny):
    async def bench(host):
        host.set_inputs({"retired": 7})
        data, _, _ = await host.read(register("RETIRED").offset,
                                     after_handshake=lambda: host.ctx.set(host.dut.retired, 8))
        assert data == 7
        data, _, _ = await host.read(register("RETIRED").offset)
        assert data == 8
    simulate(tiny, bench)


def merge(old, new, strb):
    mask = sum(0xFF << 8 * i for i in range(4) if strb >> i & 1)
    return (old & ~mask) | (new & mask)


def test_rw_round_trip_with_strobes(tiny):
    ports = {"PROG_ADDR": "prog_addr", "PROG_COUNT": "prog_count", "MEM_BYTES": "mem_bytes"}

    async def bench(host):
        model = {r.name: 0 for r in RW}
        for strb in range(16):
            for k, reg in enumerate(RW):
                data = (0x9E3779B9 * (strb * 3 + k + 1)) & 0xFFFF_FFFF
                resp, latency, _ = await host.write(reg.offset, data, strb)
                assert (resp, latency) == (Resp.OKAY, WRITE_LATENCY)
                model[reg.name] = merge(model[reg.name], data, strb)
            for reg in RW:
                assert host.ctx.get(getattr(host.dut, ports[reg.name])) == model[reg.name]
                data, resp, _ = await host.read(reg.offset)
                assert (reg.name, data, resp) == (reg.name, model[reg.name], Resp.OKAY)
    simulate(tiny, bench)


def test_start_pulses_once_when_not_busy(tiny):
    async def bench(host):
        host.set_inputs({"busy": 0})
        _, _, rose = await host.write(CTRL, 0x1)
        assert host.starts == [rose] and host.clears == []
        await host.tick()
        assert host.starts == [rose]
    simulate(tiny, bench)


def test_start_is_ignored_while_busy_or_without_strobe(tiny):
    async def bench(host):
        host.set_inputs({"busy": 1})
        resp, _, _ = await host.write(CTRL, 0x1)
        assert resp == Resp.OKAY
        host.set_inputs({"busy": 0})
        await host.write(CTRL, 0x1, strb=0b1110)
        await host.write(CTRL, 0x0)
        for _ in range(3):
            await host.tick()
        assert host.starts == [] and host.clears == []
    simulate(tiny, bench)


def test_clear_pulses_and_start_with_clear(tiny):
    async def bench(host):
        _, _, rose = await host.write(CTRL, 0x2)
        assert host.clears == [rose] and host.starts == []
        host.set_inputs({"busy": 1})
        _, _, rose2 = await host.write(CTRL, 0x3)    # clear still pulses while busy
        assert host.clears == [rose, rose2] and host.starts == []
        host.set_inputs({"busy": 0})
        _, _, rose3 = await host.write(CTRL, 0x3)
        assert host.clears == [rose, rose2, rose3] and host.starts == [rose3]
    simulate(tiny, bench)


def test_writes_to_read_only_and_unmapped_answer_slverr(tiny):
    async def bench(host):
        host.set_inputs(INPUTS)
        for k, reg in enumerate(RW):
            await host.write(reg.offset, 0x5A5A_0000 + k)
        for addr in [r.offset for r in RO] + UNMAPPED:
            resp, latency, _ = await host.write(addr, 0xFFFF_FFFF)
            assert (addr, resp, latency) == (addr, Resp.SLVERR, WRITE_LATENCY)
        assert host.starts == [] and host.clears == []
        want = expected_reads(INPUTS, HostRegisters(tiny).shape_word,
                              {reg.name: 0x5A5A_0000 + k for k, reg in enumerate(RW)})
        for reg in REGISTERS:
            if reg.access.readable:
                data, _, _ = await host.read(reg.offset)
                assert (reg.name, data) == (reg.name, want[reg.name])
    simulate(tiny, bench)


def test_reads_of_write_only_and_unmapped_answer_slverr_with_zero(tiny):
    async def bench(host):
        host.set_inputs({"busy": 1, "done": 1, "error_flags": 0xFF})
        for addr in [CTRL] + UNMAPPED:
            data, resp, latency = await host.read(addr)
            assert (addr, data, resp, latency) == (addr, 0, Resp.SLVERR, READ_LATENCY)
    simulate(tiny, bench)


def test_low_address_bits_are_ignored(tiny):
    async def bench(host):
        data, resp, _ = await host.read(register("ID").offset + 3)
        assert (data, resp) == (ID_VALUE, Resp.OKAY)
        resp, _, _ = await host.write(register("PROG_COUNT").offset + 1, 0x77)
        data, _, _ = await host.read(register("PROG_COUNT").offset)
        assert (resp, data) == (Resp.OKAY, 0x77)
    simulate(tiny, bench)


@pytest.mark.parametrize("aw_delay,w_delay", [(0, 0), (0, 1), (0, 4), (1, 0), (4, 0)])
def test_address_and_data_in_any_order(tiny, aw_delay, w_delay):
    async def bench(host):
        reg = register("MEM_BYTES")
        resp, latency, _ = await host.write(reg.offset, 0xCAFE_0000 + aw_delay * 16 + w_delay,
                                            aw_delay=aw_delay, w_delay=w_delay)
        assert (resp, latency) == (Resp.OKAY, WRITE_LATENCY)
        data, _, _ = await host.read(reg.offset)
        assert data == 0xCAFE_0000 + aw_delay * 16 + w_delay
        _, _, rose = await host.write(CTRL, 1, aw_delay=aw_delay, w_delay=w_delay)
        assert host.starts == [rose]
    simulate(tiny, bench)


def test_responses_are_held_under_back_pressure(tiny):
    async def bench(host):
        reg = register("PROG_ADDR")
        for delay in (1, 5):
            resp, latency, _ = await host.write(reg.offset, 0x1000 * delay, b_delay=delay)
            assert (resp, latency) == (Resp.OKAY, WRITE_LATENCY)
            data, resp, _ = await host.read(reg.offset, r_delay=delay)
            assert (data, resp) == (0x1000 * delay, Resp.OKAY)
            resp, _, _ = await host.write(0x40, 0, b_delay=delay)
            assert resp == Resp.SLVERR
            data, resp, _ = await host.read(0x40, r_delay=delay)
            assert (data, resp) == (0, Resp.SLVERR)
    simulate(tiny, bench)


def test_read_and_write_channels_are_independent(tiny):
    """A read is answered while a write waits for its data."""
    async def bench(host):
        ctx, h = host.ctx, host.h
        ctx.set(h.awaddr, register("PROG_COUNT").offset)
        ctx.set(h.awvalid, 1)
        await host.tick()
        ctx.set(h.awvalid, 0)
        data, resp, _ = await host.read(register("ID").offset)
        assert (data, resp) == (ID_VALUE, Resp.OKAY)
        assert not ctx.get(h.awready) and ctx.get(h.wready) and not ctx.get(h.bvalid)
        ctx.set(h.wdata, 9)
        ctx.set(h.wstrb, 0xF)
        ctx.set(h.wvalid, 1)
        await host.tick()
        ctx.set(h.wvalid, 0)
        assert ctx.get(h.bvalid) and ctx.get(h.bresp) == Resp.OKAY
        assert ctx.get(host.dut.prog_count) == 9
    simulate(tiny, bench)


def test_axi_lite_signature_members_and_validation():
    from amaranth import Shape
    from amaranth.lib.wiring import In, Out

    from bitmill.hw.axi_lite import AxiLiteSignature
    sig = AxiLiteSignature(8)
    outs = {n for n, m in sig.members.items() if m.flow == Out}
    ins = {n for n, m in sig.members.items() if m.flow == In}
    assert outs == {"awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                    "araddr", "arprot", "arvalid", "rready"}
    assert ins == {"awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid"}
    assert (Shape.cast(sig.members["awaddr"].shape).width,
            Shape.cast(sig.members["wstrb"].shape).width) == (8, 4)
    assert AxiLiteSignature(12, 64).strobe_width == 8
    assert sig == AxiLiteSignature(8, 32) and sig != AxiLiteSignature(9)
    for bad, message in [((0,), "addr_width must be an integer in 1..64, not 0"),
                         ((True,), "addr_width must be an integer in 1..64, not True"),
                         ((8, 16), "data_width must be one of 32, 64, not 16")]:
        with pytest.raises(ValueError, match=message):
            AxiLiteSignature(*bad)


def test_verilog_port_names_have_the_host_prefix(tiny):
    """cocotbext-axi's ``AxiLiteBus.from_prefix(dut, "host_")`` looks for ``host__<signal>``."""
    from amaranth.back import verilog
    text = verilog.convert(HostRegisters(tiny), name="regs")
    for name in HostRegisters(tiny).host.signature.members:
        assert f"host__{name}" in text
