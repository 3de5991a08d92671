"""Control of the accelerator: program preload, the three in-order queues with their dependency
tokens, the layer registers, errors and counters.

**Preload.** START captures the program's address and length. The program is read from DRAM in
AXI4 bursts (`fetch`: at most 256 beats, never across 4 KiB, one AR per cycle) and every
instruction, decoded with `bitmill.isa.layout`, is written to the instruction memory of its
queue (`bitmill.isa.QUEUE_OF`) together with its program index (from registers, in the cycle
after it arrives). Each queue memory holds
`AccelConfig.queue_depth` instructions. The queues start `bitmill.timing.preload_cycles` cycles
after START (cycle 0 is the cycle after the START pulse).

**Fills.** PROG_COUNT counts the words of the program's first fill (`bitmill.isa.Program`). A
fill that another follows ends in a REFILL word (`bitmill.isa.Refill`, routed to no queue and
given no program index): once every instruction of the fill has finished, in the cycle after
the last one ended, the control preloads the REFILL's count of words from the next address
into the emptied queue memories, as at START, and the queues run them; token counters keep
their values. A REFILL that is not its fill's last word, or that counts no words, is an
illegal opcode; one counting more words than the three queue memories hold is a program too
long; one whose words lie beyond MEM_BYTES is an address error.

**Queues.** Each queue starts its next instruction in a cycle where its unit is free, the
instruction is at the head and every token it pops is available; it hands the instruction to
its unit with a one-cycle ``start`` (SETUP and SYNC execute in the control itself, in one cycle;
a LOAD or STORE unit's ``instr`` holds the instruction from the cycle before its ``start``)
and pushes its tokens when the unit signals ``finish`` (in the instruction's last cycle), so a
token is available from the instruction's end, as `sim/cycle.py` models it. Token channels:
load->compute, compute->load, compute->store, store->compute (`Deps`' flags towards the previous
and the next queue), each a counter.

**Errors** (`bitmill.hw.regmap.ErrorFlag`), raised with the program index of the instruction:
an opcode outside the ISA or a dependency flag its queue does not have (at preload), a queue
longer than its memory (at preload), a LOAD/STORE outside ``[0, mem_bytes)`` or outside its
buffer slot (at start), a token counter overflow (raised the cycle after the push), a deadlock
(nothing runs, some queue waits for a token; raised the cycle after it is seen), a bus error
(preload, or reported by a unit).
After an error no instruction starts; the program ends when the units are idle.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.hw.arith import balanced
from bitmill.hw.axi_bursts import first_burst, issue_bursts
from bitmill.hw.pe import NOMERGE
from bitmill.hw.regmap import ErrorFlag
from bitmill.isa import INDEX_BITS, INSTR_BITS, Buffer, Opcode, Queue
from bitmill.timing import check_fetch_width

TOKEN_BITS = 8           # a token counter saturates at 255 (more is TOKEN_OVERFLOW)
PREFETCH = 3             # instructions read ahead of each queue's head (`Control._queue`)
# a fill's first instructions per queue, kept in registers at preload: the head's in the PRIME
# cycle and the two that the memory's two-cycle read would bring in the two cycles after it
EARLY = 3
ERROR_BITS = 8

# per queue: the token channel of each flag (pop_prev, pop_next, push_prev, push_next), or None
L2C, C2L, C2S, S2C = range(4)
FLAG_CHANNELS = {Queue.LOAD: (None, C2L, None, L2C), Queue.COMPUTE: (L2C, S2C, C2L, C2S),
                 Queue.STORE: (C2S, None, S2C, None)}

# a queue entry: the instruction, its program index and its address checks (LOAD/STORE)
ENTRY = data.StructLayout({"word": INSTR_BITS, "index": INDEX_BITS, "outside": 1, "operand": 1})


def fetch_signature() -> wiring.Signature:
    """The AXI4 read channels the preload uses (master view; 32-bit addresses)."""
    return wiring.Signature({
        "araddr": Out(32), "arlen": Out(8), "arvalid": Out(1), "arready": In(1),
        "rdata": In(INSTR_BITS), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
    })


def unit_signature(body: data.Layout) -> wiring.Signature:
    """Control -> unit: a one-cycle ``start`` with the instruction body; unit -> control:
    ``busy`` (cycles start+1 .. end-1), ``finish`` (the last cycle), ``error``."""
    return wiring.Signature({"start": Out(1), "instr": Out(body), "busy": In(1), "finish": In(1),
                             "error": In(1)})


class Control(wiring.Component):
    """Members: host side ``start``, ``clear``, ``prog_addr``, ``prog_count``, ``mem_bytes`` (In),
    ``busy``, ``done``, ``error_flags``, ``error_instr``, ``cycles``, ``queue_busy`` (cycles per
    queue), ``retired`` (Out); ``fetch`` (`fetch_signature`, data ``8 * B`` bits); the units
    ``load``, ``store``, ``gemm``, ``vec`` (`unit_signature`); ``regs`` (Out: the SETUP
    registers, as `bitmill.isa.layout`'s setup body); ``fetching`` (the preload owns the read
    channel); ``trace_start`` / ``trace_index`` / ``trace_finish`` (per queue: an instruction
    starts, its program index, an instruction finishes)."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        self.beat_bytes = check_fetch_width(cfg)
        body = isa.layout(cfg)["body"].shape
        fetch = fetch_signature()
        members = dict(fetch.members)
        members["rdata"] = In(8 * self.beat_bytes)
        super().__init__({
            "start": In(1), "clear": In(1), "prog_addr": In(32), "prog_count": In(32),
            "mem_bytes": In(32),
            "busy": Out(1), "done": Out(1), "error_flags": Out(ERROR_BITS), "error_instr": Out(32),
            "cycles": Out(64), "queue_busy": Out(data.ArrayLayout(32, len(Queue))), "retired": Out(32),
            "fetch": Out(wiring.Signature(members)),
            "load": Out(unit_signature(body["load"].shape)),
            "store": Out(unit_signature(body["store"].shape)),
            "gemm": Out(unit_signature(body["gemm"].shape)),
            "vec": Out(unit_signature(body["vec"].shape)),
            "regs": Out(body["setup"].shape),
            "fetching": Out(1),
            "trace_start": Out(len(Queue)), "trace_finish": Out(len(Queue)),
            "trace_index": Out(data.ArrayLayout(INDEX_BITS, len(Queue))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        st = _State(self.cfg)
        for q, mem in zip(Queue, st.mems):
            m.submodules[f"instructions_{q.label}"] = mem
        for q, mem in st.checks.items():
            m.submodules[f"checks_{q.label}"] = mem
        m.d.comb += st.stopping.eq(st.erred | self.done)
        self._errors(m, st)
        self._host(m, st)
        self._preload(m, st)
        heads = [self._queue(m, st, q) for q in Queue]
        self._unit_busy(m, st)
        self._issue(m, st, heads)
        self._tokens(m, st, heads)
        self._finish(m, st, heads)
        self._error_index(m, st)
        return m

    # ---- host side -------------------------------------------------------------------------
    def _host(self, m: Module, st: "_State") -> None:
        """START (when idle) captures the program and clears the counters; CLEAR clears DONE
        and the error flags."""
        cfg = self.cfg
        # an error is visible from the cycle after its raise, as DONE (pending, then recorded)
        m.d.comb += [self.busy.eq(st.running), self.error_flags.eq(st.error_flags | st.pending),
                     self.error_instr.eq(Mux(st.error_flags != 0, st.error_instr, st.pending_index)),
                     self.cycles.eq(st.cycles),
                     self.retired.eq(st.retired)]
        for q in Queue:
            m.d.comb += self.queue_busy[q.value].eq(st.qbusy[q.value])
        with m.If(self.clear & ~st.running):
            m.d.sync += [self.done.eq(0), st.error_flags.eq(0), st.error_instr.eq(0), st.pending.eq(0),
                         st.erred.eq(0)]
        # the program's checks, registered: PROG_ADDR, PROG_COUNT and MEM_BYTES hold from the
        # cycle before START (the host writes them before it writes START)
        empty, bad_addr, too_long = Signal(name="prog_empty"), Signal(name="prog_bad_addr"), Signal(name="prog_too_long")
        nbytes = self.prog_count * (INSTR_BITS // 8)
        m.d.sync += [empty.eq(self.prog_count == 0),
                     bad_addr.eq((self.prog_addr[:4] != 0) | (self.prog_addr + nbytes > self.mem_bytes)),
                     too_long.eq(self.prog_count > len(Queue) * cfg.queue_depth)]
        with m.If(self.start & ~st.running):
            m.d.sync += [self.done.eq(0), st.error_flags.eq(0), st.error_instr.eq(0), st.pending.eq(0),
                         st.erred.eq(0), st.cycles.eq(0), st.index.eq(0), st.next_words.eq(0),
                         st.r_left.eq(self.prog_count * st.beats_per_instr), st.beat.eq(0)]
            m.d.sync += [c.eq(0) for c in st.qbusy + st.wp + st.tokens + st.token_nz + [st.r_out]]
            m.d.sync += [c.eq(c.init) for c in st.token_up + st.token_down + st.rp1 + st.rp2]
            with m.If(empty):
                m.d.sync += self.done.eq(1)
            with m.Elif(bad_addr | too_long):
                m.d.sync += [self.done.eq(1), st.erred.eq(1),
                             st.error_flags.eq(Mux(bad_addr, ErrorFlag.ADDRESS,
                                                   ErrorFlag.PROGRAM_TOO_LONG))]
            with m.Else():
                m.d.sync += [st.running.eq(1), st.phase.eq(_State.PRELOAD), *st.preload_is(1)]
        with m.If(st.running):
            m.d.sync += st.cycles.eq(st.cycles + 1)

    # ---- preload ---------------------------------------------------------------------------
    def _preload(self, m: Module, st: "_State") -> None:
        """Issue the program's bursts and write each instruction to its queue's memory."""
        f, bb = self.fetch, self.beat_bytes
        preload = st.preloading[0]
        # a fetch starts at START (from PROG_ADDR) or at a refill (from where the last ended);
        # its first burst is formed a cycle ahead from the same values (`first_burst`)
        bpi = st.beats_per_instr
        total = Signal(range(len(Queue) * self.cfg.queue_depth * bpi + 1), name="fetch_total")
        addr_in = Signal(32, name="fetch_from")
        m.d.comb += [total.eq(Mux(st.running, st.next_words * bpi, self.prog_count * bpi)),
                     addr_in.eq(Mux(st.running, st.f_addr, self.prog_addr))]
        first = first_burst(m, addr_in, total, bb.bit_length() - 1, "fetch")
        accept = (self.start & ~st.running) | st.refill_go
        st.f_left, issued, n, _ = issue_bursts(m, f, "ar", bb.bit_length() - 1, accept, addr_in, total,
                                               first, enable=preload & ~st.erred, addr=st.f_addr)
        m.d.comb += f.rready.eq(1)
        m.d.sync += st.r_out.eq(st.r_out + Mux(issued, n, 0) - f.rvalid)
        word = Signal(INSTR_BITS)
        if st.beats_per_instr == 1:
            m.d.comb += word.eq(f.rdata)
        else:
            held = Signal(INSTR_BITS - 8 * bb, reset_less=True)     # the beats before the last
            m.d.comb += word.eq(Cat(held, f.rdata))
            with m.If(f.rvalid):
                m.d.sync += held.eq(word[8 * bb:])
        complete = f.rvalid & (st.beat == st.beats_per_instr - 1)
        with m.If(f.rvalid):
            m.d.sync += [st.r_left.eq(st.r_left - 1),
                         st.beat.eq(Mux(complete, 0, st.beat + 1))]
            with m.If(f.rresp != 0):
                self._raise(m, st, ErrorFlag.BUS, st.index)
        self._route(m, st, word, complete & ~st.erred)
        with m.If(preload & f.rvalid & (st.r_left == 1) & ~st.erred):
            m.d.sync += [st.phase.eq(_State.PRIME), *st.preload_is(0)]
        # ``priming``: running in the PRIME phase, a register of its own (set with the phase:
        # PRIME lasts one cycle, and nothing stops a program in it)
        m.d.sync += st.priming.eq(preload & f.rvalid & (st.r_left == 1) & ~st.erred)
        with m.If(st.priming):
            m.d.sync += [st.phase.eq(_State.RUN), st.run.eq(1)]

    def _route(self, m: Module, st: "_State", word, complete) -> None:
        """Check a fetched instruction and write it to its queue's memory."""
        lay = isa.layout(self.cfg)
        view = data.View(lay, word[:lay.size])
        op = view.opcode.as_value()
        legal = op <= max(o.value for o in Opcode)
        queue = Signal(range(len(Queue)))
        bad_flags = Signal()
        refill = Signal()
        m.d.comb += refill.eq(op == Opcode.REFILL)
        with m.Switch(op):
            for o in Opcode:
                if o not in isa.QUEUE_OF:
                    continue
                with m.Case(o.value):
                    q = isa.QUEUE_OF[o]
                    m.d.comb += queue.eq(q.value)
                    lacking = [flag for flag, ch in zip(("pop_prev", "pop_next", "push_prev", "push_next"),
                                                        FLAG_CHANNELS[q]) if ch is None]
                    m.d.comb += bad_flags.eq(Cat(*(getattr(view, f) for f in lacking)).any()
                                             if lacking else 0)
        for q in Queue:
            wp = st.mem_write[q.value]
            full = st.wp[q.value] == self.cfg.queue_depth
            hit = complete & legal & ~bad_flags & ~refill & (queue == q.value)
            # the memories are written from registers, a cycle after the word arrives (the
            # queue's first `EARLY` words are kept in registers as they arrive, `_queue`)
            m.d.sync += [wp.addr.eq(st.wp[q.value]), wp.data.eq(Cat(word, st.index[:INDEX_BITS])),
                         wp.en.eq(hit & ~full)]
            checks = self._operand_error(m, q, view)
            if q in st.checks:
                cw = st.check_write[q]
                m.d.sync += [cw.addr.eq(st.wp[q.value]), cw.data.eq(Cat(*checks)), cw.en.eq(hit & ~full)]
            for k, early in enumerate(st.early[q.value]):
                with m.If(hit & (st.wp[q.value] == k)):
                    m.d.sync += early.eq(Cat(word, st.index[:INDEX_BITS], *checks))
            with m.If(hit):
                m.d.sync += st.wp[q.value].eq(st.wp[q.value] + 1)
                with m.If(full):
                    self._raise(m, st, ErrorFlag.PROGRAM_TOO_LONG, st.index)
        words = view.body.refill.words
        flags = Cat(view.pop_prev, view.pop_next, view.push_prev, view.push_next)
        with m.If(complete & ~refill):
            m.d.sync += st.index.eq(st.index + 1)
            with m.If(~legal):
                self._raise(m, st, ErrorFlag.ILLEGAL_OPCODE, st.index)
            with m.Elif(bad_flags):
                self._raise(m, st, ErrorFlag.BAD_FLAGS, st.index)
        with m.If(complete & refill):
            with m.If((st.r_left != 1) | (words == 0)):
                self._raise(m, st, ErrorFlag.ILLEGAL_OPCODE, st.index)
            with m.Elif(flags.any()):
                self._raise(m, st, ErrorFlag.BAD_FLAGS, st.index)
            with m.Elif(words > len(Queue) * self.cfg.queue_depth):
                self._raise(m, st, ErrorFlag.PROGRAM_TOO_LONG, st.index)
            with m.Else():
                m.d.sync += st.next_words.eq(words)

    @staticmethod
    def _raise(m: Module, st: "_State", flag: ErrorFlag, index) -> None:
        """Raise ``flag`` in this cycle with the instruction's index (the last raise of a
        cycle names the instruction); `_errors` records it. Each raise site registers whether
        it fired and its index, and the pending index is chosen among the registered sites in
        the next cycle, so no index multiplexer follows the (long) raise conditions."""
        fired = Signal(name=f"raise{len(st.sites)}")
        m.d.comb += [st.raised[flag.bit].eq(1), fired.eq(1)]
        st.sites.append((fired, index))

    @staticmethod
    def _error_index(m: Module, st: "_State") -> None:
        """``pending_index``: the index of the last raise site that fired in the last cycle."""
        was, then = [], []
        for n, (fired, at) in enumerate(st.sites):
            was.append(Signal(name=f"raised{n}"))
            then.append(Signal(len(at), name=f"raised{n}_index"))
            m.d.sync += [was[-1].eq(fired), then[-1].eq(at)]
        # the last site that fired, as a balanced tree of (fired, index) pairs in site order:
        # a pair's later half wins when it fired (log-depth, no OR over every later site);
        # valid when a site fired (``pending`` is then non-zero)
        _, index = balanced(zip(was, then), lambda a, b: (a[0] | b[0], Mux(b[0], b[1], a[1])))
        m.d.comb += st.pending_index.eq(index)

    @staticmethod
    def _errors(m: Module, st: "_State") -> None:
        """The flags raised in a cycle are pending in the next (``erred``, ``stopping``: no
        instruction starts) and sticky in ERROR from the one after; the first error's index
        goes to ERROR_INSTR."""
        m.d.sync += [st.pending.eq(st.raised), st.erred.eq(st.erred | st.raised.any())]
        with m.If(st.pending != 0):
            m.d.sync += st.error_flags.eq(st.error_flags | st.pending)
            with m.If(st.error_flags == 0):
                m.d.sync += st.error_instr.eq(st.pending_index)

    # ---- queues ----------------------------------------------------------------------------
    def _queue(self, m: Module, st: "_State", q: Queue) -> "_Head":
        """The head of queue ``q``, in registers, and up to `PREFETCH` instructions after it,
        read ahead. The queue memory's read data pass a register right after the block RAM
        (its output register on an ECP5, `bitmill.hw.ecp5`): a word read at address A in cycle
        t is on ``read`` in cycle t + 2. The queue's first `EARLY` words are kept in registers
        as they arrive at preload (`_route`), so nothing is read from the memory before it
        holds the whole fill: in the PRIME cycle the head takes instruction 0 from them, and
        instructions 1 and 2 come on ``read`` in the two cycles after it, as if read in PRIME
        and the cycle before. From then on the memory is read at a register (``ahead``, from
        3) whenever the instructions waiting after the head (in registers, on ``read`` now,
        or read in the last cycle) are fewer than `PREFETCH`, a decision from registers only:
        the start decision (``take``) moves the waiting instructions, never the memory's
        address. At least two of them are always there (a read is issued whenever fewer than
        three are, and a take removes one), so one waits in a register or is on ``read``, and
        the instruction after one that starts in cycle t is at the head in cycle t + 1. The
        head's address checks were computed at preload (`_route`) and are read from the side
        memory beside the queue's, so no adder follows the block RAM."""
        rd = st.mem_read[q.value]
        head = _Head(self.cfg, q)
        prime = st.priming
        cr = st.check_read.get(q)
        outside, operand = (cr.data[0], cr.data[1]) if cr is not None else (Const(0), Const(0))
        # the memory's word of the read two cycles ago: a plain register after the block RAM
        stored = Signal(ENTRY, name=f"{q.label}_stored", reset_less=True)
        m.d.sync += [stored.word.eq(rd.data[:INSTR_BITS]), stored.index.eq(rd.data[INSTR_BITS:]),
                     stored.outside.eq(outside), stored.operand.eq(operand)]
        # instructions 1 and 2 of the fill, on ``read`` in the two cycles after PRIME
        early = st.early[q.value]
        replay = Signal(ENTRY, name=f"{q.label}_replay", reset_less=True)
        replaying, second = Signal(name=f"{q.label}_replaying"), Signal(name=f"{q.label}_replay2")
        m.d.sync += [second.eq(prime), replaying.eq(prime | second)]
        with m.If(prime):
            m.d.sync += replay.eq(early[1])
        with m.Elif(second):
            m.d.sync += replay.eq(early[2])
        read = Signal(ENTRY, name=f"{q.label}_read")            # the word arriving in this cycle
        m.d.comb += read.eq(Mux(replaying, replay, stored))
        # the instructions waiting after the head: ``waits`` in registers (``wait0`` first),
        # ``arriving`` on ``read`` now, ``issued`` read in the last cycle
        waits = [Signal(ENTRY, name=f"{q.label}_wait{k}", reset_less=True) for k in range(PREFETCH)]
        count = Signal(range(PREFETCH + 1), name=f"{q.label}_waiting")
        arriving = Signal(name=f"{q.label}_arriving")
        issued = Signal(name=f"{q.label}_issued")
        depth = self.cfg.queue_depth
        ahead = Signal(range(depth), name=f"{q.label}_ahead")     # wraps: past the queue's end
        # it reads words no instruction uses (``held`` is off when the head runs past them)
        fetch = Signal(name=f"{q.label}_read_ahead")
        m.d.comb += fetch.eq(st.run & (count + arriving + issued < PREFETCH))
        # the instruction after the head: the first waiting one, or the one arriving; the
        # choice (``count != 0``) from register copies kept beside ``count``, one per 32 bits
        # of the entry (no 146-bit fanout from one LUT)
        nxt = Signal(ENTRY, name=f"{q.label}_next")
        chunks = range(0, ENTRY.size, 32)
        waiting = [Signal(name=f"{q.label}_waiting_nz{k // 32}", attrs=NOMERGE) for k in chunks]
        m.d.comb += nxt.as_value().eq(Cat(*(Mux(nz, waits[0].as_value()[k:k + 32], read.as_value()[k:k + 32])
                                            for nz, k in zip(waiting, chunks))))
        held = Signal(name=f"{q.label}_held")          # the head register holds an instruction
        with m.If(prime):
            m.d.sync += [head.word.eq(early[0].word), head.index.eq(early[0].index),
                         head.outside.eq(early[0].outside), head.operand.eq(early[0].operand)]
        with m.Elif(head.take):
            m.d.sync += [head.word.eq(nxt.word), head.index.eq(nxt.index),
                         head.outside.eq(nxt.outside), head.operand.eq(nxt.operand)]
        # the waiting instructions: the head takes the first; an arriving word joins behind
        # the rest (unless the head takes it at once)
        popped = head.take & (count != 0)
        kept = Mux(popped, count - 1, count)
        for k, w in enumerate(waits):
            shifted = waits[k + 1] if k + 1 < PREFETCH else w
            with m.If(arriving & ~(head.take & (count == 0)) & (kept == k)):
                m.d.sync += w.eq(read)
            with m.Elif(popped):
                m.d.sync += w.eq(shifted)
        joined = arriving & ~(head.take & (count == 0))
        with m.If(prime):
            m.d.sync += [count.eq(0), arriving.eq(1), issued.eq(1), ahead.eq(EARLY % depth)]
            m.d.sync += [nz.eq(0) for nz in waiting]
        with m.Else():
            m.d.sync += [count.eq(kept + joined), arriving.eq(issued), issued.eq(fetch)]
            m.d.sync += [nz.eq((kept + joined) != 0) for nz in waiting]
            with m.If(fetch):
                m.d.sync += ahead.eq(Mux(ahead == depth - 1, 0, ahead + 1))
        rp1, rp2 = st.rp1[q.value], st.rp2[q.value]
        with m.If(self.start & ~st.running):
            m.d.sync += held.eq(0)
        with m.Elif(prime):
            m.d.sync += held.eq(st.wp[q.value] != 0)
        with m.Elif(head.take):
            m.d.sync += [held.eq(rp1 != st.wp[q.value]), rp1.eq(rp2), rp2.eq(rp2 + 1)]
        # the read address from registers only, read in every cycle (a word read while no
        # fetch was issued is not used: ``arriving`` is off two cycles after)
        m.d.comb += [head.valid.eq(st.run & held), rd.addr.eq(ahead)]
        if cr is not None:
            m.d.comb += cr.addr.eq(rd.addr)
        return head

    def _unit_busy(self, m: Module, st: "_State") -> None:
        """Each unit's ``busy`` as a copy kept here: set as the control starts the unit,
        cleared in its ``finish`` cycle, as the unit's own (high from the cycle after the start
        to the finish; the control never starts a busy unit, and no unit is busy while the
        control is idle). The start decision and the end of the program read the copies
        beside them, not flags from across the chip; only ``finish`` travels."""
        for name in ("load", "store", "gemm", "vec"):
            unit = getattr(self, name)
            copy = Signal(name=f"{name}_busy", attrs=NOMERGE)
            with m.If(unit.start):
                m.d.sync += copy.eq(1)
            with m.Elif(unit.finish):
                m.d.sync += copy.eq(0)
            st.unit_busy[unit] = copy

    def _issue(self, m: Module, st: "_State", heads: list) -> None:
        """Start each queue's head when its unit is free and its tokens are there; a LOAD or
        STORE outside memory or its slot raises an error instead of starting."""
        units = {Queue.LOAD: (self.load,), Queue.STORE: (self.store,),
                 Queue.COMPUTE: (self.gemm, self.vec)}
        for q, head in zip(Queue, heads):
            view = head.view
            busy = Cat(*(st.unit_busy[u] for u in units[q])).any()
            have = Const(1)
            for flag, ch in zip(("pop_prev", "pop_next"), FLAG_CHANNELS[q][:2]):
                if ch is not None:
                    have = have & (~getattr(view, flag) | st.token_nz[ch])
            ready = head.valid & ~busy & ~st.stopping
            m.d.comb += head.waiting.eq(ready & ~have)
            outside, operand = head.outside, head.operand
            m.d.comb += [head.bad.eq(ready & have & (outside | operand)),
                         head.take.eq(ready & have & ~outside & ~operand)]
            with m.If(head.bad & outside):
                self._raise(m, st, ErrorFlag.ADDRESS, head.index)
            with m.Elif(head.bad):
                self._raise(m, st, ErrorFlag.OPERAND, head.index)
            op = view.opcode
            body = view.body.as_value()
            if q in (Queue.LOAD, Queue.STORE):
                # a DMA unit forms its transfer from the instruction a cycle ahead of its start:
                # in the PRIME cycle it sees the instruction the head takes in that cycle
                first = st.early[q.value][0].word
                body = Mux(st.priming, data.View(view.shape(), first[:view.shape().size]).body.as_value(),
                           body)
            for unit, code in self._unit_codes(q):
                m.d.comb += [unit.start.eq(head.take & (op == code)), unit.instr.eq(body)]
            if q is Queue.COMPUTE:
                with m.If(head.take & (op == Opcode.SETUP)):
                    m.d.sync += self.regs.eq(view.body.setup)
            m.d.comb += head.local.eq(head.take & ((op == Opcode.SETUP) | (op == Opcode.SYNC)))
            with m.If(head.take | busy):
                m.d.sync += st.qbusy[q.value].eq(st.qbusy[q.value] + 1)

    def _unit_codes(self, q: Queue):
        return {Queue.LOAD: ((self.load, Opcode.LOAD),), Queue.STORE: ((self.store, Opcode.STORE),),
                Queue.COMPUTE: ((self.gemm, Opcode.GEMM), (self.vec, Opcode.VEC))}[q]

    def _operand_error(self, m: Module, q: Queue, view) -> tuple:
        """(outside memory, outside its slot or empty) of a LOAD/STORE instruction word."""
        if q is Queue.COMPUTE:
            return Const(0), Const(0)
        if q is Queue.LOAD:
            body = view.body.load
            size = Signal(range(max(isa.slot_bytes(self.cfg, b) for b in Buffer) + 1))
            with m.Switch(body.buffer):
                for b in Buffer:
                    with m.Case(b):
                        m.d.comb += size.eq(isa.slot_bytes(self.cfg, b))
            over_slot = body.offset + body.nbytes > size
        else:
            body = view.body.store
            over_slot = body.nbytes > isa.slot_bytes(self.cfg, Buffer.OUT)
        return body.dram_addr + body.nbytes > self.mem_bytes, over_slot | (body.nbytes == 0)

    def _tokens(self, m: Module, st: "_State", heads: list) -> None:
        """Counters: a pop when an instruction starts, a push when it finishes."""
        pops, pushes = [[] for _ in range(4)], [[] for _ in range(4)]
        for q, head in zip(Queue, heads):
            flags = FLAG_CHANNELS[q]
            for j, flag in enumerate(("pop_prev", "pop_next")):
                if flags[j] is not None:
                    pops[flags[j]].append(head.take & getattr(head.view, flag))
            for j, flag in enumerate(("push_prev", "push_next")):
                ch = flags[2 + j]
                if ch is not None:
                    pushes[ch].append(head.push[j])
        for ch in range(4):
            pop, push = pops[ch][0], pushes[ch][0]
            cnt, nz = st.tokens[ch], st.token_nz[ch]
            # ``cnt + 1`` and ``cnt - 1`` kept in registers beside the count, so a pop or push
            # selects among registers (no adder after the start decision)
            up, down = st.token_up[ch], st.token_down[ch]
            full, one = Signal(name=f"{cnt.name}_full"), Signal(name=f"{cnt.name}_one")
            m.d.comb += [full.eq(up[TOKEN_BITS]), one.eq(down == 0)]
            # a push onto a full counter (which keeps its count) is raised in the next cycle,
            # from a register: no path from the start decision through the push to the flags
            overflow = Signal(name=f"{cnt.name}_overflow")
            m.d.sync += overflow.eq(push & ~pop & full)
            with m.If(overflow):
                self._raise(m, st, ErrorFlag.TOKEN_OVERFLOW, st.error_instr)
            with m.If(push & ~pop & ~full):
                m.d.sync += [cnt.eq(up), up.eq(up + 1), down.eq(cnt), nz.eq(1)]
            with m.Elif(pop & ~push):
                m.d.sync += [cnt.eq(down), up.eq(cnt), down.eq(down - 1), nz.eq(~one)]

    def _finish(self, m: Module, st: "_State", heads: list) -> None:
        """Pushes at each instruction's finish, the retired count, unit errors, deadlock and
        the end of the program."""
        running_units, starting = [], []
        for q, head in zip(Queue, heads):
            codes = self._unit_codes(q)
            finish = Cat(*(u.finish for u, _ in codes)).any()
            err = Cat(*(u.finish & u.error for u, _ in codes)).any()
            cur_push = Signal(2, name=f"push_{q.label}")
            cur_index = Signal(INDEX_BITS, name=f"index_{q.label}")
            flags = Cat(head.view.push_prev, head.view.push_next)
            with m.If(head.take):
                m.d.sync += [cur_push.eq(flags), cur_index.eq(head.index)]
            m.d.comb += head.push.eq(Mux(head.local, flags, Mux(finish & ~err, cur_push, 0)))
            with m.If(err):
                self._raise(m, st, ErrorFlag.OPERAND if q is Queue.COMPUTE else ErrorFlag.BUS,
                            cur_index)
            head.retire = head.local | finish
            running_units += [st.unit_busy[u] for u, _ in codes]
            starting += [u.start for u, _ in codes]
        # the instructions retiring in a cycle counted in a register first and added a
        # cycle later (the start decision ends there, not in the 32-bit counter): the
        # program ends at least a cycle after its last retire, so RETIRED is whole at DONE
        # (START clears the count: nothing retires in the cycle before it)
        retiring = Signal(range(len(Queue) + 1), name="retiring")
        m.d.sync += retiring.eq(sum(h.retire for h in heads))
        with m.If(self.start & ~st.running):
            m.d.sync += st.retired.eq(0)
        with m.Else():
            m.d.sync += st.retired.eq(st.retired + retiring)
        for q, h in zip(Queue, heads):
            m.d.comb += [self.trace_start[q.value].eq(h.take), self.trace_finish[q.value].eq(h.retire),
                         self.trace_index[q.value].eq(h.index)]
        m.d.comb += self.fetching.eq(st.preloading[1])
        # ``ended`` needs no start or local retire: with every head empty, or stopping, none
        # starts (the start decision stays off the end-of-program path)
        running = Cat(*running_units).any()
        active = running | Cat(*starting, *(h.local for h in heads)).any()
        run = st.run
        drained = ~Cat(*(h.valid for h in heads)).any()
        bad = Cat(*(h.bad for h in heads)).any()
        # a deadlock is raised the cycle after it is seen: nothing runs, starts or retires
        # then, so nothing changes and the heads still name it; the long start decision ends
        # in this register, not in the error flags
        stuck = Signal(name="deadlocked")
        m.d.sync += stuck.eq(run & ~active & ~drained & ~bad)
        with m.If(stuck & run & ~st.stopping):
            first = heads[-1].index
            for h in reversed(heads):
                first = Mux(h.waiting, h.index, first)
            self._raise(m, st, ErrorFlag.DEADLOCK, first)
        ended = run & ~running & (drained | st.stopping)
        failed = (st.preloading[0] & st.erred
                  & (st.r_out == 0) & ~self.fetch.rvalid)
        nbytes = st.next_words * (INSTR_BITS // 8)
        refill = ended & ~st.stopping & (st.next_words != 0)
        # the next fill's words past MEM_BYTES, registered: ``f_addr`` and ``next_words``
        # settle while the fill loads, many cycles before its end
        beyond = Signal(name="refill_beyond")
        m.d.sync += beyond.eq(st.f_addr + nbytes > self.mem_bytes)
        m.d.comb += st.refill_go.eq(refill & ~beyond)
        with m.If(refill & ~beyond):
            fetch = st.next_words * st.beats_per_instr
            m.d.sync += [st.run.eq(0), st.phase.eq(_State.PRELOAD), *st.preload_is(1), st.next_words.eq(0),
                         st.r_left.eq(fetch), st.beat.eq(0)]
            m.d.sync += [c.eq(0) for c in st.wp] + [c.eq(c.init) for c in st.rp1 + st.rp2]
        with m.Else():
            with m.If(refill):
                self._raise(m, st, ErrorFlag.ADDRESS, st.index)
            with m.If(ended | failed):
                m.d.sync += [st.running.eq(0), st.run.eq(0), *st.preload_is(0), self.done.eq(1),
                             st.cycles.eq(st.cycles)]


class _Head:
    """Signals of one queue's head instruction."""

    def __init__(self, cfg: AccelConfig, q: Queue):
        n = q.label
        # the instruction and its index: reset-less (``valid`` says whether they hold one)
        self.word = Signal(INSTR_BITS, name=f"{n}_word", reset_less=True)
        self.index = Signal(INDEX_BITS, name=f"{n}_index", reset_less=True)
        self.valid = Signal(name=f"{n}_valid")
        self.waiting = Signal(name=f"{n}_waiting")
        self.take = Signal(name=f"{n}_take")
        self.bad = Signal(name=f"{n}_bad")
        self.local = Signal(name=f"{n}_local")
        self.push = Signal(2, name=f"{n}_push")
        self.outside = Signal(name=f"{n}_outside")      # a LOAD/STORE outside memory
        self.operand = Signal(name=f"{n}_operand")      # outside its slot, or empty
        lay = isa.layout(cfg)
        self.view = data.View(lay, self.word[:lay.size])
        self.retire = None


class _State:
    """Registers and memories shared by the control's stages."""

    PRELOAD, PRIME, RUN = range(3)

    def __init__(self, cfg: AccelConfig):
        depth, bb = cfg.queue_depth, check_fetch_width(cfg)
        self.beats_per_instr = INSTR_BITS // 8 // bb
        most = len(Queue) * depth * self.beats_per_instr
        self.running = Signal()
        self.phase = Signal(2)
        self.stopping = Signal()
        self.run = Signal()             # running, in the RUN phase
        self.priming = Signal()         # running, in the PRIME phase
        self.unit_busy: dict = {}       # unit interface -> its busy flag's copy (`Control._unit_busy`)
        # running, in the PRELOAD phase: two register copies set with the phase (the control's
        # own, and ``fetching``'s for the read channel's multiplexers), not decoded from it
        self.preloading = [Signal(name=f"preloading{k}", attrs=NOMERGE) for k in range(2)]
        self.error_flags = Signal(ERROR_BITS)
        self.raised = Signal(ERROR_BITS)           # raised in this cycle
        self.sites: list = []                      # (fired, index) of every raise site
        self.pending = Signal(ERROR_BITS)          # raised in the last cycle
        self.pending_index = Signal(32)
        self.erred = Signal()      # an error is pending or recorded (kept in a register)
        self.error_instr = Signal(32)
        self.cycles = Signal(64)
        self.retired = Signal(32)
        self.index = Signal(32)
        self.next_words = Signal(range(len(Queue) * depth + 1))     # the next fill's (REFILL)
        self.f_addr = Signal(32, name="fetch_next")     # the fetch's next burst address
        self.f_left = None                      # beats still to request (`Control._preload`)
        self.refill_go = Signal()               # a refill's fetch starts
        self.r_left = Signal(range(most + 1))
        self.r_out = Signal(range(most + 1))
        self.beat = Signal(range(max(2, self.beats_per_instr)))
        self.qbusy = [Signal(32, name=f"busy_{q.label}") for q in Queue]
        self.wp = [Signal(range(depth + 1), name=f"wp_{q.label}") for q in Queue]
        # each queue's read pointer (its head's instruction) plus one and plus two, in
        # registers: whether the head holds an instruction after a take is one comparison
        # (``rp1 != wp``), no adder after the start decision (`Control._queue`)
        self.rp1 = [Signal(range(depth + 2), name=f"rp_{q.label}_plus1", init=1) for q in Queue]
        self.rp2 = [Signal(range(depth + 3), name=f"rp_{q.label}_plus2", init=2) for q in Queue]
        self.tokens = [Signal(TOKEN_BITS, name=f"tokens_{n}") for n in ("l2c", "c2l", "c2s", "s2c")]
        self.token_nz = [Signal(name=f"tokens_{n}_any") for n in ("l2c", "c2l", "c2s", "s2c")]
        # each counter's count + 1 and count - 1, in registers (`Control._tokens`)
        self.token_up = [Signal(TOKEN_BITS + 1, name=f"tokens_{n}_up", init=1) for n in ("l2c", "c2l", "c2s", "s2c")]
        self.token_down = [Signal(TOKEN_BITS, name=f"tokens_{n}_down", init=(1 << TOKEN_BITS) - 1)
                           for n in ("l2c", "c2l", "c2s", "s2c")]
        self.mems = [memory.Memory(shape=INSTR_BITS + INDEX_BITS, depth=depth, init=[]) for _ in Queue]
        self.mem_write = [mem.write_port() for mem in self.mems]
        # read only while no word is written (the fill's first `EARLY` words come from registers)
        self.mem_read = [mem.read_port() for mem in self.mems]
        # beside the LOAD and STORE queues: the address checks of each instruction, computed
        # as it is written (outside memory, outside its slot or empty), read with it
        self.checks = {q: memory.Memory(shape=2, depth=depth, init=[]) for q in (Queue.LOAD, Queue.STORE)}
        # each queue's first `EARLY` instructions of this fill, kept as they arrive (`Control._queue`;
        # instruction 0 is the head's in the PRIME cycle, where the DMA units see it too)
        self.early = [[Signal(ENTRY, name=f"{q.label}_early{k}", reset_less=True) for k in range(EARLY)]
                      for q in Queue]
        self.check_write = {q: mem.write_port() for q, mem in self.checks.items()}
        self.check_read = {q: mem.read_port() for q, mem in self.checks.items()}

    def preload_is(self, value: int) -> list:
        """Assignments of both ``preloading`` copies."""
        return [p.eq(value) for p in self.preloading]
