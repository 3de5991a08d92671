"""`CodePacker`: codes written into the output buffer as `bitmill.packing.pack_rows` lays
them out, one code per cycle, by read-modify-write of ``8*B``-bit words with byte enables.

A code of ``bits`` bits (two's-complement low bits of ``value``) goes to bits
``bit_addr .. bit_addr+bits-1`` of the buffer (word ``bit_addr // (8*B)``, bit
``bit_addr % (8*B)`` of it); with ``pad`` the bits after it up to the next byte boundary are
zeroed too (the last code of a packed row). Every other bit of the buffer keeps its value.

Stages:

1. the accepted code, registered;
2. the code's bits and its mask (with the padding of ``pad``), offset and word;
3. both shifted to the offset in a window of `span_words` words: pieces (word address,
   data, mask), at most two for ``B >= 4``;
4. merge: pieces merge into the open word register ``cur`` while they hit its address
   (which of the window's words ``cur`` holds is kept in registers a cycle ahead, so the
   decision compares no addresses);
   a word left behind (``cur`` on a new address, the low piece of a straddling code, or
   ``cur`` in a cycle without a code) is evicted. Evicted words queue in one spill
   register; one word is issued per cycle;
5. the issued word, registered (its address went to the buffer's read port as it was
   issued: the read data come `READ_LATENCY` cycles later, through the block RAMs' own
   output registers);
6. the word written: the buffer's read data (or, when one of the two writes before it
   wrote the same word, which the read could not see, that whole word) under the new
   bits; byte enables where the word has new bits. A read that meets a write of its word
   may answer anything (`bitmill.hw.synth` lets the buffer's collisions be undefined).

Throughput: one code per cycle unless a code has more pieces than there are free write
slots: a code that starts away from ``cur`` and straddles into a second word needs two
evictions, which fit only while the spill register is empty. For ``B >= 8`` that leaves
``ready`` high on every stream in which each code that opens a new word and straddles is
followed by a code inside the word it ends in, or by a cycle without a code (a run of
two or more consecutive codes, e.g. a channel range of a pixel, always does). Codes of
``B = 1, 2`` that span three to five words take one cycle per word beyond the second.

Drain: the last write of the last code accepted in cycle ``t`` is on ``write`` in cycle
``t + DRAIN_LATENCY`` when ``ready`` stays high after it (`CodePacker.drain_latency`);
``idle`` is high when no code or word is held anywhere.

On ECP5-85F (speed 6), ``B = 8``, depth 512, it placed and routed at 81 MHz with the
address comparison still in stage 4's decision: the slowest path was that decision (piece
address against ``cur``, two pieces at once or not) driving ``ready`` and the enables of
stages 1-3.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from bitmill.numerics import MAX_BITS
from bitmill.timing import PACKER_DRAIN

DRAIN_LATENCY = PACKER_DRAIN   # last code accepted in t -> its last write in t + 7
READ_LATENCY = 2               # ``read_addr`` in t -> ``read_data`` in t + 2 (a registered read)
MAX_DATA_BYTES = 128


def span_words(data_bytes: int) -> int:
    """Most words one code (up to 32 bits, padded to a byte) touches: ``1 + ceil(32/W)``."""
    return 1 + -(-MAX_BITS // (8 * data_bytes))


def write_layout(data_bytes: int, depth: int) -> data.StructLayout:
    """A buffer write request: word address, data, byte enables."""
    return data.StructLayout({"addr": range(depth), "data": 8 * data_bytes, "en": data_bytes})


def word_layout(data_bytes: int, depth: int) -> data.StructLayout:
    """A word on its way to the buffer: address, data, mask of the bits it sets."""
    return data.StructLayout({"valid": 1, "addr": range(depth), "data": 8 * data_bytes,
                              "mask": 8 * data_bytes})


class CodePacker(wiring.Component):
    """Members (In): ``valid``, ``bit_addr``, ``value`` (signed 32), ``bits`` (bits - 1),
    ``pad``, ``read_data`` (the word at ``read_addr`` of `READ_LATENCY` cycles before);
    (Out) ``ready``, ``idle``, ``read_addr``, ``write`` (stream of `write_layout`, always
    ready)."""

    def __init__(self, data_bytes: int, depth: int):
        if (isinstance(data_bytes, bool) or not isinstance(data_bytes, int)
                or not 1 <= data_bytes <= MAX_DATA_BYTES):
            raise ValueError(f"data_bytes must be an integer in 1..{MAX_DATA_BYTES}, not {data_bytes!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.data_bytes = data_bytes
        self.depth = depth
        self.word_bits = 8 * data_bytes
        self.offset_bits = ceil_log2(self.word_bits)
        self.span = span_words(data_bytes)
        super().__init__({
            "valid": In(1), "bit_addr": In(range(depth * self.word_bits)),
            "value": In(signed(MAX_BITS)), "bits": In(range(MAX_BITS)), "pad": In(1),
            "ready": Out(1), "idle": Out(1),
            "read_addr": Out(range(depth)), "read_data": In(self.word_bits),
            "write": Out(stream.Signature(write_layout(data_bytes, depth), always_ready=True)),
        })

    @property
    def drain_latency(self) -> int:
        """Cycles from accepting the last code to its last write (`DRAIN_LATENCY`)."""
        return DRAIN_LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        advance = Signal()                       # stages 1-2 move on (stage 3 takes its code)
        code = self._accept(m, advance)
        measured = self._measure(m, code, advance)
        head = self._align(m, measured, advance)
        issue, read_addr, merging = self._merge(m, measured, head, advance)
        writing = self._write(m, issue, read_addr)
        m.d.comb += [self.ready.eq(advance), self.idle.eq(~(code["valid"] | measured["valid"] | merging | writing))]
        return m

    def _accept(self, m: Module, advance: Signal) -> dict:
        """Stage 1: the accepted code."""
        regs = {name: Signal.like(getattr(self, name), name=f"s1_{name}")
                for name in ("valid", "bit_addr", "value", "bits", "pad")}
        with m.If(advance):
            m.d.sync += [reg.eq(getattr(self, name)) for name, reg in regs.items()]
        return regs

    def _measure(self, m: Module, code: dict, advance: Signal) -> dict:
        """Stage 2: the code's bits (low ``bits`` of ``value``), its mask (``bits`` plus the
        padding of ``pad`` ones, as a thermometer code), its offset and word, and the index
        of the last word it touches."""
        bits = code["bits"] + 1
        padding = Mux(code["pad"], (-(code["bit_addr"][:3] + bits))[:3], 0)
        length = bits + padding
        offset = code["bit_addr"][:self.offset_bits]
        regs = {"valid": Signal(name="s2_valid"), "w0": Signal(range(self.depth), name="s2_w0"),
                "offset": Signal(self.offset_bits, name="s2_offset"),
                "last": Signal(range(self.span), name="s2_last"),
                "field": Signal(MAX_BITS, name="s2_field"), "ones": Signal(MAX_BITS + 8, name="s2_ones")}
        with m.If(advance):
            m.d.sync += [regs["valid"].eq(code["valid"]),
                         regs["w0"].eq(code["bit_addr"][self.offset_bits:]),
                         regs["offset"].eq(offset),
                         regs["last"].eq((offset + length - 1) >> self.offset_bits),
                         regs["field"].eq(code["value"] & Cat(*[code["bits"] >= k
                                                                for k in range(MAX_BITS)])),
                         regs["ones"].eq(Cat(*[length > k for k in range(MAX_BITS + 8)]))]
        return regs

    def _align(self, m: Module, code: dict, advance: Signal) -> dict:
        """Stage 3: data and mask shifted into the window of `span` words at ``w0``."""
        window = self.span * self.word_bits
        head = {"valid": Signal(name="s3_valid"),
                "addrs": [Signal(range(self.depth), name=f"s3_addr{j}") for j in range(self.span)],
                "last": Signal(range(self.span), name="s3_last"),
                "data": Signal(window, name="s3_data"), "mask": Signal(window, name="s3_mask")}
        with m.If(advance):
            # the window's word addresses, each in its own register: the merge compares them
            # with the open word's address without an adder before the comparison
            m.d.sync += [a.eq((code["w0"] + j)[:len(a)]) for j, a in enumerate(head["addrs"])]
            m.d.sync += [head["valid"].eq(code["valid"]), head["last"].eq(code["last"]),
                         head["data"].eq(code["field"] << code["offset"]),
                         head["mask"].eq(code["ones"] << code["offset"])]
        return head

    def _piece(self, head: dict, index) -> dict:
        """Piece ``index`` of the code in stage 4: its word address, data and mask."""
        w = self.word_bits
        datas = [head["data"][j * w:(j + 1) * w] for j in range(self.span)]
        masks = [head["mask"][j * w:(j + 1) * w] for j in range(self.span)]
        if isinstance(index, int):
            return {"addr": head["addrs"][index], "data": datas[index], "mask": masks[index]}
        return {"addr": Array(head["addrs"])[index], "data": Array(datas)[index],
                "mask": Array(masks)[index]}

    def _merge(self, m: Module, code: dict, head: dict, advance: Signal) -> tuple:
        """Stage 4: pieces into ``cur``; evicted words through ``spill`` to the issue slot.
        Returns the issued word (a `word_layout` signal) and whether any word is held."""
        layout = word_layout(self.data_bytes, self.depth)
        cur = Signal(layout, name="s4_cur")
        spill = Signal(layout, name="s4_spill")
        index = Signal(range(self.span), name="s4_index")     # next piece of a split code
        piece = self._piece(head, index if self.span > 1 else 0)
        step = (index + 1)[:len(index)] if self.span > 2 else min(1, self.span - 1)
        nxt = self._piece(head, step)
        # ``at[j]``: cur's address is the window's word j, kept in a register (`_lookahead`):
        # no address comparison in the decision
        at = Signal(self.span, name="s4_cur_at")
        hit = cur.valid & (at.bit_select(index, 1) if self.span > 1 else at[0])
        evict_cur = cur.valid & ~hit                           # cur leaves for another word
        opened = Signal(layout, name="s4_opened")              # the piece's word after merging
        m.d.comb += [opened.valid.eq(1), opened.addr.eq(piece["addr"]),
                     opened.data.eq(Mux(hit, cur.data & ~piece["mask"], 0) | piece["data"]),
                     opened.mask.eq(Mux(hit, cur.mask, 0) | piece["mask"])]
        more = index < head["last"]
        pair = more & ~(evict_cur & spill.valid)               # this piece and the next at once
        done = head["valid"] & (~more | (pair & (index + 1 >= head["last"])))
        m.d.comb += advance.eq(~head["valid"] | done)
        first = Signal(layout, name="s4_evict0")               # evictions of this cycle, in order
        second = Signal(layout, name="s4_evict1")
        with m.If(~head["valid"]):
            m.d.comb += first.eq(cur)
            m.d.sync += cur.valid.eq(0)
        with m.Else():
            m.d.comb += first.eq(Mux(evict_cur, cur, Mux(pair, opened, 0)))
            m.d.comb += second.eq(Mux(evict_cur & pair, opened, 0))
            with m.If(pair):
                m.d.sync += [cur.valid.eq(1), cur.addr.eq(nxt["addr"]), cur.data.eq(nxt["data"]),
                             cur.mask.eq(nxt["mask"])]
            with m.Else():
                m.d.sync += cur.eq(opened)
            m.d.sync += index.eq(Mux(done, 0, index + 1 + pair))
        self._lookahead(m, code, head, index, pair, advance, at)
        issue = self._issue(m, head["valid"], spill, first, second)
        # the issued word's address (whatever it is when no word is issued), from registers
        # through the decision's few selections: the buffer is read with it at once
        read_addr = Signal(range(self.depth), name="s4_read_addr")
        m.d.comb += read_addr.eq(Mux(spill.valid, spill.addr, Mux(evict_cur, cur.addr, piece["addr"])))
        return issue, read_addr, head["valid"] | cur.valid | spill.valid

    def _lookahead(self, m: Module, code: dict, head: dict, index, pair, advance, at) -> None:
        """``at`` of the next cycle, while stage 3 holds a code: cur then holds the window's
        word ``s`` (``index``, or the one after it with ``pair``), so against the same window
        ``at[j]`` is ``s == j``, and against the window stage 2 brings (``advance``), whose
        words are ``w0' + j``, it is ``w0' - w0 == s - j`` (modulo the address width): the
        difference and its comparisons come from registers, ``pair`` and ``advance`` only
        choose among them."""
        span, bits = self.span, len(head["addrs"][0])
        diff = Signal(bits, name="s4_window_step")
        m.d.comb += diff.eq(code["w0"][:bits] - head["addrs"][0])
        apart = {k: diff == (k % (1 << bits)) for k in range(-(span - 1), span)}
        nxt = Signal(span, name="s4_cur_at_next")
        def chosen(s, table):
            """``table[s]`` for the window word ``s`` (an expression of ``index``)."""
            return table[0] if span == 1 else Array(table)[s]
        plus = (index + 1)[:len(index)] if span > 1 else 0
        for j in range(span):
            stay = [Const(int(s == j)) for s in range(span)]
            moved = [apart[s - j] for s in range(span)]
            m.d.comb += nxt[j].eq(Mux(advance, Mux(pair, chosen(plus, moved), chosen(index, moved)),
                                      Mux(pair, chosen(plus, stay), chosen(index, stay))))
        with m.If(head["valid"]):
            m.d.sync += at.eq(nxt)

    def _issue(self, m: Module, coded, spill, first, second):
        """The word issued this cycle (its read address to the buffer): the spilled word,
        else the first eviction; what remains waits in ``spill``. A word evicted in a cycle
        without a code (``coded`` low) always waits one cycle in ``spill``, so that the last
        word lands `DRAIN_LATENCY` cycles after the last code."""
        direct = coded & ~spill.valid
        issue = Signal(word_layout(self.data_bytes, self.depth), name="s4_issue")
        m.d.comb += issue.eq(Mux(spill.valid, spill, Mux(direct, first, 0)))
        m.d.sync += spill.eq(Mux(direct, second, first))
        return issue

    def _write(self, m: Module, issue, read_addr):
        """Stages 5-6: the issued word registered twice; its address (``read_addr``, in the
        cycle it is issued) read from the buffer, whose data arrive `READ_LATENCY` cycles
        later, in stage 6. There the word is the buffer's read data, or the whole word one of
        the two writes before it wrote, when it wrote this one (the read could not see them;
        the most recent wins), under the new bits, written with byte enables; the address
        comparisons registered a cycle ahead. Returns whether a word is on its way."""
        layout = word_layout(self.data_bytes, self.depth)
        s4 = Signal(layout, name="s5_word")
        s5 = Signal(layout, name="s6_word")
        m.d.sync += [s4.eq(issue), s5.eq(s4)]
        m.d.comb += self.read_addr.eq(read_addr)
        wl = write_layout(self.data_bytes, self.depth)
        # the writes of the last two cycles: each the whole word as it then was (its bytes
        # without enable carry what it read), so it replaces the read data entirely, and what
        # the buffer answers to a read that meets a write of its word does not matter
        last, last2 = Signal(wl, name="written1"), Signal(wl, name="written2")
        last_valid = Signal(name="written1_valid")
        m.d.sync += [last.eq(self.write.payload), last2.eq(last), last_valid.eq(self.write.valid)]
        hit1, hit2 = Signal(name="written1_hit"), Signal(name="written2_hit")
        m.d.sync += [hit1.eq(s5.valid & (s5.addr == s4.addr)),
                     hit2.eq(last_valid & (last.addr == s4.addr))]
        seen = Mux(hit1, last.data, Mux(hit2, last2.data, self.read_data))
        m.d.comb += [self.write.valid.eq(s5.valid), self.write.payload.addr.eq(s5.addr),
                     self.write.payload.data.eq((seen & ~s5.mask) | s5.data),
                     self.write.payload.en.eq(Cat(*[s5.mask[8 * i:8 * i + 8].any()
                                                    for i in range(self.data_bytes)]))]
        return s4.valid | s5.valid
