"""Tile engine: operand buffers (filled through a load stream), tile sequencer, MAC array and
a result read port. One command runs one GEMM tile ``(R x K_total) @ (K_total x C)`` in exactly
`bitmill.timing.tile_cycles` cycles.

Buffer word layout (host side: `bitmill.sim.cosim.tiles`): the weight buffer word at
``plane * chunk_slots + chunk`` holds, for every row ``r``, lanes ``k`` of chunk ``chunk``
at bits ``r*K*E + k*E .. +E`` where ``E`` is 1 (bit-serial: bit ``plane`` of the code) or 9
(bit-parallel: the signed value, ``plane = 0``). The activation buffer is the same per column.

A buffer word must not be loaded in the cycle a tile reads it: synthesis treats such a
collision as undefined (`bitmill.hw.synth`), which keeps logic off the block RAM outputs.

Overlapped use (the GEMM unit): with ``act_halves=2`` the activation buffer has two halves;
activation loads go to half ``load_half`` while a tile reads the half ``cmd_half`` named with
its command, so the next tile's activations are loaded while a tile runs. With
``shadow=True`` a ``copy`` pulse copies the ``R x C`` accumulators into shadow registers
(at the clock edge ending the cycle), and the result port reads the shadow registers, so a
tile's results are read while the next tile runs.

Partial-sum passes (``passes`` > 1, with ``shadow``): the weight buffer holds ``passes``
regions of ``chunk_slots`` chunks per plane (a command's ``w_pass`` picks one), and a ``copy``
with ``accumulate`` adds the accumulators to the shadow registers instead of replacing them;
the shadow registers and the result port are `res_width` bits wide (every precision over
``passes * max_chunks * lanes`` terms).
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.array import MacArray
from bitmill.hw.cells import check_cells
from bitmill.hw.params import VALUE_BITS, accumulator_width, check_family, check_positive
from bitmill.hw.pe import copy_register
from bitmill.isa import engine_chunks  # noqa: F401  (the engine's size, re-exported)
from bitmill.hw.sequencer import TileSequencer, check_passes, chunk_slots, command_layout
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.timing import FETCH_STAGES, pipeline_latency, tile_cycles


def load_layout(word_bits: int, depth: int) -> data.StructLayout:
    """One buffer write: target 0 = weights, 1 = activations."""
    return data.StructLayout({"target": 1, "addr": range(depth), "data": word_bits})


class TileEngine(wiring.Component):
    """Members: ``load`` (In stream, always ready: one word per cycle), ``cmd`` (In stream: one tile),
    ``busy`` (Out), ``done`` (Out: results of the last tile valid), ``done_next`` (Out: ``done``
    in the next cycle, unless a command is taken in this one), ``res_addr`` (In:
    ``r * cols + c``) and ``res_data`` (Out, `res_latency` cycles later). With
    ``act_halves=2`` also ``load_half`` and ``cmd_half`` (In); with ``shadow`` also ``copy``
    (In); with ``passes > 1`` also ``accumulate`` (In, with ``copy``)."""

    def __init__(self, rows: int, cols: int, lanes: int, family: str, max_chunks: int,
                 cells: str | None = None, act_halves: int = 1, shadow: bool = False,
                 passes: int = 1):
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
        if act_halves not in (1, 2):
            raise ValueError(f"act_halves must be 1 or 2, not {act_halves!r}")
        if not isinstance(shadow, bool):
            raise ValueError(f"shadow must be a bool, not {shadow!r}")
        self.passes = check_passes(passes)
        if passes > 1 and not shadow:
            raise ValueError("partial-sum passes need the shadow registers (shadow=True)")
        self.act_halves, self.shadow = act_halves, shadow
        self.res_width = accumulator_width(passes * max_chunks * lanes)
        members = {
            "load": In(stream.Signature(load_layout(self.word_bits, self.depth * passes))),
            "cmd": In(stream.Signature(command_layout(max_chunks, passes))),
            "busy": Out(1), "done": Out(1), "done_next": Out(1),
            "res_addr": In(range(rows * cols)), "res_data": Out(signed(self.res_width)),
        }
        if act_halves == 2:
            members.update(load_half=In(1), cmd_half=In(1))
        if shadow:
            members["copy"] = In(1)
        if passes > 1:
            members["accumulate"] = In(1)
        super().__init__(members)

    @classmethod
    def from_config(cls, cfg: AccelConfig, cells: str | None = None, act_halves: int = 1,
                    shadow: bool = False) -> "TileEngine":
        """The engine of an accelerator configuration (`engine_chunks` sizes the buffers; with
        ``shadow``, ``cfg.k_passes`` weight regions)."""
        return cls(cfg.rows, cfg.cols, cfg.lanes, cfg.pe_family, engine_chunks(cfg), cells,
                   act_halves, shadow, cfg.k_passes if shadow else 1)

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
        m.submodules.seq = seq = TileSequencer(self.family, self.max_chunks, self.passes)
        m.submodules.array = array = MacArray(self.rows, self.cols, self.lanes, self.family,
                                              self.acc_width, self.cells)
        tile_done = Signal(name="tile_done")          # the array's last accumulate
        tile_done_next = Signal(name="tile_done_next")  # ... in the next cycle
        read_half = self._control(m, seq, tile_done, tile_done_next)
        m.d.comb += Cat(tile_done, tile_done_next).eq(self._buffers(m, seq, array, read_half))
        self._results(m, self._result_source(m, array))
        return m

    def _buffers(self, m: Module, seq, array, read_half) -> Signal:
        """Fetch stages (`FETCH_STAGES`): the buffer address registered by the block RAMs,
        then one weight and one activation word per step, read and registered twice (block
        RAM clock-to-out is slow: the first register sits by the RAM, the second drives the
        array's long broadcast wires); the control word beside them. Returns the array's
        last-accumulate pulse, from the control word's own delay line, and the pulse of the
        next cycle (the line's stage before)."""
        for name, addr, dest, count in (("wbuf", seq.w_addr, array.w, self.rows),
                                        ("abuf", seq.a_addr, array.a, self.cols)):
            bits = count * self.lanes * self.lane_bits
            halves = self.act_halves if name == "abuf" else self.passes
            m.d.comb += self.load.ready.eq(1)
            mem = memory.Memory(shape=bits, depth=self.depth * halves, init=[])
            m.submodules[name] = mem
            wr, rd = mem.write_port(), mem.read_port()
            waddr = self.load.payload.addr
            if name == "abuf" and halves == 2:
                waddr, addr = Cat(waddr[:len(addr)], self.load_half), Cat(addr, read_half)
            m.d.comb += [wr.addr.eq(waddr), wr.data.eq(self.load.payload.data),
                         wr.en.eq(self.load.valid & (self.load.payload.target == (name == "abuf")))]
            addr_q = Signal(len(addr), name=f"{name}_addr", reset_less=True)
            m.d.sync += addr_q.eq(addr)          # the sequencer sits far from the block RAMs
            m.d.comb += rd.addr.eq(addr_q)
            data = rd.data
            for n in range(FETCH_STAGES - 1):  # reset-less: no reset logic before the FFs
                reg = Signal(bits, name=f"{name}_q{n + 1}", reset_less=True)
                m.d.sync += reg.eq(data)
                data = reg
            m.d.comb += dest.eq(data)
        ctrl = seq.ctrl
        for n in range(FETCH_STAGES - 1):
            nxt = Signal.like(seq.ctrl, name=f"ctrl_fetch{n + 1}")
            m.d.sync += nxt.eq(ctrl)
            ctrl = nxt
        # the last fetch stage of the control word: a copy per row of the array (`NOMERGE`),
        # whose PEs share their first delay registers (a net per row, not one to every PE)
        for r in range(self.rows):
            row = copy_register(seq.ctrl.shape(), f"ctrl_fetch{FETCH_STAGES}_row{r}")
            m.d.sync += row.eq(ctrl)
            m.d.comb += array.ctrl[r].eq(row)
        # the array's ``done`` (a PE's last accumulate) from a delay line of the control word
        # here, as long as the row register and the PE: the same cycle, without a net from a
        # PE across the array to the engine's control
        done = ctrl.valid & ctrl.last
        for n in range(1 + array.latency):
            nxt = Signal(name=f"tile_done_d{n + 1}")
            m.d.sync += nxt.eq(done)
            done, before = nxt, done
        return Cat(done, before)

    def _control(self, m: Module, seq, tile_done, tile_done_next):
        """Accept a command when idle; ``done`` from the last accumulate (``tile_done``) to
        the next command, ``done_next`` from the pulse a cycle ahead (``tile_done_next``).
        Returns the activation half the tile reads (latched with the command)."""
        m.d.comb += [seq.cmd.payload.eq(self.cmd.payload),
                     seq.cmd.valid.eq(self.cmd.valid & ~self.busy),
                     self.cmd.ready.eq(~self.busy)]
        running, finished = Signal(), Signal()
        with m.If(self.cmd.valid & ~self.busy):
            m.d.sync += [running.eq(1), finished.eq(0)]
        with m.Elif(tile_done):
            m.d.sync += [running.eq(0), finished.eq(1)]
        m.d.comb += [self.busy.eq(running & ~tile_done), self.done.eq(finished | tile_done),
                     self.done_next.eq(finished | tile_done | tile_done_next)]
        if self.act_halves == 1:
            return None
        read_half = Signal(name="read_half")
        with m.If(self.cmd.valid & ~self.busy):
            m.d.sync += read_half.eq(self.cmd_half)
        return read_half

    def _result_source(self, m: Module, array):
        """The accumulators the result port reads: the array's, or their shadow copy (with
        passes, the sum of the passes' accumulators)."""
        if not self.shadow:
            return array.acc
        if self.passes == 1:
            shadow = Signal(array.acc.shape(), name="shadow", reset_less=True)
            with m.If(self.copy):
                m.d.sync += shadow.eq(array.acc)
            return shadow
        shadow = Signal(data.ArrayLayout(signed(self.res_width), self.rows * self.cols),
                        name="shadow", reset_less=True)
        with m.If(self.copy):
            m.d.sync += [shadow[k].eq(Mux(self.accumulate, shadow[k], 0) + array.acc[k])
                         for k in range(self.rows * self.cols)]
        return shadow

    @property
    def res_latency(self) -> int:
        """Cycles from ``res_addr`` to ``res_data``: two registered multiplexer levels."""
        return 2

    def _results(self, m: Module, acc) -> None:
        """Result read port in two stages: each group of `result_group` accumulators is
        narrowed to one registered value (low address bits), then the group is chosen (high
        bits, registered), so no path crosses the whole array in one cycle."""
        n = self.rows * self.cols
        group = result_group(n)
        low = (group - 1).bit_length()
        lo = self.res_addr[:low] if low else 0
        picked = []
        for g in range(-(-n // group)):
            members = [acc[k] for k in range(g * group, min(n, (g + 1) * group))]
            reg = Signal(signed(self.res_width), name=f"res_g{g}", reset_less=True)
            m.d.sync += reg.eq(Array(members)[lo] if len(members) > 1 else members[0])
            picked.append(reg)
        hi = Signal(max(1, len(self.res_addr) - low), name="res_group", reset_less=True)
        m.d.sync += hi.eq(self.res_addr[low:] if len(self.res_addr) > low else 0)
        m.d.sync += self.res_data.eq(Array(picked)[hi] if len(picked) > 1 else picked[0])


def result_group(n: int) -> int:
    """Accumulators per first-stage group of the result read port: the power of two
    nearest above sqrt(n)."""
    return 1 << ((n - 1).bit_length() + 1) // 2
