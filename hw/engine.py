"""Tile engine: operand buffers (filled through a load stream), tile sequencer, MAC array and
a result read port. One command runs one GEMM tile ``(R x K_total) @ (K_total x C)`` in exactly
`bitmill.timing.tile_cycles` cycles.

Buffer word layout (host side: `bitmill.sim.cosim.tiles`): the weight buffer word at
``plane * chunk_slots + chunk`` holds, for every row ``r``, lanes ``k`` of chunk ``chunk``
at bits ``r*K*E + k*E .. +E`` where ``E`` is 1 (bit-serial: bit ``plane`` of the code) or 9
(bit-parallel: the signed value, ``plane = 0``). The activation buffer is the same per column.

A buffer word must not be loaded in the cycle a tile reads it: synthesis treats such a
collision as undefined (`bitmill.hw.synth`), which keeps logic off the block RAM outputs.
"""

from __future__ import annotations

from amaranth import Array, Module, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.array import MacArray
from bitmill.hw.cells import check_cells
from bitmill.hw.params import VALUE_BITS, accumulator_width, check_family, check_positive
from bitmill.isa import engine_chunks  # noqa: F401  (the engine's size, re-exported)
from bitmill.hw.sequencer import TileSequencer, chunk_slots, command_layout
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.timing import FETCH_STAGES, pipeline_latency, tile_cycles


def load_layout(word_bits: int, depth: int) -> data.StructLayout:
    """One buffer write: target 0 = weights, 1 = activations."""
    return data.StructLayout({"target": 1, "addr": range(depth), "data": word_bits})


class TileEngine(wiring.Component):
    """Members: ``load`` (In stream, always ready: one word per cycle), ``cmd`` (In stream: one tile),
    ``busy`` (Out), ``done`` (Out: results of the last tile valid), ``res_addr`` (In:
    ``r * cols + c``) and ``res_data`` (Out, `res_latency` cycles later)."""

    def __init__(self, rows: int, cols: int, lanes: int, family: str, max_chunks: int,
                 cells: str | None = None):
        self.rows = check_positive("rows", rows, 256)
        self.cols = check_positive("cols", cols, 256)
        self.lanes = check_positive("lanes", lanes, 4096)
        self.family = check_family(family)
        self.max_chunks = check_positive("max_chunks", max_chunks, 1 << 16)
        self.cells = check_cells(cells)    # popcount mapping (`bitmill.hw.array.MacArray`)
        self.lane_bits = 1 if family == "bitserial" else VALUE_BITS
        self.acc_width = accumulator_width(max_chunks * lanes)
        self.depth = (MAX_RUNTIME_BITS if family == "bitserial" else 1) * chunk_slots(max_chunks)
        self.word_bits = max(rows, cols) * lanes * self.lane_bits
        super().__init__({
            "load": In(stream.Signature(load_layout(self.word_bits, self.depth))),
            "cmd": In(stream.Signature(command_layout(max_chunks))),
            "busy": Out(1), "done": Out(1),
            "res_addr": In(range(rows * cols)), "res_data": Out(signed(self.acc_width)),
        })

    @classmethod
    def from_config(cls, cfg: AccelConfig, cells: str | None = None) -> "TileEngine":
        """The engine of an accelerator configuration (`engine_chunks` sizes the buffers)."""
        return cls(cfg.rows, cfg.cols, cfg.lanes, cfg.pe_family, engine_chunks(cfg), cells)

    @property
    def max_k_total(self) -> int:
        return self.max_chunks * self.lanes

    @property
    def latency(self) -> int:
        """Pipeline fill/drain of one tile (`bitmill.timing.pipeline_latency`): fetch
        (`FETCH_STAGES`: address, read data, broadcast) then the PE (multiply, tree, term,
        accumulate). Decoding the first address overlaps the acceptance of the command, so a
        tile takes ``steps + latency`` cycles."""
        return pipeline_latency(self.family, self.lanes)

    def tile_cycles(self, k_total: int, w_bits: int, a_bits: int) -> int:
        """Cycles from accepting a command to ``done`` (`bitmill.timing.tile_cycles`)."""
        return tile_cycles(self.family, self.lanes, k_total, w_bits, a_bits)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.seq = seq = TileSequencer(self.family, self.max_chunks)
        m.submodules.array = array = MacArray(self.rows, self.cols, self.lanes, self.family,
                                              self.acc_width, self.cells)
        self._buffers(m, seq, array)
        self._control(m, seq, array)
        self._results(m, array)
        return m

    def _buffers(self, m: Module, seq, array) -> None:
        """Fetch stages (`FETCH_STAGES`): the buffer address registered by the block RAMs,
        then one weight and one activation word per step, read and registered twice (block
        RAM clock-to-out is slow: the first register sits by the RAM, the second drives the
        array's long broadcast wires)."""
        for name, addr, dest, count in (("wbuf", seq.w_addr, array.w, self.rows),
                                        ("abuf", seq.a_addr, array.a, self.cols)):
            bits = count * self.lanes * self.lane_bits
            m.d.comb += self.load.ready.eq(1)
            mem = memory.Memory(shape=bits, depth=self.depth, init=[])
            m.submodules[name] = mem
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [wr.addr.eq(self.load.payload.addr), wr.data.eq(self.load.payload.data),
                         wr.en.eq(self.load.valid & (self.load.payload.target == (name == "abuf")))]
            addr_q = Signal.like(addr, name=f"{name}_addr", reset_less=True)
            m.d.sync += addr_q.eq(addr)          # the sequencer sits far from the block RAMs
            m.d.comb += rd.addr.eq(addr_q)
            data = rd.data
            for n in range(FETCH_STAGES - 1):  # reset-less: no reset logic before the FFs
                reg = Signal(bits, name=f"{name}_q{n + 1}", reset_less=True)
                m.d.sync += reg.eq(data)
                data = reg
            m.d.comb += dest.eq(data)
        ctrl = seq.ctrl
        for n in range(FETCH_STAGES):
            nxt = Signal.like(seq.ctrl, name=f"ctrl_fetch{n + 1}")
            m.d.sync += nxt.eq(ctrl)
            ctrl = nxt
        m.d.comb += array.ctrl.eq(ctrl)

    def _control(self, m: Module, seq, array) -> None:
        """Accept a command when idle; ``done`` from the last accumulate to the next command."""
        m.d.comb += [seq.cmd.payload.eq(self.cmd.payload),
                     seq.cmd.valid.eq(self.cmd.valid & ~self.busy),
                     self.cmd.ready.eq(~self.busy)]
        running, finished = Signal(), Signal()
        with m.If(self.cmd.valid & ~self.busy):
            m.d.sync += [running.eq(1), finished.eq(0)]
        with m.Elif(array.done):
            m.d.sync += [running.eq(0), finished.eq(1)]
        m.d.comb += [self.busy.eq(running & ~array.done), self.done.eq(finished | array.done)]

    @property
    def res_latency(self) -> int:
        """Cycles from ``res_addr`` to ``res_data``: two registered multiplexer levels."""
        return 2

    def _results(self, m: Module, array) -> None:
        """Result read port in two stages: each group of `result_group` accumulators is
        narrowed to one registered value (low address bits), then the group is chosen (high
        bits, registered), so no path crosses the whole array in one cycle."""
        n = self.rows * self.cols
        group = result_group(n)
        low = (group - 1).bit_length()
        lo = self.res_addr[:low] if low else 0
        picked = []
        for g in range(-(-n // group)):
            members = [array.acc[k] for k in range(g * group, min(n, (g + 1) * group))]
            reg = Signal(signed(self.acc_width), name=f"res_g{g}", reset_less=True)
            m.d.sync += reg.eq(Array(members)[lo] if len(members) > 1 else members[0])
            picked.append(reg)
        hi = Signal(max(1, len(self.res_addr) - low), name="res_group", reset_less=True)
        m.d.sync += hi.eq(self.res_addr[low:] if len(self.res_addr) > low else 0)
        m.d.sync += self.res_data.eq(Array(picked)[hi] if len(picked) > 1 else picked[0])


def result_group(n: int) -> int:
    """Accumulators per first-stage group of the result read port: the power of two
    nearest above sqrt(n)."""
    return 1 << ((n - 1).bit_length() + 1) // 2
