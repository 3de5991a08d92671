"""An AXI4 memory in block RAM with exact, deterministic timing: the accelerator's memory model
(`bitmill.timing`) built as hardware. The co-simulations use it as the DRAM model in Amaranth's
simulator, Icarus and Verilator, and board tops with on-chip memory use it as the memory, so
a board runs with the cycles the simulator predicts. ``L = latency >= 1``:

* Reads: ``arready`` is 1 (up to `AxiMemoryModel.queue_depth` bursts waiting to be served).
  The beats of a burst whose AR handshake happens in cycle ``a`` are valid from cycle
  ``a + L``, one per cycle, ``rlast`` on the last; bursts are served in order, a burst's first
  beat no earlier than the cycle after the previous burst's last beat.
* Writes: ``awready`` is 1 (same queue depth); ``wready`` is 1 whenever the beat's burst
  address is known (always, for a master that presents AW no later than the burst's first W
  beat). A W beat is written (``wstrb`` bytes) in the cycle of its handshake; the B response
  of a burst is valid from ``L`` cycles after the cycle of its last W beat (``w + L``), held
  until ``bready``.
* Beats outside the memory (word address ``>= depth_bytes / data_bytes``) answer DECERR,
  read zeros and write nothing (a write burst answers DECERR if any beat was outside).
* For ``L >= 2`` the memory's read address comes from a register (a beat is taken two
  cycles before it is presented), so no logic sits between the AR queue and the block RAMs'
  address inputs; from ``L = 4`` (`BUFFERED_LATENCY`) the AR queue's outputs are registers too
  and every burst passes through it, and a W beat is written into the memory from registers in
  the cycle after its handshake (a read of that word answers it from ``L - 2`` cycles after
  its AR: after the write whenever the AR follows the W handshake). The cycles are the same.
* With ``registered=True`` (``L >= 4``) the memory is read in two cycles: it is made of banks
  of ``bank_words`` words (`BANK_WORDS` by default: block RAMs each as deep as a bank, no
  cascade), each bank's read data go into a register of their own (on ECP5 the block RAMs'
  own output registers, `bitmill.hw.ecp5`: about 1 ns from the clock instead of 5.8 ns) and
  the bank's word is chosen after them; a beat is taken three cycles before it is presented,
  so the cycles stay those above, with the AR queue's registered outputs from ``L = 5``. The
  backdoor's ``rdata`` then follows ``addr`` by two cycles (`AxiSram.read_latency`). From
  ``L = 6`` (`SELECTED_LATENCY`) the chosen bank's word goes into a register too before it
  is presented (three cycles: the banks spread over the chip no longer reach the master's
  logic in the cycle they are chosen in), a beat is taken four cycles before it is presented
  and the backdoor's ``rdata`` follows ``addr`` by three. Every
  bank is written from registers of its own (word address, data and byte enables, the bank
  decoded before them): an AXI W beat in the cycle after its handshake as above, a backdoor
  write one cycle after ``we`` (`AxiSram.write_delay`).
* Only full-width INCR bursts are modelled (``size`` and ``burst`` are ignored); IDs are 0.
* Backdoor (the host's way in): while ``active`` it owns the memory's one read and one write
  port: ``addr`` (word), ``wdata``, ``we`` (whole word written at the clock edge), ``rdata``
  (the word at ``addr`` of `AxiSram.read_latency` cycles before: one, two with registered
  reads, three from `SELECTED_LATENCY`); a word written is read back from
  `AxiSram.write_delay` cycles after the write. Use it only while the AXI port is idle (no
  burst waiting or in flight): the AXI channels share those ports.
  One read and one write port make the memory simple dual-port block RAM.

With ``external=True`` the storage is an instance of `SRAM_MODULE` (`SRAM_VERILOG`, to be
added to the emitted Verilog) instead of an Amaranth memory: a Verilator build of a memory of
many MiB then emits in seconds (an Amaranth memory is written out word by word with its
initial value). Same ports and timing: one synchronous read port (old data on a write to the
same word), one write port with byte enables, every word zero at start. Its contents can also
come from and go to files (plusargs, see `SRAM_VERILOG`): a simulator loads a memory image in
no clock cycles instead of one word per cycle through the backdoor.

Testbench helpers that move bytes through the backdoor: `bitmill.sim.cosim.axi_memory`.
"""

from __future__ import annotations

from amaranth import Array, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitmill.hw.axi import RESP_DECERR, RESP_OKAY, AxiSignature, check_data_bytes
from bitmill.hw.params import check_positive
from bitmill.hw.pe import copy_register

TIME_BITS = 32          # the model's cycle counter; due times compare modulo 2^TIME_BITS
QUEUE_DEPTH = 64        # AR, AW and B requests waiting to be served
BUFFERED_LATENCY = 4    # from this latency the AR queue has registered outputs (5, registered)
SELECTED_LATENCY = 6    # from this latency a registered memory registers the chosen bank's word
BANK_WORDS = 16384      # words of a bank of a registered memory: one ECP5 block RAM deep (16K x 1)
SRAM_MODULE = "bitmill_sram"
SRAM_VERILOG = """\
// The storage of an AxiSram built with external=True: one synchronous read port (old data on
// a write to the same word), one write port with byte enables, every word zero at start.
// A simulator's file backdoor: plusarg +bitmill_sram_load=FILE fills the first words from a
// $readmemh file at start, +bitmill_sram_dump=FILE writes words 0 .. +bitmill_sram_words=N
// minus 1 with $writememh when the simulation ends (final).
module bitmill_sram #(parameter WORDS = 2, parameter ADDR = 1, parameter WIDTH = 8) (
    input clk,
    input [ADDR-1:0] rd_addr, input rd_en, output reg [WIDTH-1:0] rd_data,
    input [ADDR-1:0] wr_addr, input [WIDTH/8-1:0] wr_en, input [WIDTH-1:0] wr_data);
    reg [WIDTH-1:0] mem [0:WORDS-1];
    integer i, n;
    string path;
    initial begin
        for (i = 0; i < WORDS; i = i + 1) mem[i] = {WIDTH{1'b0}};
        rd_data = {WIDTH{1'b0}};
        if ($value$plusargs("bitmill_sram_load=%s", path)) $readmemh(path, mem);
    end
    final begin
        if ($value$plusargs("bitmill_sram_dump=%s", path) && $value$plusargs("bitmill_sram_words=%d", n))
            $writememh(path, mem, 0, n - 1);
    end
    always @(posedge clk) begin
        if (rd_en) rd_data <= mem[rd_addr];
        for (i = 0; i < WIDTH / 8; i = i + 1)
            if (wr_en[i]) mem[wr_addr][8 * i +: 8] <= wr_data[8 * i +: 8];
    end
endmodule
"""


def backdoor_signature(data_bytes: int, words: int) -> wiring.Signature:
    """The backdoor port from the testbench's point of view."""
    return wiring.Signature({"active": Out(1), "addr": Out(range(words)), "wdata": Out(8 * data_bytes),
                             "we": Out(1), "rdata": In(8 * data_bytes)})


def _reached(now, due):
    """``due <= now`` for times less than 2^(TIME_BITS-1) apart."""
    return ~(now - due)[TIME_BITS - 1]


class AxiSram(wiring.Component):
    """Members: ``bus`` (AXI4 slave, `AxiSignature`), ``backdoor`` (`backdoor_signature`)."""

    def __init__(self, data_bytes: int, latency: int, depth_bytes: int, init: bytes = b"",
                 external: bool = False, registered: bool = False, bank_words: int = BANK_WORDS):
        self._bytes = check_data_bytes(data_bytes)
        self._latency = check_positive("latency", latency, 1 << (TIME_BITS - 2))
        if registered and external:
            raise ValueError("registered reads need the memory in block RAM: external must be False")
        if registered and latency < BUFFERED_LATENCY:
            raise ValueError(f"a registered memory needs latency >= {BUFFERED_LATENCY}, not {latency}")
        self._registered = bool(registered)
        self._bank_words = check_positive("bank_words", bank_words)
        if bank_words & (bank_words - 1):
            raise ValueError(f"bank_words must be a power of two, not {bank_words}")
        check_positive("depth_bytes", depth_bytes)
        if depth_bytes % data_bytes:
            raise ValueError(f"depth_bytes must be a multiple of data_bytes ({data_bytes}), "
                             f"not {depth_bytes}")
        if len(init) > depth_bytes:
            raise ValueError(f"init holds {len(init)} bytes, more than depth_bytes {depth_bytes}")
        self._depth_bytes = depth_bytes
        padded = bytes(init) + bytes(-len(init) % data_bytes)
        self._init = [int.from_bytes(padded[i:i + data_bytes], "little")
                      for i in range(0, len(padded), data_bytes)]
        if external and init:
            raise ValueError("an external memory starts zero: init must be empty")
        super().__init__({"bus": In(AxiSignature(32, data_bytes, 1)),
                          "backdoor": In(backdoor_signature(data_bytes, self.words))})
        self.memory = None if external or registered else Memory(shape=8 * data_bytes, depth=self.words,
                                                                 init=self._init)
        n = self._bank_words
        banks = -(-self.words // n) if registered else 0
        self.banks = [Memory(shape=8 * data_bytes, depth=min(n, self.words - k * n),
                             init=self._init[k * n:(k + 1) * n]) for k in range(banks)]

    @property
    def data_bytes(self) -> int:
        return self._bytes

    @property
    def latency(self) -> int:
        """``L``: cycles from an AR handshake to the burst's first beat, and from a burst's
        last W beat to its B response."""
        return self._latency

    @property
    def read_latency(self) -> int:
        """Cycles from a read address to its data, on the backdoor too: 2 with registered
        reads (3 from a latency of `SELECTED_LATENCY`), else 1."""
        if not self._registered:
            return 1
        return 3 if self._latency >= SELECTED_LATENCY else 2

    @property
    def write_delay(self) -> int:
        """Cycles after a backdoor write (``we``) before its word is read back: 1 with
        registered writes (a read address in the cycle after the write would meet the write
        itself), else 0."""
        return 1 if self._registered else 0

    @property
    def depth_bytes(self) -> int:
        return self._depth_bytes

    @property
    def words(self) -> int:
        return self._depth_bytes // self._bytes

    @property
    def queue_depth(self) -> int:
        """Bursts that may wait for service on each of AR, AW and B."""
        return QUEUE_DEPTH

    def elaborate(self, platform) -> Module:
        m = Module()
        now = Signal(TIME_BITS)
        m.d.sync += now.eq(now + 1)
        rd, wr = self._storage(m)
        axi_rd, axi_wr = self._read_channel(m, now), self._write_channel(m, now)
        bd = self.backdoor
        m.d.comb += [rd.addr.eq(Mux(bd.active, bd.addr, axi_rd.addr)), rd.en.eq(bd.active | axi_rd.en),
                     axi_rd.data.eq(rd.data), bd.rdata.eq(rd.data),
                     wr.addr.eq(Mux(bd.active, bd.addr, axi_wr.addr)),
                     wr.data.eq(Mux(bd.active, bd.wdata, axi_wr.data)),
                     wr.en.eq(Mux(bd.active, Mux(bd.we, (1 << self._bytes) - 1, 0), axi_wr.en))]
        return m

    def _storage(self, m: Module):
        """The read and write port: of the Amaranth memory, of the registered banks, or of a
        `SRAM_MODULE` instance."""
        if self.banks:
            return self._banked_storage(m)
        if self.memory is not None:
            m.submodules.memory = self.memory
            return self.memory.read_port(), self.memory.write_port(granularity=8)
        width, addr = 8 * self._bytes, max(1, (self.words - 1).bit_length())
        rd = _Port(self.words, width, 1, "sram_rd")
        wr = _Port(self.words, width, self._bytes, "sram_wr")
        m.submodules.sram = Instance(SRAM_MODULE, p_WORDS=self.words, p_ADDR=addr, p_WIDTH=width,
                                     i_clk=ClockSignal(), i_rd_addr=rd.addr, i_rd_en=rd.en,
                                     o_rd_data=rd.data, i_wr_addr=wr.addr, i_wr_en=wr.en,
                                     i_wr_data=wr.data)
        return rd, wr

    def _banked_storage(self, m: Module):
        """The banks behind one read and one write port: a bank's read data registered as
        they are (reset-less, enabled with the read: the block RAM's output register), the
        bank chosen after them by the address's bank bits, registered beside each stage (and
        the chosen word registered too when `read_latency` is 3); the
        write port registered for each bank apart (its word address, data and byte enables,
        zero unless the address is in the bank), so a write reaches the block RAMs a cycle
        later and from registers beside them."""
        width = 8 * self._bytes
        rd = _Port(self.words, width, 1, "sram_rd")
        wr = _Port(self.words, width, self._bytes, "sram_wr")
        low = (self._bank_words - 1).bit_length() if len(self.banks) > 1 else len(rd.addr)
        sel1, sel2 = (Signal(range(len(self.banks)), name=f"sram_select{n}", reset_less=True) for n in (1, 2))
        with m.If(rd.en):
            m.d.sync += [sel1.eq(rd.addr[low:]), sel2.eq(sel1)]
        outs = []
        for k, bank in enumerate(self.banks):
            m.submodules[f"bank{k}"] = bank
            r, w = bank.read_port(), bank.write_port(granularity=8)
            here = (wr.addr[low:] == k) if len(self.banks) > 1 else 1
            q = Signal(width, name=f"sram_bank{k}_q", reset_less=True)
            w_addr, w_data, w_en = (copy_register(shape, f"sram_bank{k}_w{n}") for shape, n in
                                    ((low, "addr"), (width, "data"), (self._bytes, "en")))
            m.d.sync += [w_addr.eq(wr.addr[:low]), w_data.eq(wr.data), w_en.eq(Mux(here, wr.en, 0))]
            m.d.comb += [r.addr.eq(rd.addr[:low]), r.en.eq(rd.en),
                         w.addr.eq(w_addr), w.data.eq(w_data), w.en.eq(w_en)]
            with m.If(rd.en):
                m.d.sync += q.eq(r.data)
            outs.append(q)
        chosen = Array(outs)[sel2] if len(outs) > 1 else outs[0]
        if self.read_latency == 3:
            word = Signal(width, name="sram_word", reset_less=True)
            with m.If(rd.en):
                m.d.sync += word.eq(chosen)
            chosen = word
        m.d.comb += rd.data.eq(chosen)
        return rd, wr

    def _word(self, addr):
        """The word index of a byte address."""
        return addr[self._bytes.bit_length() - 1:]

    def _read_channel(self, m: Module, now) -> None:
        bus, lat = self.bus, self._latency
        # ``due``: the cycle the burst's first beat may be taken in, ``lead`` cycles before
        # it is presented (the stages between the take and the R channel), so the take
        # compares it with ``now`` as it is: one subtraction, no adder before it
        lead = 1 + self.read_latency if lat >= 2 else 1
        req = data.StructLayout({"word": 32, "len": 8, "due": TIME_BITS})
        # from L = 4 (5 with registered reads, 6 with the chosen word registered too) every
        # burst waits in the queue at least until the cycle it is taken in (two cycles after
        # its AR): a queue with registered outputs, no way around it
        buffered = lat >= BUFFERED_LATENCY + self.read_latency - 1
        m.submodules.ar_queue = queue = (_HeadRegisterFIFO if buffered else SyncFIFO)(
            width=req.size, depth=QUEUE_DEPTH)
        head = data.View(req, queue.r_data)
        incoming = Signal(req)
        m.d.comb += [incoming.word.eq(self._word(bus.araddr)), incoming.len.eq(bus.arlen),
                     incoming.due.eq(now + (lat - lead))]
        cand = Signal(req)
        if buffered:
            m.d.comb += cand.eq(head.as_value())
            cand_valid = queue.r_rdy
        else:
            m.d.comb += cand.eq(Mux(queue.r_rdy, head.as_value(), incoming.as_value()))
            cand_valid = queue.r_rdy | bus.arvalid
        if lat >= 2:
            return self._staged_reads(m, now, queue, cand, cand_valid, incoming, self.read_latency)
        # the beat presented in this cycle
        beat_word, beats_left, valid = Signal(32), Signal(8), Signal()
        free = ~valid | bus.rready
        take = Signal()
        m.d.comb += take.eq(free & ~(valid & (beats_left != 0)) & cand_valid
                            & _reached(now, cand.due))
        self._take(m, queue, incoming, take)
        next_word = Signal(32)
        m.d.comb += next_word.eq(Mux(take, cand.word, beat_word + 1))
        with m.If(free):
            m.d.sync += valid.eq(take | (valid & (beats_left != 0)))
            _next_beat(m, take, valid & (beats_left != 0), cand, beat_word, beats_left)
        port = _Port(self.words, 8 * self._bytes, 1, "rd")
        m.d.comb += [port.addr.eq(next_word), port.en.eq(free)]
        self._present(m, port, valid, beat_word, beats_left == 0)
        return port

    def _take(self, m: Module, queue, incoming, take) -> None:
        """The AR queue: written by every AR handshake not taken at once (every one, for a
        queue with registered outputs), read when taken."""
        bus = self.bus
        at_once = Const(0) if isinstance(queue, _HeadRegisterFIFO) else take & ~queue.r_rdy
        m.d.comb += [bus.arready.eq(queue.w_rdy),
                     queue.w_data.eq(incoming.as_value()),
                     queue.w_en.eq(bus.arvalid & ~at_once),
                     queue.r_en.eq(take)]

    def _present(self, m: Module, port, valid, word, last) -> None:
        """The R channel: the beat of ``word`` (its data on ``port``), DECERR outside."""
        bus = self.bus
        inside = word < self.words
        m.d.comb += [bus.rvalid.eq(valid), bus.rlast.eq(last), bus.rid.eq(0),
                     bus.rdata.eq(Mux(inside, port.data, 0)),
                     bus.rresp.eq(Mux(inside, RESP_OKAY, RESP_DECERR))]

    def _staged_reads(self, m: Module, now, queue, cand, cand_valid, incoming, reads: int):
        """Reads for ``L >= 2`` with the memory's read address in a register: a beat is taken
        into stage A ``1 + reads`` cycles before it is presented, stage A's word is the
        address, and the word read (``reads`` cycles later) is presented in the last of the
        ``reads`` stages after A. A master that stalls holds every stage (and the memory's
        output); the beats' cycles are those of `_read_channel`'s one-stage form whenever
        ``rready`` is 1."""
        bus = self.bus
        a_valid, a_word, a_left = Signal(name="rd_a_valid"), Signal(32, name="rd_a_word"), Signal(8)
        stages = [(Signal(name=f"rd_{n}_valid"), Signal(32, name=f"rd_{n}_word"), Signal(name=f"rd_{n}_last"))
                  for n in "bcd"[:reads]]
        out_valid, out_word, out_last = stages[-1]
        free = ~out_valid | bus.rready
        more = a_valid & (a_left != 0)
        take = Signal()
        m.d.comb += take.eq(free & ~more & cand_valid & _reached(now, cand.due))
        self._take(m, queue, incoming, take)
        with m.If(free):
            m.d.sync += a_valid.eq(take | more)
            prev = (a_valid, a_word, a_left == 0)
            for stage in stages:
                m.d.sync += [x.eq(y) for x, y in zip(stage, prev)]
                prev = stage
            _next_beat(m, take, more, cand, a_word, a_left)
        port = _Port(self.words, 8 * self._bytes, 1, "rd")
        m.d.comb += [port.addr.eq(a_word), port.en.eq(free)]
        self._present(m, port, out_valid, out_word, out_last)
        return port

    def _write_channel(self, m: Module, now) -> None:
        bus, lat = self.bus, self._latency
        # the queues' ready flags are registers: ``wready`` is a LUT of flip-flops
        m.submodules.aw_queue = aw_queue = _DistributedFIFO(width=32, depth=QUEUE_DEPTH)
        resp = data.StructLayout({"resp": 2, "due": TIME_BITS})
        m.submodules.b_queue = b_queue = _DistributedFIFO(width=resp.size, depth=QUEUE_DEPTH)
        in_burst, burst_word, burst_err = Signal(), Signal(32), Signal()
        # the word of this cycle's W beat: inside a burst, the next word; else the burst's
        # AW from the queue, or the AW handshaking in this very cycle
        head_word = Mux(aw_queue.r_rdy, self._word(aw_queue.r_data), self._word(bus.awaddr))
        word = Signal(32)
        m.d.comb += word.eq(Mux(in_burst, burst_word, head_word))
        known = in_burst | aw_queue.r_rdy | bus.awvalid
        m.d.comb += bus.wready.eq(known & (b_queue.w_rdy | ~bus.wlast))
        beat = bus.wvalid & bus.wready
        bypass = beat & ~in_burst & ~aw_queue.r_rdy
        m.d.comb += [bus.awready.eq(aw_queue.w_rdy),
                     aw_queue.w_data.eq(bus.awaddr),
                     aw_queue.w_en.eq(bus.awvalid & ~bypass),
                     aw_queue.r_en.eq(beat & ~in_burst)]
        inside = word < self.words
        port = _Port(self.words, 8 * self._bytes, self._bytes, "wr")
        # from `BUFFERED_LATENCY` the beat reaches the memory from registers, a cycle later
        # (a registered memory's own, after the backdoor's multiplexer)
        domain = m.d.sync if self._latency >= BUFFERED_LATENCY and not self._registered else m.d.comb
        domain += [port.addr.eq(word), port.data.eq(bus.wdata),
                   port.en.eq(Mux(beat & inside, bus.wstrb, 0))]
        err = burst_err | ~inside
        with m.If(beat):
            m.d.sync += [in_burst.eq(~bus.wlast), burst_word.eq(word + 1),
                         burst_err.eq(err & ~bus.wlast)]
        record = Signal(resp)
        m.d.comb += [record.resp.eq(Mux(err, RESP_DECERR, RESP_OKAY)), record.due.eq(now + lat),
                     b_queue.w_data.eq(record.as_value()),
                     b_queue.w_en.eq(beat & bus.wlast)]
        head = data.View(resp, b_queue.r_data)
        m.d.comb += [bus.bvalid.eq(b_queue.r_rdy & _reached(now, head.due)),
                     bus.bresp.eq(head.resp), bus.bid.eq(0),
                     b_queue.r_en.eq(bus.bvalid & bus.bready)]
        return port


class _Port:
    """The signals a channel drives into (or reads from) one memory port."""

    def __init__(self, words: int, width: int, en_width: int, name: str):
        self.addr = Signal(range(max(2, words)), name=f"{name}_addr")
        self.data = Signal(width, name=f"{name}_data")
        self.en = Signal(en_width, name=f"{name}_en")


def _next_beat(m: Module, take, more, cand, word, left) -> None:
    """A burst's beat counter at the clock edge: the first beat of ``cand`` when taken, else the
    next beat of the current burst while it has ``more``."""
    with m.If(take):
        m.d.sync += [word.eq(cand.word), left.eq(cand.len)]
    with m.Elif(more):
        m.d.sync += [word.eq(word + 1), left.eq(left - 1)]


class _QueuePorts(wiring.Component):
    """The ports of `SyncFIFO`: ``w_data``, ``w_en``, ``w_rdy``, ``r_data``, ``r_en``,
    ``r_rdy``."""

    def __init__(self, *, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({"w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
                          "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1)})


class _HeadRegisterFIFO(_QueuePorts):
    """A `SyncFIFO` (in distributed RAM, read without a clock) whose head waits in a register:
    ``r_data`` and ``r_rdy`` come from flip-flops, so what decides on the head starts at a
    register. An entry written in cycle ``t`` is at the head from ``t + 2`` at the earliest."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.inner = inner = _DistributedFIFO(width=self.width, depth=self.depth)
        refill = ~self.r_rdy | self.r_en
        m.d.comb += [inner.w_data.eq(self.w_data), inner.w_en.eq(self.w_en),
                     self.w_rdy.eq(inner.w_rdy), inner.r_en.eq(refill)]
        with m.If(refill):
            m.d.sync += [self.r_rdy.eq(inner.r_rdy), self.r_data.eq(inner.r_data)]
        return m


class _DistributedFIFO(_QueuePorts):
    """`SyncFIFO`'s behaviour (the same ports and cycles), its storage marked for distributed
    RAM: with the head register after it, yosys would otherwise fold that register into a
    synchronous read port and place the queue in a block RAM (5.6 ns clock-to-out on ECP5).
    ``r_rdy`` and ``w_rdy`` are registers (not empty, not full), set from the level's
    comparisons beside each write and read, so a master's logic on them (the W channel's
    ``wready``) starts at a flip-flop."""

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.depth
        level = Signal(range(depth + 1))
        r_rdy, w_rdy = Signal(name="not_empty"), Signal(name="not_full", init=1)
        m.d.comb += [self.w_rdy.eq(w_rdy), self.r_rdy.eq(r_rdy)]
        do_read, do_write = self.r_rdy & self.r_en, self.w_rdy & self.w_en
        m.submodules.storage = storage = Memory(shape=self.width, depth=depth, init=[],
                                                attrs={"ram_style": "distributed"})
        w_port, r_port = storage.write_port(), storage.read_port(domain="comb")
        produce, consume = Signal(range(depth)), Signal(range(depth))
        m.d.comb += [w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
                     r_port.addr.eq(consume), self.r_data.eq(r_port.data)]
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(do_read):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
        with m.If(do_write & ~do_read):
            m.d.sync += [level.eq(level + 1), r_rdy.eq(1), w_rdy.eq(level != depth - 1)]
        with m.If(do_read & ~do_write):
            m.d.sync += [level.eq(level - 1), r_rdy.eq(level != 1), w_rdy.eq(1)]
        return m
