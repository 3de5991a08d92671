"""The DMA engines of LOAD (DRAM -> buffer slot) and STORE (output slot -> DRAM).

Both take a one-cycle ``start`` pulse with ``cmd`` (which must hold the same command in the
cycle before ``start``: what the transfer needs is formed from it a cycle ahead), move the bytes
over the AXI4 master ``mem`` (`bitmill.hw.axi`: full-width INCR bursts of at most 256 beats
that never cross 4 KiB, one address handshake per cycle from the cycle after ``start``) and
answer with a one-cycle ``finish`` pulse in the instruction's last cycle, registered ``error``
and ``cause`` (`DMA_ERROR`) beside it; ``busy`` is high from the cycle after ``start`` to the
``finish`` cycle. A ``start`` while ``busy`` is ignored.

Errors: ``cause.operand`` (``nbytes == 0``, or the bytes do not fit the slot) and
``cause.address`` (``dram_addr + nbytes > limit``) finish in `DMA_ERROR_CYCLES` cycles without
any bus traffic (an engine made with ``checked=False`` leaves these two checks to its user: in
`bitmill.hw.accel.Accelerator` the control refuses such instructions before they start, from
checks made at preload, so the engines never see one); ``cause.bus`` (an SLVERR/DECERR
response) finishes at the normal time (the slot or DRAM bytes of that transfer are then
undefined).

Cycles with the spec's memory model (`bitmill.timing.load_cycles`, `store_cycles`): the data
flows one beat per cycle, so a transfer costs a fixed overhead, the memory latency and one
cycle per beat (LOAD: per buffer word written, plus one when the realignment needs a second
DRAM beat for the first word).
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.axi import (BURST_BOUNDARY, MAX_BURST_BEATS, AxiSignature, buffer_write_signature,
                            check_data_bytes)
from bitmill.hw.axi_bursts import first_burst_of_bytes, issue_bursts
from bitmill.isa import Buffer, field_limits, slot_bytes
from bitmill.timing import DMA_ERROR_CYCLES, LOAD_OVERHEAD, STORE_OVERHEAD

DMA_ERROR = data.StructLayout({"address": 1, "bus": 1, "operand": 1})
ADDR_BITS = 32


def _low(value, lg: int):
    """The byte offset of ``value`` inside a ``2**lg``-byte word."""
    return value[:lg] if lg else C(0, 1)


def _realign(m: Module, prev, cur, shift, nbytes: int):
    """Bytes ``[nbytes - shift, 2*nbytes - shift)`` of ``Cat(prev, cur)``: ``cur`` moved up
    by ``shift`` bytes, the bytes below taken from the top of ``prev``."""
    if nbytes == 1:
        return cur
    start = Signal(range(nbytes + 1), name="realign_start")
    m.d.comb += start.eq(nbytes - shift)
    return Cat(prev, cur).bit_select(Cat(C(0, 3), start), 8 * nbytes)


def _byte_masks(m: Module, first_byte, end_byte, lg: int, name: str):
    """Byte enables of a first word (bytes ``>= first_byte``) and of a last word (bytes
    ``< end_byte``, ``end_byte`` in 1..2**lg)."""
    n = 1 << lg
    first, last = Signal(n, name=f"{name}_first"), Signal(n, name=f"{name}_last")
    m.d.comb += [first.eq(Cat(first_byte <= i for i in range(n))),
                 last.eq(Cat(end_byte > i for i in range(n)))]
    return first, last


class _Dma(wiring.Component):
    """What LOAD and STORE share: the configuration and the finish/error registers."""

    def __init__(self, cfg: AccelConfig, members: dict, checked: bool):
        if not isinstance(checked, bool):
            raise TypeError(f"checked must be a bool, not {type(checked).__name__}")
        self._cfg = cfg
        self._checked = checked
        super().__init__({"start": In(1), **members, "finish": Out(1), "busy": Out(1),
                          "error": Out(1), "cause": Out(DMA_ERROR)})

    @property
    def data_bytes(self) -> int:
        """``B``: bytes per beat and per buffer word."""
        return self._cfg.mem_bytes_per_cycle

    @property
    def error_cycles(self) -> int:
        """Cycles of an instruction refused for its operands or address range."""
        return DMA_ERROR_CYCLES

    def _bursts(self, m: Module, ch: str, accept, operand_refused) -> tuple:
        """The refusals (``operand_refused``, or ``dram_addr + nbytes > limit``) and the
        transfer's beats, registered from ``cmd`` in every cycle, and the address channel
        ``ch`` ("ar" or "aw") of ``mem`` issuing its bursts from ``accept``. Returns
        (refusals by cause, ``good``, beats (0 when refused), (beats still to request,
        handshake))."""
        b, lg = _check_cfg(self._cfg)
        cmd, bus = self.cmd, self.mem
        refused = {k: Signal(name=f"plan_refuse_{k}") for k in ("operand", "address")}
        good = Signal(name="plan_good")
        if self._checked:
            m.d.sync += [refused["operand"].eq(operand_refused),
                         refused["address"].eq(cmd.dram_addr + cmd.nbytes > cmd.limit)]
        m.d.comb += good.eq(~refused["operand"] & ~refused["address"])
        addr0 = cmd.dram_addr & ((1 << ADDR_BITS) - b)
        raw = (_low(cmd.dram_addr, lg) + cmd.nbytes + b - 1) >> lg      # beats, if good
        total = Signal(len(cmd.nbytes) + 1, name="plan_beats_total")
        beats = Signal(len(cmd.nbytes) + 1)
        m.d.sync += total.eq(raw)
        m.d.comb += [beats.eq(Mux(good, total, 0)), bus.rready.eq(1), bus.bready.eq(1)]
        left, shake, _, _ = issue_bursts(m, bus, ch, lg, accept, addr0, beats,
                                         first_burst_of_bytes(m, cmd.dram_addr, cmd.nbytes, lg, ch),
                                         idle=~self.busy)
        return refused, good, beats, (left, shake)

    def _finish(self, m: Module, accept, refused: dict, done, bus_error) -> None:
        """``finish``/``error``/``cause`` registered from a refused ``accept`` (``refused``:
        cause name -> condition) or from ``done`` (with ``bus_error``); ``busy``."""
        refuse = accept & (refused["address"] | refused["operand"])
        m.d.sync += [self.finish.eq(refuse | done),
                     self.error.eq(refuse | (done & bus_error)),
                     self.cause.address.eq(accept & refused["address"]),
                     self.cause.operand.eq(accept & refused["operand"]),
                     self.cause.bus.eq(done & bus_error)]
        with m.If(accept):
            m.d.sync += self.busy.eq(1)
        with m.Elif(self.finish):
            m.d.sync += self.busy.eq(0)


def _check_cfg(cfg: AccelConfig) -> tuple[int, int]:
    """(B, log2 B) of ``cfg``, or ValueError."""
    b = cfg.mem_bytes_per_cycle
    try:
        check_data_bytes(b)
    except ValueError:
        raise ValueError(f"mem_bytes_per_cycle must be a power of two in 1..128, not {b}") from None
    return b, b.bit_length() - 1


def _words(nbytes: int, b: int) -> int:
    return -(-nbytes // b)


def load_command_layout(cfg: AccelConfig) -> data.StructLayout:
    """LOAD's command: ``nbytes`` DRAM bytes from ``dram_addr`` into the slot whose first word
    is ``base``, from byte ``offset`` of the slot; ``slot_bytes`` (the slot's size) bounds
    ``offset + nbytes``; ``limit`` (MEM_BYTES) bounds ``dram_addr + nbytes``."""
    b, _ = _check_cfg(cfg)
    largest = max(slot_bytes(cfg, buf) for buf in Buffer)
    field = field_limits(cfg)["nbytes"][0].bit_length()
    return data.StructLayout({"dram_addr": ADDR_BITS, "nbytes": field, "offset": field,
                              "base": range(2 * _words(largest, b)),
                              "slot_bytes": range(largest + 1), "limit": ADDR_BITS})


def store_command_layout(cfg: AccelConfig) -> data.StructLayout:
    """STORE's command: bytes ``0 .. nbytes-1`` of the output slot whose first word is
    ``base`` to DRAM ``dram_addr ..``; ``limit`` (MEM_BYTES) bounds ``dram_addr + nbytes``."""
    b, _ = _check_cfg(cfg)
    field = field_limits(cfg)["nbytes"][0].bit_length()
    return data.StructLayout({"dram_addr": ADDR_BITS, "nbytes": field,
                              "base": range(2 * _words(slot_bytes(cfg, Buffer.OUT), b)),
                              "limit": ADDR_BITS})


class LoadDma(_Dma):
    """LOAD: DRAM bytes ``dram_addr .. dram_addr+nbytes-1`` to slot bytes ``offset ..
    offset+nbytes-1``: one buffer write request per slot word (``write``, registered), word
    address ``base + (offset + j) // B`` for byte ``j``, byte enables exactly the transfer's
    bytes. Uses AR/R of ``mem`` only. Cycles: `bitmill.timing.load_cycles`. ``checked``:
    whether it refuses bad operands and addresses itself (see the module docstring)."""

    def __init__(self, cfg: AccelConfig, checked: bool = True):
        b, _ = _check_cfg(cfg)
        layout = load_command_layout(cfg)
        self._depth = 2 * _words(max(slot_bytes(cfg, buf) for buf in Buffer), b)
        super().__init__(cfg, {"cmd": In(layout), "mem": Out(AxiSignature(ADDR_BITS, b, 1)),
                               "write": Out(buffer_write_signature(b, self._depth))}, checked)

    @property
    def depth(self) -> int:
        """Words of the largest buffer (the range of ``write.payload.addr``)."""
        return self._depth

    @property
    def overhead(self) -> int:
        """Cycles of a transfer beyond the memory latency and its beats
        (`bitmill.timing.LOAD_OVERHEAD`)."""
        return LOAD_OVERHEAD

    def elaborate(self, platform) -> Module:
        m = Module()
        cmd = self.cmd
        accept = self.start & ~self.busy
        refused, good, beats, _ = self._bursts(
            m, "ar", accept, (cmd.nbytes == 0) | (cmd.offset + cmd.nbytes > cmd.slot_bytes))
        done, bus_error = self._receive(m, accept, good, beats)
        self._finish(m, accept, refused, done, bus_error)
        return m

    def _receive(self, m: Module, accept, good, beats):
        """R beats -> realigned slot words -> buffer write requests. Returns (the last word
        is written in this cycle, a bus error happened)."""
        b, lg = _check_cfg(self._cfg)
        cmd, bus, wr = self.cmd, self.mem, self.write
        sa, da = _low(cmd.dram_addr, lg), _low(cmd.offset, lg)
        r_left, words_left = Signal(beats.shape()), Signal(beats.shape())
        word_addr = Signal(range(self._depth))
        shift, skip = Signal(max(1, lg)), Signal()
        first_step, first_word, flush, bus_err = Signal(), Signal(), Signal(), Signal()
        prev = Signal(8 * b)
        mask_first, mask_last = Signal(b), Signal(b)
        # ``!= 0`` and ``== 1`` of both counts kept in registers beside them (no wide
        # comparison before the write decision, which enables the address and count registers)
        r_any, r_one = Signal(name="load_r_any"), Signal(name="load_r_one")
        w_any, w_one = Signal(name="load_words_any"), Signal(name="load_words_one")
        beat = bus.rvalid & r_any
        step = beat | flush
        cur = Mux(flush, 0, bus.rdata)
        word = _realign(m, prev, cur, shift, b)
        write, last = Signal(), Signal()
        # with offset % B < dram_addr % B, the word made from the first beat lies before the slot
        m.d.comb += [write.eq(step & ~(skip & first_step) & w_any), last.eq(write & w_one)]
        with m.If(step):
            m.d.sync += [prev.eq(cur), first_step.eq(0)]
        with m.If(beat):
            m.d.sync += [r_left.eq(r_left - 1), r_any.eq(~r_one), r_one.eq(r_left == 2),
                         bus_err.eq(bus_err | bus.rresp[1])]
        # a last word that still needs bytes of the beat after the last one: one more step
        m.d.sync += [flush.eq(beat & r_one & Mux(write, ~w_one, w_any)), wr.valid.eq(write)]
        full = (1 << b) - 1
        # the request's payload registered in every cycle (the buffers use it only with
        # ``valid``): no enable from the beat's arrival on its registers
        m.d.sync += [wr.payload.addr.eq(word_addr), wr.payload.data.eq(word),
                     wr.payload.en.eq(Mux(first_word, mask_first, full)
                                      & Mux(w_one, mask_last, full))]
        with m.If(write):
            m.d.sync += [word_addr.eq(word_addr + 1), words_left.eq(words_left - 1),
                         w_any.eq(~w_one), w_one.eq(words_left == 2), first_word.eq(0)]
        first_mask, last_mask = _byte_masks(m, da, _low(da + cmd.nbytes - 1, lg) + 1, lg, "load")
        # formed from the command in every cycle: what ``accept`` loads
        plan = {"words": Signal(beats.shape(), name="plan_words"),
                "word_addr": Signal.like(word_addr, name="plan_word_addr"),
                "shift": Signal.like(shift, name="plan_shift"), "skip": Signal(name="plan_skip"),
                "mask_first": Signal.like(mask_first, name="plan_mask_first"),
                "mask_last": Signal.like(mask_last, name="plan_mask_last")}
        m.d.sync += [plan["words"].eq((da + cmd.nbytes + b - 1) >> lg),
                     plan["word_addr"].eq(cmd.base + (cmd.offset >> lg)),
                     plan["shift"].eq(_low(da - sa, lg)), plan["skip"].eq(da < sa),
                     plan["mask_first"].eq(first_mask), plan["mask_last"].eq(last_mask)]
        # the counts (which start the beats and the writes) on ``accept``; the rest in every
        # idle cycle (nothing steps while idle), so the start decision enables few registers
        with m.If(accept):
            m.d.sync += [r_left.eq(beats), r_any.eq(beats != 0), r_one.eq(beats == 1),
                         words_left.eq(Mux(good, plan["words"], 0)),
                         w_any.eq(good & (plan["words"] != 0)), w_one.eq(good & (plan["words"] == 1))]
        with m.If(~self.busy):
            m.d.sync += [word_addr.eq(plan["word_addr"]),
                         shift.eq(plan["shift"]), skip.eq(plan["skip"]),
                         first_step.eq(1), first_word.eq(1), bus_err.eq(0),
                         prev.eq(0), mask_first.eq(plan["mask_first"]),
                         mask_last.eq(plan["mask_last"])]
        return last, bus_err | (beat & bus.rresp[1])


class StoreDma(_Dma):
    """STORE: bytes ``0 .. nbytes-1`` of the output slot whose first word is ``base`` to DRAM
    ``dram_addr ..``, read through the output buffer's synchronous read port (``read_addr``
    out, ``read_data`` in one cycle later); writes exactly those DRAM bytes (``wstrb``) and
    finishes the cycle after the last B response. Uses AW/W/B of ``mem`` only. Cycles:
    `bitmill.timing.store_cycles`. ``checked``: as `LoadDma`'s."""

    def __init__(self, cfg: AccelConfig, checked: bool = True):
        b, _ = _check_cfg(cfg)
        self._slot = slot_bytes(cfg, Buffer.OUT)
        self._depth = 2 * _words(self._slot, b)
        super().__init__(cfg, {"cmd": In(store_command_layout(cfg)),
                               "read_addr": Out(range(self._depth)), "read_data": In(8 * b),
                               "mem": Out(AxiSignature(ADDR_BITS, b, 1))}, checked)

    @property
    def depth(self) -> int:
        """Words of the output buffer (the range of ``read_addr``)."""
        return self._depth

    @property
    def overhead(self) -> int:
        """Cycles of a transfer beyond the memory latency and its beats
        (`bitmill.timing.STORE_OVERHEAD`)."""
        return STORE_OVERHEAD

    def elaborate(self, platform) -> Module:
        m = Module()
        cmd = self.cmd
        accept = self.start & ~self.busy
        refused, good, beats, (aw_left, aw_shake) = self._bursts(
            m, "aw", accept, (cmd.nbytes == 0) | (cmd.nbytes > self._slot))
        self._send(m, accept, beats)
        done, bus_error = self._responses(m, accept, aw_left, aw_shake, beats)
        self._finish(m, accept, refused, done, bus_error)
        return m

    def _send(self, m: Module, accept, beats) -> None:
        """Slot words -> realigned W beats (registered; the read address holds while the
        W register is full)."""
        b, lg = _check_cfg(self._cfg)
        cmd, bus = self.cmd, self.mem
        rd_addr, rd_left = Signal(range(self._depth)), Signal(beats.shape())
        w_left, w_addr, w_count = Signal(beats.shape()), Signal(ADDR_BITS), Signal(8)
        shift, first, prev = Signal(max(1, lg)), Signal(), Signal(8 * b)
        mask_first, mask_last = Signal(b), Signal(b)
        # ``w_left != 0``, ``rd_left > 1`` and ``rd_addr + 1`` kept in registers beside them, so
        # the buffer's read address is a selection among registers after the W handshake
        w_any, rd_more = Signal(name="store_w_any"), Signal(name="store_rd_more")
        rd_next = Signal.like(rd_addr, name="store_rd_next")
        consume = w_any & (~bus.wvalid | bus.wready)
        more = consume & rd_more
        # idle, the port reads the slot base of the instruction on ``cmd`` every cycle, so the
        # read in the accept cycle needs no ``accept`` (the control's long start decision)
        m.d.comb += self.read_addr.eq(Mux(~self.busy, cmd.base, Mux(more, rd_next, rd_addr)))
        m.d.sync += [rd_addr.eq(self.read_addr),
                     rd_next.eq(Mux(~self.busy, cmd.base + 1, Mux(more, rd_next + 1, rd_next))),
                     w_any.eq(Mux(consume, w_left != 1, w_left != 0)),
                     rd_more.eq(Mux(more, rd_left > 2, rd_left > 1))]
        with m.If(more):
            m.d.sync += rd_left.eq(rd_left - 1)
        beat = _realign(m, prev, self.read_data, shift, b)
        full = (1 << b) - 1
        wlast = Signal()
        m.d.comb += wlast.eq((w_left == 1) | (w_addr[:12] == BURST_BOUNDARY - b)
                             | (w_count == MAX_BURST_BEATS - 1))
        with m.If(consume):
            m.d.sync += [bus.wvalid.eq(1), bus.wdata.eq(beat), bus.wlast.eq(wlast),
                         bus.wstrb.eq(Mux(first, mask_first, full)
                                      & Mux(w_left == 1, mask_last, full)),
                         prev.eq(self.read_data), w_left.eq(w_left - 1), first.eq(0),
                         w_addr.eq(w_addr + b), w_count.eq(Mux(wlast, 0, w_count + 1))]
        with m.Elif(bus.wready):
            m.d.sync += bus.wvalid.eq(0)
        sa = _low(cmd.dram_addr, lg)
        first_mask, last_mask = _byte_masks(m, sa, _low(sa + cmd.nbytes - 1, lg) + 1, lg, "store")
        # formed from the command in every cycle: what ``accept`` loads
        plan = {"words": Signal.like(rd_left, name="plan_words"),
                "mask_first": Signal.like(mask_first, name="plan_mask_first"),
                "mask_last": Signal.like(mask_last, name="plan_mask_last")}
        m.d.sync += [plan["words"].eq((cmd.nbytes + b - 1) >> lg),
                     plan["mask_first"].eq(first_mask), plan["mask_last"].eq(last_mask)]
        # the W beat count and its flag (which start the beats) on ``accept``; the rest in
        # every idle cycle (nothing consumes while idle: ``w_any`` is off), so the start
        # decision enables few registers
        with m.If(accept):
            m.d.sync += [w_any.eq(beats != 0), w_left.eq(beats)]
        with m.If(~self.busy):
            m.d.sync += [rd_left.eq(plan["words"]), rd_more.eq(plan["words"] > 1),
                         w_addr.eq(cmd.dram_addr & ((1 << ADDR_BITS) - b)),
                         w_count.eq(0), shift.eq(sa), first.eq(1), prev.eq(0),
                         mask_first.eq(plan["mask_first"]), mask_last.eq(plan["mask_last"])]

    def _responses(self, m: Module, accept, aw_left, aw_shake, beats):
        """Counts the bursts awaiting their B response. Returns (the last B response arrives
        in this cycle, a bus error happened)."""
        bus = self.mem
        waiting, bus_err = Signal(beats.shape()), Signal()
        b_shake = bus.bvalid & (waiting != 0)
        m.d.sync += waiting.eq(waiting + aw_shake - b_shake)
        with m.If(b_shake):
            m.d.sync += bus_err.eq(bus_err | bus.bresp[1])
        with m.If(accept):
            m.d.sync += [waiting.eq(0), bus_err.eq(0)]
        done = b_shake & (aw_left == 0) & (waiting == 1)
        return done, bus_err | (b_shake & bus.bresp[1])
